"""Read-only figures for the admin's dashboard and queue pages and for ``/metrics``.

Every query here is bounded by an index, so the answers stay fast with millions of finished rows:
waiting and running jobs are read through their partial indexes (the backlog, never the history),
finished jobs over the last hour from the per-minute rollup (``JobStat``) and, for the minute or two
not rolled up yet, a short range of ``finished_at`` (``djq_job_finished_idx``). Times are
the database clock's (``store.db_now``), like the workers' leases and heartbeats.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, F, Max, Min, Q, Sum
from django.db.models.functions import TruncMinute

from djq import states, store
from djq.conf import settings
from djq.models import Job, JobStat, Queue, Worker

#: how far back the dashboard and the metrics look at finished jobs
WINDOW = dt.timedelta(hours=1)
#: the order of the dashboard's state columns: the backlog first, then the outcomes
STATE_ORDER = (
    states.PENDING,
    states.RETRY,
    states.RESERVED,
    states.STARTED,
    states.SUCCESS,
    states.FAILURE,
    states.REVOKED,
    states.IGNORED,
)
_RUNTIME = F("finished_at") - F("started_at")


def jobs(using: str | None = None):
    return Job.objects.using(store.alias(using))


def online_q(now: dt.datetime) -> Q:
    """Workers that have not stopped and whose heartbeat is younger than the lease."""
    cutoff = now - dt.timedelta(seconds=float(settings.WORKER_LEASE))
    return Q(stopped_at__isnull=True, last_heartbeat__gte=cutoff)


# --- the last WINDOW of finished jobs: rolled-up minutes, then the live tail -------------------
def recent(now: dt.datetime, using: str | None = None):
    """(rollup rows, live jobs): jobs finished over the last WINDOW (whole minutes), as the
    ``JobStat`` rows of the minutes the elected worker has rolled up (``djq.stats``) and the
    jobs finished since (a minute or two of them). So the dashboard and the metrics read a few
    thousand small rows and an index range of one or two minutes, not the last hour of jobs."""
    start = (now - WINDOW).replace(second=0, microsecond=0)
    stat = JobStat.objects.using(store.alias(using))
    rolled = stat.filter(bucket__gte=start).aggregate(at=Max("bucket"))["at"]
    if rolled is None:
        return stat.none(), jobs(using).filter(finished_at__gte=start)
    live = jobs(using).filter(finished_at__gte=rolled + dt.timedelta(minutes=1))
    return stat.filter(bucket__gte=start, bucket__lte=rolled, name__gt=""), live


def state_counts(now: dt.datetime, using: str | None = None) -> dict[tuple[str, str], int]:
    """{(queue, state): n}: waiting and running jobs now, finished ones over the last WINDOW."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    # (two queries: each reads one partial index; one query over both sets of states would
    # read the whole table)
    waiting = jobs(using).filter(state__in=sorted(states.WAITING_STATES))
    held = jobs(using).filter(state__in=sorted(states.HELD_STATES))
    rolled, live = recent(now, using)
    for qs in (waiting, held, live):
        for row in qs.values("queue", "state").annotate(n=Count("*")).order_by():
            counts[row["queue"], row["state"]] += row["n"]
    for row in rolled.values("queue", "state").annotate(n=Sum("count")).order_by():
        counts[row["queue"], row["state"]] += row["n"]
    return dict(counts)


def runtimes(now: dt.datetime, using: str | None = None) -> dict[str, dict]:
    """Per task, over jobs that ran and finished in the last WINDOW: {"n", "total", "max"}
    (timedeltas), from the rollup's sums, maxima and histograms plus the live tail."""
    found: dict[str, dict] = {}

    def add(name: str, n: int, total: dt.timedelta, longest: dt.timedelta) -> None:
        f = found.setdefault(
            name, {"name": name, "n": 0, "total": dt.timedelta(0), "max": dt.timedelta(0)}
        )
        f["n"] += n
        f["total"] += total
        f["max"] = max(f["max"], longest)

    rolled, live = recent(now, using)
    for row in rolled.values_list("name", "runtime_sum", "runtime_max", "runtime_hist"):
        ran = sum(row[3] or ())
        if ran:
            add(row[0], ran, dt.timedelta(seconds=row[1]), dt.timedelta(seconds=row[2]))
    ran = live.filter(started_at__isnull=False).values("name").order_by()
    for row in ran.annotate(n=Count("*"), total=Sum(_RUNTIME), max=Max(_RUNTIME)):
        add(row["name"], row["n"], row["total"] or dt.timedelta(0), row["max"] or dt.timedelta(0))
    return found


@dataclass
class CountTable:
    """Counts by state × queue, with totals: what the dashboard draws as a table."""

    states: list[str]
    rows: list[tuple[str, list[int], int]]  # (queue, counts in the order of ``states``, total)
    totals: list[int]

    @property
    def total(self) -> int:
        return sum(self.totals)


def count_table(counts: dict[tuple[str, str], int], queues: Sequence[str] = ()) -> CountTable:
    names = sorted({q for q, _ in counts} | set(queues))
    seen = {s for _, s in counts}
    cols = [
        s for s in STATE_ORDER if s in seen or s in ("PENDING", "STARTED", "SUCCESS", "FAILURE")
    ]
    rows = []
    for queue in names:
        values = [counts.get((queue, s), 0) for s in cols]
        rows.append((queue, values, sum(values)))
    totals = [sum(r[1][i] for r in rows) for i in range(len(cols))]
    return CountTable(cols, rows, totals)


