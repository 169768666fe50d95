"""The worker: claim → pool → complete, with heartbeats, rescue and shutdown.

The Worker composes its roles (``djq.roles``) and runs their loop in the main process,
single-threaded for the prefork pool (so forking is safe):

    wake (LISTEN / poll) → producer: claim a batch into the reserve → dispatch to the pool
    → collect outcomes → completer: record them in one statement (with the next claim, in one
    transaction, when both are due) → heartbeat when due → rescuer: maintenance, if elected
    → wait

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
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from django.db import DatabaseError, InterfaceError, connections, transaction

from djq import records, signals, store
from djq.beat import start_beat_thread
from djq.calling.registry import tasks
from djq.conf import settings
from djq.exceptions import TaskRevokedError, WorkerLostError
from djq.job_guard import checked_limits, guard, validate_row
from djq.listen import Listener
from djq.options import resolve_options
from djq.records import Claim, Outcome
from djq.roles.banner import banner
from djq.roles.completer import Completer
from djq.roles.events import WorkerEvents
from djq.roles.flow import FlowControl
from djq.roles.producer import Producer
from djq.roles.remote import Mailbox
from djq.roles.rescuer import Rescuer
from djq.running.pools import Pool, pool_class
from djq.running.waiting import Waiter
from djq.store import rows as store_rows
from djq.store.postgres import CONTROL_CHANNEL, JOBS_CHANNEL

logger = logging.getLogger("djq.worker")

#: without NOTIFY on SQLite (a local file: a look costs microseconds), the control table is read
#: this often, so that ``inspect(timeout=0.5)`` is answered inside a timeout shorter than the poll
CONTROL_POLL_SQLITE = 0.1
#: the default node name: Celery's ``celery@%h`` plus the pid, so that two workers started
#: without ``-n`` on one host both run (an explicit ``-n`` held by a live worker is refused)
DEFAULT_NAME = "djq.%p@%h"


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

    def resolved(self) -> ResolvedWorkerConfig:
        """A copy with every ``None`` replaced by its setting and ``-n`` expanded."""
        queues = self.queues or [settings.DEFAULT_QUEUE]
        concurrency = self.concurrency or settings.WORKER_CONCURRENCY or os.cpu_count() or 1
        if self.autoscale:
            concurrency = self.autoscale[0]
        return ResolvedWorkerConfig(
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


@dataclass
class ResolvedWorkerConfig(WorkerConfig):
    """``WorkerConfig.resolved()``: the options the settings fill in are set (not ``None``)."""

    concurrency: int = 1
    pool: str = "prefork"
    prefetch_multiplier: int = 1
    reserve_wait: float = 1.0
    lease: float = 30.0
    poll_interval: float = 1.0
    using: str = "default"


def expand_name(name: str, hostname: str) -> str:
    """Celery's node-name expansion: %h host, %n name part, %d domain, %p pid; bare → name@host."""
    short, _, domain = hostname.partition(".")
    expanded = (
        name.replace("%h", hostname)
        .replace("%n", short)
        .replace("%d", domain)
        .replace("%p", str(os.getpid()))
        .replace("%i", "0")
        .replace("%I", "")
    )
    return expanded if "@" in expanded else f"{expanded}@{hostname}"


