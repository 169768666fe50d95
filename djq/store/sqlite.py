"""SQLite statements: the embedded database for development and the demo.

SQLite has one writer at a time, so a claim (one ``UPDATE … WHERE id IN (SELECT … LIMIT n)
RETURNING``) is atomic without row locks. There is no NOTIFY: workers poll. The "database clock"
is this machine's clock, formatted as Django stores datetimes in SQLite (naive UTC text), so that
text comparisons order correctly. Task ids are stored as the text they are.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any, overload

from django.db.backends.utils import CursorWrapper

_READY = "('SUCCESS','FAILURE','REVOKED','IGNORED')"
_WAITING = "('PENDING','RETRY')"
_HELD = "('RESERVED','STARTED')"
_EVENT = "json_insert(history, '$[#]', json_array({state}, %(now)s, {worker}))"


def now_text(delta: float = 0.0) -> str:
    return fmt(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delta))


@overload
def fmt(value: dt.datetime) -> str: ...
@overload
def fmt(value: None) -> None: ...
def fmt(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(" ")


@overload
def parse_dt(value: str | dt.datetime) -> dt.datetime: ...
@overload
def parse_dt(value: None) -> None: ...
def parse_dt(value: str | dt.datetime | None) -> dt.datetime | None:
    """Naive UTC (Django's sqlite3 converters may already have parsed it) → aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC)


def _hex(value: object) -> str | None:
    """A task id as stored: text, unchanged (ids are any string; migration 0003 gave the 32-hex
    UUIDs Django used to store their dashes). Kept under its old name for the call sites."""
    return None if value is None else str(value)


def _as_is_on_error(parse: Callable[[Any], Any], value: Any) -> Any:
    try:
        return parse(value)
    except (TypeError, ValueError, AttributeError):
        return value


_uuid_text = _hex  # the same: an id read back is the text stored


INSERT = """
INSERT INTO djq_job (
    id, name, queue, priority, state, custom_state, args, kwargs, options, traceback,
    run_after, expires, retries, max_retries, attempt, acks_late, worker, terminate_signal,
    created_at, parent_id, root_id, group_id, history, concurrency_key)
VALUES (%(id)s, %(name)s, %(queue)s, %(priority)s, 'PENDING', '', %(args)s, %(kwargs)s,
    %(options)s, '', %(run_after)s, %(expires)s, %(retries)s, %(max_retries)s, 0, %(acks_late)s,
    '', '', %(now)s, %(parent_id)s, %(root_id)s, %(group_id)s,
    json_array(json_array('PENDING', %(now)s, '')), %(concurrency_key)s)
"""


def insert(cursor: CursorWrapper, rows: list[dict[str, Any]]) -> None:
    now = dt.datetime.now(dt.UTC)
    params = []
    for row in rows:
        run_after = row["eta"] or now + dt.timedelta(seconds=row["countdown"] or 0)
        expires = row["expires"]
        if expires is None and row["expires_in"] is not None:
            expires = now + dt.timedelta(seconds=row["expires_in"])
        params.append(
            {
                **row,
                "id": _hex(row["id"]),
                "parent_id": _hex(row["parent_id"]),
                "root_id": _hex(row["root_id"]),
                "group_id": _hex(row["group_id"]),
                "run_after": fmt(run_after),
                "expires": fmt(expires),
                "now": fmt(now),
                "concurrency_key": row.get("concurrency_key") or "",
            }
        )
    cursor.executemany(INSERT, params)


_CLAIM_UPDATE = f"""
UPDATE djq_job SET
    state = 'RESERVED', attempt = attempt + 1, worker = %(worker)s, custom_state = '',
    started_at = NULL, lease_expires_at = %(lease_until)s,
    history = {_EVENT.format(state="'RESERVED'", worker="%(worker)s")}
WHERE id IN ({{due}})
RETURNING id, name, args, kwargs, options, retries, max_retries, attempt,
    CAST(run_after AS TEXT), CAST(expires AS TEXT),
    NULL, parent_id, root_id, group_id, priority, queue, acks_late, CAST(revoked_at AS TEXT),
    concurrency_key
"""
_DUE_WHERE = f"""
    WHERE j.state IN {_WAITING} AND j.queue IN ({{queues}}) AND j.run_after <= %(now)s
      AND NOT EXISTS (SELECT 1 FROM djq_queue q WHERE q.name = j.queue AND q.paused)
      AND j.name NOT IN ({{skip}})
"""
CLAIM = _CLAIM_UPDATE.replace(
    "{due}",
    f"""
    SELECT j.id FROM djq_job j {_DUE_WHERE}
    ORDER BY j.priority DESC, j.run_after
    LIMIT %(limit)s
""",
)
# The fair claim (djq.store.postgres.FAIR_CLAIM has the why): turns between the keys of each
# queue, by rank within the key divided by the key's weight. SQLite ranks the whole backlog (a
# window over the waiting jobs): good for development, where backlogs are small.
FAIR_CLAIM = _CLAIM_UPDATE.replace(
    "{due}",
    f"""
    SELECT r.id FROM (
        SELECT j.id, j.priority, j.run_after, j.concurrency_key AS key, row_number() OVER (
            PARTITION BY j.queue, j.concurrency_key ORDER BY j.priority DESC, j.run_after) AS rn
        FROM djq_job j {_DUE_WHERE} AND j.concurrency_key NOT IN ({{skip_keys}})
    ) AS r
    ORDER BY r.priority DESC,
        CAST((r.rn - 1) / COALESCE(
            (SELECT CAST(w.value AS REAL) FROM json_each(%(weights)s) AS w WHERE w.key = r.key),
            1.0) AS INTEGER),
        r.run_after
    LIMIT %(limit)s
""",
)
# (timestamps as text: parsed in _claimed, where a value that is no timestamp, written by raw
# SQL, is kept for the worker to fail that job; Django's converter would raise for the batch)
# ``expired`` (the NULL above) and the heartbeat's ``revoked`` are computed in Python from the
# columns: SQLite 3.40 evaluates ``col IS NOT NULL`` in a RETURNING clause of this table as true
# even when the column is NULL.


def _in_list(prefix: str, values: Sequence[str | None], params: dict[str, Any]) -> str:
    names = []
    for i, value in enumerate(values):
        params[f"{prefix}{i}"] = value
        names.append(f"%({prefix}{i})s")
    return ", ".join(names)


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
        "worker": worker,
        "limit": limit,
        "now": now_text(),
        "lease_until": now_text(lease),
    }
    lists = {
        "queues": _in_list("q", list(queues), params),
        "skip": _in_list("s", list(skip), params),
    }
    if fair is None:
        sql = CLAIM.format(**lists)
    else:
        params["weights"] = json.dumps(fair.get("weights") or {})
        skip_keys = _in_list("k", list(fair.get("skip_keys") or ()), params)
        sql = FAIR_CLAIM.format(**lists, skip_keys=skip_keys)
    cursor.execute(sql, params)
    now = parse_dt(str(params["now"]))
    return [_claimed(row, now) for row in cursor.fetchall()]


