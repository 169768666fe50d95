"""The worker's Celery-style start banner: name, versions, config, queues, registered tasks."""

from __future__ import annotations

import os
import sys
from typing import Any

import django
from django.db import connections

from djq import __version__
from djq.calling.registry import tasks


def banner(worker: Any) -> str:

    cfg = worker.config
    conn = connections[worker.using]
    wake = "LISTEN/NOTIFY" if worker._wants_listener() else f"polling every {cfg.poll_interval}s"
    pool = cfg.pool
    if cfg.autoscale:
        pool += f", autoscale {cfg.autoscale[0]},{cfg.autoscale[1]}"
    names = tasks.regular()
    lines = [
        f" -------------- {worker.name} v{__version__} (Django {django.get_version()})",
        "--- ***** ----- ",
        f"-- ******* ---- {sys.platform} python {sys.version.split()[0]} pid {os.getpid()}",
        "- *** --- * --- ",
        "- ** ---------- [config]",
        f"- ** ---------- .> database:    {conn.vendor} ({worker.using})",
        f"- ** ---------- .> concurrency: {cfg.concurrency} ({pool})",
        f"- *** --- * --- .> lease:       {cfg.lease:g}s (heartbeat every {cfg.lease / 3:g}s)",
        f"-- ******* ---- .> wake-up:     {wake}",
        f"-- ******* ---- .> task events: {_events(worker)}",
        "--- ***** ----- ",
        " -------------- [queues]",
        *[f"                .> {q}" for q in cfg.queues],
        "",
        "[tasks]",
        *[f"  . {n}" for n in names],
        "",
    ]
    return "\n".join(lines)


def _events(worker: Any) -> str:
    if worker.events.enabled:
        return "ON"
    return "OFF (enable -E to monitor tasks in this worker)"
