"""Tests of the test infrastructure itself (tests/helpers.py, tests/conftest.py, settings)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from tests.helpers import (
    REPO_ROOT,
    database_url,
    pg_restart,
    requires_pg_control,
    run_python,
    wait_for,
    worker_env,
)


# --- wait_for -------------------------------------------------------------------------------------
def test_wait_for_returns_the_first_truthy_value():
    calls = []

    def predicate():
        calls.append(1)
        return len(calls) >= 3 and {"n": len(calls)}

    assert wait_for(predicate, timeout=5) == {"n": 3}


def test_wait_for_raises_with_the_message_on_deadline():
    started = time.monotonic()
    with pytest.raises(AssertionError, match="the moon to turn blue"):
        wait_for(lambda: False, timeout=0.2, message="the moon to turn blue")
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 2.0


def test_wait_for_checks_once_more_at_the_deadline():
    deadline = time.monotonic() + 0.15
    assert wait_for(lambda: time.monotonic() >= deadline, timeout=0.15, interval=1.0)


# --- settings -------------------------------------------------------------------------------------
# (no database access, yet about the database of this pass: both passes)
@pytest.mark.every_db
def test_database_settings_match_the_vendor():
    from django.conf import settings

    db = settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        # A file, so that subprocesses share the test database.
        assert db["TEST"]["NAME"] and db["TEST"]["NAME"] != ":memory:"
    else:
        assert connection.vendor == "postgresql"
        assert os.environ["DATABASE_URL"].startswith("postgres")


@pytest.mark.sqlite_only
@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0].lower() == "wal"


# --- markers --------------------------------------------------------------------------------------
@pytest.mark.postgres_only
def test_postgres_only_marker_runs_only_on_postgres():
    assert connection.vendor == "postgresql"


@pytest.mark.sqlite_only
def test_sqlite_only_marker_runs_only_on_sqlite():
    assert connection.vendor == "sqlite"


# --- worker_env: a fresh subprocess sees the test database ----------------------------------------
PROBE = textwrap.dedent(
    """
    import json, django
    django.setup()
    from django.db import connection
    from django.contrib.auth import get_user_model
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        one = cursor.fetchone()[0]
    users = list(get_user_model().objects.filter(username="infra-probe")
                 .values_list("username", flat=True))
    print(json.dumps({"one": one, "vendor": connection.vendor,
                      "name": str(connection.settings_dict["NAME"]), "users": users}))
    """
)


@pytest.mark.django_db(transaction=True)
def test_worker_env_points_a_subprocess_at_the_test_database():
    get_user_model().objects.create(username="infra-probe")
    env = worker_env({"DJQ_EXTRA": "1"})
    assert env["DATABASE_URL"] == database_url()
    assert env["PYTHONUNBUFFERED"] == "1" and env["DJQ_EXTRA"] == "1"

    proc = run_python(PROBE, env=env)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["one"] == 1
    assert seen["vendor"] == connection.vendor
    assert seen["name"] == str(connection.settings_dict["NAME"])
    # The row this test committed is visible: it is the same database, not a look-alike.
    assert seen["users"] == ["infra-probe"]


# --- process machinery (what start_worker is built on) --------------------------------------------
FAKE_WORKER = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print(f"grandchild {child.pid}", flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    print("fake@host ready.", flush=True)
    while not stop:
        time.sleep(0.02)
    print("warm shutdown", flush=True)
    sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
    """
)


def _grandchild_pid(p) -> int:
    return int(p.wait_for_log(r"grandchild (\d+)").group(1))


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0): treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_process_ready_log_and_graceful_stop(start_process):
    p = start_process(
        [sys.executable, "-c", FAKE_WORKER],
        name="fake",
        env=dict(os.environ, FAKE_EXIT="3"),
        ready_pattern=r"\bready\b",
    )
    assert p.is_alive() and p.pid == p.proc.pid
    assert "fake@host ready." in p.log_text()
    p.terminate()
    assert p.wait(timeout=10) == 3
    assert "warm shutdown" in p.log_text()


def test_killing_the_group_takes_grandchildren_too(start_process):
    p = start_process([sys.executable, "-c", FAKE_WORKER], name="fake", ready_pattern=r"\bready\b")
    grandchild = _grandchild_pid(p)
    assert not _pid_gone(grandchild)
    p.kill()
    assert p.wait(timeout=10) == -signal.SIGKILL
    p.kill_group()
    wait_for(lambda: _pid_gone(grandchild), timeout=5, message="grandchild to die")


def test_process_that_exits_before_ready_fails_fast(start_process):
    started = time.monotonic()
    with pytest.raises(AssertionError, match="exited with status 4"):
        start_process(
            [sys.executable, "-c", "print('boom'); raise SystemExit(4)"],
            name="early",
            ready_pattern=r"\bready\b",
            ready_timeout=20,
        )
    assert time.monotonic() - started < 10


def test_pool_teardown_stops_everything(tmp_path):
    from tests.helpers import ProcessPool

    pool = ProcessPool(tmp_path)
    stubborn = pool.start(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(300)",
        ],
        name="stubborn",
        ready_pattern="ready",
    )
    polite = pool.start([sys.executable, "-c", FAKE_WORKER], name="polite", ready_pattern="ready")
    grandchild = _grandchild_pid(polite)
    pool.stop_all(grace=1.0)
    assert polite.returncode == 0
    assert stubborn.returncode == -signal.SIGKILL
    wait_for(lambda: _pid_gone(grandchild), timeout=5, message="grandchild to die")


def test_start_worker_requires_a_transactional_database():
    # The start_worker fixture fails a test whose database is not transactional; this checks
    # the helper that decides it.
    from tests.conftest import _is_transactional

    class Node:
        def __init__(self, marker):
            self._marker = marker

        def get_closest_marker(self, name):
            return self._marker

    class Request:
        def __init__(self, marker, fixturenames=()):
            self.node = Node(marker)
            self.fixturenames = list(fixturenames)

    assert _is_transactional(Request(pytest.mark.django_db(transaction=True).mark))
    assert not _is_transactional(Request(pytest.mark.django_db.mark))
    assert not _is_transactional(Request(None))
    assert _is_transactional(Request(None, ["transactional_db"]))


# --- PostgreSQL restart under running clients -----------------------------------------------------
@pytest.mark.postgres_only
@requires_pg_control
@pytest.mark.django_db(transaction=True)
def test_pg_restart_drops_connections_and_the_server_comes_back(start_process):
    # A long-lived client (as a worker would be) sees its connection dropped.
    client = start_process(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
            import django, time
            django.setup()
            from django.db import connection
            connection.ensure_connection()
            print("connected ready", flush=True)
            while True:
                try:
                    with connection.cursor() as c:
                        c.execute("SELECT 1")
                except Exception as exc:
                    print("lost:", type(exc).__name__, flush=True)
                    break
                time.sleep(0.05)
            """
            ),
        ],
        name="client",
        env=worker_env(),
        ready_pattern="ready",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_postmaster_start_time()")
        before = cursor.fetchone()[0]

    pg_restart()

    client.wait_for_log(r"lost: \w+", timeout=30)
    assert client.wait(timeout=10) == 0
    with connection.cursor() as cursor:  # Django reconnects after pg_restart() closed ours
        cursor.execute("SELECT pg_postmaster_start_time()")
        assert cursor.fetchone()[0] > before


# (djq's checks read the database's vendor, here the outer run's: both passes)
@pytest.mark.every_db
def test_manage_py_check_passes_in_a_subprocess():
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
