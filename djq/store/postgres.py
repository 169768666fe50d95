"""PostgreSQL statements: SKIP LOCKED claims, batched completion, NOTIFY wake-ups.

Every write of a claimed job is conditioned on ``attempt`` (the fencing token) and on the job still
being held (RESERVED or STARTED), so a worker that lost its lease cannot overwrite a job another
worker rescued.
Batches travel as one JSON document expanded by ``jsonb_to_recordset``: one round trip per batch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from django.db.backends.utils import CursorWrapper

JOBS_CHANNEL = "djq_jobs"
CONTROL_CHANNEL = "djq_control"
#: finished results are announced on one of 256 channels, by a hash of the job id (an id can be
#: longer than a channel name), with the id as payload, and only when someone waits on them
DONE_CHANNEL_PREFIX = "djq_done_"


def done_channel(job_id: str) -> str:
    """The channel a finished job waited on is announced on (what ``_NOTIFY_DONE`` computes)."""
    return DONE_CHANNEL_PREFIX + hashlib.md5(str(job_id).encode()).hexdigest()[:2]


_READY = "('SUCCESS','FAILURE','REVOKED','IGNORED')"
_WAITING = "('PENDING','RETRY')"
_HELD = "('RESERVED','STARTED')"
_EVENT = "jsonb_build_array(jsonb_build_array({state}, now(), {worker}))"
# Enqueue times use clock_timestamp(), the database clock *now*, not the start of the caller's
# transaction: a countdown given late in a long transaction still counts from the call, and jobs
# inserted one after another in one transaction keep their order (FIFO within a priority). So
# "is it due?" compares with statement_timestamp(), never with an earlier transaction start.
# A job's completion NOTIFYs only when a get() waits on it (it set ``waited`` first), and only once
# it is ready: a drain nobody waits on sends no notification at all.
_NOTIFY_DONE = (
    f"CASE WHEN j.waited AND j.state IN {_READY} "
    f"THEN pg_notify('{DONE_CHANNEL_PREFIX}' || left(md5(j.id), 2), j.id) END"
)
_PENDING_EVENT = "jsonb_build_array(jsonb_build_array('PENDING', clock_timestamp(), ''))"


def _records(rows: Sequence[dict[str, Any]], raw: frozenset[str] = frozenset()) -> str:
    """One JSON array for ``jsonb_to_recordset``; values under ``raw`` keys are JSON already."""
    encode = json.JSONEncoder(default=str, separators=(",", ":")).encode
    return (
        "["
        + ",".join(
            "{" + ",".join(f'"{k}":{v if k in raw else encode(v)}' for k, v in row.items()) + "}"
            for row in rows
        )
        + "]"
    )


INSERT = f"""
WITH ins AS (
    INSERT INTO djq_job (
        id, name, queue, priority, state, custom_state, args, kwargs, options, traceback,
        run_after, expires, retries, max_retries, attempt, acks_late, worker, terminate_signal,
        created_at, parent_id, root_id, group_id, history, concurrency_key)
    SELECT r.id, r.name, r.queue, r.priority, 'PENDING', '', r.args, r.kwargs, r.options, '',
        COALESCE(r.eta, clock_timestamp() + make_interval(secs => COALESCE(r.countdown, 0))),
        COALESCE(r.expires, clock_timestamp() + make_interval(secs => r.expires_in)),
        r.retries, r.max_retries, 0, r.acks_late, '', '',
        clock_timestamp(), r.parent_id, r.root_id, r.group_id,
        {_PENDING_EVENT}, COALESCE(r.concurrency_key, '')
    FROM jsonb_to_recordset(%s::jsonb) AS r(
        id text, name text, queue text, priority int, args jsonb, kwargs jsonb, options jsonb,
        eta timestamptz, countdown float8, expires timestamptz, expires_in float8, retries int,
        max_retries int, acks_late bool, parent_id text, root_id text, group_id text,
        concurrency_key text)
    RETURNING queue
)
SELECT pg_notify('{JOBS_CHANNEL}', q) FROM (SELECT DISTINCT queue AS q FROM ins) AS d
"""


_RAW_INSERT = frozenset({"args", "kwargs", "options"})
#: from this many rows on, immediate jobs are loaded with COPY (the columns left out take their
#: database defaults: run_after, created_at and the history's PENDING entry: clock_timestamp())
COPY_FROM = 50
COPY = (
    "COPY djq_job (id, name, queue, priority, state, custom_state, args, kwargs, options, "
    "traceback, expires, retries, max_retries, attempt, acks_late, worker, terminate_signal, "
    "parent_id, root_id, group_id, concurrency_key) FROM STDIN"
)


def insert(cursor: CursorWrapper, rows: list[dict[str, Any]]) -> None:
    if len(rows) >= COPY_FROM and not any(
        r["eta"] or r["countdown"] or r["expires_in"] is not None for r in rows
    ):
        _copy(cursor, rows)
        return
    cursor.execute(INSERT, [_records(rows, _RAW_INSERT)])


def _copy(cursor: CursorWrapper, rows: list[dict[str, Any]]) -> None:
    with cursor.cursor.copy(COPY) as copy:
        for r in rows:
            copy.write_row(
                (
                    r["id"],
                    r["name"],
                    r["queue"],
                    r["priority"],
                    "PENDING",
                    "",
                    r["args"],
                    r["kwargs"],
                    r["options"],
                    "",
                    r["expires"],
                    r["retries"],
                    r["max_retries"],
                    0,
                    r["acks_late"],
                    "",
                    "",
                    r["parent_id"],
                    r["root_id"],
                    r["group_id"],
                    r.get("concurrency_key") or "",
                )
            )
    queues = sorted({r["queue"] for r in rows})
    cursor.execute(f"SELECT pg_notify('{JOBS_CHANNEL}', q) FROM unnest(%s::text[]) AS q", [queues])


# Timestamps Python cannot hold (±infinity, past year 9999, BC: rows written by raw SQL) are
# returned as NULL: one such row must not make the claim of its whole batch fail to load.
_LOADABLE = "CASE WHEN {column} BETWEEN '0001-01-02' AND '9999-12-30' THEN {column} END"
# The claim. Each of the worker's queues (paused ones dropped first: a per-queue NOT EXISTS on
# djq_queue, never a join against the backlog) gets a LATERAL subquery whose WHERE is exactly
# djq_job_claim_idx's predicate plus its leading column, and whose ORDER BY is the index's order:
# the only plan for it is to walk that index and stop after LIMIT rows, whatever the statistics
# say. (A flat "queue = ANY(...) AND NOT EXISTS (paused)" over the table was planned, once
# analysed, as a seq scan + sort of the whole backlog: 14-44 ms at 20,000-100,000 waiting jobs.)
# The per-queue rows are then merged by priority and ETA and cut to the batch; rows locked beyond
# it (several queues) are released at the end of the statement's transaction. The test
# tests/integration/test_claim_plan.py asserts the plan on an analysed table of 100,000 waiting
# jobs.
_CLAIM_UPDATE = f"""
UPDATE djq_job j SET
    state = 'RESERVED', attempt = j.attempt + 1, worker = %(worker)s, custom_state = '',
    started_at = NULL,
    lease_expires_at = statement_timestamp() + make_interval(secs => %(lease)s),
    history = j.history || {_EVENT.format(state="'RESERVED'", worker="%(worker)s")}
