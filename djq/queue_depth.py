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

from django.db.models import Max
from django.db.models.functions import Trunc

from djq import store
from djq.adminsite.charts import bar_chart
from djq.models import QueueDepth
from djq.store import rows as store_rows

#: the most queues the history page charts one by one (the deepest in the range)
CHARTED = 6


#: the writes live in the store layer (one writer per table)
sample = store_rows.sample_queue_depth
prune = store_rows.prune_queue_depth


def charts(
    slots: list[dt.datetime], kind: str, fmt: str, every: int, using: str | None = None
) -> list[dict]:
    """The history page's depth charts over ``slots`` (starts of ``kind`` slots, oldest first):
    all queues, then the deepest ``CHARTED`` queues; each slot shows the peak waiting and the
    peak running of its minutes."""
    if not slots:
        return []
    found = (
        QueueDepth.objects.using(store.alias(using))
        .filter(bucket__gte=slots[0])
        .annotate(slot=Trunc("bucket", kind, tzinfo=dt.UTC))
        .values("slot", "queue")
        .order_by()
        .annotate(waiting=Max("waiting"), running=Max("running"))
    )
    per: dict[str, dict] = defaultdict(dict)
    for row in found:
        per[row["queue"]][row["slot"]] = (row["waiting"], row["running"])
    deepest = sorted((q for q in per if q), key=lambda q: -max(w for w, _ in per[q].values()))
    shown = []
    for queue in ([""] if "" in per else []) + deepest[:CHARTED]:
        series = [(s, *per[queue].get(s, (0, 0))) for s in slots]
        shown.append(
            {
                "queue": queue or "all queues",
                "peak": max(w for _, w, _ in series),
                "chart": bar_chart(series, fmt=fmt, every=every, labels=("waiting", "running")),
            }
        )
    return shown
