"""The rooms of tide/ (its folders, and its top-level modules) import each other without circles.

Read from the source with ast, so an import inside a function (a lazy import that hides a circle from
Python) counts the same as one at the top of a module.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path

import tide

TIDE = Path(tide.__file__).parent


ROOMS = frozenset(
    {p.stem for p in TIDE.glob("*.py") if p.name != "__init__.py"}
    | {p.name for p in TIDE.iterdir() if (p / "__init__.py").is_file()}
)


def _room(module: str) -> str | None:
    """`tide.control.channel` -> `control`; `tide.cli` -> `cli`; `tide` itself (`tide.__version__`) and other
    packages -> None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "tide" and len(parts) > 1 and parts[1] in ROOMS else None


def _imported(path: Path) -> set[str]:
    package = ".".join(("tide", *path.relative_to(TIDE).with_suffix("").parts))
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # `from tide import cli`
    return names


@functools.cache  # parsing every module of tide/ is the slow part; the tests below read one graph
def room_imports() -> dict[str, frozenset[str]]:
    """Room -> the other rooms its modules import."""
    graph: dict[str, set[str]] = {}
    for path in TIDE.rglob("*.py"):
        room = _room(".".join(("tide", *path.relative_to(TIDE).with_suffix("").parts)))
        if room is None:
            continue
        targets = {_room(name) for name in _imported(path)} - {None, room}
        graph.setdefault(room, set()).update(t for t in targets if t is not None)
    return {room: frozenset(targets) for room, targets in graph.items()}


def circles(graph: Mapping[str, AbstractSet[str]]) -> list[list[str]]:
    """The strongly connected components with more than one room (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _edges_within(graph: Mapping[str, AbstractSet[str]], component: list[str]) -> list[str]:
    return [f"{a} -> {b}" for a in component for b in sorted(graph.get(a, ())) if b in component]


def test_no_import_circle_between_rooms() -> None:
    graph = room_imports()
    found = circles(graph)
    assert not found, "import circles between rooms of tide/: " + "; ".join(
        f"{' <-> '.join(c)} ({', '.join(_edges_within(graph, c))})" for c in found
    )


def test_the_gateway_does_not_import_the_controller() -> None:
    assert "control" not in room_imports()["gateway"]


def test_a_circle_is_found() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
