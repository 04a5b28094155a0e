"""What every stage CLI shares: argument parsing basics, logging, one-line errors, a summary line.

Checks come first and cost about a second: params, and that every input the command names exists. Only
then is the stage's module imported (torch, transformers: seconds) and run.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

from kdnas import params_audit
from kdnas.errors import KdnasError, StopRequested
from kdnas.params import load_params
from kdnas.pipeline.manifest import MANIFEST, In, Out


def stage_parser(stage: str, description: str, required: bool = True) -> argparse.ArgumentParser:
    """The stage's command line: ``--params``, ``--log`` and the manifest's flags, each documented as
    ``input:`` or ``output:`` (what :func:`check_inputs` checks). ``required=False`` leaves the checking of
    which flags a mode needs to the stage (distill_topk's three modes)."""
    parser = argparse.ArgumentParser(prog=f"stages/{stage}.py", description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--log", help="write the stage's log (its stderr) to this file; its one-line error, if "
                                      "any, also goes to the terminal (the Snakemake rules use this)")
    for arg in MANIFEST[stage].args:
        if arg.flag is not None:
            role = "input: " if isinstance(arg, In) else "output: " if isinstance(arg, Out) else ""
            parser.add_argument(f"--{arg.flag}", required=required, help=role + arg.help)
    for mode in MANIFEST[stage].modes:
        parser.add_argument(f"--{mode.flag}", nargs=mode.nargs, metavar="JSON" if mode.nargs else None,
                            help=("input: " if mode.input else "") + mode.help)
    return parser


def _stderr_to(path: str) -> TextIO:
    """Sends this process's stderr (logging, progress bars, warnings) to ``path``; returns the terminal's."""
    terminal = os.fdopen(os.dup(2), "w", buffering=1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "w", buffering=1)
    sys.stderr.flush()
    os.dup2(log.fileno(), 2)
    return terminal


def check_inputs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Every argument documented as ``input:`` that was given must name an existing path."""
    for action in parser._actions:
        if not (action.help or "").startswith("input:"):
            continue
        value = getattr(args, action.dest, None)
        for path in value if isinstance(value, list) else [value]:
            if path is not None and not Path(path).exists():
                flag = action.option_strings[0]
                raise KdnasError(f"{flag} = {path!r} does not exist (an input: run the stage that writes it first, "
                                 "e.g. `dvc repro` or `snakemake`)")


def _stage_function(stage: str) -> Callable[[object, dict], str]:
    module, name = MANIFEST[stage].function.split(":")
    return getattr(importlib.import_module(module), name)


def check_data_files(args: argparse.Namespace, params: dict) -> None:
    """The task's data files exist (a fan-out stage's ``--task``: that task's, which must be in glue.tasks)."""
    from kdnas.data.loading import check_task_files
    from kdnas.task_params import task_params

    check_task_files(task_params(params, args.task) if getattr(args, "task", None) else params)


def run_stage(stage: str, parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parses args, validates params, inputs and (the manifest's ``reads_data``) the task's data files, runs
    the stage's function and prints its one-line summary.

    The function (the manifest's ``kdnas.pipeline.<stage>:<stage>_stage``) is imported only after the checks
    pass, and called with the stage's paths object (the manifest's ``paths_type``: its declared flags, read-only)
    and the params. Known
    problems (bad params, data, models) print ``<stage>: error: <message>`` and exit 2 before heavy work;
    nothing already produced is touched because outputs are written atomically.
    """
    args = parser.parse_args(argv)
    terminal = _stderr_to(args.log) if getattr(args, "log", None) else None

    def error_line(text: str) -> None:
        print(text, file=sys.stderr, flush=True)
        if terminal:
            print(text, file=terminal, flush=True)

    logging.basicConfig(level=logging.INFO, format=f"[{stage}] %(message)s", stream=sys.stderr)
    start = time.perf_counter()
    try:
        params = load_params(args.params)
        check_inputs(parser, args)
        if MANIFEST[stage].reads_data:
            check_data_files(args, params)
        readable = MANIFEST[stage].readable_params(getattr(args, "task", None))
        summary = _stage_function(stage)(MANIFEST[stage].paths(args), params_audit.start(params, readable))
        params_audit.finish(stage, getattr(args, "task", None))
    except StopRequested as error:  # SIGTERM during training: checkpoint saved, rerun resumes
        error_line(f"{stage}: stopped: {error}")
        return error.exit_code
    except KdnasError as error:
        error_line(f"{stage}: error: {error}")
        return 2
    except Exception as error:  # a bug, not bad input: the traceback goes to the log, its last line here too
        if terminal:
            print(f"{stage}: failed: {type(error).__name__}: {error} (traceback in {args.log})", file=terminal)
        raise
    print(f"{stage}: {summary} ({time.perf_counter() - start:.1f}s)")
    return 0
