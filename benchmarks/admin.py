"""``make bench`` (second part): the admin's pages with a million jobs in the table.

Needs PostgreSQL (``DATABASE_URL``; ``make bench`` starts a throwaway cluster). Fills ``djq_job``
with ``--rows`` jobs in one ``INSERT … SELECT generate_series`` (finished jobs spread over the last
``--span-hours``, plus a backlog of waiting jobs and a few running ones), then times the job list
(plain, filtered, searched, paged), a job's page, the queue list, the dashboard and the metrics
endpoint with Django's test client, logged in as a superuser, and prints the median and the worst
of ``--rounds`` requests each. The goal: every page well under a second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

TASKS = [f"app{i % 4}.tasks.task_{i}" for i in range(20)]
QUEUES = ["default", "emails", "reports", "billing"]
WORKERS = [f"worker{i}@bench" for i in range(8)]

# Finished jobs: 94 % SUCCESS, 4 % FAILURE, 2 % REVOKED; created at a steady rate over the span,
# each run 5 ms to 2 s after a wait of up to 1 s. Then a backlog (PENDING) and running jobs.
FILL = """
INSERT INTO djq_job (id, name, queue, priority, state, custom_state, args, kwargs, options, meta,
    result, traceback, run_after, expires, retries, max_retries, attempt, acks_late, worker,
    lease_expires_at, revoked_at, terminate_signal, created_at, started_at, finished_at,
    parent_id, root_id, group_id, history)
SELECT gen_random_uuid(), (%(tasks)s::text[])[1 + g %% 20], (%(queues)s::text[])[1 + g %% 4], 0,
    s.state, '', '[1, 2]', '{}', '{}', NULL,
    CASE WHEN s.state = 'SUCCESS' THEN '3'::jsonb
         ELSE '{"exc_type": "ValueError", "exc_message": ["boom"]}'::jsonb END,
    CASE WHEN s.state = 'FAILURE' THEN 'Traceback (most recent call last): ...' ELSE '' END,
    t.created, NULL, 0, 3, 1, false, (%(workers)s::text[])[1 + g %% 8], NULL,
    CASE WHEN s.state = 'REVOKED' THEN t.created END, '', t.created, t.started,
    t.started + make_interval(secs => 0.005 + random() * 2), NULL, NULL, NULL, '[]'
FROM generate_series(1, %(n)s) AS g,
    LATERAL (SELECT now() - make_interval(secs => %(span)s * (g::float8 / %(n)s)) AS created) AS c,
    LATERAL (SELECT c.created AS created, c.created + make_interval(secs => random()) AS started) t,
    LATERAL (SELECT CASE WHEN g %% 50 = 0 THEN 'REVOKED' WHEN g %% 25 = 1 THEN 'FAILURE'
                         ELSE 'SUCCESS' END AS state) AS s
"""
BACKLOG = """
INSERT INTO djq_job (id, name, queue, priority, state, custom_state, args, kwargs, options,
    traceback, run_after, retries, attempt, acks_late, worker, terminate_signal, created_at,
    lease_expires_at, started_at, history)
SELECT gen_random_uuid(), (%(tasks)s::text[])[1 + g %% 20], (%(queues)s::text[])[1 + g %% 4],
    g %% 3, %(state)s, '', '[1, 2]', '{}', '{}', '', now() - make_interval(secs => g %% 600), 0,
    %(attempt)s, false, %(worker)s, '', now() - make_interval(secs => g %% 600), %(lease)s,
    %(started)s, '[]'