def _claimed(row: Any, now: dt.datetime) -> tuple[Any, ...]:
    """A claimed row as Python values; a value that does not parse (a row written by raw SQL:
    SQLite stores anything) is kept as it is, and the worker fails that job (djq.job_guard)."""
    row = list(row)
    for i in (0, 11, 12, 13):
        row[i] = _uuid_text(row[i])  # (ids are text: nothing to parse)
    row[8], row[9] = _as_is_on_error(parse_dt, row[8]), _as_is_on_error(parse_dt, row[9])
    row[10] = isinstance(row[9], dt.datetime) and row[9] <= now
    row[16] = bool(row[16])
    row[17] = row[17] is not None  # (tested here: SQLite mis-evaluates IS NULL in RETURNING)
    return tuple(row)


COMPLETE = f"""
UPDATE djq_job SET
    state = %(state)s,
    result = CASE WHEN %(keep_result)s THEN %(result)s ELSE result END,
    traceback = COALESCE(%(traceback)s, ''),
    meta = COALESCE(%(meta)s, meta),
    finished_at = CASE WHEN %(state)s IN {_READY} THEN %(now)s END,
    run_after = CASE WHEN %(state)s IN {_WAITING} THEN %(run_after)s ELSE run_after END,
    retries = retries + (%(state)s = 'RETRY' AND NOT %(snoozed)s),
    dead_reason = COALESCE(%(dead_reason)s, ''),
    args = COALESCE(%(args)s, args),
    kwargs = COALESCE(%(kwargs)s, kwargs),
    lease_expires_at = NULL,
    started_at = CASE WHEN state = 'RESERVED' AND %(started)s THEN %(now)s ELSE started_at END,
    history = CASE WHEN state = 'RESERVED' AND %(started)s
        THEN json_insert(history, '$[#]', json_array('STARTED', %(now)s, worker),
                         '$[#]', json_array(%(state)s, %(now)s, worker))
        ELSE {_EVENT.format(state="%(state)s", worker="worker")} END
WHERE id = %(id)s AND attempt = %(attempt)s AND state IN {_HELD}
RETURNING id, state, name, options, result, parent_id, root_id, group_id, NULL
"""
MARK_STARTED = f"""
UPDATE djq_job SET state = 'STARTED',
    started_at = CASE WHEN state = 'RESERVED' THEN %(now)s ELSE started_at END,
    history = CASE WHEN state = 'RESERVED'
        THEN {_EVENT.format(state="'STARTED'", worker="worker")} ELSE history END
WHERE id = %(id)s AND attempt = %(attempt)s AND state IN ('RESERVED', 'STARTED')
RETURNING id
"""


