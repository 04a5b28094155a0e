"""dvc.yaml lists, for each stage, every kdnas module the stage's code imports (else DVC would keep a stale
result after a library change)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO


STAGE_FUNCTION = re.compile(r"^kdnas(\.\w+)+:\w+$")


def _module_file(name: str) -> Path | None:
    path = REPO / Path(*name.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else None


def kdnas_imports(path: Path, seen: set[Path] | None = None) -> set[Path]:
    """Every kdnas source file reachable from ``path`` through imports (top-level and inside functions)."""
    seen = set() if seen is None else seen
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kdnas"):
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("kdnas")]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and STAGE_FUNCTION.match(node.value):
            names = [node.value.split(":")[0]]  # run_stage("x", "kdnas.pipeline.x:x_stage", ...) imports it lazily
        for name in names:
            found = _module_file(name)
            if found and found not in seen:
                seen.add(found)
                kdnas_imports(found, seen)
    return seen


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
ALWAYS = {"kdnas/__init__.py", "kdnas/pipeline/__init__.py", "kdnas/cli.py", "kdnas/params.py", "kdnas/errors.py"}


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_deps_cover_the_code_it_runs(stage):
    spec = STAGES[stage].get("do", STAGES[stage])  # a foreach stage's items share one definition
    deps = [d for d in spec["deps"] if d.startswith(("kdnas", "stages"))]
    files = kdnas_imports(REPO / "stages" / f"{stage}.py")
    # params validation runs in every stage through kdnas.cli; its imports are covered by the params deps
    files -= kdnas_imports(REPO / "kdnas" / "cli.py") - kdnas_imports(REPO / "kdnas" / "pipeline" / f"{stage}.py")
    missing = sorted(str(f.relative_to(REPO)) for f in files
                     if str(f.relative_to(REPO)) not in ALWAYS
                     and not any(str(f.relative_to(REPO)) == d or str(f.relative_to(REPO)).startswith(d.rstrip("/") + "/")
                                 for d in deps))
    assert not missing, f"{stage}: add to dvc.yaml deps: {missing}"


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_deps_list_no_code_the_stage_does_not_run(stage):
    """An extra module would rerun the stage (and, through its outputs, what follows) on edits it never sees."""
    spec = STAGES[stage].get("do", STAGES[stage])
    files = {str(f.relative_to(REPO)) for f in kdnas_imports(REPO / "stages" / f"{stage}.py")}
    extra = [dep for dep in spec["deps"] if dep.startswith("kdnas")
             and not any(f == dep or f.startswith(dep.rstrip("/") + "/") for f in files)]
    assert not extra, f"{stage}: dvc.yaml deps it never imports: {extra}"
