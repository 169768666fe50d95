"""Acceptance (issue 7): workers run correctly through a real PgBouncer in transaction pooling
mode, configured as docs/deployment.md says (``DJQ_LISTEN = False``,
``DISABLE_SERVER_SIDE_CURSORS = True``).

The test starts its own PgBouncer (Debian's package, installed by scripts/ensure-pgbouncer if
missing) on a free port in front of the test database, with fewer server connections than the
workers have clients, so that transactions of different workers really share server connections.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from djq import enqueue_many
from testproject.demo import tasks as demo
from tests.helpers import REPO_ROOT, database_url, run_python, wait_for, worker_env

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

#: server connections PgBouncer may open to PostgreSQL (the workers have far more clients)
POOL_SIZE = 3


def _pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if found:
        return found
    proc = subprocess.run(
        [str(REPO_ROOT / "scripts" / "ensure-pgbouncer")],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        pytest.fail(f"pgbouncer could not be installed:\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pgbouncer(start_process):
    """A PgBouncer in transaction mode in front of the test database; yields its DATABASE_URL."""
    binary = _pgbouncer_binary()
    server = urlsplit(database_url())
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="djq-pgbouncer-"))
    (workdir / "userlist.txt").write_text(f'"{server.username}" ""\n')
    (workdir / "pgbouncer.ini").write_text(f"""\
[databases]
* = host={server.hostname} port={server.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/userlist.txt
admin_users = {server.username}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
""")
    argv = [binary, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root: switch to an unprivileged user
        user = "postgres" if _has_user("postgres") else "nobody"
        os.chmod(workdir, 0o755)
        shutil.chown(workdir, user)
        argv[1:1] = ["-u", user]
    start_process(argv, name="pgbouncer", ready_pattern=r"process up")
    try:
        yield f"postgres://{server.username}@127.0.0.1:{port}{server.path}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _admin(url: str, command: str) -> list[dict]:
    """Run a command on PgBouncer's admin console (simple query protocol only)."""
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(
        host=parts.hostname,
        port=parts.port,
        user=parts.username,
        dbname="pgbouncer",
        autocommit=True,
    ) as conn:
        res = conn.pgconn.exec_(command.encode())
        names = [res.fname(i).decode() for i in range(res.nfields)]
        return [
            {names[c]: (res.get_value(r, c) or b"").decode() for c in range(res.nfields)}
            for r in range(res.ntuples)
        ]


def _backend_pids(url: str, sessions: int) -> int:
    """Open ``sessions`` client connections at once; how many server backends served them."""
    import psycopg

    parts = urlsplit(url)
    conns = [
        psycopg.connect(
            host=parts.hostname,
            port=parts.port,
            user=parts.username,
            dbname=parts.path.lstrip("/"),
            autocommit=True,
        )
        for _ in range(sessions)
    ]
    try:
        return len({c.execute("SELECT pg_backend_pid()").fetchone()[0] for c in conns})
    finally:
        for c in conns:
            c.close()


def _through(url: str) -> dict[str, str]:
    """Environment for a process that reaches the database through PgBouncer only."""
    return worker_env(
        {"DATABASE_URL": url, "DJQ_LISTEN": "0", "DATABASE_DISABLE_SERVER_SIDE_CURSORS": "1"}
    )


def test_workers_through_pgbouncer_in_transaction_mode(pgbouncer, start_worker):
    env = {
        "DATABASE_URL": pgbouncer,
        "DJQ_LISTEN": "0",
        "DATABASE_DISABLE_SERVER_SIDE_CURSORS": "1",
    }
    workers = [
        start_worker("-c", "4", "--poll-interval", "0.1", env_extra=env),
        start_worker("-c", "4", "-P", "threads", "--poll-interval", "0.1", env_extra=env),
    ]
    for w in workers:  # LISTEN cannot work through PgBouncer: the banner says it polls
        assert "wake-up:     polling every 0.1s" in w.log_text()

    # Jobs enqueued directly on PostgreSQL run on the workers behind PgBouncer.
    results = enqueue_many(demo.add.s(i, i) for i in range(40))
    assert [r.get(timeout=30) for r in results] == [2 * i for i in range(40)]
    with pytest.raises(ValueError, match="boom"):
        demo.fail.delay().get(timeout=30)

    # A client behind PgBouncer too: COPY enqueue (60 jobs), get() without LISTEN, a chain and a
    # Django task.
    code = """
import django
django.setup()
from djq import chain, enqueue_many
from testproject.demo import tasks as demo
results = enqueue_many(demo.add.s(i, 1) for i in range(60))
print(sum(r.get(timeout=30) for r in results))
print(chain(demo.add.s(1, 2), demo.mul.s(10)).apply_async().get(timeout=30))
try:
    from testproject.djtasks import tasks as djt
except ImportError:  # Django < 6.0
    print(5)
else:
    from djq import AsyncResult
    print(AsyncResult(djt.add.enqueue(2, 3).id).get(timeout=30))
"""
    proc = run_python(code, env=_through(pgbouncer), timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(sum(range(60)) + 60), "30", "5"]

    # Transaction pooling: the workers' transactions went through PgBouncer, on at most POOL_SIZE
    # server connections, which clients share (8 sessions at once here, each served in turn).
    dbname = urlsplit(pgbouncer).path.lstrip("/")
    stats = {s["database"]: s for s in _admin(pgbouncer, "SHOW STATS")}
    assert int(stats[dbname]["total_xact_count"]) > 100
    assert _backend_pids(pgbouncer, sessions=8) <= POOL_SIZE
    pools = [p for p in _admin(pgbouncer, "SHOW POOLS") if p["database"] == dbname]
    assert 0 < sum(int(p[k]) for p in pools for k in p if k.startswith("sv_")) <= POOL_SIZE
    assert [p["pool_mode"] for p in pools] == ["transaction"]

    # Warm shutdown through PgBouncer as usual.
    for w in workers:
        w.terminate()
    for w in workers:
        assert w.wait(timeout=30) == 0
    wait_for(lambda: all("stopped (" in w.log_text() for w in workers), timeout=10)