FROM due WHERE j.id = due.id
RETURNING j.id::text, j.name, j.args::text, j.kwargs::text, j.options::text, j.retries,
    j.max_retries, j.attempt, {_LOADABLE.format(column="j.run_after")},
    {_LOADABLE.format(column="j.expires")},
    (j.expires IS NOT NULL AND j.expires <= statement_timestamp()),
    j.parent_id::text, j.root_id::text, j.group_id::text, j.priority, j.queue, j.acks_late,
    j.revoked_at IS NOT NULL, j.concurrency_key
"""
CLAIM = (
    f"""
WITH due AS (
    SELECT d.id FROM (
        SELECT u.name FROM unnest(%(queues)s::text[]) AS u(name)
        WHERE NOT EXISTS (SELECT 1 FROM djq_queue p WHERE p.name = u.name AND p.paused)
    ) AS q
    CROSS JOIN LATERAL (
        SELECT j.id, j.priority, j.run_after FROM djq_job j
        WHERE j.state IN {_WAITING} AND j.queue = q.name
          AND j.run_after <= statement_timestamp() AND j.name <> ALL(%(skip)s)
        ORDER BY j.priority DESC, j.run_after
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS d
    ORDER BY d.priority DESC, d.run_after
    LIMIT %(limit)s
)
"""
    + _CLAIM_UPDATE
)

# The fair claim (tasks with a ``concurrency_key``, DJQ_FAIR_KEYS on): the batch takes turns
# between the keys of each queue's backlog, so a key with 20,000 waiting jobs does not hold back
# a key with 20 enqueued after them. The keys present are found by a loose index scan of
# djq_job_key_claim_idx (one probe per key, whatever the backlog), each key's due jobs by a
# LATERAL walk of the same index in the claim's order (stopped after LIMIT rows); jobs without a
# key are the key "" (one more key taking turns). The candidates are ranked within their key
# (row_number), and the batch is cut by priority first, then by round (rank / the key's weight:
# a key of weight 3 gets three jobs a round), then by ETA: in a round the key whose oldest job
# is oldest goes first, which is round robin without any state kept between claims. Keys found
# at their concurrency limit (``skip_keys``) are dropped before their jobs are read.
_KEYS = f"""
    SELECT q.name AS queue, k.key FROM q CROSS JOIN LATERAL (
        WITH RECURSIVE k(key) AS (
            (SELECT j.concurrency_key FROM djq_job j
             WHERE j.state IN {_WAITING} AND j.queue = q.name
             ORDER BY j.concurrency_key LIMIT 1)
            UNION ALL
            SELECT (SELECT j.concurrency_key FROM djq_job j
                    WHERE j.state IN {_WAITING} AND j.queue = q.name AND j.concurrency_key > k.key
                    ORDER BY j.concurrency_key LIMIT 1)
            FROM k WHERE k.key IS NOT NULL
        )
        SELECT k.key FROM k WHERE k.key IS NOT NULL AND k.key <> ALL(%(skip_keys)s)
    ) AS k
"""
FAIR_CLAIM = (
    f"""
WITH q AS MATERIALIZED (
    SELECT u.name FROM unnest(%(queues)s::text[]) AS u(name)
    WHERE NOT EXISTS (SELECT 1 FROM djq_queue p WHERE p.name = u.name AND p.paused)
), keys AS MATERIALIZED ({_KEYS}), cand AS (
    SELECT keys.queue, keys.key, d.id, d.priority, d.run_after FROM keys CROSS JOIN LATERAL (
        SELECT j.id, j.priority, j.run_after FROM djq_job j
        WHERE j.state IN {_WAITING} AND j.queue = keys.queue AND j.concurrency_key = keys.key
          AND j.run_after <= statement_timestamp() AND j.name <> ALL(%(skip)s)
        ORDER BY j.priority DESC, j.run_after
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS d
), due AS (
    SELECT r.id FROM (
        SELECT c.id, c.key, c.priority, c.run_after, row_number() OVER (
            PARTITION BY c.queue, c.key ORDER BY c.priority DESC, c.run_after) AS rn
        FROM cand c
    ) AS r
    ORDER BY r.priority DESC,
        ceil(r.rn / COALESCE((%(weights)s::jsonb ->> r.key)::float8, 1.0)), r.run_after
    LIMIT %(limit)s
)
"""
    + _CLAIM_UPDATE
)


def claim(
    cursor: CursorWrapper,
    worker: str,
    queues: list[str],
    limit: int,
    lease: float,
    skip: list[str],
    fair: dict[str, Any] | None = None,
) -> list[Any]:
    """``fair``: None for the plain claim, else {"weights": {key: weight}, "skip_keys": [...]}."""
    params: dict[str, Any] = {
        "queues": list(queues),
        "limit": limit,
        "worker": worker,
        "lease": lease,
        "skip": list(skip),
    }
    if fair is None:
        cursor.execute(CLAIM, params)
    else:
        params["weights"] = json.dumps(fair.get("weights") or {})
        params["skip_keys"] = list(fair.get("skip_keys") or ())
        cursor.execute(FAIR_CLAIM, params)
    return list(cursor.fetchall())


# Jobs children are about to begin: RESERVED → STARTED, in one statement per batch (a job
# already STARTED by the same claim — a mark committed on a broken connection — stays as it is,
# and counts as marked).
_MARK_STARTED = f"""
UPDATE djq_job j SET state = 'STARTED',
    started_at = CASE WHEN j.state = 'RESERVED' THEN now() ELSE j.started_at END,
    history = CASE WHEN j.state = 'RESERVED'
        THEN j.history || {_EVENT.format(state="'STARTED'", worker="j.worker")}
        ELSE j.history END
FROM jsonb_to_recordset(%(started)s::jsonb) AS s(id text, attempt int)
WHERE j.id = s.id AND j.attempt = s.attempt AND j.state IN {_HELD}
"""
MARK_STARTED = _MARK_STARTED + "RETURNING j.id::text"

# An outcome may reach a job still RESERVED in the database (it never started: expired, revoked,
# or a row whose mark rides in this very statement): ``started`` says whether it ran, and a job
# that ran gets its STARTED event and time here. The started marks of other jobs ride in the same
# statement (a data-modifying CTE on disjoint rows): one commit for both. The rows come back as
# the finished jobs, then the marked ones (``marked``: true, the id alone): the worker lets a child
# run a job only once its mark is committed.
COMPLETE = f"""
WITH marked AS ({_MARK_STARTED} RETURNING j.id::text AS id),
done AS (
UPDATE djq_job j SET
    state = o.state,
    result = CASE WHEN o.keep_result THEN o.result::jsonb ELSE j.result END,
    traceback = COALESCE(o.traceback, ''),
    meta = COALESCE(o.meta::jsonb, j.meta),
    finished_at = CASE WHEN o.state IN {_READY} THEN now() END,
    started_at = CASE WHEN j.state = 'RESERVED' AND COALESCE(o.started, true)
        THEN now() ELSE j.started_at END,
    run_after = CASE WHEN o.state IN {_WAITING}
        THEN COALESCE(o.eta, now() + make_interval(secs => COALESCE(o.countdown, 0)))
        ELSE j.run_after END,
    retries = j.retries + (o.state = 'RETRY' AND NOT COALESCE(o.snoozed, false))::int,
    dead_reason = COALESCE(o.dead_reason, ''),
    args = COALESCE(o.args::jsonb, j.args),
    kwargs = COALESCE(o.kwargs::jsonb, j.kwargs),
    lease_expires_at = NULL,
    history = j.history
        || CASE WHEN j.state = 'RESERVED' AND COALESCE(o.started, true)
            THEN {_EVENT.format(state="'STARTED'", worker="j.worker")} ELSE '[]'::jsonb END
        || {_EVENT.format(state="o.state", worker="j.worker")}
FROM jsonb_to_recordset(%(outcomes)s::jsonb) AS o(
    id text, attempt int, state text, result text, keep_result bool, traceback text, meta text,
    countdown float8, eta timestamptz, args text, kwargs text, started bool, dead_reason text,
    snoozed bool)
WHERE j.id = o.id AND j.attempt = o.attempt AND j.state IN {_HELD}
RETURNING j.id::text AS id, j.state, j.name, j.options::text AS options,
    j.result::text AS result, j.parent_id::text AS parent_id, j.root_id::text AS root_id,
    j.group_id::text AS group_id, ({_NOTIFY_DONE}) IS NULL AS notified
)
SELECT id, state, name, options, result, parent_id, root_id, group_id, false AS marked FROM done
UNION ALL
SELECT id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, true FROM marked
"""


def complete(
    cursor: CursorWrapper, outcomes: list[dict[str, Any]], started: Sequence[dict[str, Any]] = ()
) -> tuple[list[Any], list[str]]:
    """The finished rows and the ids marked STARTED, from one statement."""
    cursor.execute(COMPLETE, {"outcomes": _records(outcomes), "started": _records(started)})
    rows = cursor.fetchall()
    return [row[:8] for row in rows if not row[8]], [row[0] for row in rows if row[8]]


# The same whose commit does not wait for the WAL flush (``store.mark_started(durable=False)``):
# set for its own transaction (an autocommitted statement's too: the setting holds until the
# transaction's end, after its commit record is written), so one round trip when autocommitted.
MARK_STARTED_NO_FLUSH = (
    _MARK_STARTED.replace(
        "AS s(id text, attempt int)",
        "AS s(id text, attempt int), (SELECT set_config('synchronous_commit', 'off', true)) AS c",
    )
    + "RETURNING j.id::text"
)


def mark_started(
    cursor: CursorWrapper, started: list[dict[str, Any]], durable: bool = True
) -> list[Any]:
    sql = MARK_STARTED if durable else MARK_STARTED_NO_FLUSH
    cursor.execute(sql, {"started": _records(started)})
    return list(cursor.fetchall())


# A prefork child's own mark of the job it is about to begin (djq.running.pools.child_marks), on
# the child's connection: one row, strictly RESERVED → STARTED (a job marked once is never marked
# again, whoever asks: a job handed back after its child died mid-mark cannot start twice), and a
# commit that does not wait for the disk, as the worker's marks.
START_RESERVED = f"""
UPDATE djq_job j SET state = 'STARTED', started_at = now(),
    history = j.history || {_EVENT.format(state="'STARTED'", worker="j.worker")}
FROM (SELECT set_config('synchronous_commit', 'off', true)) AS c
WHERE j.id = %s AND j.attempt = %s AND j.state = 'RESERVED'
RETURNING j.id::text
"""

# Which of a dead child's jobs it had marked STARTED (the others never began).
STARTED_OF = """
SELECT j.id::text FROM djq_job j
JOIN jsonb_to_recordset(%s::jsonb) AS s(id text, attempt int) ON j.id = s.id
WHERE j.attempt = s.attempt AND j.state = 'STARTED'
"""


def start_reserved(cursor: Any, job_id: str, attempt: int) -> bool:
    """``cursor``: of any connection (a raw psycopg one in a prefork child)."""
    cursor.execute(START_RESERVED, [job_id, attempt])
    return cursor.fetchone() is not None


def started_of(cursor: CursorWrapper, claims: list[dict[str, Any]]) -> set[str]:
    cursor.execute(STARTED_OF, [_records(claims)])
    return {row[0] for row in cursor.fetchall()}


RELEASE = f"""
UPDATE djq_job j SET state = 'PENDING', lease_expires_at = NULL,
    history = j.history || {_EVENT.format(state="'PENDING'", worker="j.worker")}
FROM jsonb_to_recordset(%s::jsonb) AS o(id text, attempt int)
WHERE j.id = o.id AND j.attempt = o.attempt AND j.state IN {_HELD}
RETURNING j.id::text, pg_notify('{JOBS_CHANNEL}', j.queue)
"""


def release(cursor: CursorWrapper, claims: list[dict[str, Any]]) -> list[Any]:
    cursor.execute(RELEASE, [_records(claims)])
    return list(cursor.fetchall())


# Rate limiting: a claimed job whose slot is in the future goes back to the queue until then,
# remembering its slot (options.rate_slot) so that it does not take another one when it is due.
DEFER = f"""
UPDATE djq_job j SET state = 'PENDING', run_after = o.slot, lease_expires_at = NULL,
    options = j.options || jsonb_build_object('rate_slot', o.slot_text),
    history = j.history || {_EVENT.format(state="'PENDING'", worker="j.worker")}
FROM jsonb_to_recordset(%s::jsonb) AS o(id text, attempt int, slot timestamptz, slot_text text)
WHERE j.id = o.id AND j.attempt = o.attempt AND j.state IN {_HELD}
RETURNING j.id::text
"""


def defer(cursor: CursorWrapper, items: list[dict[str, Any]]) -> list[Any]:
    cursor.execute(DEFER, [_records(items)])
    return list(cursor.fetchall())


HEARTBEAT = f"""
WITH w AS (
    UPDATE djq_worker SET last_heartbeat = now(), processed = %(processed)s, failed = %(failed)s
    WHERE name = %(worker)s
)
UPDATE djq_job SET lease_expires_at = now() + make_interval(secs => %(lease)s)
WHERE worker = %(worker)s AND state IN {_HELD} AND id = ANY(%(ids)s::text[])
RETURNING id::text, attempt, revoked_at IS NOT NULL, terminate_signal
"""


def heartbeat(
    cursor: CursorWrapper, worker: str, ids: list[str], lease: float, processed: int, failed: int
) -> list[Any]:
    params: dict[str, Any] = {
        "worker": worker,
        "ids": ids,
        "lease": lease,
        "processed": processed,
        "failed": failed,
    }
    cursor.execute(HEARTBEAT, params)
    return list(cursor.fetchall())


# Expired leases: the worker holding them stopped heart-beating. Reserved jobs never started: they
# go back to the queue. Started acks_late jobs go back too; the other started ones end FAILURE
# with WorkerLostError (their task may have had side effects).
#
# A started acks_late job lost for the ``max_lost``-th time (DJQ_MAX_WORKER_LOST; 0: never) is not
# requeued again: it ends a dead letter (FAILURE, dead_reason 'worker_lost'), so a job that kills
# its worker stops looping. ``lost_count`` counts the times a job was lost while STARTED.
_DEAD = (
    "(j.state = 'STARTED' AND j.acks_late AND %(max_lost)s > 0 "
    "AND j.lost_count + 1 >= %(max_lost)s)"
)
_REQUEUE = f"((j.state = 'RESERVED' OR j.acks_late) AND NOT {_DEAD})"
_RESCUE = f"""
UPDATE djq_job j SET
    state = CASE WHEN {_REQUEUE} THEN 'PENDING' ELSE 'FAILURE' END,
    result = CASE WHEN {_REQUEUE} THEN j.result WHEN {_DEAD} THEN %(dead)s::jsonb
        ELSE %(lost)s::jsonb END,
    dead_reason = CASE WHEN {_DEAD} THEN 'worker_lost' ELSE j.dead_reason END,
    lost_count = j.lost_count + (j.state = 'STARTED')::int,
    finished_at = CASE WHEN {_REQUEUE} THEN NULL ELSE now() END,
    run_after = CASE WHEN {_REQUEUE} THEN now() ELSE j.run_after END,
    lease_expires_at = NULL,
    history = j.history || {
    _EVENT.format(
        state=f"CASE WHEN {_REQUEUE} THEN 'PENDING' ELSE 'FAILURE' END", worker="j.worker"
    )
}
WHERE j.state IN {_HELD} AND {{condition}}
RETURNING j.id::text, j.state, j.name, j.options::text, j.result::text, j.parent_id::text,
    j.root_id::text, j.group_id::text, j.worker, {_NOTIFY_DONE}
"""
# After a database restart every live worker needs a moment to reconnect and heartbeat (its
# leases may have run out while the server was down): no lease is rescued in the first
# ``grace`` seconds of the server's life, so only dead workers' and lost claims' jobs are.
RESCUE_EXPIRED = _RESCUE.format(
    condition="j.lease_expires_at < now() "
    "AND pg_postmaster_start_time() < now() - make_interval(secs => %(grace)s)"
)
RESCUE_WORKER = _RESCUE.format(condition="j.worker = %(worker)s")


def rescue(
    cursor: CursorWrapper,
    lost_json: str,
    worker: str | None = None,
    grace: float = 0.0,
    dead_json: str = "null",
    max_lost: int = 0,
) -> list[Any]:
    """Rescue expired leases; with ``worker``, every running job of that (dead) worker."""
    sql = RESCUE_EXPIRED if worker is None else RESCUE_WORKER
    params = {
        "lost": lost_json,
        "worker": worker,
        "grace": grace,
        "dead": dead_json,
        "max_lost": max_lost,
    }
    cursor.execute(sql, params)
    return list(cursor.fetchall())


REVOKE = f"""
UPDATE djq_job j SET
    revoked_at = COALESCE(j.revoked_at, now()),
    terminate_signal = %(signal)s,
    state = CASE WHEN j.state IN {_WAITING} THEN 'REVOKED' ELSE j.state END,
    result = CASE WHEN j.state IN {_WAITING} THEN %(revoked)s::jsonb ELSE j.result END,
    finished_at = CASE WHEN j.state IN {_WAITING} THEN now() ELSE j.finished_at END,
    history = CASE WHEN j.state IN {_WAITING}
        THEN j.history || {_EVENT.format(state="'REVOKED'", worker="''")} ELSE j.history END
WHERE j.id = ANY(%(ids)s::text[]) AND j.state NOT IN {_READY}
RETURNING j.id::text, j.state, j.worker, j.name, j.options::text, j.result::text,
    j.parent_id::text, j.root_id::text, j.group_id::text, pg_notify('{CONTROL_CHANNEL}', 'revoke'),
    {_NOTIFY_DONE}
"""


def revoke(cursor: CursorWrapper, ids: list[str], signal: str, revoked_json: str) -> list[Any]:
    cursor.execute(REVOKE, {"ids": ids, "signal": signal, "revoked": revoked_json})
    return list(cursor.fetchall())


# The next ETA of the worker's queues, from djq_job_claim_idx alone (no index in run_after order:
# one more index written by every enqueue): a loose index scan finds the priorities present in a
# queue's backlog (one probe each), then the first ETA of each priority (one probe each).
NEXT_DUE = f"""
SELECT EXTRACT(EPOCH FROM (min(d.run_after) - statement_timestamp()))::float8
FROM unnest(%s::text[]) AS q(name), LATERAL (
    WITH RECURSIVE p(priority) AS (
        (SELECT j.priority FROM djq_job j WHERE j.state IN {_WAITING} AND j.queue = q.name
         ORDER BY j.priority DESC LIMIT 1)
        UNION ALL
        SELECT (SELECT j.priority FROM djq_job j
                WHERE j.state IN {_WAITING} AND j.queue = q.name AND j.priority < p.priority
                ORDER BY j.priority DESC LIMIT 1)
        FROM p WHERE p.priority IS NOT NULL
    )
    SELECT (SELECT j.run_after FROM djq_job j
            WHERE j.state IN {_WAITING} AND j.queue = q.name AND j.priority = p.priority
            ORDER BY j.priority DESC, j.run_after LIMIT 1) AS run_after
    FROM p WHERE p.priority IS NOT NULL
) AS d
"""


def next_due(cursor: CursorWrapper, queues: list[str]) -> float | None:
    cursor.execute(NEXT_DUE, [list(queues)])
    row = cursor.fetchone()
    return None if row is None or row[0] is None else float(row[0])


# A dead letter back to the queue (the admin's "requeue"): a fresh start, due now, with its
# retries and lost count at zero; only jobs that are still dead are touched.
REQUEUE_DEAD = f"""
UPDATE djq_job j SET state = 'PENDING', dead_reason = '', lost_count = 0, retries = 0,
    result = NULL, traceback = '', finished_at = NULL, started_at = NULL, revoked_at = NULL,
    terminate_signal = '', worker = '', run_after = now(),
    history = j.history || {_EVENT.format(state="'PENDING'", worker="''")}
WHERE j.id = ANY(%s::text[]) AND j.state = 'FAILURE' AND j.dead_reason <> ''
RETURNING j.id::text, pg_notify('{JOBS_CHANNEL}', j.queue)
"""


def requeue_dead(cursor: CursorWrapper, ids: list[str]) -> list[str]:
    cursor.execute(REQUEUE_DEAD, [ids])
    return [row[0] for row in cursor.fetchall()]


def set_progress(
    cursor: CursorWrapper, job_id: str, state: str, meta_json: str | None, attempt: int | None
) -> int:
    cursor.execute(
        "UPDATE djq_job SET custom_state = %s, meta = %s::jsonb "
        f"WHERE id = %s AND state IN {_HELD} AND (%s::int IS NULL OR attempt = %s::int)",
        [state, meta_json, job_id, attempt, attempt],
    )
    rowcount: int = cursor.rowcount
    return rowcount


def db_now(cursor: CursorWrapper) -> dt.datetime:
    cursor.execute("SELECT now()")
    now: dt.datetime = cursor.fetchone()[0]
    return now


# Unique jobs: the key's row names its job; ``until`` is infinity while the job is waiting or
# running and becomes finished + unique_for when it ends (release_unique, at completion).
TAKE_UNIQUE = """
INSERT INTO djq_unique_lock (key, job_id, until) VALUES (%s, %s, 'infinity')
ON CONFLICT (key) DO UPDATE SET job_id = EXCLUDED.job_id, until = EXCLUDED.until
WHERE djq_unique_lock.until <= now()
RETURNING job_id
"""


def take_unique(cursor: CursorWrapper, key: str, job_id: str) -> bool:
    cursor.execute(TAKE_UNIQUE, [key, job_id])
    return cursor.fetchone() is not None


def unique_holder(cursor: CursorWrapper, key: str) -> str | None:
    cursor.execute("SELECT job_id::text FROM djq_unique_lock WHERE key = %s", [key])
    row = cursor.fetchone()
    return row[0] if row else None


def replace_unique(cursor: CursorWrapper, key: str, old: str, new: str) -> bool:
    cursor.execute(
        "UPDATE djq_unique_lock SET job_id = %s, until = 'infinity' WHERE key = %s AND job_id = %s",
        [new, key, old],
    )
    return bool(cursor.rowcount == 1)


# unique_mode replace/debounce: a waiting job takes a new call's arguments (debounce: and its run
# time: the call's eta, or now + its countdown), only while it is still waiting.
UPDATE_WAITING = f"""
UPDATE djq_job j SET args = %(args)s::jsonb, kwargs = %(kwargs)s::jsonb,
    run_after = CASE WHEN %(move)s
        THEN COALESCE(%(eta)s::timestamptz,
            clock_timestamp() + make_interval(secs => COALESCE(%(countdown)s::float8, 0)))
        ELSE j.run_after END
WHERE j.id = %(id)s AND j.state IN {_WAITING}
"""


def update_waiting(cursor: CursorWrapper, job_id: str, row: dict[str, Any], move: bool) -> bool:
    params = {
        "id": job_id,
        "args": row["args"],
        "kwargs": row["kwargs"],
        "move": move,
        "eta": row.get("eta"),
        "countdown": row.get("countdown"),
    }
    cursor.execute(UPDATE_WAITING, params)
    return bool(cursor.rowcount == 1)


def release_unique(cursor: CursorWrapper, key: str, job_id: str, unique_for: float) -> None:
    cursor.execute(
        "UPDATE djq_unique_lock SET until = now() + make_interval(secs => %s) "
        "WHERE key = %s AND job_id = %s",
        [unique_for, key, job_id],
    )


EVENTS_CHANNEL = "djq_events"
# Monitoring events: a batch a row, rows kept in order; one NOTIFY carrying the newest id,
# delivered when the batch commits.
INSERT_EVENTS = f"""
WITH ins AS (
    INSERT INTO djq_event_batch (created_at, hostname, count, payload)
    SELECT now(), e.h, e.c, e.p
    FROM unnest(%s::text[], %s::int[], %s::text[]) WITH ORDINALITY AS e(h, c, p, n)
    ORDER BY e.n
    RETURNING id
)
SELECT pg_notify('{EVENTS_CHANNEL}', (SELECT max(id) FROM ins)::text)
"""


# The common case, one batch: its payload as a plain text parameter (in a text[] array the whole
# JSON text would be escaped on the way, which costs the worker more than the INSERT itself).
INSERT_EVENT = f"""
WITH ins AS (
    INSERT INTO djq_event_batch (created_at, hostname, count, payload)
    VALUES (now(), %s, %s, %s)
    RETURNING id
)
SELECT pg_notify('{EVENTS_CHANNEL}', (SELECT id FROM ins)::text)
"""


def insert_events(
    cursor: CursorWrapper, hostnames: list[str], counts: list[int], payloads: list[str]
) -> None:
    if len(payloads) == 1:
        cursor.execute(INSERT_EVENT, [hostnames[0], counts[0], payloads[0]])
    else:
        cursor.execute(INSERT_EVENTS, [hostnames, counts, payloads])


# ``AsyncResult.get()``: on its own autocommitted connection, after its LISTEN, before it reads
# the rows: a completion that commits after this sees the flag and NOTIFYs; one that committed
# before is seen by the read. Returns the ids flagged (or flagged already).
MARK_WAITED = f"""
WITH flagged AS (
    UPDATE djq_job SET waited = true
    WHERE id = ANY(%s::text[]) AND NOT waited AND state NOT IN {_READY}
    RETURNING id
)
SELECT id::text FROM flagged
UNION ALL SELECT id::text FROM djq_job WHERE id = ANY(%s::text[]) AND waited
"""
