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

from djq.models import Queue
from djq.store.postgres import CLAIM, FAIR_CLAIM

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


def test_next_due_walks_the_claim_index_one_probe_per_priority():
    """The worker's "when is the next job due?" has no index in run_after order of its own (one
    index fewer to write per job): it probes the claim index once per priority present."""
    from djq.store.postgres import NEXT_DUE, next_due

    with connection.cursor() as cursor:
        _fill(cursor, ["default"])
        # the soonest future ETA sits at the lowest priority, behind the whole due backlog
        cursor.execute(
            "UPDATE djq_job SET run_after = now() + make_interval(secs => 3600 + priority * 60)"
        )
        cursor.execute("ANALYZE djq_job")
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + NEXT_DUE, [["default", "none"]])
        raw = cursor.fetchone()[0]
        plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
        due = next_due(cursor, ["default", "none"])
    scans = _job_scans(plan)
    assert scans, plan
    for scan in scans:
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), plan
        assert scan["Index Name"] == "djq_job_claim_idx", plan
        assert scan["Actual Rows"] <= 1, plan
    # three priorities, one queue with jobs: a handful of probes, not a walk of the backlog
    assert sum(n["Actual Loops"] for n in scans) <= 2 * (3 + 1) + 3, plan
    assert 3500 < due <= 3600  # (now(): the start of the test transaction)


def test_a_concurrency_limit_counts_held_jobs_through_the_held_index():
    """Concurrency limits count a task's held jobs among a large history of its finished ones."""
    with connection.cursor() as cursor:
        _fill(cursor, ["default"])
        cursor.execute(
            "UPDATE djq_job SET state = 'SUCCESS', finished_at = now() WHERE random() < 0.999"
        )
        cursor.execute(
            "UPDATE djq_job SET state = 'STARTED', worker = 'w@plan', "
            "lease_expires_at = now() + interval '30 seconds' WHERE state = 'PENDING'"
        )
        cursor.execute("ANALYZE djq_job")
        cursor.execute(
            "EXPLAIN (FORMAT JSON) SELECT count(*) FROM djq_job "
            "WHERE name = 'demo.noop' AND state IN ('RESERVED', 'STARTED')"
        )
        raw = cursor.fetchone()[0]
        plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    names = [n.get("Index Name") for n in _job_scans(plan)]
    assert names == ["djq_job_held_idx"], plan


