"""The top-level packages depend on each other one way only: no cycles, never upward.

Every library module is parsed with `ast` and every `import corrigible.X` / `from corrigible.X
import ...` / relative import counts, wherever it is: at the top, inside a function (lazy), or
under `if TYPE_CHECKING:` (a type-only import is still a dependency, and the first step to a
real cycle). String entry points such as `"corrigible.x.y:attr"` (registries, Gymnasium ids)
count too, since they are imports made later.

Layers, lowest first (a module may import its own layer's packages and those below):

    0  root modules: errors, tracing, registry, config, boundary, text_embedding (MiniLM)
    1  robots
    2  sim_envs
    3  policies
    4  memory (its effect schema knows the declared skills and the object vocabulary)
    5  corrections
    6  session (root module), the package's own __init__
    7  launch (CLI verbs, benchmarks, evaluations)

A new top-level package or root module must be placed in `_LAYERS` before it can be used.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[1]
_PACKAGE = "corrigible"
_NOT_LIBRARY = {"tests", "build", "dist", "setup.py"}

_LAYERS: dict[str, int] = {
    "errors": 0,
    "tracing": 0,
    "registry": 0,
    "config": 0,
    "boundary": 0,
    "text_embedding": 0,
    "robots": 1,
    "sim_envs": 2,
    "policies": 3,
    "memory": 4,
    "corrections": 5,
    "session": 6,
    "__init__": 6,
    "launch": 7,
}

_ENTRY_POINT = re.compile(rf"{_PACKAGE}(\.\w+)+(:[\w.]+)?")

Edge = tuple[str, str]  # (importing node, imported node)


def _library_files() -> list[Path]:
    files = []
    for path in sorted(_ROOT.rglob("*.py")):
        rel = path.relative_to(_ROOT)
        top = rel.parts[0]
        if top in _NOT_LIBRARY or top.startswith(".") or top.endswith(".egg-info"):
            continue
        if not all(part.isidentifier() for part in rel.parent.parts):
            continue  # not importable: data shipped as files (e.g. the hostile programs)
        files.append(path)
    return files


def _node(rel: Path) -> str:
    """The layer node a file belongs to: its top-level folder, or its own name at the root."""
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _target_node(dotted: str) -> str | None:
    """The node `corrigible.<x>...` names, or None for a name outside the package."""
    parts = dotted.split(".")
    if parts[0] != _PACKAGE:
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _module_package(rel: Path) -> list[str]:
    """The dotted package a file's relative imports are resolved against."""
    parts = [_PACKAGE, *rel.with_suffix("").parts]
    return parts if rel.name == "__init__.py" else parts[:-1]


def _imports(path: Path, root: Path = _ROOT) -> list[tuple[str, int]]:
    """Every corrigible module `path` imports or names as an entry point, with its line."""
    rel = path.relative_to(root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _module_package(rel)[: len(_module_package(rel)) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module == _PACKAGE:  # `from corrigible import errors` names submodules
                for alias in node.names:
                    known = alias.name in _LAYERS and alias.name != "__init__"
                    found.append((f"{module}.{alias.name}" if known else module, node.lineno))
            else:
                found.append((module, node.lineno))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _ENTRY_POINT.fullmatch(node.value):
                found.append((node.value.partition(":")[0], node.lineno))
    return found


def _graph() -> dict[Edge, list[str]]:
    """(from node, to node) -> the `file:line` places that make the edge."""
    edges: dict[Edge, list[str]] = defaultdict(list)
    for path in _library_files():
        rel = path.relative_to(_ROOT)
        src = _node(rel)
        for dotted, line in _imports(path):
            dst = _target_node(dotted)
            if dst is not None and dst != src:
                edges[(src, dst)].append(f"{rel}:{line}")
    return dict(edges)


def _cycle(edges: list[Edge]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None."""
    succ: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(succ[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(succ):
        if start not in state and (found := visit(start)):
            return found
    return None


@pytest.fixture(scope="module")
def graph() -> dict[Edge, list[str]]:
    return _graph()


def test_every_node_has_a_layer(graph):
    nodes = {n for edge in graph for n in edge} | {
        _node(p.relative_to(_ROOT)) for p in _library_files()
    }
    unplaced = sorted(nodes - set(_LAYERS))
    assert not unplaced, f"place these top-level packages / root modules in _LAYERS: {unplaced}"


def test_no_import_cycle_between_top_level_packages(graph):
    cycle = _cycle(list(graph))
    if cycle:
        where = {f"{a} -> {b}": graph[(a, b)][:3] for a, b in zip(cycle, cycle[1:], strict=False)}
        pytest.fail(f"import cycle {' -> '.join(cycle)}; edges made at {where}")


def test_no_package_imports_a_layer_above_its_own(graph):
    upward = {
        f"{a} ({_LAYERS[a]}) -> {b} ({_LAYERS[b]})": places
        for (a, b), places in sorted(graph.items())
        if a in _LAYERS and b in _LAYERS and _LAYERS[b] > _LAYERS[a]
    }
    assert not upward, f"imports that point up the layers: {upward}"


def test_the_checker_sees_lazy_type_checking_and_entry_point_imports(tmp_path):
    """The parser counts every kind of import this test promises to count."""
    module = tmp_path / "robots" / "probe.py"
    module.parent.mkdir()
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from corrigible.sim_envs.scene_spec import SceneSpec\n"
        "def f():\n"
        "    import corrigible.policies.episode\n"
        "    from ..memory import schema\n"
        "    from corrigible import launch\n"
        "TABLE = {'x': 'corrigible.corrections.router:Router'}\n"
    )
    found = {_target_node(dotted) for dotted, _ in _imports(module, root=tmp_path)}
    assert found >= {"sim_envs", "policies", "memory", "launch", "corrections"}
