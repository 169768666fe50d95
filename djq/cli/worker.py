"""``manage.py djq_worker``: run a worker with Celery's options (parsed into a WorkerConfig)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from djq.cli.service import ServiceOptions, daemonize, run_service, setup_logging, write_pidfile
from djq.contrib.celery_flags import WORKER_FLAGS, standin_pool, warn_given
from djq.worker import Worker, WorkerConfig


@dataclass(frozen=True)
class WorkerCommand:
    worker: WorkerConfig
    service: ServiceOptions
    #: the Celery flags djq accepts and ignores, by option name (each one given is warned of)
    celery_flags: dict[str, Any] = field(default_factory=dict)


def run_worker(command: WorkerCommand) -> None:
    """Detach if asked, set up logging, warn of ignored flags, write the pidfile, run."""
    service = daemonize(command.service, command.worker.name)
    setup_logging(service.loglevel, service.logfile)
    warn_given(command.celery_flags, WORKER_FLAGS, "djq_worker")
    pool = standin_pool(command.worker.pool, "djq_worker")
    if service.pidfile:
        write_pidfile(service.pidfile)
    run_service(Worker(dataclasses.replace(command.worker, pool=pool)).run, service.pidfile)
