"""The campaign's machinery: the PostgreSQL cluster it crashes, the workers it kills, the side
table that counts executions, and the checks every scenario ends with.

Runs inside ``scripts/pg-throwaway run`` (DATABASE_URL and DJQ_PG_STATE set), with Django set up
on ``testproject.settings`` against the cluster's own database (not a test database).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.db import connection, connections

from djq import states
from djq.models import Job
from testproject.demo.tasks import CHAOS_TABLE

REPO_ROOT = Path(__file__).resolve().parent.parent
MANAGE_PY = REPO_ROOT / "manage.py"
ACTIVE = (states.PENDING, states.RETRY, states.STARTED)


# --- results ------------------------------------------------------------------------------
@dataclass
class Outcome:
    """One scenario's verdict: the line it prints and why it failed, if it did."""

    name: str
    figures: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def check(self, condition: bool, why: str) -> None:
        if not condition:
            self.failures.append(why)

    @property
    def passed(self) -> bool:
        return not self.failures

    def line(self) -> str:
        figures = " ".join(f"{k}={_fmt(v)}" for k, v in self.figures.items())
        verdict = "PASS" if self.passed else "FAIL"
        why = f" ({'; '.join(self.failures)})" if self.failures else ""
        return f"{self.name}: {verdict} {figures}{why}"


def _fmt(value) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.2):
    """The predicate's first truthy value, or None once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = _quietly(predicate)
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def _quietly(predicate: Callable[[], object]):
    """Call ``predicate``; a database error (the server is down) counts as "not yet"."""
    try:
        return predicate()
    except Exception:
        connections.close_all()
        return None


# --- the side table ---------------------------------------------------------------------------
def create_side_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {CHAOS_TABLE} (job_id text NOT NULL, retries int, "
            "attempt int, "
            "hostname text, pid int, at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {CHAOS_TABLE}_job ON {CHAOS_TABLE} (job_id)")


def reset() -> None:
    """Empty the queue, the side table and the worker registry between scenarios."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE djq_job, djq_worker, {CHAOS_TABLE} CASCADE")


def runs_per_job() -> Counter:
    """Runs of each job's most-run delivery: a retry (the task's own, after its insert failed in
    an outage) is a new delivery; two runs of one delivery are the queue's doing."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT job_id, max(n) FROM (SELECT job_id, count(*) AS n FROM {CHAOS_TABLE} "
            "GROUP BY job_id, retries) AS d GROUP BY job_id"
        )
        return Counter(dict(cursor.fetchall()))


def explain(job_id: str) -> str:
    """A job's runs and history, for a failure message."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT retries, attempt, hostname, pid, at FROM {CHAOS_TABLE} WHERE job_id = %s "
            "ORDER BY at",
            [job_id],
        )
        runs = [f"r{r} a{a} {h} pid {p} {at:%H:%M:%S.%f}" for r, a, h, p, at in cursor]
    job = Job.objects.filter(id=job_id).values("state", "history", "acks_late").first()
    return f"job {job_id}: runs {runs}; {job}"


def active_count() -> int:
    return Job.objects.filter(state__in=ACTIVE).count()


def state_counts() -> Counter:
    return Counter(Job.objects.values_list("state", flat=True))


def worker_lost(ids=None) -> set[str]:
    """Ids of jobs that ended FAILURE with WorkerLostError (rescued from a dead worker)."""
    rows = Job.objects.filter(state=states.FAILURE, result__exc_type="WorkerLostError")
    if ids is not None:
        rows = rows.filter(id__in=list(ids))
    return {str(i) for i in rows.values_list("id", flat=True)}


