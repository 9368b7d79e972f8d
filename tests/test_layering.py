"""The house's walls: `mgc.pipeline` is the only part of the library that knows params.yaml,
the output layout and the dvc/git command lines; imports run one way, without circles; and
every module a stage imports is one of its dvc.yaml deps, so no code change can leave a
stale output behind.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WALLED = ("mgc.pipeline", "mgc.cli")
"""The pipeline and the command line: the two faces allowed to know the project around."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_file(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


LIBRARY = sorted(_module_name(p) for p in (REPO / "mgc").rglob("*.py")
                 if not _module_name(p).startswith(WALLED))


def _runtime_imports(path: Path) -> set[Path]:
    """Project files `path` imports when it runs (not under `if TYPE_CHECKING:`), with the
    packages on the way; a package that imports its modules by `pkgutil` imports them all."""
    def walk(node: ast.AST):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", "") == "TYPE_CHECKING":
                continue
            yield child
            yield from walk(child)

    names: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        parts = name.split(".")
        if parts[0] not in ("mgc", "stages"):
            continue
        for end in range(1, len(parts) + 1):
            file = _module_file(".".join(parts[:end]))
            if file is not None:
                found.add(file)
    if path.name == "__init__.py" and "pkgutil.iter_modules" in path.read_text():
        found.update(p for p in path.parent.glob("*.py") if p != path)
    return found - {path}


def test_the_library_imports_neither_dvc_nor_the_pipeline() -> None:
    """Importing every library module loads no DVC, no DVCLive and no `mgc.pipeline`."""
    probe = ("import importlib, json, sys\n"
             f"for name in {LIBRARY!r}: importlib.import_module(name)\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('dvc', 'dvclive', 'stages') or m.startswith('mgc.pipeline') or m == 'mgc.cli')))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                            text=True, check=True)
    assert len(LIBRARY) > 25
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("module", LIBRARY)
def test_library_code_knows_no_project_layout_and_runs_no_commands(module: str) -> None:
    """No params file, no output folder of the pipeline and no dvc/git command line in the
    library's code (docstrings may mention them)."""
    tree = ast.parse(_module_file(module).read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names] + [getattr(node, "module", "") or ""]
            assert "subprocess" not in names, f"{module} runs commands"
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings):
            value = node.value
            assert value not in ("params.yaml", "dvc", "git", "dvc.yaml"), (module, value)
            assert not value.startswith(("data/", "models/", "metrics/", "plots/")), (
                module, value)


def _graph() -> dict[Path, set[Path]]:
    files = [*(REPO / "mgc").rglob("*.py"), *(REPO / "stages").glob("*.py")]
    return {file: _runtime_imports(file) for file in files}


def test_imports_have_no_circles_and_never_point_up() -> None:
    graph = _graph()
    for file, imported in graph.items():
        name = _module_name(file)
        for target in imported:
            target_name = _module_name(target)
            assert not target_name.startswith("stages"), f"{name} imports a stage"
            if not name.startswith(WALLED) and not name.startswith("stages"):
                assert not target_name.startswith(WALLED), f"{name} imports {target_name}"
    # A module's own packages are imported before it runs, so an edge to an ancestor
    # package's __init__ (which may import every module of the package) closes no circle.
    acyclic = {file: sorted(t for t in imported
                            if not (t.name == "__init__.py" and t.parent in file.parents))
               for file, imported in graph.items()}
    state: dict[Path, str] = {}

    def visit(file: Path, trail: list[Path]) -> None:
        state[file] = "open"
        for target in acyclic.get(file, ()):
            if state.get(target) == "open":
                cycle = [*trail[trail.index(target):], file, target] if target in trail else [
                    file, target]
                raise AssertionError("import circle: " + " -> ".join(map(_module_name, cycle)))
            if target not in state:
                visit(target, [*trail, file])
        state[file] = "done"

    for file in sorted(acyclic):
        if file not in state:
            visit(file, [])


VALIDATION_ONLY = REPO / "mgc" / "pipeline" / "params.py"
"""params.py imports the library to validate every section: a stage's outputs depend on the
library modules it uses itself, not on those it only validates params against."""


def _stage_closure(stage: Path) -> set[Path]:
    seen: set[Path] = set()
    todo = [stage]
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        imported = _runtime_imports(file)
        if file == VALIDATION_ONLY:
            imported = {p for p in imported if _module_name(p).startswith(
                ("mgc.pipeline", "mgc.config")) or (p.name == "__init__.py"
                and p.parent == REPO / "mgc")}
        todo.extend(imported)
    return seen


def _stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_every_module_a_stage_imports_is_one_of_its_deps(stage: str) -> None:
    definition = _stages()[stage]
    body = definition.get("do", definition)
    module = body["cmd"].split()[2]
    deps = [REPO / dep for dep in body["deps"] if "$" not in dep]
    for dep in deps:
        if dep.suffix == ".py" or dep.name in ("mgc", "stages") or dep.parent.name == "mgc":
            assert dep.exists(), f"{stage}: dep {dep.relative_to(REPO)} does not exist"
    closure = _stage_closure(_module_file(module))
    missing = sorted(str(file.relative_to(REPO)) for file in closure
                     if not any(file == dep or dep in file.parents for dep in deps))
    assert not missing, f"{stage} imports modules that are not its deps: {missing}"