FROM generate_series(1, %(n)s) AS g
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--span-hours",
        type=float,
        default=24.0,
        help="finished jobs are spread over this many hours (default 24)",
    )
    parser.add_argument("--waiting", type=int, default=5_000)
    parser.add_argument("--running", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--explain",
        action="append",
        default=[],
        metavar="PAGE",
        help="print the plan (EXPLAIN ANALYZE) of each query of a page (its "
        "label, e.g. dashboard or metrics; repeatable)",
    )
    parser.add_argument(
        "--without-rollup",
        action="store_true",
        help="then time the dashboard and the metrics with the rollup "
        "emptied (they read the last hour of jobs): an A/B, same load",
    )
    args = parser.parse_args()
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("the admin benchmark needs PostgreSQL: set DATABASE_URL (make bench starts one)")
    settings.DEBUG = False  # no query log in memory
    call_command("migrate", verbosity=0)
    fill(args)
    from djq import stats

    started = time.perf_counter()
    stats.rollup("bench@rollup", "default")  # what the elected worker does once a minute
    print(f"rolled up the last hour into djq_job_stat in {time.perf_counter() - started:.1f} s")
    client, urls = prepare()
    print(
        f"\ndjq admin with {count_rows():,} jobs (PostgreSQL "
        f"{connection.pg_version // 10000}); {args.rounds} requests each, milliseconds:"
    )
    print(f"  {'page':<34} {'median':>8} {'worst':>8}  queries")
    worst = 0.0
    for label, url in urls:
        median, slowest, queries = timed(client, url, args.rounds)
        worst = max(worst, median)
        print(f"  {label:<34} {median:8.1f} {slowest:8.1f}  {queries}")
    print(f"\nslowest median: {worst:.1f} ms ({'OK' if worst < 300 else 'TOO SLOW'}: goal < 300)")
    for label, url in urls:
        if label in args.explain:
            explain(client, label, url)
    if args.without_rollup:
        without_rollup(client, urls, args)


def without_rollup(client, urls, args) -> None:
    """The dashboard and the metrics again with the rollup emptied: they then read the last
    hour of jobs themselves (as before the rollup fed them), under the same load: an A/B."""
    import datetime as dt

    from djq import store

    store.prune_job_stats(store.db_now() + dt.timedelta(days=1))
    print("\nwithout the rollup (the last hour read from djq_job), milliseconds:")
    for label, url in urls:
        if label.startswith(("dashboard", "metrics")):
            median, slowest, queries = timed(client, url, args.rounds)
            print(f"  {label:<34} {median:8.1f} {slowest:8.1f}  {queries}")
        if label in args.explain and label.startswith(("dashboard", "metrics")):
            explain(client, label + " (no rollup)", url)


def explain(client, label: str, url: str) -> None:
    """Each SELECT of one request, with the plan's time and its scans (on the ANALYZEd table)."""
    from django.db import connection

    statements = []

    def keep(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("SELECT"):
            statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        client.get(url)
    print(f"\nplans of {label!r} ({len(statements)} SELECTs):")
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0][0]
            scans = sorted(set(_scans(plan["Plan"])))
            print(f"  {plan['Execution Time']:7.2f} ms  {', '.join(scans) or '-'}")
            print(f"             {' '.join(sql.split())[:150]}")


def _scans(node: dict):
    if "Scan" in node["Node Type"]:
        yield f"{node['Node Type']} on {node.get('Relation Name', '?')}" + (
            f" ({node['Index Name']})" if node.get("Index Name") else ""
        )
    for child in node.get("Plans", ()):
        yield from _scans(child)


