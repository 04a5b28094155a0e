"""``dvc.yaml``, written from the stage manifest (:mod:`kdnas.pipeline.manifest`).

    python -m kdnas.pipeline.dvc_yaml           # rewrite dvc.yaml
    python -m kdnas.pipeline.dvc_yaml --check   # exit 1 when dvc.yaml differs from the manifest
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kdnas.pipeline.code_deps import REPO, stage_code_deps
from kdnas.pipeline.manifest import PARAMS, STAGES, Metric, Out, Plot, Stage

HEADER = """\
# The kdnas pipeline. GENERATED from kdnas/pipeline/manifest.py (python -m kdnas.pipeline.dvc_yaml); edit the
# manifest, not this file (tests/pipeline/test_manifest.py holds the two equal). Each stage calls one thin CLI in
# stages/; deps list the CLI, the kdnas modules it imports and its inputs; params list only the keys it
# reads, so tuning the search never retrains the teacher. workflow/rules/*.smk run the same stages under
# Snakemake, with their params and code taken from the same manifest.
stages:
"""
DATA_DEPS = [("${data.glue_dir}", "the GLUE folder: an edited data file reruns what reads it"),
             ("${data.custom_dir}", "custom_tasks' files (data/ unless moved)")]
WIDTH = 118


def command_parts(stage: Stage) -> list[str]:
    """The stage's command line as ``--flag value`` parts, flags in the manifest's order."""
    parts = [f"bin/kdnas-python stages/{stage.name}.py", "--params params.yaml"]
    return parts + [f"--{arg.flag} {arg.path}" for arg in stage.args if arg.flag is not None]


def command(stage: Stage) -> str:
    return " ".join(command_parts(stage))


def _wrap(parts: list[str], width: int) -> list[str]:
    """Lines of whole parts (a flag never leaves its value), each at most ``width`` where a part allows."""
    lines = [parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + 1 + len(part) > width:
            lines.append(part)
        else:
            lines[-1] += " " + part
    return lines


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in text.splitlines()]


def _item(path: str, props: dict, indent: str) -> list[str]:
    if not props:
        return [f"{indent}- {path}"]
    return [f"{indent}- {path}:"] + [f"{indent}    {key}: {_scalar(value)}" for key, value in props.items()]


def _scalar(value) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def _out_props(out: Out) -> dict:
    if isinstance(out, Plot):
        return dict(out.props)
    if isinstance(out, Metric):
        return {"cache": False}
    return {"persist": True} if out.persist else {}


def render_stage(stage: Stage) -> list[str]:
    lines = _comment(stage.note, "  ") + [f"  {stage.name}:"]
    ind = "    "
    if stage.per_task:
        lines += [f"{ind}foreach: ${{glue.tasks}}", f"{ind}do:"]
        ind += "  "
    cmd = _wrap(command_parts(stage), WIDTH - len(ind) - 5)
    lines += [f"{ind}cmd: {cmd[0]}"] + [f"{ind}  {part}" for part in cmd[1:]]
    lines.append(f"{ind}deps:")
    lines.append(f"{ind}  - stages/{stage.name}.py")
    if stage.reads_data:
        lines += [f"{ind}  - {path}   # {why}" for path, why in DATA_DEPS]
    lines += [f"{ind}  - {dep}" for dep in stage_code_deps(stage.name)]
    for dep in stage.inputs:
        lines += _comment(dep.note, ind + "  ") + [f"{ind}  - {dep.path}"]
    notes = stage.param_notes
    lines.append(f"{ind}params:" + (f"  # {notes['']}" if "" in notes else ""))
    keys = [f"{ind}  - {key}" + (f"   # {notes[key]}" if key in notes else "") for key in stage.params]
    if stage.params_file != PARAMS:  # keys of another params file: a mapping from the file to its keys
        lines.append(f"{ind}  - {stage.params_file}:")
        keys = ["    " + line for line in keys]
    lines += keys
    for section, kind in (("outs", Out), ("metrics", Metric), ("plots", Plot)):
        outs = [o for o in stage.outputs if type(o) is kind]
        if outs:
            lines.append(f"{ind}{section}:")
            for out in outs:
                lines += _item(out.path, _out_props(out), ind + "  ")
    return lines


def render(stages=STAGES) -> str:
    blocks = ["\n".join(render_stage(stage)) for stage in stages]
    return HEADER + "\n\n".join(blocks) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kdnas.pipeline.dvc_yaml", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that dvc.yaml is up to date")
    parser.add_argument("--out", default=str(REPO / "dvc.yaml"))
    args = parser.parse_args(argv)
    text, path = render(), Path(args.out)
    if args.check:
        if not path.is_file() or path.read_text() != text:
            sys.exit(f"{path} differs from kdnas/pipeline/manifest.py: run python -m kdnas.pipeline.dvc_yaml")
        return
    path.write_text(text)


if __name__ == "__main__":
    main()
