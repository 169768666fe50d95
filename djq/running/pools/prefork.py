"""The ``prefork`` execution pool (the default; ``threads`` and ``solo`` are in djq.threads).

A pool runs claimed jobs (``Claim``) and hands back ``Outcome`` records (djq.records); it never
touches job state. The worker's loop waits on ``pool.waitables()`` and calls
``collect``/``check_limits`` when they are ready.

Prefork children are forked from the worker after Django is set up (tasks imported), with every
Django connection closed first, so no child ever shares a database connection with its parent.
Children talk to the parent over a pipe in JSON (``Claim.to_message``, ``Outcome.to_message``).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import Connection, Pipe
from typing import Any

from django.db import close_old_connections, connections

from djq import signals
from djq.exceptions import TaskRevokedError, TimeLimitExceeded, WorkerLostError
from djq.records import Claim, Outcome, lost, not_run
from djq.running.execute import execute

logger = logging.getLogger("djq.worker")


def _die_with_parent(parent: int) -> None:
    """A child must not outlive a killed worker (its job is rescued; a second copy must not go
    on running): ask Linux to SIGKILL it when the parent dies, then check the parent is there."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent check below still helps
        pass
    if os.getppid() != parent:
        os._exit(1)


class Child:
    """A prefork child and the jobs it was given, in order: the first one is running."""

    def __init__(self, pid: int, conn: Connection):
        self.pid = pid
        self.conn = conn
        self.jobs: deque[Claim] = deque()
        self.started = 0.0  # when the running (first) job started (monotonic)
        self.started_wall = 0.0  # the same, as a timestamp (for inspect().active())
        self.hard_limits: dict[str, float | None] = {}
        self.idle_since = time.monotonic()
        self.terminating: str | None = None  # the signal sent by a revoke(terminate=True)
        self.stopping = False
        self.done = 0  # jobs answered: a child exits by itself after max_tasks_per_child

    @property
    def job(self) -> Claim | None:
        return self.jobs[0] if self.jobs else None

    @property
    def hard_deadline(self) -> float | None:
        job = self.job
        limit = self.hard_limits.get(job.id) if job else None
        return self.started + limit if limit else None

    def fileno(self) -> int:
        return self.conn.fileno()


class _Inbox:
    """A child's queue of jobs, filled by a reader thread while the main thread runs a job, so
    that a job taken back by the parent (a skip) is answered ``skipped`` at once, even while a
    long job runs: the parent then runs it elsewhere, and it can never run twice."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.pending: deque[dict[str, Any]] = deque()
        self.stop = False
        self.lock = threading.Condition()
        self.send_lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        with self.send_lock:
            self.conn.send_bytes(json.dumps(message, default=str).encode())

    def read(self) -> None:
        """The reader thread: queue jobs, answer skips of queued jobs, note a stop."""
        while True:
            try:
                message = json.loads(self.conn.recv_bytes())
            except (EOFError, OSError):
                message = None
            with self.lock:
                if message is None:
                    self.stop = True
                elif "skip" in message:
                    self._skip(message["skip"])
                else:
                    self.pending.append(message)
                self.lock.notify()
            if message is None:
                return

    def _skip(self, job_id: str) -> None:
        for message in list(self.pending):
            if message["job"]["id"] == job_id:
                self.pending.remove(message)
                self.send({"skipped": job_id})

    def next(self) -> dict[str, Any] | None:
        """The next job to run, or None once told to stop (the jobs left are handed back)."""
        with self.lock:
            while not self.pending and not self.stop:
                self.lock.wait()
            if self.stop or not self.pending:
                return None
            return self.pending.popleft()

    def hand_back(self) -> None:
        with self.lock:
            left, self.pending = list(self.pending), deque()
        for message in left:
            self.send({"unstarted": message["job"]["id"]})


def _child_main(
    conn: Connection, hostname: str, max_tasks: int | None, max_memory: int | None
) -> None:
    """The loop of a prefork child: take the next job, run it, send its outcome, repeat.

    Messages from the parent (read by a thread, see ``_Inbox``): ``{"job": …, "soft": …}``
    (queue it), ``{"skip": id}`` (revoked, or taken back from behind a long job: answered
    ``skipped`` unless it started) and ``null`` (stop after the current job). Jobs left
    unstarted when the child stops are sent back as ``{"unstarted": id}``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # decides what happens to running jobs.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    signals.worker_process_init.send(sender=None)
    inbox = _Inbox(conn)
    threading.Thread(target=inbox.read, name="djq-child-inbox", daemon=True).start()
    done = 0
    while (message := inbox.next()) is not None:
        job = Claim.from_message(message["job"])
        close_old_connections()
        try:
            outcome = execute(job, hostname, message.get("soft"))
        except BaseException as exc:  # a bug in djq itself: still answer
            outcome = lost(job, exc)
        close_old_connections()
        try:
            inbox.send(outcome.to_message())
        except OSError:
            return
        done += 1
        if max_tasks and done >= max_tasks:
            break
        if max_memory and resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > max_memory:
            break
    inbox.hand_back()


