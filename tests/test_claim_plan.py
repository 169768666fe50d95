"""The claim stays on its partial index whatever the statistics say (issue 11).

An analysed table of 100,000 waiting jobs is the case that used to go wrong: PostgreSQL planned the
claim as a sequential scan and a sort of the whole backlog (14-44 ms a claim) instead of walking
``djq_job_claim_idx`` and stopping after the batch. ``EXPLAIN ANALYZE`` runs the claim inside the
test's transaction (rolled back at the end), so the rows it touched are counted, not timed.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection

from djq.db.postgres import CLAIM
from djq.models import Queue

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]

BACKLOG = 100_000
LIMIT = 10


def _fill(cursor, queues: list[str]) -> None:
    """BACKLOG due jobs spread over ``queues`` and three priorities, then ANALYZE."""
    cursor.execute(
        """
        INSERT INTO djq_job (id, name, queue, priority, state, custom_state, args, kwargs,
            options, traceback, run_after, retries, attempt, acks_late, worker,
            terminate_signal, created_at, history)
        SELECT gen_random_uuid(), 'demo.noop', (%s::text[])[1 + i %% cardinality(%s::text[])],
            i %% 3, 'PENDING', '', '[]', '{}', '{}', '', now() - make_interval(secs => i), 0, 0,
            false, '', '', now(), '[]'
        FROM generate_series(1, %s) AS i
        """,
        [queues, queues, BACKLOG],
    )
    cursor.execute("ANALYZE djq_job")


def _plan(cursor, queues: list[str], skip: list[str]) -> dict:
    params = {"queues": queues, "limit": LIMIT, "worker": "w@plan", "lease": 30.0, "skip": skip}
    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + CLAIM, params)
    raw = cursor.fetchone()[0]
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _job_scans(plan: dict) -> list[dict]:
    return [
        n for n in _nodes(plan) if n.get("Relation Name") == "djq_job" and "Scan" in n["Node Type"]
    ]


@pytest.mark.parametrize(
    "queues, claimed",
    [
        (["default"], ["default"]),
        (["default", "other"], ["default", "other"]),
        (["default", "other", "paused"], ["default", "other"]),
    ],
)
def test_the_claim_walks_the_claim_index_on_an_analysed_backlog(queues, claimed):
    Queue.objects.create(name="paused", paused=True)
    with connection.cursor() as cursor:
        _fill(cursor, queues)
        plan = _plan(cursor, queues, skip=["some.saturated.task"])
    scans = _job_scans(plan)
    backlog_scans = [n for n in scans if n.get("Index Name") != "djq_job_pkey"]
    assert backlog_scans, plan
    for scan in backlog_scans:
        # the backlog is read through the partial claim index only, and never more than a
        # batch of it per queue: no seq scan, no sort of the backlog, no other index
        assert scan["Node Type"] == "Index Scan", plan
        assert scan["Index Name"] == "djq_job_claim_idx", plan
        assert scan["Actual Rows"] <= LIMIT, plan
    # the paused queue's index is not even walked
    assert sum(n["Actual Loops"] for n in backlog_scans) == len(claimed), plan
    sorts = [n for n in _nodes(plan) if n["Node Type"] == "Sort"]
    assert all(n["Actual Rows"] <= LIMIT * len(claimed) for n in sorts), plan
    assert plan["Actual Rows"] == LIMIT, plan


def test_a_paused_queue_is_not_claimed_from_on_an_analysed_backlog():
    Queue.objects.create(name="paused", paused=True)
    with connection.cursor() as cursor:
        _fill(cursor, ["paused"])
        plan = _plan(cursor, ["paused"], skip=[])
    assert plan["Actual Rows"] == 0, plan
    assert not [n for n in _job_scans(plan) if n.get("Actual Loops")], plan
