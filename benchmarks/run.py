"""``make bench``: djq on a durable PostgreSQL, beside the raw-SQL ceiling of the same run.

``make bench`` starts a throwaway cluster with the durable settings production runs (fsync,
synchronous_commit and full_page_writes on: ``DJQ_PG_DURABLE=1 scripts/pg-throwaway``); on any
other ``DATABASE_URL`` the report says what it ran on. Each figure is the median of ``--rounds``:

- enqueue: a ``delay()`` loop and ``enqueue_many`` of N no-op jobs, beside a raw ``COPY``;
- W1 drain: N pre-enqueued no-op jobs, from the spawn of ``djq_worker -c 2 --burst`` until it
  exits (start-up counts), with djq's defaults and with the documented throughput setting,
  beside the ceiling: 2 processes claiming and completing batches of 100 in raw SQL;
- the same default drain with ``--history`` finished rows in the table beside an empty table;
- W2 latency: an idle default worker, single jobs one at a time, ``delay()`` → finished (the row
  polled every 0.5 ms), p50/p95;
- the default drain with ``-E`` (task and worker events) beside the one without;
- the default drain of atomic no-op jobs (``atomic=True``: each job's body and SUCCESS in one
  transaction, committed by the child) beside the plain drain (``--only atomic``: those two);
- the worker's peak resident memory over the default drain (its largest process);
- the WAL a job costs (bytes and records per job, enqueue and drain: ``--only wal``);
- with ``--big N`` (``make bench BIG=1``: N = 1,000,000): the first 10,000 jobs of N waiting
  (after ANALYZE) beside the default drain of 10,000, then the rest of the N drained by the same
  worker, its resident memory (main process and children) sampled at job 100,000 and at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
# as production runs it (the demo project's DEBUG defaults to on): Django's debug cursor would
# record every statement of the bench and of the workers it starts
os.environ.setdefault("DEBUG", "0")

#: the documented throughput setting (docs/worker.md, "Prefetching and batching")
THROUGHPUT = ["--prefetch-multiplier", "64"]
CEILING_BATCH, CEILING_PROCS = 100, 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument(
        "--history",
        type=int,
        default=1_000_000,
        help="finished rows in the table for the drain beside history",
    )
    parser.add_argument(
        "--only",
        choices=["wal", "big", "latency", "atomic"],
        help="one part only (wal: WAL per job; big: the --big backlog drain; latency: W2; "
        "atomic: the atomic drain beside the plain one)",
    )
    parser.add_argument(
        "--big",
        type=int,
        default=0,
        help="waiting jobs for the backlog drain and the memory run (0: skip)",
    )
    args = parser.parse_args()
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("make bench needs PostgreSQL: set DATABASE_URL (make bench starts one)")
    call_command("migrate", verbosity=0)
    n, rounds = args.jobs, args.rounds
    if args.only == "wal":
        print_wal(bench_wal(n))
        return
    if args.only == "latency":
        print(bench_latency(args.latency_jobs))
        return
    if args.only == "atomic":
        plain = bench_drain(n, rounds, [])[0]
        atomic = bench_drain(n, rounds, [], atomic=True)[0]
        print(f"W1 drain, defaults: {plain:,.0f} jobs/s")
        print(f"W1 drain, defaults, atomic: {atomic:,.0f} jobs/s ({atomic / plain:.0%} of plain)")
        return
    if args.only == "big":
        print_big(bench_big(args.big or 1_000_000, n), None)
        return
    rows = [
        ("enqueue, delay() loop", bench_delay_loop(min(n, 2000), rounds), None),
        ("enqueue, enqueue_many", *bench_enqueue_many(n, rounds)),
    ]
    ceiling = median_rate([(n, raw_drain(n)) for _ in range(rounds)])
    default, rss = bench_drain(n, rounds, [])
    rows.append(("W1 drain, defaults", default, ceiling))
    rows.append(
        ("W1 drain, " + " ".join(THROUGHPUT), bench_drain(n, rounds, THROUGHPUT)[0], ceiling)
    )
    rows.append(
        ("W1 drain, defaults, -E (events)", bench_drain(n, rounds, ["-E"])[0], default)
    )  # (the ratio to the drain without events: target >= 90 %)
    rows.append(
        (
            f"W1 drain, fair claims ({FAIR_KEYS} keys)",
            bench_drain(n, rounds, [], keys=FAIR_KEYS)[0],
            default,
        )
    )  # (issue 15: keyed jobs claimed in turns; target >= 80 % of the plain drain)
    rows.append(
        ("W1 drain, defaults, atomic", bench_drain(n, rounds, [], atomic=True)[0], default)
    )  # (the ratio to the plain drain: issue 15 asks >= 80 %)
    fill_history(args.history)
    rows.append(
        (
            f"W1 drain, defaults, {args.history:,} done rows",
            bench_drain(n, rounds, [], keep_history=True)[0],
            default,
        )
    )
    truncate()
    latency = bench_latency(args.latency_jobs)
    wal = bench_wal(n)
    big = bench_big(args.big, n) if args.big else None
    report(rows, latency, rss, args)
    print()
    print_wal(wal)
    if big:
        print_big(big, default)


# --- helpers ----------------------------------------------------------------------------------
def truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE djq_job, djq_job_log, djq_worker, djq_group, djq_event_batch")


def clear_waiting() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM djq_job WHERE name <> 'bench.history'")
        cursor.execute("TRUNCATE djq_worker, djq_group")


def raw_connection():
    """A psycopg connection of our own for the ceilings (not Django's cursor wrappers)."""
    from django.db import connection

    conn = connection.get_new_connection(connection.get_connection_params())
    conn.autocommit = True
    return conn


def median_rate(samples: list[tuple[int, float]]) -> float:
    return statistics.median(n / seconds for n, seconds in samples)


# --- enqueue --------------------------------------------------------------------------------
def bench_delay_loop(n: int, rounds: int) -> float:
    from testproject.demo.tasks import noop

    samples = []
    for _ in range(rounds):
        truncate()
        start = time.perf_counter()
        for _ in range(n):
            noop.delay()
        samples.append((n, time.perf_counter() - start))
    return median_rate(samples)


def bench_enqueue_many(n: int, rounds: int) -> tuple[float, float]:
    from djq import enqueue_many
    from testproject.demo.tasks import noop

    djq_samples, copy_samples = [], []
    for _ in range(rounds):
        truncate()
        sigs = [noop.s() for _ in range(n)]
        start = time.perf_counter()
        enqueue_many(sigs)
        djq_samples.append((n, time.perf_counter() - start))
        truncate()
        copy_samples.append((n, copy_rows(n, "PENDING", "bench.noop")))
    return median_rate(djq_samples), median_rate(copy_samples)


COPY_COLUMNS = (
    "id, name, queue, priority, state, custom_state, args, kwargs, options, traceback, run_after, "
    "retries, attempt, acks_late, worker, terminate_signal, created_at, finished_at, history"
)


def copy_rows(n: int, state: str, name: str, priority: int = 0) -> float:
    """The fastest way to put n rows in the table: one COPY, rows prepared beforehand."""
    now = "2000-01-01 00:00:00+00"
    done = now if state == "SUCCESS" else "\\N"
    lines = "".join(
        f"{uuid.uuid4()}\t{name}\tdefault\t{priority}\t{state}\t\t[]\t{{}}\t{{}}\t\t{now}\t0\t1\tf\t\t\t"
        f"{now}\t{done}\t[]\n"
        for _ in range(n)
    )
    with raw_connection() as conn:
        start = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy(f"COPY djq_job ({COPY_COLUMNS}) FROM STDIN") as copy:
                copy.write(io.StringIO(lines).read())
        return time.perf_counter() - start


def fill_history(n: int) -> None:
    """n finished jobs beside the backlog (results kept for a day: what a busy site holds)."""
    truncate()
    for start in range(0, n, 100_000):
        copy_rows(min(100_000, n - start), "SUCCESS", "bench.history")
    with raw_connection() as conn:
        conn.execute("VACUUM ANALYZE djq_job")


# --- drain ----------------------------------------------------------------------------------
#: the fair-claim drain spreads its jobs over this many concurrency keys
FAIR_KEYS = 10


def bench_drain(
    n: int,
    rounds: int,
    extra: list[str],
    keep_history: bool = False,
    keys: int = 0,
    atomic: bool = False,
):
    """W1: the jobs are waiting; from the worker's spawn until ``--burst`` exits.

    ``keys``: jobs of a keyed no-op over that many keys, drained with fair claims on
    (DJQ_FAIR_KEYS=1); otherwise plain no-ops, claims by priority and ETA (DJQ_FAIR_KEYS=0).
    ``atomic``: the no-op jobs are sent with ``atomic=True``."""
    from djq import enqueue_many
    from testproject.demo.tasks import keyed_noop, noop

    samples = []
    for _ in range(rounds):
        clear_waiting() if keep_history else truncate()
        if keys:
            enqueue_many([keyed_noop.s(f"tenant-{i % keys}") for i in range(n)])
        else:
            enqueue_many([noop.s().set(atomic=True) if atomic else noop.s() for _ in range(n)])
        start = time.perf_counter()
        run_worker_burst(extra, fair=bool(keys), persistent=atomic)
        samples.append((n, time.perf_counter() - start))
        check_done(n)
    rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return median_rate(samples), rss_kib


#: the worker's connections for tasks that use the database (atomic jobs): persistent, as
#: docs/deployment.md recommends; with Django's default CONN_MAX_AGE = 0 each job of a prefork
#: child would open a connection of its own (a no-op job never opens one)
PERSISTENT = {"conn_max_age": "60", "conn_health_checks": "true"}


def persistent_url() -> str:
    url = urlsplit(os.environ["DATABASE_URL"])
    query = urlencode({**dict(parse_qsl(url.query)), **PERSISTENT})
    return urlunsplit(url._replace(query=query))


def run_worker_burst(extra: list[str], fair: bool = False, persistent: bool = False) -> None:
    cmd = [
        sys.executable,
        str(ROOT / "manage.py"),
        "djq_worker",
        "--burst",
        "-l",
        "WARNING",
        "-c",
        "2",
        "-n",
        "bench@%h",
        *extra,
    ]
    env = {**os.environ, "DJQ_FAIR_KEYS": "1" if fair else "0"}
    if persistent:
        env["DATABASE_URL"] = persistent_url()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=env)


