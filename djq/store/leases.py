"""Named database leases: at most one live holder of a singleton service at a time.

Beat (``"beat"``), the worker's maintenance (``"djq.maintenance"``, djq.roles.rescuer) and the
statistics rollup (``"djq.stats"``) each run in one process at a time, chosen by a ``Lease`` row:
a holder takes or renews it with one conditional UPDATE (held by me, free, or expired), by the
database clock, so hosts with skewed clocks agree; a dead holder's lease simply runs out and the
next one to ask takes it. A leaf: it reads and writes only its own table.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Case, F, Q, When
from django.db.models.functions import Now

from djq.models import Lease

#: the ``expires_at`` of a lease row created free (any time in the past: a free row is free)
_LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def acquire(holder: str, lease: float, using: str, name: str) -> bool:
    """Take or renew the lease ``name`` for ``lease`` seconds; True when ``holder`` has it."""
    rows = Lease.objects.using(using)
    free = Q(holder=holder) | Q(holder="") | Q(expires_at__lt=Now())
    took = rows.filter(free, name=name).update(
        holder=holder,
        expires_at=Now() + dt.timedelta(seconds=lease),
        acquired_at=Case(When(holder=holder, then=F("acquired_at")), default=Now()),
    )
    if not took and not rows.filter(name=name).exists():  # the very first holder: make the row
        rows.bulk_create(
            [Lease(name=name, holder="", expires_at=_LONG_AGO, acquired_at=_LONG_AGO)],
            ignore_conflicts=True,
        )
        return acquire(holder, lease, using, name)
    return bool(took)


def release(holder: str, using: str, name: str) -> bool:
    """Give the lease up (at shutdown) so that another process takes over at once."""
    rows = Lease.objects.using(using).filter(name=name, holder=holder)
    return bool(rows.update(holder="", expires_at=Now()))


def holder(using: str, name: str) -> str | None:
    """Who holds the lease ``name`` now (by the database clock); None when nobody does."""
    row = Lease.objects.using(using).filter(name=name, expires_at__gte=Now()).exclude(holder="")
    return row.values_list("holder", flat=True).first()
