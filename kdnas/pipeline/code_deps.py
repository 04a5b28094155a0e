"""The code a stage runs, read from the imports of its CLI (``stages/<stage>.py``), so that DVC and Snakemake
rerun exactly the stages a library edit can change.

Every ``kdnas`` module reachable through imports (top-level or inside functions) from the CLI and from the
stage's function (``kdnas/pipeline/<stage>.py``, which ``run_stage`` imports once the checks pass) counts, with
the ``__init__.py`` of every package above it that holds code (Python runs it first), except what every stage
runs only to check its params and arguments before any work (``kdnas.cli`` and what it alone imports): an edit
there cannot change a result (nor can the modules those import for the checks: the walk stops at them). Deps
are files, so an edit reruns only the stages that import that file.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# run by every stage before its work; and the manifest, whose every declaration that can change a result
# (paths, params) reaches both engines as the stage's command and params already
ALWAYS = {"kdnas/cli.py", "kdnas/params.py", "kdnas/errors.py", "kdnas/pipeline/manifest.py"}


def _module_file(name: str, root: Path) -> Path | None:
    path = root / Path(*name.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else None


def _runs_code(init: Path) -> bool:
    """Whether a package's ``__init__.py`` holds more than its docstring."""
    body = ast.parse(init.read_text()).body
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) for node in body)


def kdnas_imports(path: Path, root: Path = REPO, seen: set[Path] | None = None) -> set[Path]:
    """Every kdnas source file reachable from ``path`` through imports (a package's ``__init__.py`` included
    when it holds code)."""
    seen = set() if seen is None else seen
    for node in ast.walk(ast.parse(Path(path).read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kdnas"):
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("kdnas")]
        for name in names:
            parts = name.split(".")
            # the module, and the packages above it (Python runs their __init__ first)
            found = [_module_file(".".join(parts[:i]), root) for i in range(2, len(parts) + 1)]
            for file in found:
                if file and file not in seen and (file.name != "__init__.py" or _runs_code(file)):
                    seen.add(file)
                    if str(file.relative_to(root)) not in ALWAYS:  # what only its checks import is not work
                        kdnas_imports(file, root, seen)
    return seen


def stage_code_files(stage: str, root: Path = REPO) -> list[str]:
    """The kdnas source files ``stages/<stage>.py`` runs, relative to ``root``, sorted."""
    function = root / "kdnas" / "pipeline" / f"{stage}.py"  # the manifest's stage function, imported lazily
    work = kdnas_imports(function, root) | {function}
    # params and argument checks run in every stage through kdnas.cli, before the work
    checks = kdnas_imports(root / "kdnas" / "cli.py", root)
    files = (kdnas_imports(root / "stages" / f"{stage}.py", root) - checks) | work
    return sorted(rel for rel in (str(f.relative_to(root)) for f in files) if rel not in ALWAYS)


# DVC's deps and the Snakemake rules' code inputs: the files themselves
stage_code_deps = stage_code_files