def check_done(n: int) -> None:
    from djq.models import Job

    done = Job.objects.filter(name__endswith="noop", state="SUCCESS").count()
    if done != n:
        sys.exit(f"drain: only {done} of {n} jobs succeeded")


RAW_CLAIM = """
WITH due AS (
    SELECT id FROM djq_job WHERE state IN ('PENDING', 'RETRY') AND queue = 'default'
      AND run_after <= now() ORDER BY priority DESC, run_after LIMIT %s FOR UPDATE SKIP LOCKED
)
UPDATE djq_job j SET state = 'STARTED', attempt = j.attempt + 1, worker = 'raw',
    started_at = now(), lease_expires_at = now() + interval '30 seconds'
FROM due WHERE j.id = due.id RETURNING j.id
"""
RAW_COMPLETE = """
UPDATE djq_job SET state = 'SUCCESS', finished_at = now(), lease_expires_at = NULL,
    result = 'null'::jsonb WHERE id = ANY(%s) AND state = 'STARTED'
"""


def raw_drain(n: int) -> float:
    """The ceiling: 2 processes (threads with their own connections: the time is in the
    database) claim a batch of 100, complete it, repeat; no task runs, no bookkeeping."""
    truncate()
    copy_rows(n, "PENDING", "bench.noop")

    def loop():
        with raw_connection() as conn:
            while ids := [row[0] for row in conn.execute(RAW_CLAIM, [CEILING_BATCH]).fetchall()]:
                conn.execute(RAW_COMPLETE, [ids])

    threads = [threading.Thread(target=loop) for _ in range(CEILING_PROCS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


# --- write amplification ------------------------------------------------------------------
WAL_STATS = """
SELECT pg_current_wal_insert_lsn(), s.wal_records, s.wal_fpi, t.n_tup_upd, t.n_tup_hot_upd
FROM pg_stat_wal s, pg_stat_user_tables t WHERE t.relname = 'djq_job'
"""


def wal_sample(conn) -> tuple:
    from django.db import connection

    connection.close()  # a backend flushes its statistics when it exits (the worker's: too)
    time.sleep(0.5)
    return conn.execute(WAL_STATS).fetchone()


def wal_delta(conn, before: tuple, after: tuple, n: int) -> dict:
    wal_bytes = conn.execute("SELECT %s::pg_lsn - %s::pg_lsn", [after[0], before[0]]).fetchone()
    upd, hot = after[3] - before[3], after[4] - before[4]
    return {
        "bytes": float(wal_bytes[0]) / n,
        "records": (after[1] - before[1]) / n,
        "fpi": (after[2] - before[2]) / n,
        "hot": hot / upd if upd else 0.0,
    }


def bench_wal(n: int) -> dict:
    """WAL written per job: by ``enqueue_many`` of n jobs, then by a default drain of them
    (``djq_worker -c 2 --burst``), after a CHECKPOINT (full-page images counted apart)."""
    from djq import enqueue_many
    from testproject.demo.tasks import noop

    truncate()
    with raw_connection() as conn:
        conn.execute("VACUUM ANALYZE djq_job")
        conn.execute("CHECKPOINT")
        before = wal_sample(conn)
        enqueue_many([noop.s() for _ in range(n)])
        enqueued = wal_sample(conn)
        start = time.perf_counter()
        run_worker_burst([])
        seconds = time.perf_counter() - start
        check_done(n)
        drained = wal_sample(conn)
        width = conn.execute("SELECT avg(pg_column_size(j.*)) FROM djq_job j").fetchone()[0]
        indexes = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'djq_job'"
        ).fetchone()[0]
        return {
            "enqueue": wal_delta(conn, before, enqueued, n),
            "drain": wal_delta(conn, enqueued, drained, n),
            "rate": n / seconds,
            "row_bytes": float(width),
            "indexes": indexes,
            "n": n,
        }


def print_wal(wal: dict) -> None:
    print(
        f"WAL per job ({wal['n']:,} no-op jobs; djq_job: {wal['indexes']} indexes, finished "
        f"row {wal['row_bytes']:.0f} bytes)"
    )
    for part in ("enqueue", "drain"):
        w = wal[part]
        print(
            f"  {part:<8} {w['bytes']:>8,.0f} bytes {w['records']:>6.1f} records "
            f"{w['fpi']:>5.2f} full pages   HOT updates {w['hot']:.0%}"
        )
    print(f"  drain rate (defaults) {wal['rate']:,.0f} jobs/s")


# --- a large backlog, and memory over a long drain ----------------------------------------
def bench_big(waiting: int, first: int) -> dict:
    """``waiting`` due jobs (COPY, then ANALYZE); the first ``first`` of them (a higher
    priority, so they are claimed first) are timed from the worker's spawn; the worker then
    drains the rest, its RSS sampled as it goes (jobs done: the Worker row's counter)."""
    from djq.models import Worker
    from testproject.demo.tasks import noop

    truncate()
    started = time.perf_counter()
    for start in range(0, waiting - first, 100_000):
        copy_rows(min(100_000, waiting - first - start), "PENDING", noop.name)
    copy_rows(first, "PENDING", noop.name, priority=1)
    with raw_connection() as conn:
        conn.execute("VACUUM ANALYZE djq_job")
    fill_seconds = time.perf_counter() - started
    cmd = [
        sys.executable,
        str(ROOT / "manage.py"),
        "djq_worker",
        "-l",
        "WARNING",
        "-c",
        "2",
        "-n",
        "big@%h",
        "--burst",
    ]
    start = time.perf_counter()
    worker = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    first_left = (
        "SELECT EXISTS (SELECT 1 FROM djq_job WHERE state IN ('PENDING', 'RETRY') "
        "AND queue = 'default' AND priority = 1) OR EXISTS (SELECT 1 FROM djq_job "
        "WHERE state IN ('RESERVED', 'STARTED') AND priority = 1)"
    )
    samples: list[tuple[int, int]] = []  # (jobs done, RSS KiB)
    with raw_connection() as conn:
        while conn.execute(first_left).fetchone()[0]:
            time.sleep(0.05)
        first_rate = first / (time.perf_counter() - start)
        while worker.poll() is None:
            time.sleep(2)
            row = Worker.objects.filter(name__startswith="big@").values("processed").first()
            rss = tree_rss_kib(worker.pid)
            if row and row["processed"] and rss:  # (0: the worker has just exited)
                samples.append((row["processed"], rss))
    seconds = time.perf_counter() - start
    from django.db import connection

    connection.close()
    check_done_named(noop.name, waiting)
    return {
        "waiting": waiting,
        "first": first,
        "first_rate": first_rate,
        "rate": waiting / seconds,
        "seconds": seconds,
        "fill_seconds": fill_seconds,
        "samples": samples,
    }


def tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (the prefork pool), KiB."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(
                next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
            )
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total


