"""``make bench``: djq's throughput and latency beside the raw-SQL ceiling, in one run.

Needs PostgreSQL (``DATABASE_URL``; ``make bench`` starts a throwaway cluster). Prints, for each
figure, the median of several rounds and djq's ratio to the ceiling measured the same way:

- enqueue: ``enqueue_many`` of N no-op jobs vs. a raw ``COPY`` of the same rows;
- drain: one ``djq_worker --burst`` draining N no-op jobs (from the first claim to the last
  completion, by the database clock) vs. a minimal batched SKIP LOCKED claim/complete loop;
- drain with events: the same worker with ``-E`` (three events a job) vs. without;
- latency: enqueue → start of single jobs sent one by one to an idle worker (p50/p95).
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
import time
import uuid
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--prefetch", type=int, default=50)
    parser.add_argument("--latency-jobs", type=int, default=200)
    args = parser.parse_args()
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("make bench needs PostgreSQL: set DATABASE_URL (make bench starts one)")
    call_command("migrate", verbosity=0)
    batch = args.concurrency * args.prefetch
    rows = []
    rows.append(bench_enqueue(args.jobs, args.rounds))
    drain, events = bench_drain(args.jobs, args.rounds, args.concurrency, args.prefetch, batch)
    rows.append(drain)
    latency = bench_latency(args.latency_jobs)
    report(rows, latency, args, batch, events)


# --- helpers ----------------------------------------------------------------------------------
def truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE djq_job, djq_worker, djq_group, djq_event_batch")


def raw_connection():
    """A psycopg connection of our own for the ceilings (not Django's cursor wrappers)."""
    from django.db import connection

    conn = connection.get_new_connection(connection.get_connection_params())
    conn.autocommit = True
    return conn


def median_rate(samples: list[tuple[int, float]]) -> float:
    return statistics.median(n / seconds for n, seconds in samples)


# --- enqueue --------------------------------------------------------------------------------
def bench_enqueue(n: int, rounds: int) -> tuple[str, float, float]:
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
        copy_samples.append((n, copy_ceiling(n)))
    return ("enqueue (jobs/s)", median_rate(djq_samples), median_rate(copy_samples))


COPY_COLUMNS = (
    "id, name, queue, priority, state, custom_state, args, kwargs, options, traceback, run_after, "
    "retries, attempt, acks_late, worker, terminate_signal, created_at, history"
)


def copy_ceiling(n: int) -> float:
    """The fastest way to put n rows in the table: one COPY, rows prepared beforehand."""
    now = "2000-01-01 00:00:00+00"
    lines = "".join(
        f"{uuid.uuid4()}\tbench.noop\tdefault\t0\tPENDING\t\t[]\t{{}}\t{{}}\t\t{now}\t0\t0\tf\t\t\t"
        f"{now}\t[]\n"
        for _ in range(n)
    )
    with raw_connection() as conn:
        start = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy(f"COPY djq_job ({COPY_COLUMNS}) FROM STDIN") as copy:
                copy.write(io.StringIO(lines).read())
        return time.perf_counter() - start


# --- drain ----------------------------------------------------------------------------------
def bench_drain(n: int, rounds: int, concurrency: int, prefetch: int, batch: int):
    from djq import enqueue_many
    from testproject.demo.tasks import noop

    djq_samples, raw_samples, event_samples = [], [], []
    cpu: dict[str, list[float]] = {"": [], "-E": []}
    for _ in range(rounds):
        truncate()
        enqueue_many([noop.s() for _ in range(n)])
        cpu[""].append(run_worker_burst(concurrency, prefetch) / n)
        djq_samples.append((n, drain_seconds(n)))
        truncate()
        enqueue_many([noop.s() for _ in range(n)])
        cpu["-E"].append(run_worker_burst(concurrency, prefetch, "-E") / n)
        event_samples.append((n, drain_seconds(n)))
        events = event_count()
        if events < 3 * n:
            sys.exit(f"drain -E: only {events} events for {n} jobs")
        truncate()
        enqueue_many([noop.s() for _ in range(n)])
        raw_samples.append((n, raw_drain(batch)))
    drain = ("drain (jobs/s)", median_rate(djq_samples), median_rate(raw_samples))
    per_job = {k: statistics.median(v) * 1e6 for k, v in cpu.items()}
    events = ("drain -E (jobs/s)", median_rate(event_samples), median_rate(djq_samples), per_job)
    return drain, events


def event_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(sum(count), 0) FROM djq_event_batch")
        return cursor.fetchone()[0]


def run_worker_burst(concurrency: int, prefetch: int, *extra: str) -> float:
    """Run the worker to the end; returns the CPU seconds it (and its pool) used: a figure
    that, unlike the drain rate, a busy machine does not move much."""
    cmd = [sys.executable, str(ROOT / "manage.py"), "djq_worker", "--burst", "-l", "WARNING",
           "-c", str(concurrency), "--prefetch-multiplier", str(prefetch),
           "-n", "bench@%h", *extra]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def drain_seconds(n: int) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE state = 'SUCCESS'), "
            "EXTRACT(EPOCH FROM max(finished_at) - min(started_at)) FROM djq_job"
        )
        done, seconds = cursor.fetchone()
    if done != n:
        sys.exit(f"drain: only {done} of {n} jobs succeeded")
    return float(seconds)


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


