"""Migrating from Celery (issue 7): ``djq.celery_compat`` / ``manage.py djq_check_celery``, the
sample project's conversion (tests/celery_sample: before/ → after/, exactly as the guide and the
command say), and the guide's tables against the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from djq.conf import DEFAULTS
from djq.contrib import celery_compat as cc
from tests.helpers import REPO_ROOT, run_manage

SAMPLE = REPO_ROOT / "tests" / "celery_sample"
BEFORE, AFTER = SAMPLE / "before", SAMPLE / "after"
GUIDE = (REPO_ROOT / "docs" / "migrating-from-celery.md").read_text()


def _write(tmp_path: Path, text: str, name: str = "celery_settings.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_djq_setting_named_exists():
    for celery, entry in cc.SETTINGS.items():
        if entry.status == cc.SETTING:
            assert entry.target.startswith("DJQ_"), celery
            assert entry.target[4:] in DEFAULTS, f"{celery} → {entry.target}: no such setting"
        elif entry.status != cc.CLI:
            assert entry.note, f"{celery}: say why"


def test_names_new_old_and_celeryconfig_style(tmp_path):
    path = _write(
        tmp_path,
        """
import os
CELERY_TASK_ALWAYS_EAGER = True      # namespace="CELERY"
CELERYD_CONCURRENCY = 4              # Celery 3 name
BROKER_URL = os.environ["BROKER"]    # Celery 3 name, not a literal
task_default_queue = "main"          # celeryconfig.py style
CELERY_SOMETHING_ELSE = 1            # unknown
DEBUG = True                         # not Celery's
""",
    )
    found = {f.name: f for f in cc.check_settings(str(path))}
    assert list(found) == [
        "CELERY_TASK_ALWAYS_EAGER",
        "CELERYD_CONCURRENCY",
        "BROKER_URL",
        "task_default_queue",
        "CELERY_SOMETHING_ELSE",
    ]
    assert found["CELERY_TASK_ALWAYS_EAGER"].suggestion == "DJQ_TASK_ALWAYS_EAGER = True"
    assert found["CELERYD_CONCURRENCY"].suggestion == "DJQ_WORKER_CONCURRENCY = 4"
    assert found["BROKER_URL"].status == cc.NOT_NEEDED
    assert found["task_default_queue"].suggestion == "DJQ_DEFAULT_QUEUE = 'main'"
    assert found["CELERY_SOMETHING_ELSE"].status == cc.UNKNOWN


def test_conversions(tmp_path):
    path = _write(
        tmp_path,
        """