class PreforkPool:
    """Children forked from the worker; each may be given up to ``depth`` jobs at once (the
    prefetch multiplier), so that it never waits for the parent between short jobs."""

    name = "prefork"

    def __init__(
        self,
        concurrency: int,
        hostname: str,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: int | None = None,
        autoscale: tuple[int, int] | None = None,
        keepalive: float = 30.0,
        depth: int = 1,
        reserve_wait: float = 1.0,
    ):
        self.hostname = hostname
        self.max_tasks = max_tasks_per_child
        self.max_memory = max_memory_per_child
        self.autoscale = autoscale
        self.max_procs = autoscale[0] if autoscale else concurrency
        self.min_procs = autoscale[1] if autoscale else concurrency
        self.depth = max(1, depth if not max_tasks_per_child else 1)
        self.keepalive = keepalive
        self.children: dict[int, Child] = {}
        self.unstarted: list[Claim] = []  # handed back by children: dispatch again or release
        self.began: list[Claim] = []  # jobs that became a child's running job (take_began)
        # a child whose job has run this long gets no more jobs queued behind it, and those
        # queued already are taken back (reclaim): a short job never waits behind a long one
        self.reserve_wait = reserve_wait
        self.reclaiming: set[str] = set()

    @property
    def concurrency(self) -> int:
        return self.max_procs

    # --- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        for _ in range(max(1, self.min_procs)):
            self._spawn()

    def _spawn(self) -> Child:
        for conn in connections.all(initialized_only=True):
            conn.close()  # never let a child inherit a live connection
        parent_end, child_end = Pipe(duplex=True)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child
            code = 0
            try:
                parent_end.close()
                for other in self.children.values():
                    other.conn.close()
                _die_with_parent(parent)
                _child_main(child_end, self.hostname, self.max_tasks, self.max_memory)
            except BaseException:
                logger.exception("pool child crashed")
                code = 1
            finally:
                os._exit(code)
        child_end.close()
        child = Child(pid, parent_end)
        self.children[pid] = child
        return child

    def begin_stop(self) -> None:
        """Warm shutdown: every child finishes its running job and hands the others back."""
        for child in self.children.values():
            self._send_stop(child)

    def _send_stop(self, child: Child) -> None:
        if not child.stopping:
            child.stopping = True
            try:
                child.conn.send_bytes(b"null")
            except OSError:
                pass

    def stop(self, timeout: float = 10.0) -> None:
        """Make sure every child is gone (after ``begin_stop`` and collecting)."""
        self.begin_stop()
        deadline = time.monotonic() + timeout
        for pid in list(self.children):
            self._reap(pid, deadline)
            self.children[pid].conn.close()
        self.children.clear()

    def _reap(self, pid: int, deadline: float) -> None:
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    def kill_all(self) -> list[Claim]:
        """Cold shutdown: kill every child; return the jobs they were running (the jobs only
        queued in them go to ``unstarted``)."""
        running = []
        for pid, child in list(self.children.items()):
            if child.jobs:
                running.append(child.jobs.popleft())
                self.unstarted.extend(child.jobs)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            child.conn.close()
        self.children.clear()
        return running

    # --- dispatch ------------------------------------------------------------------------
    def busy(self) -> int:
        """Jobs handed to children and not answered yet."""
        return sum(len(c.jobs) for c in self.children.values())

    def alive(self) -> int:
        return len(self.children)

    def free_slots(self) -> int:
        """Jobs the pool can take now: up to ``depth`` per child, none behind a long job."""
        now = time.monotonic()
        open_children = [c for c in self.children.values() if not self._stuck(c, now)]
        unborn = self.max_procs - len(self.children)
        return max(0, sum(self.depth - len(c.jobs) for c in open_children) + unborn * self.depth)

    def reserve_room(self, buffered: int) -> int:
        """More jobs the worker may claim: the reserve lives in the children's queues."""
        return self.free_slots() - buffered

    def _stuck(self, child: Child, now: float) -> bool:
        """Stopping, or running one job for longer than ``reserve_wait``."""
        return child.stopping or bool(child.jobs and now - child.started > self.reserve_wait)

    def take_began(self) -> list[Claim]:
        """The jobs that started since the last call (recorded STARTED in a batch)."""
        began, self.began = self.began, []
        return began

    def reclaim_stuck(self) -> None:
        """Take back the jobs queued behind a job that has run longer than ``reserve_wait``: the
        child answers ``skipped`` for each (unless it started it already), and they come back
        through ``unstarted`` to run in another child, or in another worker."""
        now = time.monotonic()
        for child in self.children.values():
            if len(child.jobs) < 2 or not self._stuck(child, now):
                continue
            for job in list(child.jobs)[1:]:
                if job.id not in self.reclaiming:
                    self.reclaiming.add(job.id)
                    self._send(child, {"skip": job.id})

    def _send(self, child: Child, message: dict[str, Any]) -> None:
        try:
            child.conn.send_bytes(json.dumps(message).encode())
        except OSError:
            pass  # the child has just exited: collect() finds it dead

    def running_jobs(self) -> list[Claim]:
        return [job for c in self.children.values() for job in c.jobs]

    def active_jobs(self) -> list[tuple[Claim, int, float]]:
        """The jobs running now, with their process and start time: the first one of each
        child (the others wait behind it)."""
        return [(c.job, c.pid, c.started_wall) for c in self.children.values() if c.job]

    def pids(self) -> list[int]:
        return sorted(self.children)

    def submit(self, job: Claim, soft: float | None, hard: float | None) -> None:
        child = self._least_loaded()
        if not child.jobs:
            child.started, child.started_wall = time.monotonic(), time.time()
            self.began.append(job)
        child.jobs.append(job)
        child.hard_limits[job.id] = hard
        message = {"job": job.to_message(), "soft": soft}
        try:
            child.conn.send_bytes(json.dumps(message, default=str).encode())
        except OSError:
            pass  # the child has just exited: collect() finds it dead and hands the job on

    def _least_loaded(self) -> Child:
        now = time.monotonic()
        candidates = [c for c in self.children.values() if not self._stuck(c, now)]
        idle = [c for c in candidates if not c.jobs]
        # (children that are stopping, e.g. retiring after --max-tasks-per-child, do not count)
        if not idle and len(candidates) < self.max_procs:
            return self._spawn()
        return min(candidates, key=lambda c: len(c.jobs))

    def waitables(self) -> list[Connection]:
        return [c.conn for c in self.children.values()]

    def collect(self, ready: list[Any]) -> list[Outcome]:
        """Outcomes from children whose pipe is readable; a dead child's running job is lost."""
        outcomes: list[Outcome] = []
        by_conn = {c.conn: c for c in self.children.values()}
        for conn in ready:
            child = by_conn.get(conn)
            if child is None:
                continue
            dead = False
            while True:
                try:
                    if not conn.poll():
                        break
                    message = json.loads(conn.recv_bytes())
                except (EOFError, OSError):
                    dead = True
                    break
                self._answered(child, message, outcomes)
            if dead:  # outside the except block: a new child must not inherit it
                outcomes.extend(self._child_died(child))
        return outcomes

    def _answered(self, child: Child, message: dict[str, Any], outcomes: list[Outcome]) -> None:
        job_id = message.get("unstarted") or message.get("skipped") or message["id"]
        job = next(j for j in child.jobs if j.id == job_id)
        was_running = job is child.jobs[0]
        child.jobs.remove(job)
        child.hard_limits.pop(job_id, None)
        now = time.monotonic()
        if was_running:
            child.terminating = None  # a terminate was for the job that just answered
            child.started, child.started_wall = now, time.time()
            if child.jobs and "unstarted" not in message and not child.stopping:
                self.began.append(child.jobs[0])  # the child goes on with its next job now
        if not child.jobs:
            child.idle_since = now
        if job_id in self.reclaiming:
            self.reclaiming.discard(job_id)
            if "skipped" in message:  # taken back from behind a long job: run it elsewhere
                self.unstarted.append(job)
                return
        if "unstarted" in message:
            self.unstarted.append(job)
        elif "skipped" in message:
            outcomes.append(not_run(job, TaskRevokedError("revoked")))
        else:
            outcomes.append(Outcome.of(message))
            child.done += 1
            if self.max_tasks and child.done >= self.max_tasks:
                # It exits after this answer (see _child_main): give it nothing more, or the
                # job would be lost with it.
                child.stopping = True

    def _child_died(self, child: Child) -> list[Outcome]:
        _, status = os.waitpid(child.pid, 0)
        child.conn.close()
        del self.children[child.pid]
        outcomes = []
        # A child that exited by itself (status 0: --max-memory-per-child, pipe closed) did so
        # between jobs: whatever it was given after its last answer never started.
        between_jobs = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        if child.jobs and not between_jobs:  # (also when stopping: its running job was lost)
            running = child.jobs.popleft()
            if child.terminating:
                exc: BaseException = TaskRevokedError(f"terminated ({child.terminating})")
                outcomes.append(lost(running, exc, state="REVOKED"))
            else:
                how = _describe_exit(status)
                exc = WorkerLostError(f"Worker exited prematurely: {how}.")
                outcomes.append(lost(running, exc))
        self.unstarted.extend(child.jobs)  # never started: run them elsewhere
        if not child.stopping:
            self._replenish()
        return outcomes

    def _replenish(self) -> None:
        while len(self.children) < self.min_procs:
            self._spawn()

    def check_limits(self, now: float) -> list[Outcome]:
        """Kill children past their job's hard time limit; shrink an autoscaled pool."""
        outcomes = []
        for child in list(self.children.values()):
            deadline = child.hard_deadline
            if deadline is None or now < deadline:
                continue
            job = child.jobs.popleft()
            limit = child.hard_limits.pop(job.id)
            logger.error("Hard time limit (%ss) exceeded for %s[%s]", limit, job.name, job.id)
            os.kill(child.pid, signal.SIGKILL)
            os.waitpid(child.pid, 0)
            child.conn.close()
            del self.children[child.pid]
            self.unstarted.extend(child.jobs)
            outcomes.append(lost(job, TimeLimitExceeded(limit)))
        if self.autoscale:
            self._shrink_idle(now)
        self._replenish()
        return outcomes

    def _shrink_idle(self, now: float) -> None:
        for child in [c for c in self.children.values() if not c.jobs]:
            if len(self.children) <= self.min_procs:
                break
            if now - child.idle_since >= self.keepalive:
                self._retire(child)

    def _retire(self, child: Child) -> None:
        self._send_stop(child)
        self._reap(child.pid, time.monotonic() + 5)
        child.conn.close()
        del self.children[child.pid]

    def next_deadline(self) -> float | None:
        deadlines = [d for c in self.children.values() if (d := c.hard_deadline)]
        return min(deadlines) if deadlines else None

    def terminate(self, job_id: str, signame: str) -> bool:
        """Revoke with terminate: signal the child running ``job_id``, or skip it if queued."""
        for child in self.children.values():
            if child.job is not None and child.job.id == job_id:
                child.terminating = signame
                os.kill(child.pid, _signal_number(signame))
                return True
            if any(j.id == job_id for j in child.jobs):
                child.conn.send_bytes(json.dumps({"skip": job_id}).encode())
                return True
        return False

    def skip(self, job_id: str) -> None:
        """A queued job was revoked: the child answers ``skipped`` instead of running it."""
        for child in self.children.values():
            if any(j.id == job_id for j in list(child.jobs)[1:]):
                child.conn.send_bytes(json.dumps({"skip": job_id}).encode())

    def resize(self, max_procs: int, min_procs: int | None = None) -> None:
        self.max_procs = max(1, max_procs)
        self.min_procs = min(self.max_procs, self.min_procs if min_procs is None else min_procs)
        for child in [c for c in self.children.values() if not c.jobs]:
            if len(self.children) <= self.max_procs:
                break
            self._retire(child)
        self._replenish()


def _signal_number(signame: str) -> int:
    name = signame.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    return int(getattr(signal, name))


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"signal {sig} ({signal.Signals(sig).name})"
    return f"exitcode {os.WEXITSTATUS(status)}"
