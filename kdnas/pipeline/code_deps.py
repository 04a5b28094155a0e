"""The code a stage runs, read from the imports of its CLI (``stages/<stage>.py``), so that DVC and Snakemake
rerun exactly the stages a library edit can change.

Every ``kdnas`` module reachable through imports (top-level or inside functions) from the CLI and from the
stage's function (``kdnas/pipeline/<stage>.py``, which ``run_stage`` imports once the checks pass) counts,
except what every stage runs only to check its params and arguments before any work (``kdnas.cli`` and
what it alone imports): an edit there cannot change a result. A subpackage other than ``kdnas.pipeline`` is listed as its folder.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# run by every stage before its work, or empty package markers; and the manifest, whose every declaration that
# can change a result (paths, params) reaches both engines as the stage's command and params already
ALWAYS = {"kdnas/__init__.py", "kdnas/pipeline/__init__.py", "kdnas/cli.py", "kdnas/params.py", "kdnas/errors.py",
          "kdnas/pipeline/manifest.py"}
FILE_GRANULAR = {"pipeline"}  # the one subpackage whose modules are listed one by one (a module per stage)


def _module_file(name: str, root: Path) -> Path | None:
    path = root / Path(*name.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else None


def kdnas_imports(path: Path, root: Path = REPO, seen: set[Path] | None = None) -> set[Path]:
    """Every kdnas source file reachable from ``path`` through imports."""
    seen = set() if seen is None else seen
    for node in ast.walk(ast.parse(Path(path).read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kdnas"):
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("kdnas")]
        for name in names:
            found = _module_file(name, root)
            if found and found not in seen:
                seen.add(found)
                kdnas_imports(found, root, seen)
    return seen


def stage_code_files(stage: str, root: Path = REPO) -> list[str]:
    """The kdnas source files ``stages/<stage>.py`` runs, relative to ``root``, sorted."""
    function = root / "kdnas" / "pipeline" / f"{stage}.py"  # the manifest's stage function, imported lazily
    work = kdnas_imports(function, root) | {function}
    # params and argument checks run in every stage through kdnas.cli, before the work
    files = (kdnas_imports(root / "stages" / f"{stage}.py", root) - kdnas_imports(root / "kdnas" / "cli.py", root)) | work
    return sorted(rel for rel in (str(f.relative_to(root)) for f in files) if rel not in ALWAYS)


def stage_code_deps(stage: str, root: Path = REPO) -> list[str]:
    """``stage_code_files`` with each subpackage (``kdnas/search``, ``kdnas/losses``) as one folder: DVC's deps."""
    deps = []
    for rel in stage_code_files(stage, root):
        parts = Path(rel).parts  # ("kdnas", "x.py") or ("kdnas", "<subpackage>", ...)
        dep = rel if len(parts) == 2 or parts[1] in FILE_GRANULAR else f"kdnas/{parts[1]}"
        if dep not in deps:
            deps.append(dep)
    return sorted(deps)
