"""The package's layering: subpackages named by domain, imports that only go one way."""
from __future__ import annotations

import ast
from pathlib import Path

KDNAS = Path(__file__).resolve().parent.parent / "kdnas"


def _module(path: Path) -> str:
    return ".".join(("kdnas", *path.relative_to(KDNAS).with_suffix("").parts)).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """The kdnas modules ``path`` imports, at the top or inside functions (``from kdnas.x import name``: kdnas.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kdnas."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("kdnas.")}
    return found


MODULES = {_module(path): _imports(path) for path in KDNAS.rglob("*.py")}


def _unit(module: str) -> str:
    """A subpackage of kdnas (``kdnas.search``), or a top-level module on its own (``kdnas.params``)."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle in ``graph`` as a path, or None."""
    state: dict[str, str] = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":  # open nodes are the current path
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_module_imports_itself_back():
    graph = {module: {i for i in imports if i in MODULES and i != module} for module, imports in MODULES.items()}
    assert _cycle(graph) is None


def test_subpackages_depend_on_each_other_one_way():
    graph: dict[str, set[str]] = {}
    for module, imports in MODULES.items():
        graph.setdefault(_unit(module), set()).update(_unit(i) for i in imports if _unit(i) != _unit(module))
    assert _cycle(graph) is None


def test_the_library_never_imports_the_stages():
    """Only the stage framework (kdnas.cli) reads the manifest; the library below the stages knows nothing of them."""
    allowed = {"kdnas.cli": {"kdnas.pipeline.manifest"}}
    upward = {module: sorted(i for i in imports if i.startswith("kdnas.pipeline") and i not in allowed.get(module, ()))
              for module, imports in MODULES.items() if not module.startswith("kdnas.pipeline")}
    assert not {module: found for module, found in upward.items() if found}


def test_a_cycle_is_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_root_holds_only_shared_plumbing():
    """Domain code lives in a subpackage; a module added at the root is a decision, not a default."""
    root = sorted(p.stem for p in KDNAS.glob("*.py"))
    assert root == ["__init__", "cli", "device", "errors", "io", "params", "params_audit", "params_keys", "registry",
                    "task_params", "threads", "worker_pool"]


def test_the_tests_mirror_the_package():
    """A test folder is named after the subpackage it tests (tests/search/ for kdnas/search/)."""
    tests = KDNAS.parent / "tests"
    folders = {p.name for p in tests.iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    assert folders and folders <= {p.name for p in KDNAS.iterdir() if (p / "__init__.py").exists()}


def test_every_test_file_the_repository_cites_exists():
    """Comments, docstrings and the README name test files as evidence; a moved or renamed test must take its
    citations along (dvc.yaml once cited one that did not exist)."""
    import re
    import subprocess

    root = KDNAS.parent
    files = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout.split()
    cited = {(name, match) for name in files if name.endswith((".py", ".md", ".smk", ".yaml", ".sh", ".toml"))
             and (root / name).is_file() for match in re.findall(r"\btests/[\w/]+\.py\b", (root / name).read_text())}
    assert cited and not {(name, path) for name, path in cited if not (root / path).exists()}