def check_done_named(name: str, n: int) -> None:
    from djq.models import Job

    done = Job.objects.filter(name=name, state="SUCCESS").count()
    if done != n:
        sys.exit(f"drain: only {done} of {n} jobs succeeded")


def print_big(big: dict, default: float | None) -> None:
    print(
        f"backlog: {big['waiting']:,} waiting jobs (loaded and analysed in "
        f"{big['fill_seconds']:.0f} s), djq_worker -c 2 --burst, defaults"
    )
    beside = (
        f"   ({big['first_rate'] / default:.0%} of the 10,000-job drain, {default:,.0f})"
        if default
        else ""
    )
    print(f"  the first {big['first']:,} jobs {big['first_rate']:>10,.0f} jobs/s{beside}")
    print(f"  all {big['waiting']:,} {big['rate']:>10,.0f} jobs/s ({big['seconds'] / 60:.1f} min)")
    samples = big["samples"]
    at = [s for s in samples if s[0] >= 100_000]
    if at:
        (n0, rss0), (n1, rss1) = at[0], samples[-1]
        print(
            f"  worker RSS (main + children): {rss0 / 1024:.1f} MiB at job {n0:,}, "
            f"{rss1 / 1024:.1f} MiB at job {n1:,} ({rss1 / rss0 - 1:+.1%})"
        )
    elif samples:
        print(
            f"  worker RSS (main + children): {samples[0][1] / 1024:.1f} MiB at job "
            f"{samples[0][0]:,}, {samples[-1][1] / 1024:.1f} MiB at job {samples[-1][0]:,}"
        )


