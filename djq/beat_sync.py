"""``DJQ_BEAT_SCHEDULE`` → ``PeriodicTask`` rows: validation, the built-in entries, the sync.

Beat's leader runs ``sync_schedule`` once when it takes the lease; ``manage.py check`` runs the
same validation (``djq.E010``/``djq.E011``) so that a bad entry is found before beat skips it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any

from django.core.checks import Error, Warning, register
from django.core.exceptions import ValidationError
from django.db import transaction

from djq import store
from djq.conf import settings
from djq.models import CATCH_UP_CHOICES, SCHEDULE_FIELDS, PeriodicTask
from djq.schedules import crontab, interval, solar, to_schedule
from djq.serialization import Encoder
from djq.store import rows as store_rows

logger = logging.getLogger("djq.beat")

CATCH_UP_POLICIES = tuple(c for c, _ in CATCH_UP_CHOICES)

PURGE_TASK = "djq.purge_results"
ENTRY_KEYS = frozenset(
    {
        "task",
        "schedule",
        "args",
        "kwargs",
        "options",
        "enabled",
        "one_off",
        "catch_up",
        "backfill_limit",
        "start_time",
        "description",
        "relative",
    }
)
#: why Celery's ``relative`` entry key is ignored (``manage.py check`` warns: djq.W011)
RELATIVE_IGNORED = (
    "'relative' is ignored: an interval counts from the first run (or start_time); use a crontab "
    "schedule to run at fixed clock times"
)


def builtin_entries() -> dict[str, dict]:
    """djq's own schedules, present without configuration (override one by its name)."""
    if not settings.RESULT_EXPIRES:
        return {}
    return {
        PURGE_TASK: {
            "task": PURGE_TASK,
            "schedule": dt.timedelta(hours=1),
            "description": "built-in: deletes finished jobs older than DJQ_RESULT_EXPIRES",
        }
    }


def entry_fields(name: str, entry: dict) -> dict[str, Any]:
    """The ``PeriodicTask`` fields a ``DJQ_BEAT_SCHEDULE`` entry stands for (validated)."""
    if not isinstance(entry, dict) or "task" not in entry or "schedule" not in entry:
        raise ValueError(f"DJQ_BEAT_SCHEDULE[{name!r}] needs 'task' and 'schedule'")
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise ValueError(f"DJQ_BEAT_SCHEDULE[{name!r}]: unknown key(s) {sorted(unknown)}")
    options = dict(entry.get("options") or {})
    fields = {
        "task": entry["task"],
        "args": list(entry.get("args") or ()),
        "kwargs": dict(entry.get("kwargs") or {}),
        "queue": options.pop("queue", None) or "",
        "priority": options.pop("priority", None),
        "expire_seconds": _expire_seconds(name, options.pop("expires", None)),
        "options": options,
        "enabled": bool(entry.get("enabled", True)),
        "one_off": bool(entry.get("one_off", False)),
        "catch_up": catch_up_policy(name, entry.get("catch_up", "once")),
        "backfill_limit": _backfill_limit(name, entry.get("backfill_limit")),
        "start_time": entry.get("start_time"),
        "description": entry.get("description", ""),
        **schedule_fields(to_schedule(entry["schedule"])),
    }
    PeriodicTask(name=name, **fields).clean()
    return fields


def catch_up_policy(name: str, value: Any) -> str:
    """An entry's missed-run policy: "once", "skip" or "all" (True and False, the old boolean
    setting, still mean "all" and "once")."""
    if value is True or value is False:
        return "all" if value else "once"
    if value not in CATCH_UP_POLICIES:
        raise ValueError(
            f"DJQ_BEAT_SCHEDULE[{name!r}]: catch_up={value!r} is not one of "
            f"{', '.join(repr(p) for p in CATCH_UP_POLICIES)}"
        )
    return value


def _backfill_limit(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"DJQ_BEAT_SCHEDULE[{name!r}]: backfill_limit={value!r} must be a whole number >= 1"
        )
    return value


