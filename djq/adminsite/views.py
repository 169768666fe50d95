"""The Prometheus endpoint: queue depths, job counts by state, run times and workers, as text.

Scraped by Prometheus (or read by anything that speaks its text format). Like the dashboard it
reads only indexed, bounded sets: waiting and running jobs, and jobs finished in the last
``monitor.WINDOW``. Access: a staff user who may see jobs, or ``DJQ_METRICS_TOKEN`` as a bearer
token.
"""

from __future__ import annotations

import hmac

from django.db.models import Sum
from django.http import HttpResponse
from django.views.decorators.cache import never_cache

from djq import states, store
from djq.adminsite import monitor
from djq.conf import settings
from djq.models import JobStat, Queue, Worker

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer ") :].encode(), str(token).encode())
    user = request.user
    return (
        user.is_active
        and user.is_staff
        and (user.has_perm("djq.view_job") or user.has_perm("djq.change_job"))
    )


@never_cache
def metrics(request):
    if not allowed(request):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(render(), content_type=CONTENT_TYPE)


def history_totals(using: str | None = None) -> list:
    """((queue, state), (jobs, wait seconds, run seconds)) summed over the rollup table."""
    rows = (
        JobStat.objects.using(store.alias(using))
        .filter(name__gt="")
        .values("queue", "state")
        .order_by("queue", "state")
        .annotate(n=Sum("count"), w=Sum("wait_sum"), r=Sum("runtime_sum"))
    )
    return [
        ((row["queue"], row["state"]), (row["n"], row["w"] or 0.0, row["r"] or 0.0)) for row in rows
    ]


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(using: str | None = None) -> str:
    now = store.db_now(using)
    window = int(monitor.WINDOW.total_seconds())
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{text}}} {value}" if text else f"{name} {value}")

    counts = monitor.state_counts(now, using)
    stats = monitor.queue_stats(now, using)
    queues = sorted(set(stats) | set(Queue.objects.values_list("name", flat=True)))
    paused = set(Queue.objects.filter(paused=True).values_list("name", flat=True))
    metric(
        "djq_queue_waiting_jobs",
        "gauge",
        "Jobs waiting (PENDING or RETRY) per queue.",
        [({"queue": q}, stats[q].waiting) for q in queues],
    )
    metric(
        "djq_queue_running_jobs",
        "gauge",
        "Jobs running (STARTED) per queue.",
        [({"queue": q}, stats[q].running) for q in queues],
    )
    metric(
        "djq_queue_oldest_waiting_seconds",
        "gauge",
        "How long the oldest due waiting job of the queue has waited.",
        [
            ({"queue": q}, round(stats[q].waiting_for(now).total_seconds(), 3))
            for q in queues
            if stats[q].oldest_due
        ],
    )
    metric(
        "djq_queue_paused",
        "gauge",
        "1 if the queue is paused.",
        [({"queue": q}, int(q in paused)) for q in queues],
    )
    backlog = {states.PENDING, states.RETRY, states.RESERVED, states.STARTED}
    metric(
        "djq_jobs",
        "gauge",
        "Jobs waiting or running now, by queue and state.",
        [({"queue": q, "state": s}, n) for (q, s), n in sorted(counts.items()) if s in backlog],
    )
    metric(
        "djq_jobs_finished_recent",
        "gauge",
        f"Jobs finished in the last {window} s, by queue and state.",
        [
            ({"queue": q, "state": s, "window_seconds": window}, n)
            for (q, s), n in sorted(counts.items())
            if s not in backlog
        ],
    )
    runtimes = monitor.runtime_stats(now, using)
    metric(
        "djq_job_runtime_seconds_sum",
        "gauge",
        f"Total run time of jobs finished in the last {window} s, by task.",
        [({"task": r["name"]}, round(r["total"].total_seconds(), 6)) for r in runtimes],
    )
    metric(
        "djq_job_runtime_seconds_count",
        "gauge",
        f"Jobs finished in the last {window} s that ran, by task.",
        [({"task": r["name"]}, r["n"]) for r in runtimes],
    )
    metric(
        "djq_job_runtime_seconds_max",
        "gauge",
        f"Longest run time among jobs finished in the last {window} s, by task.",
        [({"task": r["name"]}, round(r["max"].total_seconds(), 6)) for r in runtimes],
    )
    totals = history_totals(using)
    metric(
        "djq_jobs_finished_total",
        "counter",
        "Jobs finished, by queue and state, from the per-minute history (kept 31 days).",
        [({"queue": q, "state": s}, n) for (q, s), (n, _, _) in totals],
    )
    metric(
        "djq_job_wait_seconds_sum",
        "counter",
        "Total wait (due to start) of those jobs.",
        [({"queue": q, "state": s}, round(w, 6)) for (q, s), (_, w, _) in totals],
    )
    metric(
        "djq_job_runtime_seconds_total",
        "counter",
        "Total run time of those jobs.",
        [({"queue": q, "state": s}, round(r, 6)) for (q, s), (_, _, r) in totals],
    )
    online = monitor.workers(now, using).count()
    total = Worker.objects.count()
    metric(
        "djq_workers",
        "gauge",
        "Workers by status (online: fresh heartbeat, not stopped).",
        [({"status": "online"}, online), ({"status": "offline"}, total - online)],
    )
    return "\n".join(out) + "\n"