def mark_started(
    cursor: CursorWrapper, started: list[dict[str, Any]], durable: bool = True
) -> list[Any]:
    """(``durable``: PostgreSQL's; a local file has no server to crash apart from the worker.)"""
    return _each(
        cursor,
        MARK_STARTED,
        [{"id": _hex(s["id"]), "attempt": s["attempt"], "now": now_text()} for s in started],
    )


def complete(
    cursor: CursorWrapper, outcomes: list[dict[str, Any]], started: Sequence[dict[str, Any]] = ()
) -> tuple[list[Any], list[str]]:
    """The finished rows and the ids marked STARTED (in the caller's transaction)."""
    marked = [row[0] for row in mark_started(cursor, list(started))] if started else []
    done: list[Any] = []
    for outcome in outcomes:
        eta = outcome.get("eta")
        run_after = (
            fmt(dt.datetime.fromisoformat(eta)) if eta else now_text(outcome.get("countdown") or 0)
        )
        params = {
            "state": outcome["state"],
            "keep_result": outcome.get("keep_result", True),
            "result": outcome.get("result"),
            "traceback": outcome.get("traceback"),
            "meta": outcome.get("meta"),
            "now": now_text(),
            "run_after": run_after,
            "id": _hex(outcome["id"]),
            "attempt": outcome["attempt"],
            "args": outcome.get("args"),
            "kwargs": outcome.get("kwargs"),
            "started": outcome.get("started", True),
            "dead_reason": outcome.get("dead_reason"),
            "snoozed": bool(outcome.get("snoozed")),
        }
        cursor.execute(COMPLETE, params)
        done.extend(_finished(row) for row in cursor.fetchall())
    return done, marked


def _finished(row: Any) -> tuple[Any, ...]:
    row = list(row)
    for i in (0, 5, 6, 7):
        row[i] = _uuid_text(row[i])
    return tuple(row)


RELEASE = f"""
UPDATE djq_job SET state = 'PENDING', lease_expires_at = NULL,
    history = {_EVENT.format(state="'PENDING'", worker="worker")}
WHERE id = %(id)s AND attempt = %(attempt)s AND state IN {_HELD}
RETURNING id
"""


def _each(cursor: CursorWrapper, sql: str, params: list[dict[str, Any]]) -> list[Any]:
    """Run a fenced per-job statement for each row (SQLite is local: no batching needed) and
    return the ids it changed."""
    done: list[Any] = []
    for one in params:
        cursor.execute(sql, one)
        done.extend((_uuid_text(row[0]),) for row in cursor.fetchall())
    return done


def release(cursor: CursorWrapper, claims: list[dict[str, Any]]) -> list[Any]:
    return _each(
        cursor,
        RELEASE,
        [{"id": _hex(c["id"]), "attempt": c["attempt"], "now": now_text()} for c in claims],
    )


DEFER = f"""
UPDATE djq_job SET state = 'PENDING', run_after = %(slot)s, lease_expires_at = NULL,
    options = json_set(options, '$.rate_slot', %(slot_text)s),
    history = {_EVENT.format(state="'PENDING'", worker="worker")}
WHERE id = %(id)s AND attempt = %(attempt)s AND state IN {_HELD}
RETURNING id
"""


def defer(cursor: CursorWrapper, items: list[dict[str, Any]]) -> list[Any]:
    return _each(
        cursor,
        DEFER,
        [
            {
                "slot": fmt(i["slot"]),
                "slot_text": i["slot_text"],
                "now": now_text(),
                "id": _hex(i["id"]),
                "attempt": i["attempt"],
            }
            for i in items
        ],
    )