def test_the_lease_and_the_waited_flag_are_in_no_index():
    """A heartbeat moves only the lease, get() sets only ``waited``: with neither column in any
    index (columns, expressions or predicates), both are HOT updates (no index entry written,
    given room in the page)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'djq_job'")
        indexes = dict(cursor.fetchall())
    assert len(indexes) == 15, sorted(indexes)  # the primary key and the 14 of djq/models.py
    for column in ("lease_expires_at", "waited", "history", "attempt"):
        assert not [name for name, sql in indexes.items() if column in sql], (column, indexes)


def _fill_keyed(cursor, keys: list[str], unkeyed: int) -> None:
    """BACKLOG keyed due jobs (the first key holds nearly all of them: the old ones), a few
    jobs of each other key after them, ``unkeyed`` jobs without a key; then ANALYZE."""
    cursor.execute(
        """
        INSERT INTO djq_job (id, name, queue, priority, state, custom_state, args, kwargs,
            options, traceback, run_after, retries, attempt, acks_late, worker,
            terminate_signal, created_at, history, concurrency_key)
        SELECT gen_random_uuid(), 'demo.keyed', 'default', 0, 'PENDING', '', '[]', '{}', '{}',
            '', now() - make_interval(secs => i), 0, 0, false, '', '', now(), '[]',
            CASE WHEN i <= 20 * (cardinality(%s::text[]) - 1)
                THEN (%s::text[])[2 + i %% (cardinality(%s::text[]) - 1)]
                WHEN i <= %s THEN (%s::text[])[1] ELSE '' END
        FROM generate_series(1, %s) AS i
        """,
        [keys, keys, keys, BACKLOG, keys, BACKLOG + unkeyed],
    )
    cursor.execute("ANALYZE djq_job")


def _fair_plan(cursor, weights: dict, skip_keys: list[str]) -> tuple[dict, list]:
    params = {
        "queues": ["default"],
        "limit": LIMIT,
        "worker": "w@plan",
        "lease": 30.0,
        "skip": [],
        "weights": json.dumps(weights),
        "skip_keys": skip_keys,
    }
    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + FAIR_CLAIM, params)
    raw = cursor.fetchone()[0]
    cursor.execute(
        "SELECT concurrency_key, count(*) FROM djq_job WHERE state = 'RESERVED' GROUP BY 1"
    )
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"], dict(cursor.fetchall())


@pytest.mark.parametrize("unkeyed", [0, 500])
def test_the_fair_claim_walks_the_key_index_one_batch_per_key(unkeyed):
    """Keyed claims (issue 15): the keys of the backlog are found one probe each, every key's
    jobs by a walk of djq_job_key_claim_idx stopped after the batch, and the batch takes turns
    between the keys: the key with 99,960 old jobs gets no more than its share."""
    keys = ["a", "b", "c"]
    with connection.cursor() as cursor:
        _fill_keyed(cursor, keys, unkeyed)
        plan, claimed = _fair_plan(cursor, {}, [])
    scans = [n for n in _job_scans(plan) if n.get("Index Name") != "djq_job_pkey"]
    assert scans, plan
    for scan in scans:
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), plan
        assert scan["Index Name"] in ("djq_job_key_claim_idx", "djq_job_claim_idx"), plan
        assert scan["Actual Rows"] <= LIMIT, plan
    # keys: one probe per key and one that finds none; one walk per key and the unkeyed walk
    assert sum(n["Actual Loops"] for n in scans) <= 2 * (len(keys) + 1) + 1, plan
    assert plan["Actual Rows"] == LIMIT, plan
    groups = len(keys) + (1 if unkeyed else 0)
    assert sorted(claimed) == sorted(keys + ([""] if unkeyed else [])), claimed
    assert max(claimed.values()) - min(claimed.values()) <= 1, claimed  # turns: LIMIT / groups
    assert sum(claimed.values()) == LIMIT and groups <= LIMIT


def test_the_fair_claim_weighs_keys_and_skips_saturated_ones():
    with connection.cursor() as cursor:
        _fill_keyed(cursor, ["a", "b", "c"], 0)
        plan, claimed = _fair_plan(cursor, {"a": 4}, ["c"])
    assert claimed == {"a": 8, "b": 2}, claimed  # a round: four of a, one of b; c is at its limit


def test_the_admin_reads_a_key_s_jobs_and_the_keys_through_the_key_index():
    """The job list filtered by a concurrency key (a rare one among 100,000 jobs) walks
    djq_job_key_idx newest-first, and the filter's choices are a loose index scan of it: one
    probe per key, not a read of every keyed job."""
    from djq.adminsite.support import _DISTINCT_KEYS
    from djq.models import Job

    keys = ["a", "b", "c"]
    with connection.cursor() as cursor:
        _fill_keyed(cursor, keys, 500)
        cursor.execute("UPDATE djq_job SET state = 'SUCCESS', finished_at = now()")
        cursor.execute("ANALYZE djq_job")
        sql, params = (
            Job.objects.filter(concurrency_key="b")
            .order_by("-created_at")[:50]
            .query.sql_with_params()
        )
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        raw = cursor.fetchone()[0]
        listed = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + _DISTINCT_KEYS, [50])
        raw = cursor.fetchone()[0]
        choices = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    scans = _job_scans(listed)
    assert [n["Index Name"] for n in scans] == ["djq_job_key_idx"], listed
    assert scans[0]["Actual Rows"] <= 50, listed
    scans = _job_scans(choices)
    assert scans and {n.get("Index Name") for n in scans} == {"djq_job_key_idx"}, choices
    assert all(n["Node Type"] in ("Index Scan", "Index Only Scan") for n in scans), choices
    assert choices["Actual Rows"] == len(keys), choices  # a, b, c ("" is no key)
    # one probe per key found, one that finds none after the last: never a walk of the jobs
    assert sum(n["Actual Loops"] for n in scans) <= len(keys) + 2, choices
    assert all(n["Actual Rows"] <= 1 for n in scans), choices
