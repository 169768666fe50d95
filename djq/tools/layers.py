"""djq's import graph, read from the code: ``python -m djq.tools.layers`` prints the layers.

The architecture tests (tests/unit/test_architecture.py) use the same functions: there must be no
import cycle among djq's modules, and every module must sit in a layer. Imports are read with
``ast`` (nothing is imported): module-level and function-level imports both count, imports under
``if TYPE_CHECKING:`` do not (they never run).

Usage:
    python -m djq.tools.layers            the layers, bottom up, each module with its imports
                                          (exit status 1 on a cycle, an upward import or a
                                          module in no layer)
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


#: The layers, bottom up: a module may import its own layer and the layers below, never above.
#: Each entry is a module or a package (its submodules too). A module in no layer fails the
#: architecture tests: place it here.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "leaves",
        (
            "djq",
            "djq.conf",
            "djq.exceptions",
            "djq.signals",
            "djq.states",
            "djq.serialization",
            "djq.routers",
            "djq.limits",
            "djq.calling.request",
            "djq.running.retry",
            "djq.schedules",
            "djq.listen",
            "djq.options",
            "djq.job_guard",
            "djq.running.waiting",
            "djq.roles.daemon",
            "djq.adminsite.charts",
            "djq.events_state",
            "djq.records",
            "djq.versioning",
            "djq.sun",
            "djq.contrib.celery_flags",
            "djq.tools",
            "djq.templatetags",
            "djq.management",
            "djq.management.commands",
        ),
    ),
    ("models", ("djq.models",)),
    (
        "store",
        (
            "djq.store",
            "djq.store.rows",
            "djq.store.vendor",
            "djq.store.leases",
            "djq.store.job_logs",
        ),
    ),
    (
        "calling",
        (
            "djq.calling",
            "djq.calling.registry",
            "djq.calling.enqueue",
            "djq.calling.result",
            "djq.events",
        ),
    ),
    ("canvas", ("djq.canvas", "djq.batches")),
    (
        "running",
        (
            "djq.running",
            "djq.running.execute",
            "djq.running.eager",
            "djq.running.pools.child_marks",
            "djq.running.pools.prefork",
            "djq.running.pools.threads",
            "djq.running.pools",
            "djq.running.task_log",
        ),
    ),
    ("task", ("djq.task", "djq.builtins", "djq.housekeeping")),
    ("beat", ("djq.beat", "djq.beat_sync", "djq.stats", "djq.queue_depth")),
    (
        "roles",
        (
            "djq.worker",
            "djq.roles",
            "djq.roles.events",
            "djq.roles.flow",
            "djq.roles.remote",
            "djq.continuation",
            "djq.roles.banner",
        ),
    ),
    ("control", ("djq.control", "djq.pending")),
    (
        "admin",
        (
            "djq.admin",
            "djq.adminsite",
            "djq.adminsite.controls",
            "djq.admin_mixins",
            "djq.adminsite.search",
            "djq.adminsite.support",
            "djq.adminsite.monitor",
            "djq.adminsite.workflow",
            "djq.adminsite.history",
            "djq.adminsite.views",
            "djq.urls",
        ),
    ),
    (
        "contrib",
        (
            "djq.contrib",
            "djq.contrib.celery_compat",
            "djq.contrib.django_tasks",
            "djq.backends",
            "djq.events.monitor",
        ),
    ),
    # what each management command does: the commands parse options and make one call here
    ("cli", ("djq.cli",)),
    ("entry points", ("djq.management.commands.", "djq.apps", "djq.checks")),
]


def layer_of(module: str) -> int | None:
    """The index in LAYERS of the longest entry naming ``module`` or a package holding it.

    An entry ending in "." names the package's submodules only (``djq.management.commands.``).
    """
    best: tuple[int, int] | None = None
    for n, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            hit = (
                module.startswith(entry)
                if entry.endswith(".")
                else module == entry or module.startswith(entry + ".")
            )
            if hit and (best is None or len(entry) > best[1]):
                best = (n, len(entry))
    return None if best is None else best[0]


def upward_imports(graph: dict[str, Module]) -> list[str]:
    """Imports of a module from a higher layer, as readable lines."""
    found = []
    for name in sorted(graph):
        own = layer_of(name)
        for target in sorted(graph[name].imports):
            other = layer_of(target)
            if own is not None and other is not None and other > own:
                found.append(f"{name} ({LAYERS[own][0]}) imports {target} ({LAYERS[other][0]})")
    return found


def unplaced(graph: dict[str, Module]) -> list[str]:
    return sorted(name for name in graph if layer_of(name) is None)


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
                    mod.inner.append((target, getattr(node, "lineno", 0)))


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
            yield value


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
    submodules = [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in known]
    # ``from djq.store import postgres`` depends on the submodule, not on the package's
    # __init__ (which Python runs first anyway, as for every import below a package)
    found = [] if len(submodules) == len(node.names) else [_known_prefix(source, known)]
    return [f for f in [*found, *submodules] if f in known]


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


def render(graph: dict[str, Module]) -> str:
    """The layers bottom up, each module with the djq modules it imports."""
    lines = []
    for n, (title, _) in enumerate(LAYERS):
        lines.append(f"{n:2} {title}")
        for name in sorted(m for m in graph if layer_of(m) == n):
            deps = " ".join(sorted(_short(d) for d in graph[name].imports))
            lines.append(f"     {_short(name):30} → {deps}" if deps else f"     {_short(name)}")
    for name in unplaced(graph):
        lines.append(f"in no layer: {name}")
    found = cycles(graph)
    up = upward_imports(graph)
    lines.append(
        f"{len(graph)} modules in {len(LAYERS)} layers; {len(found)} import cycles, "
        f"{len(up)} upward imports"
    )
    lines.extend(f"upward: {line}" for line in up)
    for component in found:
        lines.append("cycle: " + " → ".join(_short(m) for m in cycle_path(graph, component)))
    return "\n".join(lines)


def dot(graph: dict[str, Module]) -> str:
    edges = [
        f'  "{_short(m)}" -> "{_short(d)}";'
        for m in sorted(graph)
        for d in sorted(graph[m].imports)
    ]
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
    return 1 if cycles(graph) or upward_imports(graph) or unplaced(graph) else 0


if __name__ == "__main__":
    raise SystemExit(main())