def fill(args) -> None:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE djq_job, djq_job_log, djq_worker, djq_group, djq_queue, "
            "djq_job_stat, djq_queue_depth"
        )
        lists = {"tasks": TASKS, "queues": QUEUES, "workers": WORKERS}
        finished = args.rows - args.waiting - args.running
        cursor.execute(FILL, {**lists, "n": finished, "span": args.span_hours * 3600})
        cursor.execute(
            BACKLOG,
            {
                **lists,
                "n": args.waiting,
                "state": "PENDING",
                "attempt": 0,
                "worker": "",
                "lease": None,
                "started": None,
            },
        )
        cursor.execute(
            BACKLOG.replace("%(lease)s", "now() + interval '30 seconds'").replace(
                "%(started)s", "now() - make_interval(secs => g %% 60)"
            ),
            {**lists, "n": args.running, "state": "STARTED", "attempt": 1, "worker": WORKERS[0]},
        )
        cursor.execute(
            "INSERT INTO djq_worker (name, hostname, pid, queues, concurrency, pool, started_at, "
            "last_heartbeat, processed, failed) SELECT w, 'bench', 1000 + i, %s::jsonb, 8, "
            "'prefork', now() - interval '1 hour', now(), 100000, 4000 "
            "FROM unnest(%s::text[]) WITH ORDINALITY AS x(w, i)",
            ['["default", "emails", "reports", "billing"]', WORKERS],
        )
    # what autovacuum would do soon after such a load: statistics and the visibility map
    connection.cursor().execute("VACUUM ANALYZE djq_job")
    print(
        f"filled {args.rows:,} jobs in {time.perf_counter() - started:.1f} s "
        f"(finished over the last {args.span_hours:g} h, {args.waiting:,} waiting, "
        f"{args.running} running)"
    )


def count_rows() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM djq_job")
        return cursor.fetchone()[0]


def prepare():
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from djq.models import Job

    user_model = get_user_model()
    user_model.objects.filter(username="bench").delete()
    user = user_model.objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    jobs = reverse("admin:djq_job_changelist")
    some = Job.objects.filter(state="FAILURE").order_by("-created_at").first()
    urls = [
        ("job list", jobs),
        ("job list, page 3", f"{jobs}?p=3"),
        ("job list, state=FAILURE", f"{jobs}?state=FAILURE"),
        ("job list, queue=emails", f"{jobs}?queue=emails"),
        ("job list, task name", f"{jobs}?name={TASKS[3]}"),
        ("job list, worker", f"{jobs}?worker={WORKERS[2]}"),
        (
            "job list, created today",
            f"{jobs}?created_at__gte="
            + time.strftime("%Y-%m-%d", time.gmtime())
            + "+00%3A00%3A00%2B00%3A00",
        ),
        ("job list, search by id", f"{jobs}?q={some.pk}"),
        ("job list, search by name", f"{jobs}?q=task_1"),
        ("job list, search by id prefix", f"{jobs}?q={str(some.pk)[:8]}"),
        ("job list, search arg:2 (failed)", f"{jobs}?state=FAILURE&q=arg%3A2"),
        ("job list, search arg:2 (a task)", f"{jobs}?name={TASKS[3]}&q=arg%3A2"),
        ("job list, search error:boom", f"{jobs}?q=error%3Aboom"),
        ("job list, search related:", f"{jobs}?q=related%3Aauth.user%3A1"),
        ("job page", reverse("admin:djq_job_change", args=[some.pk])),
        ("queue list", reverse("admin:djq_queue_changelist")),
        ("worker list", reverse("admin:djq_worker_changelist")),
        ("dashboard", reverse("admin:djq_dashboard_changelist")),
        ("dashboard refresh (partial)", reverse("admin:djq_dashboard_changelist") + "?partial=1"),
        ("metrics", reverse("djq:metrics")),
        ("history, 24 h", reverse("admin:djq_dashboard_history") + "?range=24h"),
        ("history, 30 d", reverse("admin:djq_dashboard_history") + "?range=30d"),
    ]
    urls = [(label, url) for label, url in urls if url]
    return client, urls


def timed(client, url: str, rounds: int) -> tuple[float, float, int]:
    from django.db import connection

    queries = []
    with connection.execute_wrapper(lambda execute, *a: queries.append(1) or execute(*a)):
        response = client.get(url)  # warm-up, and the number of queries
    if response.status_code != 200:
        sys.exit(f"{url}: HTTP {response.status_code}")
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples), len(queries)


if __name__ == "__main__":
    main()