def delivery_figures(outcome: Outcome, expected: int, late_ids: set[str]) -> None:
    """The delivery rules every scenario checks once the queue is drained.

    0 lost (every enqueued job is in the table, in a final state), 0 stuck, plain jobs ran at
    most once and exactly once when they succeeded, acks_late jobs succeeded, at least once. A
    job's body begins only once its STARTED mark is committed (docs/worker.md), so a plain job
    run twice is a failure whether or not its history shows STARTED before the second claim;
    those without (run while still RESERVED: a body begun before its mark) are also counted
    apart, ``reruns_before_started``.
    """
    counts = state_counts()
    runs = runs_per_job()
    ids = {str(i) for i in Job.objects.values_list("id", flat=True)}
    lost = worker_lost()
    success = {
        str(i) for i in Job.objects.filter(state=states.SUCCESS).values_list("id", flat=True)
    }
    plain = ids - late_ids
    repeated = [i for i in plain if runs.get(i, 0) > 1]
    histories = dict(Job.objects.filter(id__in=repeated).values_list("id", "history"))
    twice = [i for i in repeated if _rerun_after_started(histories.get(i) or [])]
    unrun = [i for i in success if runs.get(i, 0) == 0]
    late_failed = late_ids - success
    stuck = sum(counts[s] for s in ACTIVE)
    outcome.figures.update(
        jobs=len(ids),
        success=counts[states.SUCCESS],
        worker_lost=len(lost),
        stuck=stuck,
        max_runs_plain=max((runs.get(i, 0) for i in plain), default=0),
        max_runs_late=max((runs.get(i, 0) for i in late_ids), default=0),
        reruns_before_started=len(repeated) - len(twice),
    )
    outcome.check(len(ids) == expected, f"{expected - len(ids)} job(s) missing from the table")
    outcome.check(stuck == 0, f"{stuck} job(s) stuck in {dict((s, counts[s]) for s in ACTIVE)}")
    outcome.check(
        not repeated,
        f"{len(repeated)} plain job(s) ran more than once ({len(repeated) - len(twice)} of them "
        "before STARTED was recorded), e.g. " + "; ".join(explain(i) for i in repeated[:2]),
    )
    outcome.check(not unrun, f"{len(unrun)} SUCCESS job(s) never ran")
    outcome.check(not late_failed, f"{len(late_failed)} acks_late job(s) did not succeed")
    other = ids - success - lost
    outcome.check(not other, f"{len(other)} job(s) ended neither SUCCESS nor WorkerLostError")


def _rerun_after_started(history: list) -> bool:
    """Whether the job was claimed again after a delivery recorded STARTED (a plain job must
    not be: its worker's death fails it with WorkerLostError)."""
    seen_started = False
    for entry in history:
        if entry[0] == states.STARTED:
            seen_started = True
        elif entry[0] == states.RESERVED and seen_started:
            return True
    return False


# --- PostgreSQL -------------------------------------------------------------------------------
class Cluster:
    """The throwaway cluster this run belongs to (scripts/pg-throwaway's state file)."""

    def __init__(self):
        self.state_file = os.environ["DJQ_PG_STATE"]
        self.script = os.environ.get("DJQ_PG_SCRIPT") or str(REPO_ROOT / "scripts/pg-throwaway")
        self.state = _read_state(self.state_file)

    def _as_server(self, *argv: str) -> subprocess.CompletedProcess:
        runas = self.state.get("PG_RUNAS")
        prefix = ["runuser", "-u", runas, "--"] if runas and os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *argv], cwd=self.state["PG_TMP"], capture_output=True, text=True, timeout=120
        )

    def stop_immediate(self) -> None:
        """``pg_ctl stop -m immediate``: a crash (no checkpoint; recovery at the next start)."""
        connections.close_all()
        pg_ctl = str(Path(self.state["PG_BINDIR"]) / "pg_ctl")
        done = self._as_server(pg_ctl, "-D", self.state["PG_DATA"], "-m", "immediate", "-w", "stop")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop -m immediate failed: {done.stderr.strip()}")

    def kill_postmaster(self) -> None:
        """kill -9 of the postmaster; then wait for its orphaned backends to notice and exit
        (a new postmaster refuses to start while they hold the old shared memory)."""
        connections.close_all()
        pid = int((Path(self.state["PG_DATA"]) / "postmaster.pid").read_text().split()[0])
        children = _children(pid)
        os.kill(pid, signal.SIGKILL)
        if not wait_until(lambda: not any(_alive(c) for c in [pid, *children]), timeout=30):
            for child in children:  # our cluster's own backends, found by parent pid
                _kill(child)

    def start(self) -> None:
        done = subprocess.run(
            [self.script, "server-start"],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "DJQ_PG_STATE": self.state_file},
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg-throwaway server-start failed: {done.stderr.strip()}")

    def restart(self) -> None:
        connections.close_all()
        subprocess.run(
            [self.script, "restart"],
            check=True,
            capture_output=True,
            timeout=180,
            env={**os.environ, "DJQ_PG_STATE": self.state_file},
        )

    def allow_network(self, cidr: str) -> None:
        """Trust connections from ``cidr`` (the campaign's own veth addresses) and reload."""
        hba = Path(self.state["PG_DATA"]) / "pg_hba.conf"
        line = f"host all all {cidr} trust\n"
        if line not in hba.read_text():
            with hba.open("a") as fh:
                fh.write(line)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_reload_conf()")

    @property
    def port(self) -> str:
        return self.state["PG_PORT"]


