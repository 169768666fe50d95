"""History for the admin's charts and the metrics: finished jobs rolled up per minute.

One worker at a time (the holder of the ``djq.stats`` lease, by the database clock) rolls up
every minute that has fully passed — with a minute's grace for late commits — into ``JobStat``
rows: per minute, queue, task and state, the count, run-time sum/max/histogram and wait
(due → start) sum/max. Each pass reads one index range of ``finished_at``; a marker row (empty
names) records how far it got, so a quiet minute is not read again. Rows older than ``KEEP``
are deleted. The charts then read this small table, whatever the size of the jobs table, and
keep their history when old jobs are pruned.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from django.db import DatabaseError
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q, Sum
from django.db.models.functions import TruncMinute

from djq import queue_depth, store
from djq.models import RUNTIME_BOUNDS, Job, JobStat
from djq.store.leases import acquire

logger = logging.getLogger("djq.stats")

LEASE = "djq.stats"
#: seconds between a worker's attempts (the lease outlives two of them)
EVERY = 20.0
KEEP = dt.timedelta(days=31)
#: how far back the very first pass (or one after a long pause) looks, at most: a pass runs in
#: the worker's loop, so it reads at most an hour of finished jobs (one index range)
LOOKBACK = dt.timedelta(hours=1)
_MINUTE = dt.timedelta(minutes=1)
_RUNTIME = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
_WAIT = ExpressionWrapper(F("started_at") - F("run_after"), output_field=DurationField())


def rollup_safely(holder: str, using: str) -> int:
    """``rollup``, logging rather than raising a database error (the worker carries on)."""
    try:
        return rollup(holder, using)
    except DatabaseError:
        logger.exception("The statistics rollup failed; it is tried again later")
        return 0


def rollup(holder: str, using: str) -> int:
    """Roll up the minutes not rolled up yet, if this holder is elected; rows written."""
    if not acquire(holder, EVERY * 3, using, name=LEASE):
        return 0
    now = store.db_now(using)
    queue_depth.sample(now, using)  # (this minute's depth, once: the history's depth charts)
    end = now.replace(second=0, microsecond=0) - _MINUTE
    last = JobStat.objects.using(using).aggregate(at=Max("bucket"))["at"]
    start = max(last + _MINUTE if last else end - LOOKBACK, end - LOOKBACK)
    if start >= end:
        return 0
    rows = minute_rows(start, end, using)
    rows.append({"bucket": end - _MINUTE, "queue": "", "name": "", "state": "", "count": 0})
    written = store.write_job_stats(rows, using)
    store.prune_job_stats(now - KEEP, using)
    queue_depth.prune(now - KEEP, using)
    return written


def minute_rows(start: dt.datetime, end: dt.datetime, using: str) -> list[dict]:
    """One row per minute, queue, task and state of the jobs finished in [start, end)."""
    hist = {
        f"le{i}": Count("pk", filter=Q(runtime__lt=dt.timedelta(seconds=bound)))
        for i, bound in enumerate(RUNTIME_BOUNDS)
    }
    finished = Job.objects.using(using).filter(finished_at__gte=start, finished_at__lt=end)
    grouped = (
        finished.alias(runtime=_RUNTIME, wait=_WAIT)
        .annotate(minute=TruncMinute("finished_at", tzinfo=dt.UTC))
        .values("minute", "queue", "name", "state")
        .order_by()
        .annotate(
            count=Count("pk"),
            ran=Count("pk", filter=Q(runtime__isnull=False)),
            rt_sum=Sum("runtime"),
            rt_max=Max("runtime"),
            wt_sum=Sum("wait"),
            wt_max=Max("wait"),
            **hist,
        )
    )
    return [_row(g) for g in grouped]


def _seconds(value) -> float:
    return value.total_seconds() if value else 0.0


def _row(g: Mapping[str, Any]) -> dict[str, Any]:
    below = [g[f"le{i}"] for i in range(len(RUNTIME_BOUNDS))] + [g["ran"]]
    hist = [below[0]] + [below[i] - below[i - 1] for i in range(1, len(below))]
    return {
        "bucket": g["minute"],
        "queue": g["queue"],
        "name": g["name"],
        "state": g["state"],
        "count": g["count"],
        "runtime_sum": _seconds(g["rt_sum"]),
        "runtime_max": _seconds(g["rt_max"]),
        "wait_sum": _seconds(g["wt_sum"]),
        "wait_max": _seconds(g["wt_max"]),
        "runtime_hist": hist,
    }


def percentile(hist: list[int], q: float) -> float | None:
    """The upper bound of the histogram bucket holding the ``q`` quantile (None: no runs; the
    open last bucket reports the largest bound)."""
    total = sum(hist)
    if not total:
        return None
    seen = 0
    for count, bound in zip(hist, (*RUNTIME_BOUNDS, RUNTIME_BOUNDS[-1]), strict=True):
        seen += count
        if seen >= q * total:
            return bound
    return RUNTIME_BOUNDS[-1]
