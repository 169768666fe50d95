"""``manage.py djq_worker``: Celery's worker options, parsed into a WorkerConfig."""

from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand

from djq.cli.service import ServiceOptions
from djq.cli.worker import WorkerCommand, run_worker
from djq.contrib.celery_flags import WORKER_FLAGS, add_flags
from djq.worker import DEFAULT_NAME, WorkerConfig


def _autoscale(value: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes MAX,MIN (integers), got {value!r}") from None
    high, low = (parts + [0])[:2] if len(parts) == 1 else parts[:2]
    if high < 1 or low < 0 or low > high:
        raise argparse.ArgumentTypeError(f"MAX,MIN needs MAX >= MIN >= 0 and MAX >= 1: {value!r}")
    return high, low


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"takes a positive integer, got {value!r}")
    return number


class Command(BaseCommand):
    help = "Run a djq worker: claim due jobs of the given queues and run them."

    def add_arguments(self, parser):
        parser.add_argument("-Q", "--queues", default="", help="comma-separated queue names")
        parser.add_argument("-c", "--concurrency", type=_positive, help="processes (CPUs)")
        parser.add_argument(
            "-n", "--hostname", default=DEFAULT_NAME, help="node name (%%h: host, %%p: pid)"
        )
        parser.add_argument(
            "-P",
            "--pool",
            choices=["prefork", "threads", "solo", "asyncio", "eventlet", "gevent", "processes"],
            help="asyncio: an event loop for async def tasks; eventlet/gevent: the threads pool",
        )
        parser.add_argument("--autoscale", type=_autoscale, help="MAX,MIN pool processes")
        parser.add_argument("--max-tasks-per-child", "--maxtasksperchild", type=int)
        parser.add_argument(
            "--max-memory-per-child", "--maxmemperchild", type=int, help="KiB of resident memory"
        )
        parser.add_argument("--time-limit", type=float, help="hard time limit (s)")
        parser.add_argument("--soft-time-limit", type=float, help="soft time limit (s)")
        parser.add_argument("--prefetch-multiplier", type=int)
        parser.add_argument(
            "--reserve-wait", type=float, help="seconds a reserved job may wait behind another"
        )
        parser.add_argument("--lease", type=float, help="seconds a claim lives without heartbeat")
        parser.add_argument("--poll-interval", type=float, help="seconds between polls")
        parser.add_argument("-l", "--loglevel", default="INFO")
        parser.add_argument("--burst", action="store_true", help="exit once no due job is left")
        parser.add_argument("-B", "--beat", action="store_true", help="also run the beat")
        parser.add_argument(
            "-E", "--task-events", action="store_true", help="send task events (djq_events)"
        )
        parser.add_argument("--pidfile", help="%%n %%h %%d %%p %%i expand as in Celery")
        parser.add_argument("-f", "--logfile", help="%%n %%h %%d %%p %%i expand as in Celery")
        parser.add_argument("-D", "--detach", action="store_true", help="run in the background")
        parser.add_argument("--workdir", help="with --detach: directory to change to (/)")
        parser.add_argument(
            "--umask",
            type=lambda v: int(v, 8),
            default=0o022,
            help="with --detach: octal umask (022)",
        )
        parser.add_argument("--database", help="database alias (DJQ_DATABASE)")
        add_flags(parser, WORKER_FLAGS)

    def handle(self, *args, **options):
        worker = WorkerConfig(
            name=options["hostname"],
            queues=[q.strip() for q in options["queues"].split(",") if q.strip()],
            concurrency=options["concurrency"],
            pool=options["pool"],
            autoscale=options["autoscale"],
            max_tasks_per_child=options["max_tasks_per_child"],
            max_memory_per_child=options["max_memory_per_child"],
            time_limit=options["time_limit"],
            soft_time_limit=options["soft_time_limit"],
            prefetch_multiplier=options["prefetch_multiplier"],
            reserve_wait=options["reserve_wait"],
            lease=options["lease"],
            poll_interval=options["poll_interval"],
            burst=options["burst"],
            beat=options["beat"],
            task_events=True if options["task_events"] else None,
            using=options["database"],
        )
        service = ServiceOptions(
            loglevel=options["loglevel"],
            logfile=options["logfile"],
            pidfile=options["pidfile"],
            detach=options["detach"],
            workdir=options["workdir"],
            umask=options["umask"],
        )
        flags = {flag.dest: options.get(flag.dest) for flag in WORKER_FLAGS}
        run_worker(WorkerCommand(worker, service, flags))