class Worker:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config.resolved()
        self.name = self.config.name
        self.using = self.config.using
        self.pool: Pool | None = None  # made by run()
        self.held: dict[str, Claim] = {}  # claimed and not yet recorded, by id
        self.held_lock = threading.Lock()
        self.revoked: set[str] = set()  # revoked while held (found by the heartbeat)
        self.terminated: set[str] = set()  # of those, the ones already told to terminate
        self.stopping: str | None = None  # "warm" or "cold"
        self.restart = False
        self.listener: Listener | None = None
        self.listener_retry_at = 0.0
        self.next_heartbeat = 0.0
        # rescue and maintenance: done by the worker elected by a database lease (roles.rescuer)
        self.rescuer = Rescuer(self.name, self.using, self.config.lease)
        self.db_failures = 0
        self.remark = False  # after an outage: mark the running jobs again (see _remark)
        self.heartbeat_thread: threading.Thread | None = None
        self.heartbeat_done = threading.Event()
        self.sig_r, self.sig_w = socket.socketpair()
        self.waiter = Waiter()
        self.started = time.monotonic()
        self.time_limits: dict[
            str, tuple[float | None, float | None]
        ] = {}  # set at run time by control.time_limit
        self.mailbox: Mailbox | None = None
        self.control_due = True
        self.next_control = 0.0
        self.events = WorkerEvents(self, self.config.task_events)  # djq_worker -E (djq.events)
        # outcomes and STARTED marks, recorded in batches as they come (roles.completer)
        self.completer = Completer(
            self.using, self.held, self.held_lock, self.events, granted=self._granted
        )
        # claims ahead of demand into the reserve (roles.producer)
        self.producer = Producer(self.config, self.held, self.held_lock, self.events)

    @property
    def buffer(self) -> deque[Claim]:
        """The reserve: claimed jobs not yet handed to the pool (``inspect().reserved()``)."""
        return self.producer.reserve

    @property
    def _pool(self) -> Pool:
        """The pool, for the loop's methods: they run inside ``run``, which made it."""
        assert self.pool is not None
        return self.pool

    @property
    def flow(self) -> FlowControl:
        return self.producer.flow

    @property
    def processed(self) -> int:
        return self.completer.processed

    @property
    def failed(self) -> int:
        return self.completer.failed

    @property
    def totals(self) -> Counter[str | None]:
        """Recorded jobs per task name (``inspect().stats()``)."""
        return self.completer.totals

    # --- life cycle ----------------------------------------------------------------------
    def run(self) -> int:
        cfg = self.config
        error = store.register_worker(
            self.name,
            cfg.hostname,
            os.getpid(),
            cfg.queues,
            cfg.concurrency,
            cfg.pool,
            cfg.lease,
            using=self.using,
        )
        if error:
            logger.error("%s", error)
            return 2
        self.mailbox = Mailbox(self, self.using)
        self.refresh_limits()
        self._install_signals()
        self.pool = pool = pool_class(cfg.pool)(
            concurrency=cfg.concurrency,
            hostname=self.name,
            max_tasks_per_child=cfg.max_tasks_per_child,
            max_memory_per_child=cfg.max_memory_per_child,
            autoscale=cfg.autoscale,
            depth=cfg.prefetch_multiplier,
            reserve_wait=cfg.reserve_wait,
            using=self.using,  # (prefork: where its children mark their jobs STARTED)
        )
        pool.start_now = self._start_now  # (the solo pool asks inline, in this thread)
        pool.start()
        beat = None
        if cfg.beat:  # djq.beat in a daemon thread with its own connection (pool children: none)
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

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
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
            self._remark()
            self._maintain()  # heartbeats before recording: a slow batch must not cost leases
            self.producer.unreserve(self._pool, bool(self.stopping))
            self._record_and_fill()
            self._dispatch()
            self.producer.next_due()  # (after the dispatch: the claimed jobs run meanwhile)
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
        producer, completer = self.producer, self.completer
        room = producer.room(self._pool, bool(self.stopping))
        self._take_began()
        completer.mark()  # (first, alone: children wait for it; outcomes wait for nobody)
        # (a claim commits anyway: the outcomes waiting ride along, due or not)
        if not room or not completer.outcomes:
            self._record()
            if room:
                producer.claimed(producer.claim(room), room, self.listener is not None)
            return
        batch = completer.batch()
        with transaction.atomic(using=self.using):
            recorded = completer.write(batch)
            jobs = producer.claim(room)
        if completer.done(batch, recorded):
            producer.woken = True  # a retry: learn its ETA at the next claim
        producer.claimed(jobs, room, self.listener is not None)

    def refresh_limits(self) -> None:
        self.flow.refresh(self.config.queues)

    def set_queues(self, queues: list[str]) -> None:
        """add_consumer / cancel_consumer: take jobs of these queues from now on."""
        self.config.queues = list(dict.fromkeys(queues))
        store_rows.set_worker_queues(self.name, self.config.queues, self.using)
        self.refresh_limits()
        self.producer.woken = True

    def _dispatch(self) -> None:
        # (not once stopping: the solo pool runs jobs inline, so a SIGTERM lands in the middle
        # of this loop, and the jobs still in the buffer must be handed back, not started)
        while self.buffer and self._pool.free_slots() > 0 and not self.stopping:
            job = self.producer.take()
            with guard(job, self.completer.outcomes):  # a job that cannot be handled ends FAILURE
                self._dispatch_one(job)

    def _dispatch_one(self, job: Claim) -> None:
        if job.expired:
            logger.info("Task %s[%s] expired: revoked", job.name, job.id)
            self.completer.add([store.expire_outcome(job)])
            return
        if job.id in self.revoked or job.revoked:  # (revoked while held elsewhere)
            self.completer.add([_revoked_outcome(job)])
            return
        soft, hard = self._limits(job)
        logger.info("Task %s[%s] received", job.name, job.id)
        self.events.started(job)
        self._pool.submit(job, soft, hard)

    def _limits(self, job: Claim) -> tuple[float | None, float | None]:
        """The job's (soft, hard) time limits; the row is checked first (djq.job_guard)."""
        options = validate_row(job)
        if job.name in self.time_limits:  # changed at run time (control.time_limit)
            return checked_limits(job.name, *self.time_limits[job.name])
        task = tasks.get(job.name) if job.name in tasks else None
        cfg = self.config
        limits = resolve_options(task, options, cfg.time_limit, cfg.soft_time_limit)
        return checked_limits(job.name, limits["soft_time_limit"], limits["time_limit"])

    def _wait(self, timeout: float) -> None:
        waitables = [self.sig_r, *self._pool.waitables()]
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
        finished = self._pool.collect([r for r in ready if r is not self.sig_r])
        finished.extend(self._pool.check_limits(time.monotonic()))
        # (after check_limits: a child killed at its hard limit hands back its queue too)
        # (a child that died while asking to begin: its job is not to be marked STARTED)
        self.completer.withdraw(self._pool.take_withdrawn())
        if self._pool.refused:  # a child's own mark was refused: the job is not ours any more
            refused, self._pool.refused = self._pool.refused, []
            self._granted(refused, set())
        if self._pool.unstarted:  # handed back by a child that stopped or died: run elsewhere
            self.producer.put_back(self._pool.unstarted)
            self._pool.unstarted.clear()
        self.completer.add(finished)

    def _timeout(self) -> float:
        if self.stopping:
            return 0.0
        now = time.monotonic()
        self._take_began()
        if self.completer.began or self.completer.due(self._idle()):
            return 0.0  # (children waiting for their go-ahead, or outcomes due)
        room = self._pool.free_slots() > 0 and not self.buffer
        if room and (self.producer.woken or self.producer.more):
            return 0.0
        moments = [self.next_heartbeat, self.rescuer.next_turn, self.events.deadline()]
        if (outcomes := self.completer.deadline()) is not None:
            moments.append(outcomes)
        if self.mailbox is not None and self.listener is None:
            moments.append(self.next_control)
        if self.buffer or self._pool.busy() > self._pool.alive():
            moments.append(now + self._pool.reserve_wait / 2)  # (_unreserve, reclaim_stuck)
        if room:
            moments.append(self.producer.next_poll)
        if self.listener is None and self.config.using and self._wants_listener():
            moments.append(self.listener_retry_at)
        deadline = self._pool.next_deadline()
        if deadline:
            moments.append(deadline)
        return max(0.0, min(moments) - now)

    # --- recording (djq.roles.completer) --------------------------------------------------
    def _record(self, force: bool = False) -> None:
        self._take_began()
        if self.completer.record(force, idle=self._idle()):
            self.producer.woken = True  # a retry: learn its ETA at the next claim

    def _remark(self) -> None:
        """Back from a database outage: the marks of the running jobs again, durably. (A mark
        is committed without waiting for the disk: a crash of the server may have lost the last
        ones, and a job read RESERVED would be requeued if this worker died before recording
        it; a mark is idempotent for its claim, and one for a job rescued meanwhile is refused.)"""
        if self.remark:
            store.mark_started(self._pool.started_jobs(), using=self.using)
            self.remark = False

    def _idle(self) -> bool:
        """No job in the pool: outcomes are written at once (nothing more to gather)."""
        return self.pool is None or not self.pool.busy()

    def _take_began(self) -> None:
        self.completer.took(self._pool.take_began())

    def _granted(self, asked: list[Claim], marked: set[str]) -> None:
        """After the commit of their STARTED marks: the pool lets the marked jobs run. A job
        whose mark was refused is no longer this worker's (its lease ran out and it was
        rescued, or it ended elsewhere): it is not run, and forgotten here."""
        self._pool.grant(asked, marked)
        for job in asked:
            if job.id not in marked:
                with self.held_lock:
                    self.held.pop(job.id, None)
                logger.warning(
                    "Task %s[%s] not started: the job is no longer held by %s (rescued or "
                    "finished elsewhere)",
                    job.name,
                    job.id,
                    self.name,
                )

    def _start_now(self, job: Claim) -> None:
        """The solo pool runs a job inline: its STARTED mark is written now, with the outcomes
        waiting to be recorded, in one statement (then ``_granted`` answers the pool)."""
        self.completer.took([job])
        try:
            self._record()
        except BaseException:
            self.completer.withdraw({job.id})  # (back to the reserve: see SoloPool.submit)
            raise

    # --- heartbeats and rescue -------------------------------------------------------------
    def _maintain(self) -> None:
        now = time.monotonic()
        if self.heartbeat_thread is None and now >= self.next_heartbeat:
            self.heartbeat()
        if now >= self.rescuer.next_turn:
            self.rescuer.turn(grace=self._rescue_grace())
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
            if self.pool is None:
                continue
            if self.heartbeat_thread is not None and not (
                signame and getattr(self.pool, "threadsafe_stop", False)
            ):
                continue  # another thread: the main loop skips it at dispatch
            if signame and self.pool.terminate(job_id, signame):
                logger.info("Terminating %s with %s (revoked)", job_id, signame)
            elif not signame:
                logger.info(
                    "Revoked %s: not started jobs are skipped, a running one runs to "
                    "its end (revoke with terminate=True to kill it)",
                    job_id,
                )
                self.pool.skip(job_id)
        self.events.heartbeat()

    def _start_heartbeat_thread(self) -> None:
        def beat() -> None:
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

        listener = Listener(self.using, [JOBS_CHANNEL, CONTROL_CHANNEL])
        try:
            listener.connect()
        except Exception as exc:
            logger.warning("LISTEN connection failed (%s); polling until it is back", exc)
            self.listener_retry_at = time.monotonic() + 5
            return
        self.listener = listener
        self.producer.woken = True  # we may have missed notifications while disconnected

    def _drain_listener(self) -> None:
        listener = self.listener
        assert listener is not None  # (called when it is readable)
        try:
            notes = listener.drain()
        except Exception as exc:
            logger.warning("LISTEN connection lost (%s); polling until it is back", exc)
            listener.close()
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
                self.producer.woken = True

    # --- failures and shutdown -----------------------------------------------------------
    def _database_down(self, exc: Exception) -> None:
        self.db_failures += 1
        self.remark = True
        delay = min(self._backoff_cap(), 0.1 * 2**self.db_failures) * random.uniform(0.8, 1.2)
        logger.warning(
            "Database unavailable (%s: %s); retrying in %.1fs",
            type(exc).__name__,
            str(exc).strip(),
            delay,
        )
        # Once back, leave expired leases alone for a while: peers reconnect on their own
        # backoff (and a crashed server may spend seconds in recovery before it accepts them).
        self.rescuer.hold_off(time.monotonic() + delay + self._rescue_grace())
        try:
            connections[self.using].close()
        except Exception:
            pass
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            self.listener_retry_at = 0.0
        self.producer.woken = True
        # Sit out the whole delay (a child's answer would end a single _wait early, and the
        # backoff would run up to its maximum in milliseconds); a signal cuts it short.
        deadline, stopping = time.monotonic() + delay, self.stopping
        while self.stopping == stopping and (left := deadline - time.monotonic()) > 0:
            self._wait(left)

    def _drained(self) -> bool:
        self._wait(0.0)  # outcomes that arrived since the last look (a job may have just ended)
        producer = self.producer
        if self.buffer or self.completer.outcomes or self._pool.busy() or producer.more:
            return False
        if producer.woken:
            return False
        due = store.next_due(self.config.queues, using=self.using)
        return due is None or due > 0

    def _shutdown(self) -> None:
        """Warm: stop claiming, hand unstarted jobs back, let running ones finish, record.
        Cold: kill the pool; running acks_late jobs go back to the queue, others fail."""
        if self.pool is None:
            return
        logger.info("%s: %s shutdown", self.name, self.stopping or "warm")
        self._with_database(self.producer.release_all)
        if self.stopping != "cold":
            self.pool.begin_stop()
        while self.stopping != "cold" and self.pool.busy():
            self._wait(min(1.0, self.config.lease / 6))
            if self.heartbeat_thread is None and time.monotonic() >= self.next_heartbeat:
                self._with_database(self.heartbeat)  # running jobs keep their leases
            self._with_database(lambda: self._record(force=True))
            self._with_database(self.producer.release_all)
        if self.stopping == "cold":
            for job in self.pool.kill_all():
                self.completer.add([_cold_outcome(job)])
            self.producer.put_back(self.pool.unstarted)
            self.pool.unstarted.clear()
        else:
            self.pool.stop()
            # outcomes posted after the last look (the threads pool's, once its threads ended)
            self.completer.add(self.pool.collect([]))
        self._with_database(lambda: self._record(force=True))
        self._with_database(self.producer.release_all)
        self._with_database(
            lambda: store.stop_worker(self.name, self.processed, self.failed, using=self.using)
        )
        self._with_database(self.rescuer.stop)
        self._with_database(self.events.offline)
        if self.listener is not None:
            self.listener.close()
        self.heartbeat_done.set()
        signals.worker_shutdown.send(sender=self)
        logger.info("%s stopped (%d jobs, %d failed)", self.name, self.processed, self.failed)

    def _with_database(self, action: Callable[[], Any], attempts: int = 30) -> None:
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
        return banner(self)

    # --- remote control: the operations of djq.roles.remote.WorkerControl ------------------
    # (the loop's thread runs them: the mailbox is polled by the loop, never by another thread)
    def control_clock(self) -> int:
        """The id of the newest control message read (Celery's logical clock)."""
        return self.mailbox.last_id if self.mailbox is not None else 0

    def active_jobs(self) -> list[tuple[Claim, int, float | None]]:
        """Jobs running now, with their process id and start time."""
        return list(self._pool.active_jobs())

    def held_jobs(self) -> list[Claim]:
        """Jobs handed to the pool (running, or queued behind a running one), then the reserve."""
        return [*self._pool.running_jobs(), *self.buffer]

    def revoked_ids(self) -> set[str]:
        return self.revoked

    def pool_stats(self) -> dict[str, Any]:
        """The pool's part of ``inspect().stats()``."""
        return {
            "implementation": self.config.pool,
            "max-concurrency": self._pool.concurrency,
            "processes": self._pool.pids(),
            "max-tasks-per-child": self.config.max_tasks_per_child,
        }

    def pool_size(self) -> tuple[int, int]:
        """(most, fewest) processes or threads the pool runs."""
        return self._pool.max_procs, self._pool.min_procs

    def resize_pool(
        self, max_procs: int, min_procs: int | None = None, autoscale: bool = False
    ) -> int:
        """pool_grow / pool_shrink / autoscale; returns the new size. With ``autoscale`` the
        pool keeps (max, min) as its autoscale bounds."""
        if autoscale:
            self._pool.autoscale = (max_procs, max_procs if min_procs is None else min_procs)
        self._pool.resize(max_procs, min_procs)
        self.config.concurrency = self._pool.max_procs
        return self._pool.max_procs

    def set_time_limits(self, task_name: str, soft: float | None, hard: float | None) -> None:
        self.time_limits[task_name] = (soft, hard)

    def request_stop(self) -> None:
        """A warm shutdown, as SIGTERM (the remote ``shutdown``)."""
        self.stopping = self.stopping or "warm"

    def set_events(self, on: bool) -> bool:
        """enable_events / disable_events; True when that changed anything."""
        return self.events.set_enabled(on)


def _revoked_outcome(job: Claim) -> Outcome:
    return records.not_run(job, TaskRevokedError("revoked before it started"))


def _cold_outcome(job: Claim) -> Outcome:
    """A job killed by a cold shutdown: back to the queue if acks_late, else WorkerLostError."""
    if job.acks_late:
        return records.requeued(job, "requeued (cold shutdown)")
    return records.lost(job, WorkerLostError("Worker exited prematurely: cold shutdown."))
