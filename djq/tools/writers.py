"""Who writes djq's tables, read from the code: ``python -m djq.tools.writers``.

The store layer (``djq.store`` and the vendor SQL in ``djq.db``) is the only writer of every djq
table. This finds, anywhere else in the package:

- ORM writes on a djq model: ``Model.objects[.using(...)…].create/update/delete/bulk_create/
  bulk_update/get_or_create/update_or_create(...)``, and ``.save()``/``.delete()`` calls on
  anything (an instance of a djq model cannot be told apart statically; modules outside the
  store have no other reason to call them);
- SQL that writes a djq table: a string holding ``INSERT INTO djq_…``, ``UPDATE djq_…`` or
  ``DELETE FROM djq_…``.

``# djq-write: <why>`` on the line allows one (none are needed today). The architecture tests
run this; the command prints the findings and exits 1 if there are any.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from djq.tools.layers import PACKAGE, SKIPPED_DIRS, module_name

#: the store layer: modules allowed to write (dotted prefixes)
WRITERS = (
    "djq.store",
    "djq.store.vendor",
    "djq.store.rows",
    "djq.store.leases",
    "djq.store.job_logs",
)
QUERYSET_WRITES = {
    "create",
    "update",
    "delete",
    "bulk_create",
    "bulk_update",
    "get_or_create",
    "update_or_create",
}
INSTANCE_WRITES = {"save", "delete"}
SQL_WRITE = re.compile(r"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?djq_", re.IGNORECASE)
ALLOW = "# djq-write:"


@dataclass(frozen=True)
class Write:
    module: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.what}"


def model_names(root: Path = PACKAGE) -> set[str]:
    """Classes defined in djq/models.py (the djq tables)."""
    tree = ast.parse((root / "models.py").read_text())
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


def is_writer(module: str) -> bool:
    return any(module == w or module.startswith(w + ".") for w in WRITERS)


def writes(root: Path = PACKAGE) -> list[Write]:
    """Every write of a djq table outside the store layer."""
    models = model_names(root)
    found: list[Write] = []
    for path in sorted(root.rglob("*.py")):
        if SKIPPED_DIRS & set(path.relative_to(root).parts):
            continue
        module = module_name(path, root)
        if is_writer(module) or module.startswith("djq.tools"):
            continue
        source = path.read_text()
        lines = source.splitlines()
        for line, what in _writes_in(ast.parse(source, str(path)), models, module):
            if ALLOW not in lines[line - 1]:
                found.append(Write(module, line, what))
    return found


def _writes_in(tree: ast.AST, models: set[str], module: str) -> list[tuple[int, str]]:
    models = models | _model_aliases(tree, models)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method = node.func.attr
            root = _chain_root(node.func.value)
            if method in QUERYSET_WRITES and root in models and _through_objects(node.func.value):
                found.append((node.lineno, f"{root}.objects….{method}()"))
            elif method in QUERYSET_WRITES and _is_queryset(node.func.value, root):
                found.append((node.lineno, f"{ast.unparse(node.func.value)}.{method}()"))
            elif method in INSTANCE_WRITES and not _is_super_in_models(node.func.value, module):
                found.append((node.lineno, f".{method}() on {ast.unparse(node.func.value)}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = SQL_WRITE.search(node.value)
            if match:
                found.append((node.lineno, f"SQL {match.group(0)!r}"))
    return found


def _model_aliases(tree: ast.AST, models: set[str]) -> set[str]:
    """Local names of djq models imported under another name (``Worker as WorkerRow``)."""
    return {
        alias.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "models"
        for alias in node.names
        if alias.asname and alias.name in models
    }


def _is_queryset(node: ast.expr, root: str | None) -> bool:
    """A queryset by its look: ``queryset``/``qs``, or a chain through ``filter``/``exclude``
    (what an admin action receives is a queryset of its own djq model)."""
    if root in {"queryset", "qs"}:
        return True
    while isinstance(node, (ast.Call, ast.Attribute)):
        if isinstance(node, ast.Attribute) and node.attr in {"filter", "exclude", "all"}:
            return True
        node = node.func if isinstance(node, ast.Call) else node.value
    return False


def _chain_root(node: ast.expr) -> str | None:
    """``Job`` for ``Job.objects.using(db).filter(...)``."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return None


def _through_objects(node: ast.expr) -> bool:
    while isinstance(node, (ast.Call, ast.Attribute)):
        if isinstance(node, ast.Attribute) and node.attr in {"objects", "_default_manager"}:
            return True
        node = node.func if isinstance(node, ast.Call) else node.value
    return False


def _is_super_in_models(node: ast.expr, module: str) -> bool:
    """``super().save()`` inside a model's own ``save`` (models.py defines the tables)."""
    return (
        module == "djq.models"
        and isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "super"
    )


def main() -> int:
    found = writes()
    for write in found:
        print(write)
    print(f"{len(found)} writes of djq tables outside {', '.join(WRITERS)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