CELERY_TASK_ROUTES = {"a.*": {"queue": "q", "routing_key": "k", "priority": 5}, "b": "bq"}
CELERY_TASK_DEFAULT_RATE_LIMIT = "10/m"
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_POOL = "gevent"
CELERY_IMPORTS = ("a.tasks", "b.tasks")
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
""",
    )
    findings = cc.check_settings(str(path))
    found = {f.name: f for f in findings}
    routes = found["CELERY_TASK_ROUTES"]
    assert routes.suggestion == (
        "DJQ_TASK_ROUTES = {'a.*': {'queue': 'q', 'priority': 5}, 'b': {'queue': 'bq'}}"
    )
    assert any("dropped routing_key" in note for note in routes.notes)
    assert found["CELERY_WORKER_POOL"].suggestion == "DJQ_WORKER_POOL = 'threads'"
    assert found["CELERY_IMPORTS"].suggestion == "DJQ_IMPORTS = ['a.tasks', 'b.tasks']"
    assert found["CELERY_BEAT_MAX_LOOP_INTERVAL"].status == cc.CLI
    text = cc.report(str(path), findings)
    # two Celery settings merged into one DJQ_TASK_ANNOTATIONS line
    assert "DJQ_TASK_ANNOTATIONS = {'*': {'rate_limit': '10/m', 'ignore_result': True}}" in text
    assert "-> djq_beat --max-interval" in text


def test_the_command(tmp_path):
    path = _write(tmp_path, 'CELERY_BROKER_URL = "redis://"\nCELERY_TASK_ACKS_LATE = True\n')
    out = run_manage("djq_check_celery", str(path)).stdout
    assert "2 Celery setting(s)" in out
    assert "CELERY_BROKER_URL  (not needed)" in out
    assert "-> DJQ_TASK_ACKS_LATE = True" in out
    missing = run_manage("djq_check_celery", "no.such.module", check=False)
    assert missing.returncode == 1 and "module no.such.module not found" in missing.stderr


def test_a_dotted_module_is_found_without_importing_it():
    """before/proj/settings.py imports celery (not installed here): it is read, not run."""
    with pytest.raises(ImportError):
        import celery  # noqa: F401
    out = run_manage("djq_check_celery", "tests.celery_sample.before.proj.settings").stdout
    assert "14 Celery setting(s)" in out


# --- the sample project's conversion ------------------------------------------------------
def test_code_conversion_is_the_guide_s_import_rewrites():
    """after/shop/*.py are before/shop/*.py with the guide's import rewrites, nothing else."""
    files = sorted(p.relative_to(BEFORE) for p in (BEFORE / "shop").glob("*.py"))
    assert files
    for rel in files:
        assert cc.convert_imports((BEFORE / rel).read_text()) == (AFTER / rel).read_text(), rel
    assert (AFTER / "manage.py").read_text() == (BEFORE / "manage.py").read_text()
    assert not (AFTER / "proj" / "celery.py").exists()  # the Celery app module is deleted
    assert (AFTER / "proj" / "__init__.py").read_text() == ""
    assert "celery" not in "".join(p.read_text() for p in AFTER.rglob("*.py")).replace(
        "celery_sample", ""
    )


def test_settings_conversion_is_djq_check_celery_s_output():
    """after/proj/settings.py is before's, with the CELERY_* statements replaced by the
    command's suggested lines, crontab imported from djq, and "djq" installed."""
    out = run_manage("djq_check_celery", str(BEFORE / "proj" / "settings.py")).stdout
    suggested = out.split("# djq settings to add (settings.py):\n", 1)[1].splitlines()
    before = (BEFORE / "proj" / "settings.py").read_text()
    celery_lines = set()
    for node in ast.parse(before).body:
        if isinstance(node, ast.Assign) and node.targets[0].id.startswith("CELERY_"):
            celery_lines.update(range(node.lineno, node.end_lineno + 1))
    kept = [
        line
        for n, line in enumerate(before.splitlines(), 1)
        if n not in celery_lines and "celery" not in line
    ]
    expected = kept + suggested + ["from djq import crontab", '    "djq",']
    after = (AFTER / "proj" / "settings.py").read_text().splitlines()
    assert sorted(filter(None, after)) == sorted(filter(None, expected))


# --- the guide against the code ---------------------------------------------------------------
def _table_first_column(heading: str) -> set[str]:
    section = GUIDE.split(heading, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)`", section, re.M))


def test_the_guide_lists_every_celery_setting():
    listed = _table_first_column("## Settings")
    assert {f"CELERY_{name.upper()}" for name in cc.SETTINGS} == listed


def test_the_guide_lists_the_import_rewrites():
    for old, new in cc.IMPORTS:
        assert f"`{old}`" in GUIDE and f"`{new}`" in GUIDE, old


def test_the_guide_names_only_existing_djq_settings_and_commands():
    for name in set(re.findall(r"\bDJQ_[A-Z_]+[A-Z]\b", GUIDE)):
        assert name[4:] in DEFAULTS, name
    commands = {p.stem for p in (REPO_ROOT / "djq" / "management" / "commands").glob("djq_*.py")}
    named = re.findall(r"manage\.py (djq_[a-z_]+)", GUIDE)
    named += re.findall(r"`(djq_[a-z_]+)[ `]", GUIDE)
    assert named
    for command in named:
        assert command in commands, command
