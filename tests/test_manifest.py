"""The stage manifest is the one description of every stage: dvc.yaml is generated from it, each stage's CLI
takes exactly its flags, and the code deps it derives follow the imports."""
from __future__ import annotations

import importlib
import runpy

import pytest

from kdnas.pipeline.code_deps import stage_code_deps, stage_code_files
from kdnas.pipeline.dvc_yaml import render
from kdnas.pipeline.manifest import MANIFEST, In, Out

from conftest import REPO

# distill_topk's extra flags: Snakemake's fan-out runs one candidate (--arch, --candidate) or ranks their
# results (--gather); DVC runs the loop with the manifest's flags
FAN_OUT_FLAGS = {"distill_topk": {"--arch", "--candidate", "--gather"}}


def test_dvc_yaml_is_generated_from_the_manifest():
    assert (REPO / "dvc.yaml").read_text() == render(), "run: python -m kdnas.pipeline.manifest"


@pytest.mark.parametrize("name", list(MANIFEST))
def test_stage_cli_takes_the_manifest_flags_with_their_roles(name):
    """check_inputs refuses a missing path for every flag documented as ``input:``: the CLI's help must say
    input for the manifest's inputs and output for its outputs."""
    parser = runpy.run_path(str(REPO / "stages" / f"{name}.py"))["parser"]
    actions = {a.option_strings[0]: a for a in parser._actions if a.option_strings[0].startswith("--")}
    declared = {f"--{arg.flag}": arg for arg in MANIFEST[name].args if arg.flag is not None}
    assert set(actions) == set(declared) | {"--params", "--log"} | FAN_OUT_FLAGS.get(name, set())
    for flag, arg in declared.items():
        role = "input:" if isinstance(arg, In) else "output:" if isinstance(arg, Out) else None
        help_text = actions[flag].help or ""
        if role:
            assert help_text.startswith(role), f"{name} {flag}: {help_text!r}"
        else:
            assert not help_text.startswith(("input:", "output:")), f"{name} {flag}: {help_text!r}"


@pytest.mark.parametrize("name", list(MANIFEST))
def test_every_stage_has_its_cli_and_function(name):
    assert f'run_stage("{name}", parser)' in (REPO / "stages" / f"{name}.py").read_text()
    module, function = MANIFEST[name].function.split(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_code_deps_follow_the_imports():
    teacher, search = set(stage_code_deps("teacher")), set(stage_code_deps("search"))
    # the search runs the search package, the multi-task proxy and its pipeline function (a lazy import string)
    assert {"kdnas/search", "kdnas/proxy_tasks.py", "kdnas/pipeline/search.py", "kdnas/latency_model.py"} <= search
    # fine-tuning the teacher runs none of them; the params check (kdnas.cli) imports the search registry for
    # every stage, but an edit there cannot change a teacher
    assert not {"kdnas/search", "kdnas/proxy_tasks.py", "kdnas/pipeline/search.py"} & teacher
    assert {"kdnas/training.py", "kdnas/pipeline/teacher.py", "kdnas/losses"} <= teacher
    assert not {"kdnas/cli.py", "kdnas/params.py"} & (teacher | search)
    # a subpackage is one dep, its files are what the stage imports
    assert "kdnas/losses/__init__.py" in stage_code_files("teacher")


def test_code_deps_see_an_import_added_inside_a_function(tmp_path):
    """A module imported lazily (inside a function) is run by the stage all the same."""
    import shutil

    for folder in ("kdnas", "stages"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    assert "kdnas/proxy_tasks.py" not in stage_code_deps("teacher", root=tmp_path)
    module = tmp_path / "kdnas" / "pipeline" / "teacher.py"
    module.write_text(module.read_text() + "\n\ndef _late():\n    from kdnas.proxy_tasks import combine\n")
    assert "kdnas/proxy_tasks.py" in stage_code_deps("teacher", root=tmp_path)
