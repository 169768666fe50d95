"""The worker: claim → pool → complete, with heartbeats, rescue and shutdown.

One loop in the main process, single-threaded for the prefork pool (so forking is safe):

    wake (LISTEN / poll) → claim a batch sized to free slots → dispatch to the pool
    → collect outcomes → record them in one statement → heartbeat/rescue when due → wait

Nothing here writes SQL: ``djq.store`` does. Nothing here knows about work-flows: the completion
transaction runs continuations (``djq.continuation``).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from django.db import DatabaseError, InterfaceError, OperationalError, connections, transaction

from . import signals, states, stats, store
from .conf import settings
from .continuation import may_continue
from .execute import report_lost
from .flow import SATURATED_BACKOFF, FlowControl
from .job_guard import checked_limits, guard, safely, validate_row
from .pool import lost_outcome, pool_class
from .registry import tasks
from .remote import Mailbox
from .task import resolve_options
from .waiting import Waiter
from .worker_events import WorkerEvents

logger = logging.getLogger("djq.worker")

#: without NOTIFY on SQLite (a local file: a look costs microseconds), the control table is read
#: this often, so that ``inspect(timeout=0.5)`` is answered inside a timeout shorter than the poll
CONTROL_POLL_SQLITE = 0.1
#: the default node name: Celery's ``celery@%h`` plus the pid, so that two workers started
#: without ``-n`` on one host both run (an explicit ``-n`` held by a live worker is refused)
DEFAULT_NAME = "djq.%p@%h"
#: how long STARTED marks may wait for a completion write to ride along with (seconds): a short
#: job then costs one write for its start and its end; a longer one is shown STARTED after this
STARTED_WRITE_DELAY = 0.05


@dataclass
class WorkerConfig:
    """Everything ``djq_worker`` can be told; defaults from ``DJQ_WORKER_*`` settings."""

    name: str = DEFAULT_NAME
    queues: list[str] = field(default_factory=list)
    concurrency: int | None = None
    pool: str | None = None
    autoscale: tuple[int, int] | None = None
    max_tasks_per_child: int | None = None
    max_memory_per_child: int | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    prefetch_multiplier: int | None = None
    reserve_wait: float | None = None
    lease: float | None = None
    poll_interval: float | None = None
    burst: bool = False
    beat: bool = False
    task_events: bool | None = None  # -E; None: DJQ_WORKER_SEND_TASK_EVENTS
    using: str | None = None
    hostname: str = field(default_factory=socket.gethostname)

    def resolved(self) -> WorkerConfig:
        """A copy with every ``None`` replaced by its setting and ``-n`` expanded."""
        queues = self.queues or [settings.DEFAULT_QUEUE]
        concurrency = self.concurrency or settings.WORKER_CONCURRENCY or os.cpu_count() or 1
        if self.autoscale:
            concurrency = self.autoscale[0]
        return WorkerConfig(
            name=expand_name(self.name, self.hostname),
            queues=list(dict.fromkeys(queues)),
            concurrency=int(concurrency),
            pool=self.pool or settings.WORKER_POOL,
            autoscale=self.autoscale,
            max_tasks_per_child=self.max_tasks_per_child or settings.WORKER_MAX_TASKS_PER_CHILD,
            max_memory_per_child=(
                self.max_memory_per_child or settings.WORKER_MAX_MEMORY_PER_CHILD
            ),
            time_limit=self.time_limit,  # None: the task's or DJQ_TASK_(SOFT_)TIME_LIMIT
            soft_time_limit=self.soft_time_limit,
            prefetch_multiplier=max(
                1, self.prefetch_multiplier or settings.WORKER_PREFETCH_MULTIPLIER
            ),
            reserve_wait=float(
                settings.WORKER_RESERVE_WAIT if self.reserve_wait is None else self.reserve_wait
            ),
            lease=float(self.lease or settings.WORKER_LEASE),
            poll_interval=float(self.poll_interval or settings.WORKER_POLL_INTERVAL),
            burst=self.burst,
            beat=self.beat,
            task_events=self.task_events,
            using=self.using or settings.DATABASE,
            hostname=self.hostname,
        )


def expand_name(name: str, hostname: str) -> str:
    """Celery's node-name expansion: %h host, %n name part, %d domain, %p pid; bare → name@host."""
    short, _, domain = hostname.partition(".")
    expanded = (
        name.replace("%h", hostname).replace("%n", short).replace("%d", domain)
        .replace("%p", str(os.getpid())).replace("%i", "0").replace("%I", "")
    )  # fmt: skip
    return expanded if "@" in expanded else f"{expanded}@{hostname}"


