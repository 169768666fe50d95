"""The rescuer: the maintenance that one worker at a time does for all of them.

Every worker has a rescuer, and each of them asks for the database lease ``djq.maintenance``
(djq.leases) every lease/3; the one that holds it — the *elected* worker — then:

    rescue expired leases (reserved jobs and started acks_late ones back to the queue, other
    started ones FAILURE WorkerLostError) → roll up the charts' statistics (djq.stats, when due)
    → delete monitoring events past DJQ_EVENTS_EXPIRES (when due)

The others do nothing more. The lease lives as long as a job's lease (``--lease``), so when the
elected worker dies its lease runs out about when its jobs' leases do, and the next worker to ask
takes the role and rescues them. A warm shutdown gives the lease up, so another worker takes
over at its next turn. Who holds it: the ``djq_lease`` row ``djq.maintenance`` (``holder``), and
the log line ``… elected: runs rescue and maintenance`` of that worker (the others log
``… standing by``).
"""

from __future__ import annotations

import logging
import random
import time

from djq import stats, store
from djq.events import events_expire
from djq.states import PENDING
from djq.store import leases

logger = logging.getLogger("djq.worker")

LEASE_NAME = "djq.maintenance"
#: seconds between two passes of event pruning (the elected worker's)
PRUNE_EVERY = 60.0


class Rescuer:
    """One worker's side of the elected maintenance; ``turn()`` when ``next_turn`` is due."""

    def __init__(self, holder: str, using: str, lease: float):
        self.holder = holder
        self.using = using
        self.lease = lease
        self.elected: bool | None = None  # None: not asked yet
        self.next_turn = 0.0  # monotonic: the first turn at once
        self.next_stats = 0.0
        self.next_prune = 0.0

    def turn(self, grace: float) -> None:
        """Take or renew the lease; if this worker holds it, do what is due.

        ``grace``: seconds after a database restart during which expired leases are left alone
        (``store.rescue``), so that live workers reconnect and extend theirs first.
        """
        now = time.monotonic()
        self.next_turn = now + self.lease / 3 * random.uniform(0.8, 1.2)
        self._elect(leases.acquire(self.holder, self.lease, self.using, LEASE_NAME))
        if not self.elected:
            return
        self.rescue(grace)
        if now >= self.next_stats:
            self.next_stats = now + stats.EVERY
            stats.rollup_safely(self.holder, self.using)
        if now >= self.next_prune:
            self.next_prune = now + PRUNE_EVERY
            store.prune_events(store.db_now(self.using) - events_expire(), using=self.using)

    def rescue(self, grace: float) -> None:
        for job in store.rescue(using=self.using, grace=grace):
            action = "requeued" if job["state"] == PENDING else "failed (WorkerLostError)"
            logger.warning(
                "Rescued %s[%s] from %s: its lease expired; %s",
                job["name"],
                job["id"],
                job["worker"],
                action,
            )

    def hold_off(self, until: float) -> None:
        """No turn before ``until`` (monotonic): after a database outage, peers reconnect first."""
        self.next_turn = max(self.next_turn, until)

    def stop(self) -> None:
        """Give the lease up (warm shutdown): another worker takes the role at its next turn."""
        if self.elected and leases.release(self.holder, self.using, LEASE_NAME):
            logger.info("%s: maintenance lease released", self.holder)
        self.elected = False

    def _elect(self, elected: bool) -> None:
        if elected and not self.elected:
            logger.info(
                "%s elected: runs rescue and maintenance (lease %s)", self.holder, LEASE_NAME
            )
        elif self.elected is None and not elected:
            logger.info(
                "%s: standing by (another worker holds the lease %s)", self.holder, LEASE_NAME
            )
        elif self.elected and not elected:
            logger.warning("%s: lost the maintenance lease to another worker", self.holder)
        self.elected = elected
