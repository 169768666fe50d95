"""``manage.py djq_beat``: run a beat (any number may run; one leads at a time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from djq.beat import Beat, BeatConfig
from djq.cli.service import ServiceOptions, run_service, setup_logging, write_pidfile
from djq.contrib.celery_flags import BEAT_FLAGS, warn_given


@dataclass(frozen=True)
class BeatCommand:
    beat: BeatConfig
    service: ServiceOptions
    #: the Celery flags djq accepts and ignores, by option name (each one given is warned of)
    celery_flags: dict[str, Any] = field(default_factory=dict)


def run_beat(command: BeatCommand) -> None:
    """Set up logging, warn of ignored flags, write the pidfile, run the beat to its end."""
    service = command.service
    setup_logging(service.loglevel, service.logfile)
    warn_given(command.celery_flags, BEAT_FLAGS, "djq_beat")
    if service.pidfile:
        write_pidfile(service.pidfile)
    run_service(Beat(command.beat).run, service.pidfile)
