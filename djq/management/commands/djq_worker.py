"""``manage.py djq_worker``: Celery's worker options, parsed into a WorkerConfig."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

from django.core.management.base import BaseCommand, CommandError

from djq.contrib.celery_flags import WORKER_FLAGS, add_flags, standin_pool, warn_given
from djq.roles import daemon
from djq.worker import DEFAULT_NAME, Worker, WorkerConfig, expand_name


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
        _daemonize(options)
        _setup_logging(options["loglevel"], options["logfile"])
        warn_given(options, WORKER_FLAGS, "djq_worker")
        options["pool"] = standin_pool(options["pool"], "djq_worker")
        if options["pidfile"]:
            _write_pidfile(options["pidfile"])
        config = WorkerConfig(
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
        run_service(Worker(config).run, options["pidfile"])


def run_service(run, pidfile: str | None) -> None:
    """Run a worker or beat to its end: remove our pidfile, exit with its status."""
    try:
        code = run()
    finally:
        if pidfile:
            _remove_pidfile(pidfile)
    if code:
        sys.exit(code)


def _daemonize(options: dict) -> None:
    """Expand %-variables in --pidfile/--logfile; with --detach, become a daemon (djq.daemon)
    whose stdout/stderr go to the log file (so it is not opened a second time)."""
    nodename = expand_name(options["hostname"], socket.gethostname())
    for key in ("pidfile", "logfile"):
        options[key] = daemon.node_format(options[key], nodename)
    if not options["detach"]:
        return
    options["pidfile"] = daemon.absolute(options["pidfile"])
    if not daemon.already_detached():  # (a SIGHUP restart re-executes a detached worker)
        if pid := daemon.running_pid(options["pidfile"]):
            raise CommandError(f"pidfile {options['pidfile']} names a running process ({pid})")
        daemon.detach(options["logfile"], options["workdir"], options["umask"])
    options["logfile"] = None


def _setup_logging(level: str, logfile: str | None) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise CommandError(f"unknown log level {level!r}")
    djq_logger = logging.getLogger("djq")
    djq_logger.setLevel(numeric)
    handler = logging.FileHandler(logfile) if logfile else None
    if handler is None and not _has_handler(djq_logger):
        handler = logging.StreamHandler(sys.stderr)
    if handler is not None:
        handler.setFormatter(
            logging.Formatter("[%(asctime)s: %(levelname)s/%(processName)s] %(message)s")
        )
        djq_logger.addHandler(handler)


def _has_handler(logger: logging.Logger) -> bool:
    while logger is not None:
        if logger.handlers:
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def _write_pidfile(path: str) -> None:
    if os.path.exists(path):
        try:
            pid = int(open(path).read().strip() or 0)
            if pid == os.getpid():  # our own file, after a SIGHUP restart (execv)
                raise ProcessLookupError
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            pass
        else:
            raise CommandError(f"pidfile {path} names a running process ({pid})")
    with open(path, "w") as fh:
        fh.write(f"{os.getpid()}\n")


def _remove_pidfile(path: str) -> None:
    try:
        if int(open(path).read().strip()) == os.getpid():
            os.unlink(path)
    except (OSError, ValueError):
        pass
