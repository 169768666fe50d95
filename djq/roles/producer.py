"""The producer: claims due jobs ahead of demand into the worker's local reserve.

Each turn of the worker's loop asks it how much to claim (``room``) and hands it what was
claimed (``claimed``); the pool takes jobs from the reserve as slots free up (``take``):

    no room, or no reason to look (not woken, last claim not full, poll not due) → claim nothing
    ─ prefetching and the reserve still above half → claim nothing (large claims, not one per job)
    ─ else → claim up to the room (one statement, through flow control: djq.flow)
           → the claims are held (heartbeats extend their leases) and wait, RESERVED, in order
           → a full claim means more may be due: look again at once; else poll later (or at the
             next ETA)

The reserve is capped by time as well as count (``unreserve``): jobs that waited ``reserve_wait``
with no free slot go back to the queue, where an idle worker takes them.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from djq import store
from djq.records import Claim
from djq.roles.flow import SATURATED_BACKOFF, FlowControl

if TYPE_CHECKING:  # (for annotations only: the worker imports this module)
    from djq.roles.events import WorkerEvents
    from djq.running.pools import Pool
    from djq.worker import WorkerConfig

logger = logging.getLogger("djq.worker")


class Producer:
    def __init__(
        self,
        config: WorkerConfig,
        held: dict[str, Claim],
        held_lock: threading.Lock,
        events: WorkerEvents,
    ) -> None:
        assert config.using is not None  # (a resolved config: WorkerConfig.resolved())
        self.config = config  # the worker's resolved config: name, queues, lease, poll interval
        self.using = config.using
        self.held = held
        self.held_lock = held_lock
        self.events = events
        self.flow = FlowControl(self.using)  # rate and concurrency limits (djq.flow)
        self.reserve: deque[Claim] = deque()  # claimed, not yet handed to the pool
        self.reserved_at: dict[str, float] = {}  # when each reserved job was claimed
        self.woken = True  # a reason to look now (NOTIFY, start-up, a retry, an outage)
        self.more = False  # the last claim was full: claim again at once
        self.next_poll = 0.0
        self.due_stale = False  # the last claim found the queue empty: ask for the next ETA

    def room(self, pool: Pool, stopping: bool) -> int:
        """How many jobs to claim now (see the module)."""
        if stopping:
            return 0
        # (a resolved config: WorkerConfig.resolved() set both)
        assert self.config.concurrency is not None and self.config.prefetch_multiplier is not None
        capacity = self.config.concurrency * self.config.prefetch_multiplier
        room = min(capacity - pool.busy(), pool.reserve_room(0)) - len(self.reserve)
        if room <= 0 or not (self.woken or self.more or time.monotonic() >= self.next_poll):
            return 0
        if self.config.prefetch_multiplier > 1 and (
            pool.busy() + len(self.reserve) > capacity // 2
        ):
            return 0
        return room

    def claim(self, room: int) -> list[Claim]:
        cfg = self.config
        assert cfg.lease is not None  # (a resolved config)
        # (claims: FlowControl.claim's annotation says dicts, djq.flow is typing debt)
        jobs: list[Any] = self.flow.claim(cfg.name, cfg.queues, room, cfg.lease)
        return jobs

    def claimed(self, jobs: list[Claim], room: int, listening: bool) -> None:
        """Take claimed jobs into the reserve."""
        now = time.monotonic()
        self.woken = False
        self.events.received(jobs)
        with self.held_lock:
            for job in jobs:
                self.held[job.id] = job
        self.reserved_at.update((job.id, now) for job in jobs)
        self.reserve.extend(jobs)
        self.more = len(jobs) == room
        if not self.more:
            self.next_poll = now + self.poll_delay(listening)
            self.due_stale = True  # the queue looked empty: ask for the next ETA (next_due)

    def poll_delay(self, listening: bool) -> float:
        """Until the next look: the poll interval (jittered); ``next_due`` makes it sooner if an
        ETA falls due."""
        assert self.config.poll_interval is not None  # (a resolved config)
        interval = self.config.poll_interval * random.uniform(0.9, 1.1)
        if listening:
            interval *= 5  # NOTIFY wakes us; polling is only the safety net
        return interval

    def next_due(self) -> None:
        """After a claim that found the queue empty, once its jobs are dispatched (so that this
        query is not between a claim and its jobs' start): look sooner if an ETA falls due."""
        if not self.due_stale:
            return
        self.due_stale = False
        due = store.next_due(self.config.queues, using=self.using)
        if due is not None:
            # due jobs we skip (a saturated limit) must not make us spin
            soonest = SATURATED_BACKOFF if self.flow.full_until else 0.001
            self.next_poll = min(self.next_poll, time.monotonic() + max(due, 0.0) + soonest)

    def take(self) -> Claim:
        """The next reserved job for the pool (highest priority first)."""
        job = self.reserve.popleft()
        self.reserved_at.pop(job.id, None)
        return job

    def put_back(self, jobs: list[Claim]) -> None:
        """Jobs a child handed back unstarted: first in line again."""
        self.reserve.extendleft(reversed(jobs))

    def unreserve(self, pool: Pool, stopping: bool) -> None:
        """Cap the reserve by time: jobs queued behind long-running ones are taken back from
        the children, and reserved jobs that waited ``reserve_wait`` with no slot free go back
        to the queue, where an idle worker takes them (NOTIFY wakes it)."""
        pool.reclaim_stuck()
        if not self.reserve or pool.free_slots() > 0 or stopping:
            return
        cutoff = time.monotonic() - pool.reserve_wait
        stale = [job for job in self.reserve if self.reserved_at.get(job.id, 0.0) <= cutoff]
        if not stale:
            return
        self._release(stale)
        logger.info(
            "Handed %d reserved job(s) back to the queue: they waited %.1fs behind running jobs",
            len(stale),
            pool.reserve_wait,
        )

    def release_all(self) -> None:
        """Hand the whole reserve back to the queue (shutdown)."""
        jobs = list(self.reserve)
        if jobs:
            self._release(jobs)
            logger.info("Handed %d unstarted job(s) back to the queue", len(jobs))

    def _release(self, jobs: list[Claim]) -> None:
        store.release(jobs, using=self.using)
        ids = {job.id for job in jobs}
        self.reserve = deque(job for job in self.reserve if job.id not in ids)
        with self.held_lock:
            for job_id in ids:
                self.held.pop(job_id, None)
                self.reserved_at.pop(job_id, None)
