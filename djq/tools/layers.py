"""djq's import graph, read from the code: ``python -m djq.tools.layers`` prints the layers.

The architecture tests (tests/unit/test_architecture.py) use the same functions: there must be no
import cycle among djq's modules, and every module must sit in a layer. Imports are read with
``ast`` (nothing is imported): module-level and function-level imports both count, imports under
``if TYPE_CHECKING:`` do not (they never run).

Usage:
    python -m djq.tools.layers            the layers, bottom up, each module with its imports
    python -m djq.tools.layers --cycles   only the import cycles (exit status 1 if any)
    python -m djq.tools.layers --dot      the graph in Graphviz dot
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {"migrations", "templates", "static", "__pycache__"}


@dataclass
class Module:
    name: str
    path: Path
    imports: set[str] = field(default_factory=set)
    #: (imported module, line) of imports made inside a function
    inner: list[tuple[str, int]] = field(default_factory=list)


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = PACKAGE) -> dict[str, Module]:
    """Every module of the package (migrations excepted), with the djq modules it imports."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        if SKIPPED_DIRS & set(path.relative_to(root).parts):
            continue
        found[module_name(path, root)] = Module(module_name(path, root), path)
    for mod in found.values():
        _read_imports(mod, found, root.name)
    return found


def _read_imports(mod: Module, known: dict[str, Module], package: str) -> None:
    tree = ast.parse(mod.path.read_text(), str(mod.path))
    is_package = mod.path.name == "__init__.py"
    for node, in_function in _import_nodes(tree.body, False):
        for target in _targets(mod.name, node, is_package, known, package):
            if target != mod.name:
                mod.imports.add(target)
                if in_function:
                    mod.inner.append((target, node.lineno))


def _import_nodes(body: Iterable[ast.stmt], in_function: bool) -> Iterator[tuple[ast.AST, bool]]:
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, in_function
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_nodes(node.orelse, in_function)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _import_nodes(node.body, True)
        else:
            for child_body in _bodies(node):
                yield from _import_nodes(child_body, in_function)


def _bodies(node: ast.AST) -> Iterator[list[ast.stmt]]:
    for name in ("body", "orelse", "finalbody", "handlers"):
        value = getattr(node, name, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.AST):
            yield value  # type: ignore[misc]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(
    name: str, node: ast.AST, is_package: bool, known: dict[str, Module], package: str
) -> list[str]:
    """The djq modules an import statement loads (``from . import x`` → ``djq.x``)."""
    if isinstance(node, ast.Import):
        return [_known_prefix(a.name, known) for a in node.names if a.name.split(".")[0] == package]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    if source.split(".")[0] != package:
        return []
    found = [_known_prefix(source, known)]
    for alias in node.names:
        if f"{source}.{alias.name}" in known:
            found.append(f"{source}.{alias.name}")
    # ``from djq import x`` loads djq/__init__ only for x it does not find as a submodule
    if source == package and len(found) > 1 and len(found) == len(node.names) + 1:
        found.pop(0)
    return [f for f in found if f in known]


def _known_prefix(dotted: str, known: dict[str, Module]) -> str:
    parts = dotted.split(".")
    while parts and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts)


def cycles(graph: dict[str, Module]) -> list[list[str]]:
    """The import cycles: strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v].imports):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def cycle_path(graph: dict[str, Module], component: list[str]) -> list[str]:
    """One concrete ring through a cycle component (for a readable failure message)."""
    members = set(component)
    start = component[0]
    path, seen = [start], {start}
    while True:
        nxt = sorted(graph[path[-1]].imports & members)
        back = [n for n in nxt if n == start]
        if back and len(path) > 1:
            return [*path, start]
        fresh = [n for n in nxt if n not in seen]
        if not fresh:
            return [*path, *back]
        path.append(fresh[0])
        seen.add(fresh[0])


def levels(graph: dict[str, Module]) -> dict[str, int]:
    """Each module's layer: 0 for a module importing no djq module, else one above the highest
    module it imports (modules in a cycle share a layer)."""
    level: dict[str, int] = {}
    in_cycle = {m: c for c in cycles(graph) for m in c}

    def of(name: str, trail: frozenset[str]) -> int:
        if name in level:
            return level[name]
        group = set(in_cycle.get(name, [name]))
        below = [d for m in group for d in graph[m].imports if d not in group and d not in trail]
        value = 1 + max((of(d, trail | group) for d in below), default=-1)
        for m in group:
            level[m] = value
        return value

    for name in sorted(graph):
        of(name, frozenset())
    return level


def render(graph: dict[str, Module]) -> str:
    level = levels(graph)
    lines = []
    for n in range(max(level.values(), default=-1) + 1):
        lines.append(f"layer {n}")
        for name in sorted(m for m, lv in level.items() if lv == n):
            deps = " ".join(sorted(_short(d) for d in graph[name].imports))
            lines.append(f"  {_short(name):32} → {deps}" if deps else f"  {_short(name)}")
    found = cycles(graph)
    lines.append(f"{len(graph)} modules, {len(level) and max(level.values()) + 1} layers, "
                 f"{len(found)} import cycles")  # fmt: skip
    for component in found:
        lines.append("cycle: " + " → ".join(_short(m) for m in cycle_path(graph, component)))
    return "\n".join(lines)


def dot(graph: dict[str, Module]) -> str:
    edges = [f'  "{_short(m)}" -> "{_short(d)}";' for m in sorted(graph)
             for d in sorted(graph[m].imports)]  # fmt: skip
    return "digraph djq {\n  rankdir=BT;\n" + "\n".join(edges) + "\n}"


def _short(name: str) -> str:
    return name.partition(".")[2] or name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m djq.tools.layers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cycles", action="store_true", help="print only the import cycles")
    parser.add_argument("--dot", action="store_true", help="print the graph in Graphviz dot")
    args = parser.parse_args(argv)
    graph = modules()
    if args.dot:
        print(dot(graph))
        return 0
    if args.cycles:
        found = cycles(graph)
        for component in found:
            print("cycle: " + " → ".join(cycle_path(graph, component)))
        return 1 if found else 0
    print(render(graph))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
