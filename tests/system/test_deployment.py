"""The operations docs are true (issue 7): every command shown in a code block of
docs/deployment.md, docs/migrating-from-celery.md and docs/django-tasks.md is run here (workers
with ``--burst`` added), the systemd units are checked by ``systemd-analyze verify``, the SQL is
executed, and the dedicated queue database set-up runs end to end."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.helpers import MANAGE_PY, REPO_ROOT, db_vendor, wait_for, worker_env

DOCS = ["deployment.md", "migrating-from-celery.md", "django-tasks.md"]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
SAMPLE = REPO_ROOT / "tests" / "celery_sample"
#: commands shown but not run here, and why (no systemd inside the test environment)
NOT_RUN = {
    "systemctl daemon-reload": "no systemd here; the units are checked by systemd-analyze",
    "systemctl enable --now djq-worker@w1 djq-worker@w2 djq-beat": "no systemd here",
    "systemctl reload djq-worker@w1": "no systemd here; SIGHUP restart: docs/check_examples.sh",
}


def blocks(doc: str, lang: str) -> list[str]:
    text = (REPO_ROOT / "docs" / doc).read_text()
    return [m.group(2) for m in FENCE.finditer(text) if m.group(1) == lang]


def commands(doc: str) -> list[str]:
    """The shell commands of a page: ```sh lines (comments dropped), and units' ExecStart."""
    found = []
    for body in blocks(doc, "sh"):
        for line in body.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                found.append(line)
    for body in blocks(doc, "ini"):
        found += [
            "python " + m.group(1) for m in re.finditer(r"^ExecStart=\S+/python (.*)$", body, re.M)
        ]
    return found


def _run(argv: list[str], env: dict, cwd: Path = REPO_ROOT, timeout: float = 120):
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"{argv}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _argv(command: str, manage: Path = MANAGE_PY) -> list[str]:
    words = command.split()
    assert words[:2] == ["python", "manage.py"], command
    return [sys.executable, str(manage), *words[2:]]


def _start_and_stop(argv: list[str], env: dict, ready: str, cwd: Path = REPO_ROOT) -> str:
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    out: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any(ready in line for line in out):
            assert time.monotonic() < deadline, "".join(out)
            out.append(proc.stdout.readline())
        proc.send_signal(signal.SIGTERM)
        out.append(proc.stdout.read())
        assert proc.wait(timeout=30) == 0, "".join(out)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stdout.close()
    return "".join(out)


# --- the catalogue: nothing shown goes unrun ---------------------------------------------------
HANDLED = {
    "deployment.md": {
        "python manage.py djq_worker -n %i@%H -Q default,email -c 8 -l info",
        "python manage.py djq_beat -l info",
        *[c for c in NOT_RUN],
        "python manage.py djq_worker --detach -n w1@%h --pidfile /run/djq/%n.pid "
        "--logfile /var/log/djq/%n%I.log",
        "python manage.py djq_worker -n fast@%h -Q default -c 16 --prefetch-multiplier 4",
        "python manage.py djq_worker -n reports@%h -Q reports -c 2",
        "python manage.py migrate",
        "python manage.py migrate --database queue",
        "python manage.py djq_purge --older-than 604800",
        "python manage.py djq_status",
        "python manage.py djq_inspect active",
        'pg_dump --format=custom --exclude-table-data=djq_job --file=app.dump "$DATABASE_URL"',
        # djq_check_pending (issue 15): run by tests/system/test_docs_commands.py, as every
        # manage.py line of the docs, and its behaviour by tests/system/test_check_pending.py
        "python manage.py djq_check_pending",
        "python manage.py djq_check_pending --json -Q reports",
        "python manage.py djq_check_pending -Q default --limit 100000 --ids 3",
    },
    "migrating-from-celery.md": {
        "python manage.py migrate",
        "python manage.py djq_check_celery proj.settings",
        "python manage.py djq_worker -l info -Q default,email -c 4",
        "python manage.py djq_beat -l info",
        # Celery command lines (issue 10): run by tests/system/test_docs_commands.py, with every
        # other
        # manage.py line of the docs
        "python manage.py djq_worker -l INFO -Q default,email -c 4 --without-gossip "
        "--without-mingle --without-heartbeat -O fair --maxtasksperchild 100 -P gevent "
        "--statedb /var/run/celery/worker.state",
        "python manage.py djq_beat -l INFO -s /var/run/celery/celerybeat-schedule "
        "-S django_celery_beat.schedulers:DatabaseScheduler",
    },
    "django-tasks.md": {"python manage.py djq_worker -l info -Q default,emails"},
}


@pytest.mark.parametrize("doc", DOCS)
def test_every_command_shown_is_run_here(doc):
    assert set(commands(doc)) == HANDLED[doc]


@pytest.mark.parametrize("doc", DOCS)
def test_python_blocks_compile(doc):
    for body in blocks(doc, "python"):
        compile(body, doc, "exec")


# --- docs/deployment.md -------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_deployment_worker_and_beat_commands(tmp_path):
    env = worker_env()
    host = os.uname().nodename
    for command in sorted(HANDLED["deployment.md"]):
        if "djq_worker" in command and "--detach" not in command:
            argv = _argv(command.replace("%i@%H", f"w1@{host}")) + ["--burst"]
            _run(argv, env)
    _start_and_stop(_argv("python manage.py djq_beat -l info"), env, ": ready")
    _run(_argv("python manage.py djq_purge --older-than 604800"), env)


@pytest.mark.django_db(transaction=True)
def test_deployment_detach_command(tmp_path):
    command = (
        "python manage.py djq_worker --detach -n w1@%h --pidfile /run/djq/%n.pid "
        "--logfile /var/log/djq/%n%I.log"
    )
    run_dir, log_dir = tmp_path / "run", tmp_path / "log"
    run_dir.mkdir(), log_dir.mkdir()
    command = command.replace("/run/djq", str(run_dir)).replace("/var/log/djq", str(log_dir))
    _run(_argv(command) + ["--burst"], worker_env())
    log = log_dir / "w1.log"
    wait_for(lambda: log.exists() and "stopped (" in log.read_text(), timeout=60)
    wait_for(lambda: not (run_dir / "w1.pid").exists(), timeout=30)


@pytest.mark.django_db(transaction=True)
def test_deployment_monitoring_commands(start_worker):
    w = start_worker("-c", "1")
    env = worker_env()
    assert w.nodename in _run(_argv("python manage.py djq_status"), env).stdout
    assert w.nodename in _run(_argv("python manage.py djq_inspect active"), env).stdout


def test_systemd_units_verify(tmp_path):
    """The units parse (systemd-analyze verify), with the paths made real for this machine."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    units = blocks("deployment.md", "ini")
    assert len(units) == 2
    for body in units:
        name = re.search(r"^# /etc/systemd/system/(\S+)$", body, re.M).group(1)
        name = name.replace("@.service", "@w1.service")
        text = (
            body.replace("/srv/app/venv/bin/python", sys.executable)
            .replace("/srv/app", str(REPO_ROOT))
            .replace("User=app", "User=root")
            .replace("Group=app", "Group=root")
        )
        (tmp_path / name).write_text(text)
        proc = subprocess.run(
            [tool, "verify", str(tmp_path / name)], capture_output=True, text=True, timeout=60
        )
        problems = [line for line in proc.stderr.splitlines() if str(tmp_path) in line]
        assert not problems, problems
        for key in ("KillMode=mixed", "KillSignal=SIGTERM", "TimeoutStopSec="):
            assert key in text


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_deployment_sql_and_pg_dump(tmp_path):
    from django.db import connection, transaction

    (sql,) = blocks("deployment.md", "sql")
    with pytest.raises(RuntimeError), transaction.atomic():  # applied, then rolled back
        with connection.cursor() as cursor:
            cursor.execute(sql)
            cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'djq_job'")
            assert "fillfactor=80" in cursor.fetchone()[0]
        raise RuntimeError
    command = 'pg_dump --format=custom --exclude-table-data=djq_job --file=app.dump "$DATABASE_URL"'
    env = worker_env()
    _run(["bash", "-c", command], env, cwd=tmp_path)
    listing = _run(["pg_restore", "--list", str(tmp_path / "app.dump")], env).stdout
    assert "TABLE public djq_job" in listing  # (the job table's data is left out: not djq_job_stat)
    assert not re.search(r"TABLE DATA public djq_job ", listing), listing


@pytest.mark.sqlite_only
def test_dedicated_queue_database(tmp_path):
    """DJQ_DATABASE = "queue" + DjqRouter: the two migrate commands put djq's tables in the
    queue database only; jobs, the worker and results all use it."""
    env = worker_env(
        {
            "DJANGO_SETTINGS_MODULE": "tests.queue_db_settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}",
            "QUEUE_DATABASE_URL": f"sqlite:///{tmp_path / 'queue.sqlite3'}",
        }
    )
    _run(_argv("python manage.py migrate"), env)
    _run(_argv("python manage.py migrate --database queue"), env)
    tables = {
        name: {
            r[0]
            for r in _query(
                tmp_path / f"{name}.sqlite3", "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        for name in ("app", "queue")
    }
    assert "djq_job" in tables["queue"] and "djq_job" not in tables["app"]
    assert "auth_user" in tables["app"] and "auth_user" not in tables["queue"]
    shell = [sys.executable, str(MANAGE_PY), "shell", "-v", "0", "-c"]
    job = _run(
        shell + ["from testproject.demo.tasks import add; print(add.delay(2, 2).id)"], env
    ).stdout.strip()
    _run(_argv("python manage.py djq_worker -Q default --burst"), env)
    check = (
        f"from djq import AsyncResult; from djq.models import Job; "
        f"print(AsyncResult('{job}').get(timeout=5), Job.objects.count())"
    )
    assert _run(shell + [check], env).stdout.split() == ["4", "1"]
    rows = _query(tmp_path / "queue.sqlite3", "SELECT state FROM djq_job")
    assert [r[0] for r in rows] == ["SUCCESS"]


def _query(path: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


# --- docs/migrating-from-celery.md --------------------------------------------------------------
STUB_CELERY = '''\
"""Just enough of Celery's import surface for the sample project to load (Celery itself is not
installed in djq's test environment); nothing here runs a task."""


class Celery:
    def __init__(self, *args, **kwargs):
        pass

    def config_from_object(self, *args, **kwargs):
        pass

    def autodiscover_tasks(self, *args, **kwargs):
        pass


def shared_task(*args, **kwargs):
    return args[0] if args and callable(args[0]) else (lambda fun: fun)


chain = group = None
'''


@pytest.mark.django_db(transaction=True)
def test_migration_guide_steps_on_the_celery_project(tmp_path):
    """Step 1 (djq installed next to Celery, migrate) and step 4 (djq_check_celery prints what
    the guide shows) in a copy of the Celery project, then step 5's commands in the converted
    project."""
    project = tmp_path / "before"
    shutil.copytree(SAMPLE / "before", project)
    stub = tmp_path / "stub" / "celery"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(STUB_CELERY)
    (stub / "schedules.py").write_text("def crontab(**fields):\n    return fields\n")
    settings = project / "proj" / "settings.py"
    settings.write_text(settings.read_text().replace('    "shop",', '    "djq",\n    "shop",'))
    env = worker_env(
        {"PYTHONPATH": str(tmp_path / "stub"), "DJANGO_SETTINGS_MODULE": "proj.settings"}
    )
    manage = project / "manage.py"
    _run(_argv("python manage.py migrate", manage), env, cwd=project)
    out = _run(
        _argv("python manage.py djq_check_celery proj.settings", manage), env, cwd=project
    ).stdout
    guide = (REPO_ROOT / "docs" / "migrating-from-celery.md").read_text()
    shown = re.search(r"On the sample it prints:\n\n```\n(.*?)```", guide, re.S).group(1)
    assert out == shown

    after = SAMPLE / "after"
    env = worker_env({"DJANGO_SETTINGS_MODULE": "proj.settings"})
    command = "python manage.py djq_worker -l info -Q default,email -c 4"
    _run(_argv(command, after / "manage.py") + ["--burst"], env, cwd=after)
    _start_and_stop(
        _argv("python manage.py djq_beat -l info", after / "manage.py"), env, ": ready", cwd=after
    )


# --- docs/django-tasks.md -----------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_django_tasks_worker_command():
    pytest.importorskip("django.tasks")
    from testproject.djtasks import tasks as djt

    result = djt.add.enqueue(20, 22)
    _run(_argv("python manage.py djq_worker -l info -Q default,emails") + ["--burst"], worker_env())
    result.refresh()
    assert result.return_value == 42
    assert db_vendor() in ("postgresql", "sqlite")
