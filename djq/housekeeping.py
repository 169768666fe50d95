"""djq's built-in maintenance tasks, scheduled by beat without configuration.

``djq.purge_results`` runs hourly (see ``djq.beat_sync.builtin_entries``) as long as
``DJQ_RESULT_EXPIRES`` is set; ``manage.py djq_purge`` does the same by hand.
"""

from __future__ import annotations

import datetime as dt

from djq import store
from djq.conf import settings
from djq.store import rows as store_rows
from djq.task import task


@task(name="djq.purge_results")
def purge_results() -> dict[str, int]:
    """Delete finished jobs older than ``DJQ_RESULT_EXPIRES`` and beat's tick rows as old.

    Tick rows only guard ticks that beat may still fire; by the time a result expires its tick
    is long behind every schedule's ``next_run_at``, so they go together.
    """
    expires = settings.RESULT_EXPIRES
    if not expires:
        return {"jobs": 0, "ticks": 0}
    if not isinstance(expires, dt.timedelta):
        expires = dt.timedelta(seconds=float(expires))
    using = settings.DATABASE
    before = store.db_now(using) - expires
    jobs = store.purge_finished(before, using=using)
    ticks = store_rows.purge_ticks(before, using)
    return {"jobs": jobs, "ticks": ticks}
