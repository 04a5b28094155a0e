"""What every stage CLI shares: argument parsing basics, logging, one-line errors, a summary line."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Callable

from kdnas.checkpoint import StopRequested
from kdnas.errors import KdnasError
from kdnas.params import load_params


def stage_parser(stage: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"stages/{stage}.py", description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return parser


def run_stage(stage: str, main: Callable[[argparse.Namespace, dict], str], parser: argparse.ArgumentParser,
              argv: list[str] | None = None) -> int:
    """Parses args, validates params, runs ``main`` and prints its one-line summary.

    Known problems (bad params, data, models) print ``<stage>: error: <message>`` and exit 2 before
    heavy work; nothing already produced is touched because outputs are written atomically.
    """
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"[{stage}] %(message)s", stream=sys.stderr)
    start = time.perf_counter()
    try:
        params = load_params(args.params)
        summary = main(args, params)
    except StopRequested as error:  # SIGTERM during training: checkpoint saved, rerun resumes
        print(f"{stage}: stopped: {error}", file=sys.stderr)
        return error.exit_code
    except KdnasError as error:
        print(f"{stage}: error: {error}", file=sys.stderr)
        return 2
    print(f"{stage}: {summary} ({time.perf_counter() - start:.1f}s)")
    return 0