def raw_drain(batch: int) -> float:
    """The ceiling: claim a batch, complete it, repeat; no task runs, no bookkeeping."""
    with raw_connection() as conn:
        start = time.perf_counter()
        while True:
            ids = [row[0] for row in conn.execute(RAW_CLAIM, [batch]).fetchall()]
            if not ids:
                break
            conn.execute(RAW_COMPLETE, [ids])
        return time.perf_counter() - start


# --- latency --------------------------------------------------------------------------------
def bench_latency(count: int) -> dict:
    from djq.models import Job
    from testproject.demo.tasks import noop

    truncate()
    cmd = [sys.executable, str(ROOT / "manage.py"), "djq_worker", "-l", "INFO", "-c", "2",
           "-n", "latency@%h"]  # fmt: skip
    worker = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        for line in worker.stderr:
            if " ready." in line:
                break
        for _ in range(count):
            result = noop.delay()
            result.get(timeout=10)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    rows = Job.objects.values_list("created_at", "started_at")
    ms = sorted((started - created).total_seconds() * 1000 for created, started in rows)
    return {"p50": statistics.median(ms), "p95": ms[int(len(ms) * 0.95) - 1], "n": len(ms)}


# --- report ---------------------------------------------------------------------------------
def report(rows, latency: dict, args, batch: int, events: tuple) -> None:
    import django as dj
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    print()
    print(f"djq bench — {args.jobs} no-op jobs, median of {args.rounds} rounds")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, Django {dj.get_version()}, PostgreSQL {pg}")  # fmt: skip
    print(f"worker: -c {args.concurrency} --prefetch-multiplier {args.prefetch} (claims of up to "
          f"{batch}); raw ceiling batch {batch}")  # fmt: skip
    print()
    print(f"{'figure':<22}{'djq':>12}{'raw SQL':>12}{'ratio':>9}")
    for name, djq_rate, ceiling in rows:
        print(f"{name:<22}{djq_rate:>12,.0f}{ceiling:>12,.0f}{djq_rate / ceiling:>9.1%}")
    name, with_events, without, cpu = events
    print(f"{name:<22}{with_events:>12,.0f}{without:>12,.0f}{with_events / without:>9.1%}   "
          "(ratio to the drain without events; target >= 90 %)")  # fmt: skip
    print(f"{'worker CPU (us/job)':<22}{cpu['-E']:>12.0f}{cpu['']:>12.0f}"
          f"{cpu[''] / cpu['-E']:>9.1%}   (with -E, without: the ratio by CPU time)")  # fmt: skip
    print(f"{'latency p50 (ms)':<22}{latency['p50']:>12.2f}")
    print(f"{'latency p95 (ms)':<22}{latency['p95']:>12.2f}   (enqueue → start, idle worker, "
          f"{latency['n']} jobs)")  # fmt: skip


if __name__ == "__main__":
    main()
