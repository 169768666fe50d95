"""The ``threads`` and ``solo`` pools: jobs run in the worker process itself.

For I/O-bound tasks (threads) and debugging (solo). Neither can enforce a hard time limit or
terminate a running job (a thread cannot be killed); soft limits are raised asynchronously in a
pool thread, and by SIGALRM in the solo pool (the main thread).

As in the prefork pool, a job's body runs only once it is STARTED in the database: a pool thread
asks (``take_began``), the worker marks every asked job in its next write and answers after the
commit (``grant``); the solo pool asks inline (``start_now``: the mark, with the outcomes
waiting, in one statement).
"""

from __future__ import annotations

import logging
import os
import queue as queue_module
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections, connections

from djq.records import Claim, Outcome, lost
from djq.running.execute import execute

logger = logging.getLogger("djq.worker")


class ThreadPool:
    """Jobs run in threads of the worker process: for I/O-bound tasks. Hard time limits and
    terminate are not possible for threads; soft limits are raised asynchronously."""

    name = "threads"
    #: whether ``terminate`` may be called from the heartbeat thread (the asyncio pool's may)
    threadsafe_stop = False
    #: (max, min) set by the remote ``autoscale`` (kept: a thread pool cannot be resized)
    autoscale: tuple[int, int] | None = None

    def __init__(
        self,
        concurrency: int,
        hostname: str,
        depth: int = 1,
        reserve_wait: float = 1.0,
        **ignored: Any,
    ) -> None:
        self.max_procs = self.min_procs = concurrency
        self.depth = max(1, depth)  # the worker keeps up to depth x threads jobs in reserve
        self.reserve_wait = reserve_wait
        self.began: list[Claim] = []  # asked to begin, not yet taken by the worker
        self.answers: dict[str, bool] = {}  # the worker's go-ahead answers, by job id
        self.went: set[str] = set()  # given the go-ahead: their bodies run (or ran)
        self.started_at: dict[str, float] = {}
        self.start_now: Callable[[Claim], None] | None = None  # (solo's: set by the worker)
        self.hostname = hostname
        self.inbox: queue_module.Queue[tuple[Claim, float | None] | None] = queue_module.Queue()
        self.outbox: queue_module.Queue[Outcome] = queue_module.Queue()
        self.running: dict[str, Claim] = {}
        self.lock = threading.Lock()
        self.answered = threading.Condition(self.lock)
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.threads: list[threading.Thread] = []
        self.unstarted: list[Claim] = []
        self.refused: list[Claim] = []  # (prefork's child marks only: here the worker marks)

    @property
    def concurrency(self) -> int:
        return self.max_procs

    def start(self) -> None:
        for i in range(self.max_procs):
            thread = threading.Thread(target=self._loop, name=f"djq-pool-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def _loop(self) -> None:
        while (message := self.inbox.get()) is not None:
            self._run(*message)
        connections.close_all()

    def _go_ahead(self, job: Claim) -> bool:
        """Ask the worker to let ``job`` begin and wait for the answer (after its commit)."""
        with self.lock:
            self.began.append(job)
        self.wake_w.send(b"x")
        with self.answered:
            while job.id not in self.answers:
                self.answered.wait()
            return self.answers.pop(job.id)

    def _run(self, job: Claim, soft: float | None) -> None:
        """Run one job in this thread, once the worker lets it begin, and post its outcome
        (waking the worker's loop); a job refused is forgotten (no longer held)."""
        if not self._go_ahead(job):
            with self.lock:
                self.running.pop(job.id, None)
            return
        self._execute(job, soft)

    def _execute(self, job: Claim, soft: float | None) -> None:
        try:
            outcome = execute(job, self.hostname, soft)
        except BaseException as exc:
            outcome = lost(job, exc)
        finally:
            close_old_connections()
        self.outbox.put(outcome)  # (before the job leaves ``running``: busy() or the outbox has it)
        with self.lock:
            self.running.pop(job.id, None)
            self.started_at.pop(job.id, None)
            self.went.discard(job.id)
        self.wake_w.send(b"x")

    def busy(self) -> int:
        with self.lock:
            return len(self.running)

    def free_slots(self) -> int:
        return self.max_procs - self.busy()

    def take_began(self) -> list[Claim]:
        with self.lock:
            began, self.began = self.began, []
        return began

    def take_withdrawn(self) -> set[str]:
        return set()  # (a thread does not die while it asks)

    def grant(self, asked: list[Claim], marked: set[str]) -> None:
        now = time.monotonic()
        with self.answered:
            for job in asked:
                run = job.id in marked
                if run:
                    self.went.add(job.id)
                    self.started_at[job.id] = now
                self.answers[job.id] = run
            self.answered.notify_all()

    def reserve_room(self, buffered: int) -> int:
        """More jobs the worker may claim into its reserve: none while every thread is busy
        with a job older than ``reserve_wait`` (the reserve would wait behind long jobs)."""
        with self.lock:
            oldest = min(self.started_at.values(), default=None)  # (of the running ones)
        if self.free_slots() <= 0 and oldest is not None:
            if time.monotonic() - oldest > self.reserve_wait:
                return 0
        return self.max_procs * self.depth - self.busy() - buffered

    def reclaim_stuck(self) -> None:
        pass  # jobs wait in the worker's reserve, not in threads

    def running_jobs(self) -> list[Claim]:
        with self.lock:
            return list(self.running.values())

    def started_jobs(self) -> list[Claim]:
        """The jobs given the go-ahead (the others wait for it)."""
        with self.lock:
            return [job for job in self.running.values() if job.id in self.went]

    def active_jobs(self) -> list[tuple[Claim, int, float | None]]:
        return [(job, os.getpid(), None) for job in self.started_jobs()]

    def pids(self) -> list[int]:
        return [os.getpid()]

    def submit(self, job: Claim, soft: float | None, hard: float | None) -> None:
        with self.lock:
            self.running[job.id] = job
        self.inbox.put((job, soft))

    def waitables(self) -> list[socket.socket]:
        # (none once stopped: the wake-up pair is closed, see ``stop``)
        return [self.wake_r] if self.wake_r.fileno() >= 0 else []

    def collect(self, ready: list[Any]) -> list[Outcome]:
        if self.wake_r.fileno() >= 0:  # (closed by ``stop``: the outbox may still hold some)
            try:
                while self.wake_r.recv(4096):
                    pass
            except BlockingIOError:
                pass
        outcomes: list[Outcome] = []
        while True:
            try:
                outcomes.append(self.outbox.get_nowait())
            except queue_module.Empty:
                return outcomes

    def check_limits(self, now: float) -> list[Outcome]:
        return []

    def next_deadline(self) -> float | None:
        return None

    def terminate(self, job_id: str, signame: str) -> bool:
        logger.warning("The %s pool cannot terminate a running job (%s)", self.name, job_id)
        return False

    def skip(self, job_id: str) -> None:
        pass

    def begin_stop(self) -> None:
        pass

    def alive(self) -> int:
        return len(self.threads)

    def stop(self, timeout: float = 10.0) -> None:
        for _ in self.threads:
            self.inbox.put(None)
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if not any(thread.is_alive() for thread in self.threads):
            self._close_wake_up()

    def _close_wake_up(self) -> None:
        """Close the wake-up socket pair once no thread can post to it any more (a thread still
        running a job past the stop's timeout would write to it: the pair then stays open)."""
        self.wake_r.close()
        self.wake_w.close()

    def kill_all(self) -> list[Claim]:
        """Cold shutdown: the jobs running now (the threads die with the process); the ones
        still waiting for their go-ahead never started: ``unstarted``."""
        started = self.started_jobs()
        self.unstarted.extend(j for j in self.running_jobs() if j not in started)
        return started

    def resize(self, max_procs: int, min_procs: int | None = None) -> None:
        logger.warning("The threads pool cannot be resized while running")


class SoloPool(ThreadPool):
    """One job at a time, inline in the worker's main thread (soft limits by SIGALRM)."""

    name = "solo"

    def __init__(
        self,
        concurrency: int,
        hostname: str,
        depth: int = 1,
        reserve_wait: float = 1.0,
        **ignored: Any,
    ) -> None:
        super().__init__(1, hostname, depth, reserve_wait)

    def start(self) -> None:
        pass

    def submit(self, job: Claim, soft: float | None, hard: float | None) -> None:
        """Mark the job STARTED (with the outcomes waiting: one write), then run it inline."""
        with self.lock:
            self.running[job.id] = job
        try:
            assert self.start_now is not None  # (set by the worker before start)
            self.start_now(job)  # (the worker's: answers through ``grant``)
        except BaseException:
            with self.lock:
                self.running.pop(job.id, None)
            self.unstarted.append(job)  # (back to the reserve: the database is down)
            raise
        if self.answers.pop(job.id, False):
            self._execute(job, soft)
        else:
            with self.lock:
                self.running.pop(job.id, None)
                self.went.discard(job.id)

    def stop(self, timeout: float = 10.0) -> None:
        self._close_wake_up()  # (jobs ran inline: none is running now)