def heartbeat(
    cursor: CursorWrapper, worker: str, ids: list[str], lease: float, processed: int, failed: int
) -> list[Any]:
    now = now_text()
    cursor.execute(
        "UPDATE djq_worker SET last_heartbeat = %s, processed = %s, failed = %s WHERE name = %s",
        [now, processed, failed, worker],
    )
    params = {"until": now_text(lease), "worker": worker}
    cursor.execute(
        "UPDATE djq_job SET lease_expires_at = %(until)s WHERE worker = %(worker)s "
        f"AND state IN {_HELD} AND id IN ({_in_list('i', [_hex(i) for i in ids], params)}) "
        "RETURNING id, attempt, revoked_at, terminate_signal",
        params,
    )
    return [(_uuid_text(r[0]), r[1], r[2] is not None, r[3]) for r in cursor.fetchall()]


# Reserved jobs never started: back to the queue; started ones follow acks_late.
# A started acks_late job lost for the ``max_lost``-th time ends dead instead (see postgres.py).
_DEAD = "(state = 'STARTED' AND acks_late AND %(max_lost)s > 0 AND lost_count + 1 >= %(max_lost)s)"
_REQUEUE = f"((state = 'RESERVED' OR acks_late) AND NOT {_DEAD})"
_RESCUED_STATE = f"CASE WHEN {_REQUEUE} THEN 'PENDING' ELSE 'FAILURE' END"
_RESCUE = f"""
UPDATE djq_job SET
    history = {_EVENT.format(state=_RESCUED_STATE, worker="worker")},
    result = CASE WHEN {_REQUEUE} THEN result WHEN {_DEAD} THEN %(dead)s ELSE %(lost)s END,
    dead_reason = CASE WHEN {_DEAD} THEN 'worker_lost' ELSE dead_reason END,
    lost_count = lost_count + (state = 'STARTED'),
    finished_at = CASE WHEN {_REQUEUE} THEN NULL ELSE %(now)s END,
    run_after = CASE WHEN {_REQUEUE} THEN %(now)s ELSE run_after END,
    lease_expires_at = NULL,
    state = {_RESCUED_STATE}
WHERE state IN {_HELD} AND {{condition}}
RETURNING id, state, name, options, result, parent_id, root_id, group_id, worker, NULL
"""
RESCUE_EXPIRED = _RESCUE.format(condition="lease_expires_at < %(now)s")
RESCUE_WORKER = _RESCUE.format(condition="worker = %(worker)s")


def rescue(
    cursor: CursorWrapper,
    lost_json: str,
    worker: str | None = None,
    grace: float = 0.0,
    dead_json: str = "null",
    max_lost: int = 0,
) -> list[Any]:
    """(``grace``: PostgreSQL's wait after a server restart; SQLite has no server to restart.)"""
    sql = RESCUE_EXPIRED if worker is None else RESCUE_WORKER
    params = {
        "lost": lost_json,
        "now": now_text(),
        "worker": worker,
        "dead": dead_json,
        "max_lost": max_lost,
    }
    cursor.execute(sql, params)
    return [_finished(row) for row in cursor.fetchall()]


REQUEUE_DEAD = f"""
UPDATE djq_job SET state = 'PENDING', dead_reason = '', lost_count = 0, retries = 0,
    result = NULL, traceback = '', finished_at = NULL, started_at = NULL, revoked_at = NULL,
    terminate_signal = '', worker = '', run_after = %(now)s,
    history = {_EVENT.format(state="'PENDING'", worker="''")}
WHERE id IN ({{ids}}) AND state = 'FAILURE' AND dead_reason <> ''
RETURNING id
"""


def requeue_dead(cursor: CursorWrapper, ids: list[str]) -> list[str]:
    """A dead letter back to the queue (see postgres.py)."""
    params = {"now": now_text()}
    cursor.execute(REQUEUE_DEAD.format(ids=_in_list("i", [_hex(i) for i in ids], params)), params)
    return [str(_uuid_text(row[0])) for row in cursor.fetchall()]


REVOKE = f"""
UPDATE djq_job SET
    revoked_at = COALESCE(revoked_at, %(now)s),
    terminate_signal = %(signal)s,
    result = CASE WHEN state IN {_WAITING} THEN %(revoked)s ELSE result END,
    finished_at = CASE WHEN state IN {_WAITING} THEN %(now)s ELSE finished_at END,
    history = CASE WHEN state IN {_WAITING}
        THEN {_EVENT.format(state="'REVOKED'", worker="''")} ELSE history END,
    state = CASE WHEN state IN {_WAITING} THEN 'REVOKED' ELSE state END
WHERE id IN ({{ids}}) AND state NOT IN {_READY}
RETURNING id, state, worker, name, options, result, parent_id, root_id, group_id
"""