def schedule_fields(schedule) -> dict[str, Any]:
    """The model's schedule columns for a schedule object (the other kinds emptied)."""
    fields = {
        "crontab": "",
        "interval_every": None,
        "interval_period": "",
        "clocked_time": None,
        "solar_event": "",
        "solar_latitude": None,
        "solar_longitude": None,
        "timezone": "",
    }
    if isinstance(schedule, crontab):
        fields.update(crontab=schedule.expression, timezone=schedule.tz or "")
    elif isinstance(schedule, interval):
        fields.update(interval_every=schedule.every, interval_period=schedule.period)
    elif isinstance(schedule, solar):
        fields.update(
            solar_event=schedule.event, solar_latitude=schedule.lat, solar_longitude=schedule.lon
        )
    else:
        fields.update(clocked_time=schedule.at)
    return fields


def _expire_seconds(name: str, expires: Any) -> float | None:
    if expires is None:
        return None
    if isinstance(expires, dt.timedelta):
        return expires.total_seconds()
    if isinstance(expires, (int, float)) and not isinstance(expires, bool) and expires > 0:
        return float(expires)
    raise ValueError(f"DJQ_BEAT_SCHEDULE[{name!r}]: options['expires'] must be seconds")


def entry_hash(fields: dict[str, Any]) -> str:
    """A fingerprint of a settings entry: a row is rewritten only when its entry changes."""
    text = json.dumps(fields, cls=Encoder, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def sync_schedule(schedule: dict | None = None, using: str | None = None) -> dict[str, list[str]]:
    """Make ``PeriodicTask`` rows match ``DJQ_BEAT_SCHEDULE`` (plus the built-in entries).

    Idempotent, keyed by name. An entry whose hash is unchanged leaves its row alone, so admin
    edits survive restarts; a changed entry overwrites its row; a row whose entry is gone is
    disabled (never deleted, its history stays). Invalid entries are logged and skipped.
    """
    using = store.alias(using)
    entries = {**builtin_entries(), **(settings.BEAT_SCHEDULE if schedule is None else schedule)}
    wanted = {}
    for name, entry in entries.items():
        try:
            fields = entry_fields(name, entry)
        except (TypeError, ValueError, ValidationError) as exc:
            logger.error("beat: skipping DJQ_BEAT_SCHEDULE[%r]: %s", name, exc)
            continue
        if entry.get("relative"):
            logger.warning("beat: DJQ_BEAT_SCHEDULE[%r]: %s", name, RELATIVE_IGNORED)
        wanted[name] = (fields, entry_hash(fields))
    report: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": [], "disabled": []}
    with transaction.atomic(using=using):
        rows = PeriodicTask.objects.using(using).filter(name__in=list(wanted))
        existing = {row.name: row for row in rows}
        for name, (fields, digest) in wanted.items():
            row = existing.get(name)
            report[_sync_row(row, name, fields, digest, using)].append(name)
        report["disabled"] = store_rows.disable_synced(wanted, using)
    return report


def _sync_row(row: PeriodicTask | None, name: str, fields: dict, digest: str, using: str) -> str:
    if row is None:
        store_rows.create_periodic_task(using, name=name, settings_hash=digest, **fields)
        return "created"
    if row.settings_hash == digest:
        return "unchanged"
    if any(getattr(row, key) != fields[key] for key in SCHEDULE_FIELDS) or not row.enabled:
        row.next_run_at = None
    for key, value in fields.items():
        setattr(row, key, value)
    row.settings_hash = digest
    store_rows.save_periodic_task(row, using)
    return "updated"


@register()
def check_beat_schedule(app_configs: Any, **kwargs: Any) -> list[Error]:
    """``manage.py check`` reports a bad ``DJQ_BEAT_SCHEDULE`` entry before beat skips it."""
    schedule = settings.BEAT_SCHEDULE
    if not isinstance(schedule, dict):
        return [Error("DJQ_BEAT_SCHEDULE must be a dict of name → entry", id="djq.E010")]
    errors = []
    for name, entry in schedule.items():
        try:
            entry_fields(name, entry)
        except (TypeError, ValueError, ValidationError) as exc:
            errors.append(Error(f"DJQ_BEAT_SCHEDULE[{name!r}]: {exc}", id="djq.E011"))
            continue
        if entry.get("relative"):
            errors.append(
                Warning(f"DJQ_BEAT_SCHEDULE[{name!r}]: {RELATIVE_IGNORED}", id="djq.W011")
            )
    return errors
