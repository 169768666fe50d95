"""The admin's history page: charts and figures over 1 h, 24 h, 7 d or 30 d, read from the
per-minute rollup (``JobStat``, written by ``djq.stats``), never from the jobs table."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Max, Sum
from django.db.models.functions import Trunc

from djq import queue_depth, states, store
from djq.adminsite.charts import bar_chart
from djq.models import JobStat
from djq.stats import percentile

#: range → (length, slot kind for Trunc, slot length, label format, a label every n slots)
RANGES = {
    "1h": (dt.timedelta(hours=1), "minute", dt.timedelta(minutes=1), "%H:%M", 10),
    "24h": (dt.timedelta(hours=24), "hour", dt.timedelta(hours=1), "%H:00", 4),
    "7d": (dt.timedelta(days=7), "hour", dt.timedelta(hours=1), "%a %H:00", 24),
    "30d": (dt.timedelta(days=30), "day", dt.timedelta(days=1), "%m-%d", 5),
}
LABELS = {"1h": "1 h", "24h": "24 h", "7d": "7 d", "30d": "30 d"}


def rows(since: dt.datetime, using: str | None = None):
    return JobStat.objects.using(store.alias(using)).filter(bucket__gte=since, name__gt="")


def series(key: str, now: dt.datetime, using: str | None = None) -> list:
    """(slot start, succeeded, failed) for every slot of the range, oldest first."""
    length, kind, step, _, _ = RANGES[key]
    since = now - length
    found = (
        rows(since, using)
        .annotate(slot=Trunc("bucket", kind, tzinfo=dt.UTC))
        .values("slot", "state")
        .order_by()
        .annotate(n=Sum("count"))
    )
    by_slot: dict = defaultdict(lambda: [0, 0])
    for row in found:
        by_slot[row["slot"]][0 if row["state"] == states.SUCCESS else 1] += row["n"]
    first = slot_start(since, kind)
    slots, at = [], first
    while at <= now:
        ok, bad = by_slot.get(at, (0, 0))
        slots.append((at, ok, bad))
        at += step
    return slots


def slot_start(moment: dt.datetime, kind: str) -> dt.datetime:
    """The start of the slot holding ``moment``: what SQL's ``Trunc`` gives (UTC)."""
    moment = moment.astimezone(dt.UTC).replace(second=0, microsecond=0)
    if kind in ("hour", "day"):
        moment = moment.replace(minute=0)
    if kind == "day":
        moment = moment.replace(hour=0)
    return moment


def task_figures(key: str, now: dt.datetime, using: str | None = None) -> list[dict]:
    """Per queue and task over the range: jobs, failed, mean wait, p50/p95 and max run time."""
    since = now - RANGES[key][0]
    figures: dict = {}
    for row in rows(since, using).values(
        "queue", "name", "state", "count", "runtime_sum", "runtime_max", "wait_sum", "runtime_hist"
    ):
        f = figures.setdefault(
            (row["queue"], row["name"]),
            {
                "queue": row["queue"],
                "name": row["name"],
                "jobs": 0,
                "failed": 0,
                "wait": 0.0,
                "runtime_max": 0.0,
                "hist": [0] * len(row["runtime_hist"] or []),
            },
        )
        f["jobs"] += row["count"]
        f["failed"] += row["count"] if row["state"] == states.FAILURE else 0
        f["wait"] += row["wait_sum"]
        f["runtime_max"] = max(f["runtime_max"], row["runtime_max"])
        for i, n in enumerate(row["runtime_hist"] or []):
            if i < len(f["hist"]):
                f["hist"][i] += n
    for f in figures.values():
        f["wait_avg"] = f["wait"] / f["jobs"] if f["jobs"] else None
        f["p50"], f["p95"] = percentile(f["hist"], 0.5), percentile(f["hist"], 0.95)
    return sorted(figures.values(), key=lambda f: -f["jobs"])


def context(key: str, using: str | None = None) -> dict:
    key = key if key in RANGES else "1h"
    now = store.db_now(using)
    _, _, _, fmt, every = RANGES[key]
    data = series(key, now, using)
    latest = JobStat.objects.using(store.alias(using)).aggregate(at=Max("bucket"))["at"]
    return {
        "range": key,
        "ranges": list(LABELS.items()),
        "range_label": LABELS[key],
        "chart": bar_chart(data, fmt=fmt, every=every),
        "figures": task_figures(key, now, using),
        "depth": queue_depth.charts(
            [slot for slot, _, _ in data], RANGES[key][1], fmt, every, using
        ),
        "done_total": sum(ok for _, ok, _ in data),
        "failed_total": sum(b for _, _, b in data),
        "rolled_up_to": latest,
    }
