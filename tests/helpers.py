"""Helpers for the whole test suite (fixtures that use them live in tests/conftest.py).

- wait_for(predicate, ...)     poll until truthy; the only way tests wait (no bare sleeps)
- worker_env(extra)            environment for subprocesses, pointing at pytest-django's test DB
- run_manage(*args, ...)       run `manage.py ARGS` synchronously against the test DB
- ManagedProcess / ProcessPool the machinery behind the start_worker / start_process fixtures
- pg_restart(), pg_server_stop(), pg_server_start()
                               restart / take down / bring back the throwaway PostgreSQL server
                               under running workers (needs DJQ_PG_STATE, set by
                               scripts/pg-throwaway run; see requires_pg_control)
- postgres_only, sqlite_only   markers, see conftest.py (skips by connection.vendor)
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlencode

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MANAGE_PY = REPO_ROOT / "manage.py"

T = TypeVar("T")


# --- waiting --------------------------------------------------------------------------------------
def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "",
) -> T:
    """Call `predicate` until it returns a truthy value and return that value.

    Raises AssertionError (with `message`, or a description of the predicate) when `timeout`
    seconds pass first. The predicate is always called at least once, and once more at the
    deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        now = time.monotonic()
        if now >= deadline:
            what = message or f"condition {getattr(predicate, '__name__', predicate)!r}"
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(min(interval, max(deadline - now, 0.0)))