def throughput(now: dt.datetime, using: str | None = None) -> list[tuple[dt.datetime, int, int]]:
    """(minute, succeeded, failed) for each minute of the last WINDOW, oldest first."""
    end = now.replace(second=0, microsecond=0)
    minutes = int(WINDOW.total_seconds() // 60)
    start = end - dt.timedelta(minutes=minutes - 1)
    per: dict[dt.datetime, dict[str, int]] = defaultdict(dict)
    done = [states.SUCCESS, states.FAILURE]
    # minutes the elected worker has rolled up come from JobStat (djq.stats); the rest, live
    rolled = (
        JobStat.objects.using(store.alias(using))
        .filter(bucket__gte=start)
        .aggregate(at=Max("bucket"))["at"]
    )
    live_from = rolled + dt.timedelta(minutes=1) if rolled else start
    if rolled:
        past = (
            JobStat.objects.using(store.alias(using))
            .filter(bucket__gte=start, bucket__lte=rolled, state__in=done)
            .values("bucket", "state")
        )
        for row in past.order_by().annotate(n=Sum("count")):
            per[row["bucket"].astimezone(dt.UTC)][row["state"]] = row["n"]
    qs = (
        jobs(using)
        .filter(finished_at__gte=live_from, state__in=done)
        .annotate(minute=TruncMinute("finished_at", tzinfo=dt.UTC))
        .values("minute", "state")
        .annotate(n=Count("*"))
        .order_by()
    )
    for row in qs:
        per[row["minute"].astimezone(dt.UTC)][row["state"]] = row["n"]
    slots = [(start + dt.timedelta(minutes=i)).astimezone(dt.UTC) for i in range(minutes)]
    return [(m, per[m].get(states.SUCCESS, 0), per[m].get(states.FAILURE, 0)) for m in slots]


def slowest_tasks(now: dt.datetime, limit: int = 8, using: str | None = None) -> list[dict]:
    """Tasks by their longest run among jobs finished in the last WINDOW."""
    rows = sorted(runtimes(now, using).values(), key=lambda f: (-f["max"], f["name"]))
    return [
        {"name": f["name"], "n": f["n"], "avg": f["total"] / f["n"], "max": f["max"]}
        for f in rows[:limit]
    ]


def running_jobs(limit: int = 12, using: str | None = None):
    """The longest-running jobs first (the running index holds only STARTED rows)."""
    fields = ("id", "name", "queue", "worker", "state", "custom_state", "started_at")
    return jobs(using).running().order_by("started_at").only(*fields)[:limit]


def recent_jobs(limit: int = 10, using: str | None = None):
    fields = ("id", "name", "queue", "worker", "state", "started_at", "finished_at")
    finished = jobs(using).filter(finished_at__isnull=False).order_by("-finished_at")
    return finished.only(*fields)[:limit]


def workers(now: dt.datetime, using: str | None = None):
    return Worker.objects.using(store.alias(using)).filter(online_q(now))


# --- queues ---------------------------------------------------------------------------------------
def queue_names(now: dt.datetime, using: str | None = None) -> list[str]:
    """Queues worth listing: with a row, with waiting or running jobs, or consumed by an online
    worker."""
    db = store.alias(using)
    names = set(Queue.objects.using(db).values_list("name", flat=True))
    for backlog in (jobs(using).waiting(), jobs(using).running()):
        names |= set(backlog.values_list("queue", flat=True).distinct().order_by())
    for consumed in workers(now, using).values_list("queues", flat=True):
        names |= set(consumed or ())
    return sorted(names)


@dataclass
class QueueStats:
    waiting: int = 0
    running: int = 0
    failed: int = 0  # in the last WINDOW
    oldest_due: dt.datetime | None = None  # run_after of the oldest due waiting job

    def waiting_for(self, now: dt.datetime) -> dt.timedelta | None:
        return now - self.oldest_due if self.oldest_due else None


def queue_stats(now: dt.datetime, using: str | None = None) -> dict[str, QueueStats]:
    """Per queue: waiting, running, failed recently, and how long the oldest due job waits."""
    stats: dict[str, QueueStats] = defaultdict(QueueStats)
    waiting = jobs(using).waiting().values("queue").order_by()
    for row in waiting.annotate(n=Count("*"), due=Min("run_after", filter=Q(run_after__lte=now))):
        stats[row["queue"]].waiting = row["n"]
        stats[row["queue"]].oldest_due = row["due"]
    for row in jobs(using).running().values("queue").annotate(n=Count("*")).order_by():
        stats[row["queue"]].running = row["n"]
    rolled, live = recent(now, using)
    failed = live.filter(state=states.FAILURE).values("queue").order_by()
    for row in failed.annotate(n=Count("*")):
        stats[row["queue"]].failed += row["n"]
    failed = rolled.filter(state=states.FAILURE).values("queue").order_by()
    for row in failed.annotate(n=Sum("count")):
        stats[row["queue"]].failed += row["n"]
    return stats


def unconsumed_queues(now: dt.datetime, using: str | None = None) -> dict[str, int]:
    """{queue: waiting jobs} of queues that no online worker consumes: those jobs wait until
    a worker with ``-Q <queue>`` starts (the dashboard and the queue list say so)."""
    due = jobs(using).waiting().values("queue").order_by()
    counts = {row["queue"]: row["n"] for row in due.annotate(n=Count("*"))}
    if not counts:
        return {}
    consumed = {q for qs in workers(now, using).values_list("queues", flat=True) for q in qs or ()}
    return {q: n for q, n in sorted(counts.items()) if q not in consumed}


def runtime_stats(now: dt.datetime, using: str | None = None) -> list[dict]:
    """Per task, over jobs finished in the last WINDOW: count, sum and max of run times."""
    return sorted(runtimes(now, using).values(), key=lambda f: f["name"])
