"""A worker's side of flow control: which limits apply, and claiming through them.

The limits themselves are enforced in the database (``store.claim_limited``); this keeps the
effective limits (refreshed at every control poll) and remembers, for a moment, the tasks and
queues found at their concurrency limit so the worker does not claim and hand back in a loop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from djq import store
from djq.calling.registry import tasks
from djq.conf import settings
from djq.limits import effective_limits, fair_weights
from djq.models import Queue, TaskLimit
from djq.records import Claim

#: how long a worker leaves a task (or queue) alone once it found it at its concurrency limit
SATURATED_BACKOFF = 0.25


class FlowControl:
    def __init__(self, using: str):
        self.using = using
        self.task_limits: dict[str, tuple[float | None, int | None]] = {}  # (jobs/s, running)
        self.queue_limits: dict[str, int] = {}
        self.full_until: dict[tuple[str, str], float] = {}  # ("task"|"queue"|"key", name) → until
        self.keyed: frozenset[str] = frozenset()  # tasks with a concurrency_key
        self.weights: dict[str, float] | None = None  # DJQ_FAIR_KEYS (None: off)

    def refresh(self, queues: Sequence[str]) -> None:
        """A task's own limits, then DJQ_TASK_ANNOTATIONS, then the database's
        (``control.rate_limit`` / ``concurrency_limit``); queue limits from ``Queue`` rows."""
        rows = TaskLimit.objects.using(self.using).values_list(
            "name", "rate_limit", "concurrency_limit"
        )
        self.task_limits = effective_limits(tasks, settings.TASK_ANNOTATIONS or {}, rows)
        if settings.DISABLE_RATE_LIMITS:  # concurrency limits only
            self.task_limits = {
                name: (None, most) for name, (_, most) in self.task_limits.items() if most
            }
        self.keyed = frozenset(n for n, t in tasks.items() if getattr(t, "concurrency_key", None))
        self.weights = fair_weights(settings.FAIR_KEYS)
        self.queue_limits = {
            name: most
            for name, most in Queue.objects.using(self.using)
            .filter(name__in=list(queues), concurrency_limit__isnull=False)
            .values_list("name", "concurrency_limit")
            if most is not None
        }

    def claim(self, worker: str, queues: Sequence[str], room: int, lease: float) -> list[Claim]:
        """Claim up to ``room`` jobs; through the limits when there are any."""
        now = time.monotonic()
        skip = [name for (kind, name), t in self.full_until.items() if kind == "task" and t > now]
        queues = [q for q in queues if self.full_until.get(("queue", q), 0.0) <= now]
        if not queues:
            return []
        fair = None
        if self.keyed and self.weights is not None:  # (no keyed task: the plain claim)
            skip_keys = [n for (kind, n), t in self.full_until.items() if kind == "key" and t > now]
            fair = {"weights": self.weights, "skip_keys": skip_keys}
        if not self.task_limits and not self.queue_limits:
            return store.claim(worker, queues, room, lease, using=self.using, skip=skip, fair=fair)
        jobs, full_tasks, full_queues, full_keys = store.claim_limited(
            worker,
            queues,
            room,
            lease,
            self.task_limits,
            self.queue_limits,
            skip,
            using=self.using,
            keyed=self.keyed,
            fair=fair,
        )
        for key in (
            [("task", n) for n in full_tasks]
            + [("queue", q) for q in full_queues]
            + [("key", k) for k in full_keys]
        ):
            self.full_until[key] = now + SATURATED_BACKOFF
        return jobs