# --- latency --------------------------------------------------------------------------------
def bench_latency(count: int) -> dict:
    from djq.models import Job
    from testproject.demo.tasks import noop

    truncate()
    cmd = [
        sys.executable,
        str(ROOT / "manage.py"),
        "djq_worker",
        "-l",
        "INFO",
        "-c",
        "2",
        "-n",
        "latency@%h",
    ]
    worker = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    ms = []
    try:
        for line in worker.stderr:
            if " ready." in line:
                break
        # (the worker logs every job: read on, or a full pipe would stall it)
        threading.Thread(target=worker.stderr.read, daemon=True).start()
        for i in range(count + 5):  # 5 warm-up jobs
            start = time.perf_counter()
            result = noop.delay()
            done = Job.objects.filter(id=result.id, finished_at__isnull=False)
            while not done.exists():
                time.sleep(0.0005)
            if i >= 5:
                ms.append((time.perf_counter() - start) * 1000)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    ms.sort()
    return {"p50": statistics.median(ms), "p95": ms[int(len(ms) * 0.95) - 1], "n": len(ms)}


# --- report ---------------------------------------------------------------------------------
def report(rows, latency: dict, rss_kib: int, args) -> None:
    import django as dj
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
        settings = []
        for name in ("fsync", "synchronous_commit", "full_page_writes"):
            cursor.execute(f"SHOW {name}")
            settings.append(f"{name}={cursor.fetchone()[0]}")
    print()
    print(f"djq bench — {args.jobs:,} no-op jobs, median of {args.rounds} rounds")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, Django {dj.get_version()}, PostgreSQL {pg}"
    )
    print(f"PostgreSQL: {', '.join(settings)}")
    print(
        f"worker: djq_worker -c 2 (defaults) and {' '.join(THROUGHPUT)}; ceiling: "
        f"{CEILING_PROCS} procs, batch {CEILING_BATCH}, claim + complete per batch"
    )
    print()
    print(f"{'figure':<44}{'djq':>10}{'beside':>10}{'ratio':>8}")
    for name, rate, beside in rows:
        ratio = f"{rate / beside:>8.1%}" if beside else ""
        beside_text = f"{beside:>10,.0f}" if beside else f"{'':>10}"
        print(f"{name:<44}{rate:>10,.0f}{beside_text}{ratio}")
    print(
        "  (enqueue_many beside COPY; drains beside the ceiling; the history drain beside the "
        "empty-table drain)"
    )
    print(
        f"{'W2 latency p50 / p95 (ms)':<44}{latency['p50']:>10.2f}{latency['p95']:>10.2f}"
        f"   (delay() → finished, idle worker, {latency['n']} jobs)"
    )
    print(
        f"{'worker peak RSS (MiB)':<44}{rss_kib / 1024:>10.1f}   (largest process, default drain)"
    )


if __name__ == "__main__":
    main()
