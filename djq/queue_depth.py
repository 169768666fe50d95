"""Queue depth over time: waiting and running jobs per queue, sampled once a minute by the
elected worker (under the ``djq.stats`` lease, from ``djq.stats.rollup``), for the history
page's charts. The one writer of ``djq_queue_depth``.

A sample reads the backlog through the partial indexes that hold only waiting and running jobs
(never the history), and writes one row per queue that has any, plus a row for all queues
(queue ``""``) that also marks the minute as sampled. Queues absent from a minute had none.
Rows older than ``djq.stats.KEEP`` are deleted with the rollups.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Count, Max
from django.db.models.functions import Trunc

from . import store
from .charts import bar_chart
from .models import Job, QueueDepth

#: the most queues the history page charts one by one (the deepest in the range)
CHARTED = 6


def sample(now: dt.datetime, using: str | None = None) -> int:
    """Write this minute's sample unless it is written already; rows written."""
    db = store.alias(using)
    minute = now.replace(second=0, microsecond=0)
    if QueueDepth.objects.using(db).filter(bucket=minute, queue="").exists():
        return 0
    depth: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    jobs = Job.objects.using(db)
    for i, backlog in enumerate((jobs.waiting(), jobs.running())):
        for row in backlog.values("queue").annotate(n=Count("*")).order_by():
            depth[row["queue"]][i] = row["n"]
    total = [sum(w for w, _ in depth.values()), sum(r for _, r in depth.values())]
    rows = [QueueDepth(bucket=minute, queue=q, waiting=w, running=r)
            for q, (w, r) in sorted(depth.items()) if q] + [
            QueueDepth(bucket=minute, queue="", waiting=total[0], running=total[1])]  # fmt: skip
    return len(QueueDepth.objects.using(db).bulk_create(rows, ignore_conflicts=True))


def prune(before: dt.datetime, using: str | None = None) -> int:
    return QueueDepth.objects.using(store.alias(using)).filter(bucket__lt=before).delete()[0]


def charts(slots: list[dt.datetime], kind: str, fmt: str, every: int,
           using: str | None = None) -> list[dict]:  # fmt: skip
    """The history page's depth charts over ``slots`` (starts of ``kind`` slots, oldest first):
    all queues, then the deepest ``CHARTED`` queues; each slot shows the peak waiting and the
    peak running of its minutes."""
    if not slots:
        return []
    found = (QueueDepth.objects.using(store.alias(using)).filter(bucket__gte=slots[0])
             .annotate(slot=Trunc("bucket", kind, tzinfo=dt.UTC)).values("slot", "queue")
             .order_by().annotate(waiting=Max("waiting"), running=Max("running")))  # fmt: skip
    per: dict[str, dict] = defaultdict(dict)
    for row in found:
        per[row["queue"]][row["slot"]] = (row["waiting"], row["running"])
    deepest = sorted((q for q in per if q), key=lambda q: -max(w for w, _ in per[q].values()))
    shown = []
    for queue in ([""] if "" in per else []) + deepest[:CHARTED]:
        series = [(s, *per[queue].get(s, (0, 0))) for s in slots]
        shown.append({"queue": queue or "all queues", "peak": max(w for _, w, _ in series),
                      "chart": bar_chart(series, fmt=fmt, every=every,
                                         labels=("waiting", "running"))})  # fmt: skip
    return shown