def _read_state(path: str) -> dict[str, str]:
    state = {}
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition("=")
        state[key.strip()] = value.strip().strip("'")
    return state


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# --- processes --------------------------------------------------------------------------------
class Proc:
    """A worker (or enqueuer) in its own process group, logging to a file."""

    def __init__(self, argv: list[str], name: str, log_dir: Path, env: dict[str, str]):
        self.argv, self.name = argv, name
        self.log_path = log_dir / f"{name}.log"
        self.env = env
        self.proc = None
        self.spawn()

    def spawn(self) -> None:
        self.terminated = False
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> bool:
        return (
            bool(
                wait_until(lambda: " ready" in self.log() or self.proc.poll() is not None, timeout)
            )
            and self.proc.poll() is None
        )

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill_group(self) -> None:
        self.signal_group(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self) -> None:
        """SIGTERM (a warm shutdown), once: a second one can land after the worker's handlers
        are gone (Python restores the default ones as it exits) and kill it with 143."""
        if self.proc.poll() is None and not self.terminated:
            self.signal_group(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            self.proc.send_signal(signal.SIGTERM)
            self.terminated = True

    def stop(self, grace: float = 20) -> None:
        """SIGTERM (warm shutdown), then SIGKILL of the group after ``grace`` seconds."""
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        self.signal_group(signal.SIGKILL)
        self.proc.wait(timeout=30)


#: the workers' connection settings (DATABASE_URL options, read by testproject's django-environ):
#: persistent connections checked at each job's first query, as a deployment runs a worker whose
#: tasks use the database (docs/deployment.md). With Django's default CONN_MAX_AGE = 0 a prefork
#: child opens a connection for every job (~40 ms to a busy 2-core server): 52 jobs/s instead of
#: 203 for the campaign's jobs, and 100,000 of them would take half an hour.
WORKER_DB_OPTIONS = {"conn_max_age": "60", "conn_health_checks": "true"}


def subprocess_env(database_url: str | None = None, db_options: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "testproject.settings"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    if database_url:
        env["DATABASE_URL"] = database_url
    if db_options:
        url = urlsplit(env["DATABASE_URL"])
        query = urlencode({**dict(parse_qsl(url.query)), **db_options})
        env["DATABASE_URL"] = urlunsplit(url._replace(query=query))
    return env


@dataclass
class Workers:
    """The workers of one scenario; every one is stopped when the scenario ends."""

    log_dir: Path
    lease: float
    procs: list[Proc] = field(default_factory=list)

    def start(
        self,
        name: str,
        *args: str,
        netns: str | None = None,
        database_url: str | None = None,
        ready: bool = True,
    ) -> Proc:
        argv = [
            sys.executable,
            str(MANAGE_PY),
            "djq_worker",
            "-n",
            f"{name}@%h",
            "-l",
            "info",
            "--lease",
            str(self.lease),
            "--poll-interval",
            "0.5",
            *args,
        ]
        if netns:
            argv = ["ip", "netns", "exec", netns, *argv]
        proc = Proc(argv, name, self.log_dir, subprocess_env(database_url, WORKER_DB_OPTIONS))
        self.procs.append(proc)
        if ready and not proc.wait_ready():
            raise RuntimeError(f"worker {name} did not start:\n{proc.log()[-3000:]}")
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.stop()

    def log_count(self, text: str) -> int:
        return sum(proc.log().count(text) for proc in self.procs)
