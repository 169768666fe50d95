"""The package's architecture, read from the code (no database): no import cycles, imports point
down the layers, one writer per table, no hidden imports, a lazy public face.

Each rule is also run against a small package written here that breaks it, so that a rule that
stopped seeing anything would fail too.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from djq.tools import layers, writers
from tests.helpers import REPO_ROOT

REPO = REPO_ROOT


@functools.cache
def _graph() -> dict[str, layers.Module]:
    """The package's import graph (read once for the tests that share it)."""
    return layers.modules()


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "djq"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


# --- import cycles ------------------------------------------------------------------------------
def test_no_import_cycles():
    graph = _graph()
    rings = [" → ".join(layers.cycle_path(graph, c)) for c in layers.cycles(graph)]
    assert not rings, "import cycles among djq's modules:\n" + "\n".join(rings)


def test_a_cycle_is_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "a.py": "from . import b\n",
            "b.py": "def f():\n    from .a import x\n",  # function-level imports count
            "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n",
        },
    )
    graph = layers.modules(root)
    assert layers.cycles(graph) == [["djq.a", "djq.b"]]
    assert graph["djq.c"].imports == set()  # TYPE_CHECKING imports never run


# --- layers -------------------------------------------------------------------------------------
def test_every_module_sits_in_a_layer():
    assert not layers.unplaced(_graph()), "place these in djq.tools.layers.LAYERS"


def test_imports_point_down():
    up = layers.upward_imports(_graph())
    assert not up, "imports from a higher layer:\n" + "\n".join(up)


def test_an_upward_import_is_found(tmp_path):
    root = _package(tmp_path, {"store.py": "from . import admin\n", "admin.py": ""})
    assert layers.upward_imports(layers.modules(root)) == [
        "djq.store (store) imports djq.admin (admin)"
    ]


def test_the_layer_graph_command_prints_the_layers():
    done = subprocess.run(
        [sys.executable, "-m", "djq.tools.layers"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 2 store" in done.stdout and "0 import cycles, 0 upward imports" in done.stdout


# --- one writer per table -----------------------------------------------------------------------
def test_only_the_store_writes_djq_tables():
    found = writers.writes()
    assert not found, "writes of djq tables outside the store layer:\n" + "\n".join(map(str, found))


def test_stray_writes_are_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "models.py": "class Job: ...\nclass Worker: ...\n",
            "store.py": "from .models import Job\nJob.objects.filter().update(state='X')\n",
            "rogue.py": """
            from .models import Job, Worker as Row
            Job.objects.using("default").filter(id=1).update(state="SUCCESS")
            Row.objects.create(name="w")
            SQL = "UPDATE djq_job SET state = 'FAILURE'"
            def f(job, queryset):
                job.save()
                queryset.filter(a=1).delete()
                {}.update(a=1)  # not a queryset
        """,
        },
    )
    found = [(w.module, w.line) for w in writers.writes(root)]
    assert found == [("djq.rogue", n) for n in (3, 4, 5, 7, 8)], found


# --- hidden imports -----------------------------------------------------------------------------
def test_djq_modules_are_imported_at_module_top():
    """An import of a djq module inside a function must say why (a comment just above)."""
    hidden = []
    for mod in _graph().values():
        lines = mod.path.read_text().splitlines()
        for target, line in mod.inner:
            said = " ".join(lines[max(0, line - 3) : line])
            if "# import here:" not in said:
                hidden.append(f"{mod.name}:{line} imports {target}")
    assert not hidden, "imports inside functions without a reason:\n" + "\n".join(hidden)


# --- the public face ----------------------------------------------------------------------------
def test_importing_djq_imports_nothing_else():
    code = "import sys, djq; print(sorted(m for m in sys.modules if m.startswith('djq.')))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_the_public_names_resolve():
    import djq
    import djq.task  # the submodule must not hide the decorator
    from djq.task import Task

    assert sorted(djq.__all__) == sorted([*djq._EXPORTS, *djq._SUBMODULES])
    for name in djq.__all__:
        assert getattr(djq, name) is not None, name
    assert callable(djq.task) and not isinstance(djq.task, type(sys))
    assert djq.Task is Task and djq.states.SUCCESS == "SUCCESS"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        djq.nothing  # noqa: B018
