"""The one writer of ``djq_job_log``: each attempt's captured log (``djq.task_log``), written by
the worker in the transaction that records the attempt's outcome. Rows go with their job (the
database cascades the delete), so pruning jobs prunes their logs."""

from __future__ import annotations

from collections.abc import Sequence

from djq.models import JobLog
from djq.records import Outcome
from djq.store import alias


def write(outcomes: Sequence[Outcome], recorded: set[str], using: str | None = None) -> int:
    """Keep the logs of the ``outcomes`` that were recorded (an outcome refused as stale — its
    job rescued or finished elsewhere — keeps none); an attempt's log already kept stays."""
    rows = [
        JobLog(
            job_id=o.id,
            attempt=o.attempt,
            text=o.log["text"],
            truncated=bool(o.log.get("truncated")),
        )
        for o in outcomes
        if o.log and o.id in recorded
    ]
    if not rows:
        return 0
    return len(JobLog.objects.using(alias(using)).bulk_create(rows, ignore_conflicts=True))


def for_job(job_id: str, using: str | None = None) -> list[JobLog]:
    """The job's logs, first attempt first (what its admin page shows)."""
    return list(JobLog.objects.using(alias(using)).filter(job_id=job_id).order_by("attempt"))