# --- subprocess environment ---------------------------------------------------------------------
def database_url(alias: str = "default") -> str:
    """A DATABASE_URL for the database Django is connected to *now* (in a test: the test DB)."""
    from django.db import connections

    conn = connections[alias]
    sd = conn.settings_dict
    if conn.vendor == "sqlite":
        name = str(sd["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            raise RuntimeError(
                "the SQLite test database is in memory; subprocesses cannot share it "
                "(settings must set DATABASES['default']['TEST']['NAME'] to a file)"
            )
        return "sqlite:///" + str(Path(name).resolve())
    if conn.vendor == "postgresql":
        user = quote(sd.get("USER") or "", safe="")
        password = quote(sd.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = sd.get("HOST") or ""
        host = quote(host, safe="") if host.startswith("/") else host
        port = f":{sd['PORT']}" if sd.get("PORT") else ""
        query = ""
        options = {
            k: v for k, v in (sd.get("OPTIONS") or {}).items() if isinstance(v, str | int | float)
        }
        if options:
            query = "?" + urlencode(options)
        return f"postgres://{auth}{host}{port}/{quote(str(sd['NAME']), safe='')}{query}"
    raise RuntimeError(f"worker_env: unsupported database vendor {conn.vendor!r}")


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a subprocess (worker, manage.py command) that must use the test DB.

    Call it inside a test that has database access (the test DB exists then). Starts from
    os.environ, so DJQ_* settings of the outer run are inherited; `extra` wins.
    """
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(),
        DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE),
        PYTHONUNBUFFERED="1",
    )
    # Make the repo importable whatever the subprocess's cwd.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


def run_manage(
    *args: str,
    env_extra: dict[str, str] | None = None,
    timeout: float = 60.0,
    check: bool = True,
    cwd: Path = REPO_ROOT,
) -> subprocess.CompletedProcess[str]:
    """Run `manage.py ARGS` to completion against the test DB (e.g. `djq_worker --burst`)."""
    proc = subprocess.run(
        [sys.executable, str(MANAGE_PY), *args],
        cwd=cwd,
        env=worker_env(env_extra),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc


# --- managed processes (workers) ----------------------------------------------------------------
READY_RE = re.compile(r"\bready\b")
_SIGKILL = signal.SIGKILL  # the class below has a method named `signal`


class ManagedProcess:
    """A subprocess in its own session (process group) whose output goes to a log file."""

    def __init__(
        self,
        argv: list[str],
        *,
        name: str,
        log_path: Path,
        env: dict[str, str],
        cwd: Path = REPO_ROOT,
    ):
        self.argv = argv
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # closed in cleanup()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.proc.pid

    # Celery-style node name the worker reports (`-n NAME@%h`; %h is the host name).
    @property
    def nodename(self) -> str:
        return f"{self.name}@{socket.gethostname()}"

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} rc={self.proc.poll()}>"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def is_alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def kill_group(self, sig: int = _SIGKILL) -> None:
        """Signal the whole process group (the process and every child it started)."""
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit and return the exit status (raises subprocess.TimeoutExpired)."""
        return self.proc.wait(timeout=timeout)

    def wait_for_log(
        self, pattern: str | re.Pattern[str], timeout: float = 10.0, message: str = ""
    ) -> re.Match[str]:
        """Wait until the log matches `pattern` (a regex); fail early if the process exits."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern

        def check():
            m = rx.search(self.log_text())
            if m:
                return m
            if self.proc.poll() is not None:
                # One last read: output may have landed just before the exit.
                m = rx.search(self.log_text())
                if m:
                    return m
                raise AssertionError(
                    f"{self.name} exited with status {self.proc.returncode} before its log "
                    f"matched {rx.pattern!r}; log tail:\n{self.log_tail()}"
                )
            return None

        try:
            return wait_for(check, timeout=timeout, interval=0.05)
        except AssertionError as exc:
            if "exited with status" in str(exc):
                raise
            raise AssertionError(
                f"{message or f'{self.name} log to match {rx.pattern!r}'}: timed out after "
                f"{timeout:.1f}s; log tail:\n{self.log_tail()}"
            ) from None

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait_for_log(READY_RE, timeout=timeout, message=f"{self.name} to be ready")

    def cleanup(self, grace: float = 15.0) -> None:
        """SIGTERM, wait up to `grace` s, SIGKILL; then SIGKILL the whole process group."""
        try:
            if self.proc.poll() is None:
                self.terminate()
                try:
                    self.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self.kill()
                    self.proc.wait(timeout=10)
        finally:
            self.kill_group()
            self._log.close()


class ProcessPool:
    """Every process a test starts; stopped (in parallel) at the test's teardown."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.processes: list[ManagedProcess] = []

    def start(
        self,
        argv: list[str],
        *,
        name: str | None = None,
        env: dict[str, str] | None = None,
        ready_pattern: str | None = None,
        ready_timeout: float = 30.0,
        cwd: Path = REPO_ROOT,
    ) -> ManagedProcess:
        name = name or f"p{len(self.processes) + 1}"
        if any(p.name == name for p in self.processes):
            raise ValueError(f"a process named {name!r} was already started in this test")
        log_path = self.log_dir / f"{name}.log"
        p = ManagedProcess(argv, name=name, log_path=log_path, env=env or dict(os.environ), cwd=cwd)
        self.processes.append(p)
        if ready_pattern is not None:
            p.wait_for_log(ready_pattern, timeout=ready_timeout, message=f"{name} to be ready")
        return p

    def start_worker(
        self,
        *args: str,
        name: str | None = None,
        env_extra: dict[str, str] | None = None,
        wait_ready: bool = True,
        ready_timeout: float = 30.0,
    ) -> ManagedProcess:
        name = name or f"w{len(self.processes) + 1}"
        argv = [
            sys.executable,
            str(MANAGE_PY),
            "djq_worker",
            "-n",
            f"{name}@%h",
            "-l",
            "info",
            *args,
        ]
        return self.start(
            argv,
            name=name,
            env=worker_env(env_extra),
            ready_pattern=READY_RE.pattern if wait_ready else None,
            ready_timeout=ready_timeout,
        )

    def stop_all(self, grace: float = 15.0) -> None:
        running = [p for p in self.processes if p.proc.poll() is None]
        for p in running:
            p.terminate()
        deadline = time.monotonic() + grace
        for p in self.processes:
            try:
                p.proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                pass
        for p in self.processes:
            p.cleanup(grace=0.01)

    def report(self, lines: int = 80) -> Iterable[tuple[str, str]]:
        for p in self.processes:
            yield (
                f"log of {p.name} (pid {p.pid}, exit status {p.proc.poll()}): {p.log_path}",
                p.log_tail(lines),
            )


# --- PostgreSQL server control (scripts/pg-throwaway) ---------------------------------------------
def pg_control_available() -> bool:
    return bool(os.environ.get("DJQ_PG_STATE")) and Path(os.environ["DJQ_PG_STATE"]).is_file()


requires_pg_control = pytest.mark.skipif(
    not pg_control_available(),
    reason="needs the throwaway PostgreSQL of scripts/pg-throwaway run (DJQ_PG_STATE unset)",
)


def _pg_throwaway(action: str, timeout: float = 120.0) -> None:
    if not pg_control_available():
        pytest.skip("DJQ_PG_STATE not set: the server is not a scripts/pg-throwaway cluster")
    script = os.environ.get("DJQ_PG_SCRIPT") or str(REPO_ROOT / "scripts" / "pg-throwaway")
    proc = subprocess.run(
        [script, action], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"pg-throwaway {action} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )


def pg_restart() -> None:
    """Fast-restart the PostgreSQL server: every open connection (workers', ours) is dropped.

    Our own connection is closed first, so that Django reconnects on next use.
    """
    from django.db import connections

    connections.close_all()
    _pg_throwaway("restart")


def pg_server_stop() -> None:
    """Take the PostgreSQL server down (an outage) until pg_server_start()."""
    from django.db import connections

    connections.close_all()
    _pg_throwaway("server-stop")


def pg_server_start() -> None:
    _pg_throwaway("server-start")


def db_vendor() -> str:
    from django.db import connection

    return connection.vendor


def run_python(
    code: str, *, env: dict[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run `python -c CODE` in the repo root (e.g. with env=worker_env())."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


__all__ = [
    "REPO_ROOT",
    "MANAGE_PY",
    "wait_for",
    "database_url",
    "worker_env",
    "run_manage",
    "ManagedProcess",
    "ProcessPool",
    "pg_control_available",
    "requires_pg_control",
    "pg_restart",
    "pg_server_stop",
    "pg_server_start",
    "db_vendor",
    "run_python",
]