class Worker:
    def __init__(self, config: WorkerConfig):
        self.config = config.resolved()
        self.name = self.config.name
        self.using = self.config.using
        self.pool = None
        self.held: dict[str, dict] = {}  # claimed and not yet recorded, by id
        self.held_lock = threading.Lock()
        self.buffer: deque[dict] = deque()  # claimed, not yet handed to the pool
        self.outcomes: list[dict] = []  # finished, not yet recorded
        self.began: list[dict] = []  # handed to a child, not yet recorded STARTED
        self.began_at = 0.0  # when the oldest of them began
        self.reserved_at: dict[str, float] = {}  # buffered jobs: when they were claimed
        self.revoked: set[str] = set()  # revoked while held (found by the heartbeat)
        self.terminated: set[str] = set()  # of those, the ones already told to terminate
        self.stopping: str | None = None  # "warm" or "cold"
        self.restart = False
        self.processed = self.failed = 0
        self.listener = None
        self.listener_retry_at = 0.0
        self.woken = True
        self.more = False  # the last claim was full: claim again at once
        self.due_stale = False  # the last claim found the queue empty: ask for the next ETA
        self.next_poll = self.next_heartbeat = self.next_rescue = 0.0
        self.next_stats = 0.0  # the charts' rollup (djq.stats; one elected worker writes)
        self.db_failures = 0
        self.heartbeat_thread: threading.Thread | None = None
        self.heartbeat_done = threading.Event()
        self.sig_r, self.sig_w = socket.socketpair()
        self.waiter = Waiter()
        self.started = time.monotonic()
        self.totals: Counter = Counter()  # recorded jobs per task name
        self.flow = FlowControl(self.using)  # rate and concurrency limits (djq.flow)
        self.time_limits: dict[str, tuple] = {}  # set at run time by control.time_limit
        self.mailbox = None
        self.control_due = True
        self.next_control = 0.0
        self.events = WorkerEvents(self, self.config.task_events)  # djq_worker -E (djq.events)

    # --- life cycle ----------------------------------------------------------------------
    def run(self) -> int:
        cfg = self.config
        error = store.register_worker(
            self.name, cfg.hostname, os.getpid(), cfg.queues, cfg.concurrency, cfg.pool,
            cfg.lease, using=self.using,
        )  # fmt: skip
        if error:
            logger.error("%s", error)
            return 2
        self.mailbox = Mailbox(self, self.using)
        self.refresh_limits()
        self._install_signals()
        self.pool = pool_class(cfg.pool)(
            concurrency=cfg.concurrency,
            hostname=self.name,
            max_tasks_per_child=cfg.max_tasks_per_child,
            max_memory_per_child=cfg.max_memory_per_child,
            autoscale=cfg.autoscale,
            depth=cfg.prefetch_multiplier,
            reserve_wait=cfg.reserve_wait,
        )
        self.pool.start()
        beat = None
        if cfg.beat:  # djq.beat in a daemon thread with its own connection (pool children: none)
            from .beat import start_beat_thread

            beat = start_beat_thread(self.using)
        self._connect_listener()
        if cfg.pool != "prefork":
            self._start_heartbeat_thread()
        print(self.banner(), flush=True)
        logger.info("%s ready.", self.name)
        signals.worker_ready.send(sender=self)
        self.events.online()
        try:
            while self.stopping is None:
                if not self._step():
                    continue
                if cfg.burst and self._drained():
                    logger.info("%s: no due job left (--burst): stopping", self.name)
                    break
                self._wait(self._timeout())
        finally:
            if beat is not None:
                beat.stop()  # releases the lease: another beat takes over at once
            self._shutdown()
        if self.restart:
            logger.info("%s: restarting (SIGHUP)", self.name)
            os.execv(sys.executable, [sys.executable, *sys.argv])
        return 0

    def _install_signals(self) -> None:
        self.sig_w.setblocking(False)
        self.sig_r.setblocking(False)
        signal.set_wakeup_fd(self.sig_w.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if signum == signal.SIGQUIT or (signum == signal.SIGINT and self.stopping):
            self.stopping = "cold"
        elif signum == signal.SIGHUP:
            self.restart = True
            self.stopping = self.stopping or "warm"
        else:
            self.stopping = self.stopping or "warm"

    # --- one turn of the loop -------------------------------------------------------------
    def _step(self) -> bool:
        """Dispatch, record, maintain and claim; False when the database failed."""
        try:
            self._dispatch()  # first: children work while we wait on the database below
            self._maintain()  # heartbeats before recording: a slow batch must not cost leases
            self._unreserve()
            self._record_and_fill()
            self._dispatch()
            self._next_due()  # (after the dispatch: the claimed jobs run meanwhile)
            self.events.flush()  # the events of the last turns, in one statement, when due
            self.db_failures = 0
        except (DatabaseError, InterfaceError) as exc:
            self._database_down(exc)
            return False
        except Exception as exc:  # a bug must not kill the worker (and its held jobs)
            logger.exception("Unexpected error in the worker loop")
            self._database_down(exc)
            return False
        return True

    def _record_and_fill(self) -> None:
        """Record the finished batch and claim the next one in one transaction (one commit)
        when both are due; otherwise whichever is."""
        room = self._claim_room()
        if not room or not self.outcomes:
            self._record()
            if room:
                self._claimed(self._claim(room), room)
            return
        batch = self._prepare_batch()
        with transaction.atomic(using=self.using):
            recorded = self._complete(batch)
            jobs = self._claim(room)
        self._recorded(batch, recorded)
        self._claimed(jobs, room)

    def _claim_room(self) -> int:
        """How many jobs to claim now: 0 unless there is room and a reason to look (woken, poll,
        full batch). With prefetching, the reserve is refilled only once it has drained below
        half, so claims come in large batches rather than one per finished job."""
        if self.stopping:
            return 0
        capacity = self._capacity()
        room = min(capacity - self.pool.busy(), self.pool.reserve_room(0)) - len(self.buffer)
        if room <= 0 or not (self.woken or self.more or time.monotonic() >= self.next_poll):
            return 0
        if self.config.prefetch_multiplier > 1 and (
            self.pool.busy() + len(self.buffer) > capacity // 2
        ):
            return 0
        return room

    def _claimed(self, jobs: list[dict], room: int) -> None:
        """Take claimed jobs into the reserve."""
        now = time.monotonic()
        self.woken = False
        self.events.received(jobs)
        with self.held_lock:
            for job in jobs:
                self.held[job["id"]] = job
        claimed_at = time.monotonic()
        self.reserved_at.update((job["id"], claimed_at) for job in jobs)
        self.buffer.extend(jobs)
        self.more = len(jobs) == room
        if not self.more:
            self.next_poll = now + self._poll_delay()
            self.due_stale = True

    def _claim(self, room: int) -> list[dict]:
        return self.flow.claim(self.name, self.config.queues, room, self.config.lease)

    def refresh_limits(self) -> None:
        self.flow.refresh(self.config.queues)

    def set_queues(self, queues: list[str]) -> None:
        """add_consumer / cancel_consumer: take jobs of these queues from now on."""
        from .models import Worker as WorkerRow

        self.config.queues = list(dict.fromkeys(queues))
        WorkerRow.objects.using(self.using).filter(name=self.name).update(queues=self.config.queues)
        self.refresh_limits()
        self.woken = True

    def _poll_delay(self) -> float:
        """Until the next look: the poll interval (jittered); ``_next_due`` makes it sooner if
        an ETA falls due."""
        interval = self.config.poll_interval * random.uniform(0.9, 1.1)
        if self.listener is not None:
            interval *= 5  # NOTIFY wakes us; polling is only the safety net
        return interval

    def _next_due(self) -> None:
        """After a claim that found the queue empty (and once its jobs are dispatched, so that
        this query is not between a claim and its jobs' start): look sooner if an ETA is due."""
        if not self.due_stale:
            return
        self.due_stale = False
        due = store.next_due(self.config.queues, using=self.using)
        if due is not None:
            # due jobs we skip (a saturated limit) must not make us spin
            soonest = SATURATED_BACKOFF if self.flow.full_until else 0.001
            self.next_poll = min(self.next_poll, time.monotonic() + max(due, 0.0) + soonest)

    def _dispatch(self) -> None:
        # (not once stopping: the solo pool runs jobs inline, so a SIGTERM lands in the middle
        # of this loop, and the jobs still in the buffer must be handed back, not started)
        while self.buffer and self.pool.free_slots() > 0 and not self.stopping:
            job = self.buffer.popleft()
            self.reserved_at.pop(job["id"], None)
            with guard(job, self.outcomes):  # a job that cannot be handled ends FAILURE
                self._dispatch_one(job)

    def _dispatch_one(self, job: dict) -> None:
        if job["expired"]:
            logger.info("Task %s[%s] expired: revoked", job["name"], job["id"])
            self.outcomes.append(store.expire_outcome(job) | {"name": job["name"]})
            return
        if job["id"] in self.revoked or job["revoked"]:  # (revoked while held elsewhere)
            self.outcomes.append(_revoked_outcome(job))
            return
        soft, hard = self._limits(job)
        logger.info("Task %s[%s] received", job["name"], job["id"])
        self.events.started(job)
        self.pool.submit(job, soft, hard)

    def _limits(self, job: dict) -> tuple[float | None, float | None]:
        """The job's (soft, hard) time limits; the row is checked first (djq.job_guard)."""
        options = validate_row(job)
        if job["name"] in self.time_limits:  # changed at run time (control.time_limit)
            return checked_limits(job["name"], *self.time_limits[job["name"]])
        task = tasks.get(job["name"]) if job["name"] in tasks else None
        cfg = self.config
        limits = resolve_options(task, options, cfg.time_limit, cfg.soft_time_limit)
        return checked_limits(job["name"], limits["soft_time_limit"], limits["time_limit"])

    def _wait(self, timeout: float) -> None:
        waitables = [self.sig_r, *self.pool.waitables()]
        if self.listener is not None:
            waitables.append(self.listener)
        ready = self.waiter.wait(waitables, timeout)
        if self.sig_r in ready:
            try:
                while self.sig_r.recv(4096):
                    pass
            except BlockingIOError:
                pass
        if self.listener is not None and self.listener in ready:
            self._drain_listener()
        finished = self.pool.collect([r for r in ready if r is not self.sig_r])
        finished.extend(self.pool.check_limits(time.monotonic()))
        # (after check_limits: a child killed at its hard limit hands back its queue too)
        if self.pool.unstarted:  # handed back by a child that stopped or died: run elsewhere
            self.buffer.extendleft(reversed(self.pool.unstarted))
            self.pool.unstarted.clear()
        self.outcomes.extend(finished)

    def _timeout(self) -> float:
        if self.stopping:
            return 0.0
        now = time.monotonic()
        if self.outcomes:
            return 0.0
        self._take_began()
        room = self.pool.free_slots() > 0 and not self.buffer
        if room and (self.woken or self.more):
            return 0.0
        moments = [self.next_heartbeat, self.next_rescue, self.events.deadline()]
        if self.mailbox is not None and self.listener is None:
            moments.append(self.next_control)
        if self.began:
            moments.append(self.began_at + STARTED_WRITE_DELAY)
        if self.buffer or self.pool.busy() > self.pool.alive():
            moments.append(now + self.pool.reserve_wait / 2)  # (_unreserve, reclaim_stuck)
        if room:
            moments.append(self.next_poll)
        if self.listener is None and self.config.using and self._wants_listener():
            moments.append(self.listener_retry_at)
        deadline = self.pool.next_deadline()
        if deadline:
            moments.append(deadline)
        return max(0.0, min(moments) - now)

    # --- recording ----------------------------------------------------------------------
    def _record(self, force: bool = False) -> None:
        """Record finished jobs, and jobs that started, in one statement, with no delay.

        What finishes while a write is in flight is collected by the next turn of the loop and
        goes into the next write: under load each write carries many jobs, and an idle worker
        writes at once.
        """
        if not self.outcomes:
            self._take_began()
            if self.began and (force or time.monotonic() - self.began_at >= STARTED_WRITE_DELAY):
                store.mark_started(self.began, using=self.using)
                self.began = []
            return
        batch = self._prepare_batch()
        self._recorded(batch, self._complete(batch))

    def _take_began(self) -> None:
        began = self.pool.take_began()
        if began and not self.began:
            self.began_at = time.monotonic()
        self.began.extend(began)

    def _prepare_batch(self) -> list[dict]:
        self._take_began()
        batch = self.outcomes
        for outcome in batch:  # (a job failed by the guard has none: "continues" is False)
            if "continues" not in outcome:
                outcome["continues"] = may_continue(self.held.get(outcome["id"], {}).get("options"))
        return batch

    def _recorded(self, batch: list[dict], recorded: set[str]) -> None:
        """After the batch's write committed: forget its jobs, log them, run lost-job hooks."""
        self.outcomes = []
        self.began = []
        with self.held_lock:
            jobs = {outcome["id"]: self.held.pop(outcome["id"], None) for outcome in batch}
        self.events.recorded(batch, recorded, jobs)
        for outcome in batch:
            self._log_outcome(outcome, outcome["id"] in recorded)
            if outcome.get("lost") and outcome["id"] in recorded and jobs[outcome["id"]]:
                safely(report_lost, jobs[outcome["id"]], outcome)
            if outcome["state"] in states.WAITING_STATES:
                self.woken = True  # a retry: learn its ETA at the next claim

    def _complete(self, batch: list[dict]) -> set[str]:
        """Record a batch; when the database refuses it (not an outage: bad data), record the
        outcomes one by one, and an outcome it refuses as a FAILURE saying why."""
        try:
            # (a savepoint when the claim shares the transaction: a refused batch must not
            # abort the claim, nor the one-by-one retry below)
            with transaction.atomic(using=self.using):
                rows = store.complete(batch, using=self.using, started=self.began)
            return {row["id"] for row in rows}
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            if len(batch) == 1 and batch[0].get("unstorable"):
                raise
            logger.exception("Recording %d outcome(s) failed; recording one by one", len(batch))
        recorded: set[str] = set()
        for outcome in batch:
            try:
                recorded |= self._complete([outcome])
            except (OperationalError, InterfaceError):
                raise
            except Exception as exc:
                recorded |= self._unstorable(outcome, exc)
        return recorded

    def _unreserve(self) -> None:
        """Cap the reserve by time: jobs queued behind long-running ones are taken back from
        the children, and buffered jobs that waited ``reserve_wait`` with no slot free go back
        to the queue, where an idle worker takes them (NOTIFY wakes it)."""
        self.pool.reclaim_stuck()
        if not self.buffer or self.pool.free_slots() > 0 or self.stopping:
            return
        cutoff = time.monotonic() - self.pool.reserve_wait
        stale = [job for job in self.buffer if self.reserved_at.get(job["id"], 0.0) <= cutoff]
        if not stale:
            return
        store.release(stale, using=self.using)
        ids = {job["id"] for job in stale}
        self.buffer = deque(job for job in self.buffer if job["id"] not in ids)
        with self.held_lock:
            for job_id in ids:
                self.held.pop(job_id, None)
                self.reserved_at.pop(job_id, None)
        logger.info("Handed %d reserved job(s) back to the queue: they waited %.1fs behind "
                    "running jobs", len(stale), self.pool.reserve_wait)  # fmt: skip

    def _unstorable(self, outcome: dict, exc: BaseException) -> set[str]:
        """Record a FAILURE saying why the outcome could not be stored; if even that is refused,
        give the job up (not held: its lease runs out and the rescuer takes it)."""
        try:
            return self._complete([_unstorable(outcome, exc)])
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            logger.exception("Could not record job %s at all; left to the rescuer", outcome["id"])
            return set()

    def _capacity(self) -> int:
        return self.config.concurrency * self.config.prefetch_multiplier

    def _log_outcome(self, outcome: dict, recorded: bool) -> None:
        name, job_id, state = outcome.get("name"), outcome["id"], outcome["state"]
        if not recorded:
            logger.warning(
                "Discarded the late result of %s[%s] (attempt %s, %s): the job was rescued or "
                "finished elsewhere", name, job_id, outcome["attempt"], state,
            )  # fmt: skip
            return
        self.processed += 1
        self.totals[name] += 1
        runtime = outcome.get("runtime") or 0.0
        if state == states.SUCCESS:
            logger.info("Task %s[%s] succeeded in %.3fs: %s", name, job_id, runtime,
                        outcome.get("repr", ""))  # fmt: skip
        elif state == states.FAILURE and outcome.get("expected"):  # in the task's ``throws``
            self.failed += 1
            logger.info("Task %s[%s] raised expected: %s", name, job_id, outcome.get("repr"))
        elif state == states.FAILURE:
            self.failed += 1
            logger.error("Task %s[%s] raised unexpected: %s", name, job_id, outcome.get("repr"))
            if outcome.get("traceback"):
                logger.error("%s", outcome["traceback"].rstrip())
        elif state == states.RETRY:
            logger.info("Task %s[%s] retry: %s", name, job_id, outcome.get("repr"))
        elif state == states.REVOKED:
            logger.info("Task %s[%s] revoked: %s", name, job_id, outcome.get("repr", ""))
            signals.task_revoked.send(sender=name, request=job_id, terminated=True,
                                      signum=None, expired=False)  # fmt: skip
        else:
            logger.info("Task %s[%s] %s: %s", name, job_id, state.lower(), outcome.get("repr"))

    # --- heartbeats and rescue -------------------------------------------------------------
    def _maintain(self) -> None:
        now = time.monotonic()
        if self.heartbeat_thread is None and now >= self.next_heartbeat:
            self.heartbeat()
        if now >= self.next_rescue:
            self.next_rescue = now + self.config.lease / 3 * random.uniform(0.8, 1.2)
            for job in store.rescue(using=self.using, grace=self._rescue_grace()):
                requeued = job["state"] == states.PENDING
                action = "requeued" if requeued else "failed (WorkerLostError)"
                logger.warning("Rescued %s[%s] from %s: its lease expired; %s",
                               job["name"], job["id"], job["worker"], action)  # fmt: skip
        if now >= self.next_stats:
            self.next_stats = now + stats.EVERY
            stats.rollup_safely(self.name, self.using)
        if self.listener is None and self._wants_listener() and now >= self.listener_retry_at:
            self._connect_listener()
        if self.mailbox is not None and (self.control_due or now >= self.next_control):
            self.control_due = False
            self.next_control = now + self._control_interval()
            self.refresh_limits()
            self.mailbox.poll()

    def _control_interval(self) -> float:
        if self.listener is not None:
            return self.config.lease / 3
        if connections[self.using].vendor == "sqlite":
            return min(self.config.poll_interval, CONTROL_POLL_SQLITE)
        return self.config.poll_interval

    def _backoff_cap(self) -> float:
        """The longest wait between reconnection attempts: a sixth of the lease (at most 10 s),
        so that a worker is back well before its leases can be rescued after an outage."""
        return min(10.0, self.config.lease / 6)

    def _rescue_grace(self) -> float:
        """How long after a database outage (seen by this worker, or a server restart seen by
        any) leases are left alone: every live worker has retried by then (its backoff is
        capped at lease/6, +20 % jitter) and extended its own."""
        return self.config.lease / 2

    def heartbeat(self) -> None:
        """Extend the leases of held jobs, refresh the Worker row, act on revokes."""
        interval = self.config.lease / 3
        if self.listener is None:  # no NOTIFY for revokes: look for them at every poll
            interval = min(interval, self.config.poll_interval)
        self.next_heartbeat = time.monotonic() + interval
        with self.held_lock:
            ids = list(self.held)
        rows = store.heartbeat(
            self.name, ids, self.config.lease, self.processed, self.failed, using=self.using
        )
        for job_id, _attempt, revoked, signame in rows:
            # a plain revoke first, then one with terminate: act on the second one too
            if not revoked or job_id in (self.terminated if signame else self.revoked):
                continue
            self.revoked.add(job_id)
            if signame:
                self.terminated.add(job_id)
            if self.pool is None or self.heartbeat_thread is not None:
                continue  # another thread: the main loop skips it at dispatch
            if signame and self.pool.terminate(job_id, signame):
                logger.info("Terminating %s with %s (revoked)", job_id, signame)
            elif not signame:
                logger.info("Revoked %s: not started jobs are skipped, a running one runs to "
                            "its end (revoke with terminate=True to kill it)", job_id)  # fmt: skip
                self.pool.skip(job_id)
        self.events.heartbeat()

    def _start_heartbeat_thread(self) -> None:
        def beat():
            # until the shutdown is over (not when it starts: running jobs need their leases)
            while not self.heartbeat_done.is_set():
                try:
                    self.heartbeat()
                except Exception:
                    logger.exception("heartbeat failed")
                    connections[self.using].close()
                if self.heartbeat_done.wait(self.config.lease / 3):
                    break
            connections.close_all()

        self.heartbeat_thread = threading.Thread(target=beat, name="djq-heartbeat", daemon=True)
        self.heartbeat_thread.start()

    # --- wake-ups ------------------------------------------------------------------------
    def _wants_listener(self) -> bool:
        return settings.LISTEN and connections[self.using].vendor == "postgresql"

    def _connect_listener(self) -> None:
        if not self._wants_listener():
            return
        from .db.postgres import CONTROL_CHANNEL, JOBS_CHANNEL
        from .listen import Listener

        listener = Listener(self.using, [JOBS_CHANNEL, CONTROL_CHANNEL])
        try:
            listener.connect()
        except Exception as exc:
            logger.warning("LISTEN connection failed (%s); polling until it is back", exc)
            self.listener_retry_at = time.monotonic() + 5
            return
        self.listener = listener
        self.woken = True  # we may have missed notifications while disconnected

    def _drain_listener(self) -> None:
        try:
            notes = self.listener.drain()
        except Exception as exc:
            logger.warning("LISTEN connection lost (%s); polling until it is back", exc)
            self.listener.close()
            self.listener = None
            self.listener_retry_at = time.monotonic() + 1
            return
        queues = self.config.queues
        for channel, payload in notes:
            if channel == "djq_control" and payload == "broadcast":
                self.control_due = True  # a remote-control command: read it now
            elif channel == "djq_control":
                self.next_heartbeat = 0.0  # look for revokes now
            elif payload in queues:
                self.woken = True

    # --- failures and shutdown -----------------------------------------------------------
    def _database_down(self, exc: Exception) -> None:
        self.db_failures += 1
        delay = min(self._backoff_cap(), 0.1 * 2**self.db_failures) * random.uniform(0.8, 1.2)
        logger.warning("Database unavailable (%s: %s); retrying in %.1fs",
                       type(exc).__name__, str(exc).strip(), delay)  # fmt: skip
        # Once back, leave expired leases alone for a while: peers reconnect on their own
        # backoff (and a crashed server may spend seconds in recovery before it accepts them).
        self.next_rescue = max(self.next_rescue, time.monotonic() + delay + self._rescue_grace())
        try:
            connections[self.using].close()
        except Exception:
            pass
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            self.listener_retry_at = 0.0
        self.woken = True
        # Sit out the whole delay (a child's answer would end a single _wait early, and the
        # backoff would run up to its maximum in milliseconds); a signal cuts it short.
        deadline, stopping = time.monotonic() + delay, self.stopping
        while self.stopping == stopping and (left := deadline - time.monotonic()) > 0:
            self._wait(left)

    def _drained(self) -> bool:
        if self.buffer or self.outcomes or self.pool.busy() or self.more or self.woken:
            return False
        due = store.next_due(self.config.queues, using=self.using)
        return due is None or due > 0

    def _shutdown(self) -> None:
        """Warm: stop claiming, hand unstarted jobs back, let running ones finish, record.
        Cold: kill the pool; running acks_late jobs go back to the queue, others fail."""
        if self.pool is None:
            return
        logger.info("%s: %s shutdown", self.name, self.stopping or "warm")
        self._with_database(self._release_buffer)
        if self.stopping != "cold":
            self.pool.begin_stop()
        while self.stopping != "cold" and self.pool.busy():
            self._wait(min(1.0, self.config.lease / 6))
            if self.heartbeat_thread is None and time.monotonic() >= self.next_heartbeat:
                self._with_database(self.heartbeat)  # running jobs keep their leases
            self._with_database(lambda: self._record(force=True))
            self._with_database(self._release_buffer)
        if self.stopping == "cold":
            for job in self.pool.kill_all():
                self.outcomes.append(_cold_outcome(job))
            self.buffer.extend(self.pool.unstarted)
            self.pool.unstarted.clear()
        else:
            self.pool.stop()
        self._with_database(lambda: self._record(force=True))
        self._with_database(self._release_buffer)
        self._with_database(
            lambda: store.stop_worker(self.name, self.processed, self.failed, using=self.using)
        )
        self._with_database(self.events.offline)
        if self.listener is not None:
            self.listener.close()
        self.heartbeat_done.set()
        signals.worker_shutdown.send(sender=self)
        logger.info("%s stopped (%d jobs, %d failed)", self.name, self.processed, self.failed)

    def _release_buffer(self) -> None:
        jobs = list(self.buffer)
        if jobs:
            store.release(jobs, using=self.using)
            self.buffer.clear()
            with self.held_lock:
                for job in jobs:
                    self.held.pop(job["id"], None)
            logger.info("Handed %d unstarted job(s) back to the queue", len(jobs))

    def _with_database(self, action, attempts: int = 30) -> None:
        """Run a shutdown write, retrying through a database outage for a while."""
        for attempt in range(attempts):
            try:
                action()
                return
            except (DatabaseError, InterfaceError) as exc:
                if self.stopping == "cold" and attempt > 2:
                    break
                self._database_down(exc)
        logger.error("%s: could not reach the database during shutdown", self.name)

    def banner(self) -> str:
        from .banner import banner

        return banner(self)


def _unstorable(outcome: dict, exc: BaseException) -> dict:
    """The FAILURE recorded instead of an outcome the database refused to store."""
    error = RuntimeError(f"the job's outcome ({outcome['state']}) could not be stored: "
                         f"{type(exc).__name__}: {exc}")  # fmt: skip
    return {**lost_outcome({**outcome, "name": outcome.get("name")}, error),
            "lost": False, "unstorable": True, "continues": True}  # fmt: skip


def _revoked_outcome(job: dict) -> dict:
    from .exceptions import TaskRevokedError

    exc = TaskRevokedError("revoked before it started")
    return lost_outcome(job, exc, state=states.REVOKED) | {"started": False}


def _cold_outcome(job: dict) -> dict:
    """A job killed by a cold shutdown: back to the queue if acks_late, else WorkerLostError."""
    from .exceptions import WorkerLostError

    if job.get("acks_late"):
        return {"id": job["id"], "attempt": job["attempt"], "name": job["name"],
                "state": states.PENDING, "result": None, "keep_result": False,
                "countdown": 0, "repr": "requeued (cold shutdown)"}  # fmt: skip
    return lost_outcome(job, WorkerLostError("Worker exited prematurely: cold shutdown."))
