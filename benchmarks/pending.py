"""``make bench`` (part): ``manage.py djq_check_pending`` over 100,000 waiting jobs.

The jobs (``--jobs``, default 100,000, scheduled an hour ahead so nothing runs them): 70 % of a
task of the current version with one argument shape, 10 % of a versioned task at its current
version, 10 % of that task at version 1 (each one upgraded: the slow path), 5 % of an unknown
task and 5 % whose arguments no longer fit. Printed: the median of ``--rounds`` full checks
(``pending.check``: what the command runs) and of the deploy system check (a bounded sample).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")


def fill(n: int) -> None:
    from djq import enqueue_many, signature
    from djq.models import Job
    from testproject.demo.tasks import add
    from testproject.demo.versioned_tasks import greet

    Job.objects.all().delete()
    parts = [
        [add.s(i, i) for i in range(n * 70 // 100)],
        [greet.s("Ada", "Lovelace") for _ in range(n * 10 // 100)],
        [greet.s("Old", "Version").set(task_id=f"old-{i}") for i in range(n * 10 // 100)],
        [signature("bench.renamed_long_ago", args=(1,)) for _ in range(n * 5 // 100)],
        [add.s(1, 2).set(task_id=f"unfit-{i}") for i in range(n * 5 // 100)],
    ]
    for sigs in parts:
        for start in range(0, len(sigs), 5000):
            enqueue_many([s.set(countdown=3600) for s in sigs[start : start + 5000]])
    Job.objects.filter(id__startswith="old-").update(args=["Grace Hopper"], options={})
    Job.objects.filter(id__startswith="unfit-").update(args=[1, 2, 3])


def timed(fun, rounds: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = fun()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from djq import pending
    from djq.checks import check_pending_jobs

    call_command("migrate", verbosity=0)
    fill(args.jobs)
    full, report = timed(pending.check, args.rounds)
    deploy, warnings = timed(lambda: check_pending_jobs(None), args.rounds)
    print(f"djq_check_pending on {connection.vendor}, {args.jobs:,} waiting jobs")
    print(f"  full check (pending.check)     {full:8.2f} s  ({args.jobs / full:,.0f} jobs/s)")
    print(f"  deploy check (check --deploy)  {deploy:8.2f} s  ({len(warnings)} warnings)")
    print(f"  found: {report.failing:,} failing of {report.checked:,}")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
