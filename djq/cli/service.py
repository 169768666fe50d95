"""What ``djq_worker`` and ``djq_beat`` share: logging, the pidfile, --detach, the exit status."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

from django.core.management.base import CommandError

from djq.roles import daemon
from djq.worker import expand_name


@dataclass(frozen=True)
class ServiceOptions:
    """-l, -f, --pidfile and (djq_worker) --detach, --workdir, --umask, as given."""

    loglevel: str = "INFO"
    logfile: str | None = None
    pidfile: str | None = None
    detach: bool = False
    workdir: str | None = None
    umask: int = 0o022


def daemonize(options: ServiceOptions, hostname: str) -> ServiceOptions:
    """Expand %-variables in --pidfile/--logfile; with --detach, become a daemon (djq.daemon)
    whose stdout/stderr go to the log file (so it is not opened a second time)."""
    nodename = expand_name(hostname, socket.gethostname())
    options = replace(
        options,
        pidfile=daemon.node_format(options.pidfile, nodename),
        logfile=daemon.node_format(options.logfile, nodename),
    )
    if not options.detach:
        return options
    options = replace(options, pidfile=daemon.absolute(options.pidfile))
    if not daemon.already_detached():  # (a SIGHUP restart re-executes a detached worker)
        if pid := daemon.running_pid(options.pidfile):
            raise CommandError(f"pidfile {options.pidfile} names a running process ({pid})")
        daemon.detach(options.logfile, options.workdir, options.umask)
    return replace(options, logfile=None)


def start(options: ServiceOptions) -> None:
    """Logging set up, then the pidfile written (a running process named in it: refused)."""
    setup_logging(options.loglevel, options.logfile)
    if options.pidfile:
        write_pidfile(options.pidfile)


def run_service(run: Callable[[], int], pidfile: str | None) -> None:
    """Run a worker or beat to its end: remove our pidfile, exit with its status."""
    try:
        code = run()
    finally:
        if pidfile:
            remove_pidfile(pidfile)
    if code:
        sys.exit(code)


def setup_logging(level: str, logfile: str | None) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise CommandError(f"unknown log level {level!r}")
    djq_logger = logging.getLogger("djq")
    djq_logger.setLevel(numeric)
    handler: logging.Handler | None = logging.FileHandler(logfile) if logfile else None
    if handler is None and not _has_handler(djq_logger):
        handler = logging.StreamHandler(sys.stderr)
    if handler is not None:
        handler.setFormatter(
            logging.Formatter("[%(asctime)s: %(levelname)s/%(processName)s] %(message)s")
        )
        djq_logger.addHandler(handler)


def _has_handler(logger: logging.Logger | None) -> bool:
    while logger is not None:
        if logger.handlers:
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def write_pidfile(path: str) -> None:
    if os.path.exists(path):
        try:
            with open(path) as fh:
                pid = int(fh.read().strip() or 0)
            if pid == os.getpid():  # our own file, after a SIGHUP restart (execv)
                raise ProcessLookupError
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            pass
        else:
            raise CommandError(f"pidfile {path} names a running process ({pid})")
    with open(path, "w") as fh:
        fh.write(f"{os.getpid()}\n")


def remove_pidfile(path: str) -> None:
    try:
        with open(path) as fh:
            mine = int(fh.read().strip()) == os.getpid()
        if mine:
            os.unlink(path)
    except (OSError, ValueError):
        pass
