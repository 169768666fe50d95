"""`make run` as a new user meets it (issue 14, defect 6): scripts/run_demo.py on a fresh SQLite
database, as a real process with its web server, two workers and the demo stream. The login is
printed last and again after the worker banner, kept in the file the README names and the same
on the next run; the stream makes chords, groups, a long job and jobs of a second queue that its
own worker runs; two schedules exist; the output has no tracebacks and few lines."""

from __future__ import annotations

import re
import signal
import socket
import sqlite3
import sys
from contextlib import closing

import pytest

from tests.helpers import MANAGE_PY, REPO_ROOT, wait_for

# the fixtures need the transactional test DB; the demo (SQLite) has its own database file
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sqlite_only]
PASSWORD_RE = re.compile(r"password: (\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_env(db) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DJQ_PG"))}
    return dict(env, DATABASE_URL=f"sqlite:///{db}", PORT=str(free_port()), PYTHONUNBUFFERED="1")


def rows(db, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
        return conn.execute(sql).fetchall()


def authenticates(env: dict, password: str) -> bool:
    import subprocess

    code = (
        "from django.contrib.auth import authenticate; "
        f"print(authenticate(username='admin', password={password!r}) is not None)"
    )
    out = subprocess.run(
        [sys.executable, str(MANAGE_PY), "shell", "-c", code],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1:] == ["True"]


def start_demo(start_process, env, name: str):
    return start_process(
        [sys.executable, str(REPO_ROOT / "scripts" / "run_demo.py")],
        name=name,
        env=env,
        ready_pattern=PASSWORD_RE.pattern,
        ready_timeout=60,
    )


@pytest.mark.timeout(600)
def test_the_demo_shows_everything_and_keeps_its_login(start_process, tmp_path):
    import subprocess

    db = tmp_path / "demo.sqlite3"
    env = demo_env(db)
    subprocess.run(
        [sys.executable, str(MANAGE_PY), "migrate", "--noinput"],
        env=env,
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    demo = start_demo(start_process, env, "demo")
    # the login again, after the first worker's banner (its task list)
    demo.wait_for_log(r"(?s)\[tasks\].*?\n\[worker\] \n.*password: ", timeout=90)
    password = PASSWORD_RE.search(demo.log_text()).group(1)
    login = tmp_path / "demo.sqlite3-login.txt"
    assert f"password: {password}" in login.read_text()
    assert "db.sqlite3-login.txt" in (REPO_ROOT / "README.md").read_text()
    assert authenticates(env, password)

    def everything() -> bool:
        found = {
            "chord": rows(
                db,
                "SELECT count(*) FROM djq_group WHERE body IS NOT NULL "
                "AND body != 'null' AND body != '{}'",
            )[0][0],
            "group": rows(
                db,
                "SELECT count(*) FROM djq_job WHERE group_id IS NOT NULL AND "
                "group_id NOT IN (SELECT id FROM djq_group)",
            )[0][0],
            "long": rows(
                db,
                "SELECT count(*) FROM djq_job WHERE name LIKE '%demo_long' "
                "AND state IN ('STARTED', 'SUCCESS')",
            )[0][0],
            "reports": rows(
                db,
                "SELECT count(*) FROM djq_job WHERE queue = 'reports' "
                "AND state = 'SUCCESS' AND worker LIKE 'reports@%'",
            )[0][0],
            "schedules": rows(db, "SELECT count(*) FROM djq_periodic_task")[0][0] >= 2,
        }
        return all(found.values())

    wait_for(
        everything,
        timeout=180,
        interval=1.0,
        message="a chord, a group, a long job, a "
        "reports job run by the reports worker and two schedules",
    )
    wait_for(
        lambda: rows(db, "SELECT count(*) FROM djq_job WHERE state = 'FAILURE'")[0][0] >= 3,
        timeout=120,
        interval=1.0,
    )
    text = demo.log_text()
    assert "Traceback (most recent call last)" not in text
    jobs = rows(db, "SELECT count(*) FROM djq_job")[0][0]
    assert len(text.splitlines()) < 200 + jobs // 10, f"{len(text.splitlines())} lines"
    assert text.rstrip().count("password: ") == 2
    demo.signal(signal.SIGTERM)
    assert demo.wait(timeout=60) == 0

    again = start_demo(start_process, env, "demo-again")  # the same database: the same login
    assert PASSWORD_RE.search(again.log_text()).group(1) == password
    again.signal(signal.SIGTERM)
    again.wait(timeout=60)