def revoke(cursor: CursorWrapper, ids: list[str], signal: str, revoked_json: str) -> list[Any]:
    params = {"now": now_text(), "signal": signal, "revoked": revoked_json}
    sql = REVOKE.format(ids=_in_list("i", [_hex(i) for i in ids], params))
    cursor.execute(sql, params)
    return [
        (_uuid_text(r[0]), *r[1:6], _uuid_text(r[6]), _uuid_text(r[7]), _uuid_text(r[8]))
        for r in cursor.fetchall()
    ]


def next_due(cursor: CursorWrapper, queues: list[str]) -> float | None:
    params: dict[str, Any] = {}
    sql = (
        f"SELECT min(run_after) FROM djq_job WHERE state IN {_WAITING} "
        f"AND queue IN ({_in_list('q', list(queues), params)})"
    )
    cursor.execute(sql, params)
    row = cursor.fetchone()
    if row is None or row[0] is None:
        return None
    due: dt.datetime = parse_dt(row[0])
    return (due - dt.datetime.now(dt.UTC)).total_seconds()


def set_progress(
    cursor: CursorWrapper, job_id: str, state: str, meta_json: str | None, attempt: int | None
) -> int:
    cursor.execute(
        f"UPDATE djq_job SET custom_state = %s, meta = %s WHERE id = %s AND state IN {_HELD} "
        "AND (%s IS NULL OR attempt = %s)",
        [state, meta_json, _hex(job_id), attempt, attempt],
    )
    rowcount: int = cursor.rowcount
    return rowcount


def db_now(cursor: CursorWrapper) -> dt.datetime:
    return dt.datetime.now(dt.UTC)


FOREVER = "9999-12-31 23:59:59"
TAKE_UNIQUE = """
INSERT INTO djq_unique_lock (key, job_id, until) VALUES (%s, %s, %s)
ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id, until = excluded.until
WHERE djq_unique_lock.until <= %s
RETURNING job_id
"""


def take_unique(cursor: CursorWrapper, key: str, job_id: str) -> bool:
    cursor.execute(TAKE_UNIQUE, [key, _hex(job_id), FOREVER, now_text()])
    return cursor.fetchone() is not None


def unique_holder(cursor: CursorWrapper, key: str) -> str | None:
    cursor.execute("SELECT job_id FROM djq_unique_lock WHERE key = %s", [key])
    row = cursor.fetchone()
    return _uuid_text(row[0]) if row else None


def replace_unique(cursor: CursorWrapper, key: str, old: str, new: str) -> bool:
    cursor.execute(
        "UPDATE djq_unique_lock SET job_id = %s, until = %s WHERE key = %s AND job_id = %s",
        [_hex(new), FOREVER, key, _hex(old)],
    )
    return bool(cursor.rowcount == 1)


def update_waiting(cursor: CursorWrapper, job_id: str, row: dict[str, Any], move: bool) -> bool:
    """unique_mode replace/debounce (djq.store.postgres.UPDATE_WAITING)."""
    now = dt.datetime.now(dt.UTC)
    run_after = row.get("eta") or now + dt.timedelta(seconds=row.get("countdown") or 0)
    moved = ", run_after = %s" if move else ""
    params = [row["args"], row["kwargs"]] + ([fmt(run_after)] if move else []) + [_hex(job_id)]
    cursor.execute(
        f"UPDATE djq_job SET args = %s, kwargs = %s{moved} WHERE id = %s AND state IN {_WAITING}",
        params,
    )
    return bool(cursor.rowcount == 1)


def release_unique(cursor: CursorWrapper, key: str, job_id: str, unique_for: float) -> None:
    cursor.execute(
        "UPDATE djq_unique_lock SET until = %s WHERE key = %s AND job_id = %s",
        [now_text(unique_for), key, _hex(job_id)],
    )


def insert_events(
    cursor: CursorWrapper, hostnames: list[str], counts: list[int], payloads: list[str]
) -> None:
    """Monitoring event batches (readers poll the table: SQLite has no NOTIFY)."""
    now = now_text()
    cursor.executemany(
        "INSERT INTO djq_event_batch (created_at, hostname, count, payload) "
        "VALUES (%s, %s, %s, %s)",
        [(now, h, c, p) for h, c, p in zip(hostnames, counts, payloads, strict=True)],
    )
