"""The ``prefork`` execution pool (the default; ``threads`` and ``solo`` are in djq.threads).

A pool runs claimed jobs (``Claim``) and hands back ``Outcome`` records (djq.records); it never
touches job state. The worker's loop waits on ``pool.waitables()`` and calls
``collect``/``check_limits`` when they are ready.

Prefork children are forked from the worker after Django is set up (tasks imported), with every
Django connection closed first, so no child ever shares a database connection with its parent.
Children talk to the parent over a pipe in JSON (``Claim.to_message``, ``Outcome.to_message``).

A child runs a job's body only after the parent's go-ahead: it asks (``{"begin": id}``) when it
is about to start the job, the worker marks every job asked for since its last write STARTED in
its next write (with the outcomes that came in: one statement, one commit), and after the commit
the pool answers each child (``{"go": id, "run": true|false}``). So a job RESERVED in the
database has never begun anywhere: a worker killed with jobs in its children's queues loses
none of them, and runs none twice.

On PostgreSQL a child writes that mark itself, on a connection of its own, and tells the parent
afterwards (``{"began": id}``; ``{"refused": id}`` when the job was not its claim's to start any
more): djq.running.pools.child_marks. The parent's loop is then off the path between two jobs. A
child that dies before its ``began`` reached the parent may have marked its job or not: the
parent reads which in the database (``store.started_of``).
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
from collections.abc import Callable
from multiprocessing.connection import Connection, Pipe
from typing import Any

from django.db import close_old_connections, connections

from djq import signals, store
from djq.exceptions import TaskRevokedError, TimeLimitExceeded, WorkerLostError
from djq.records import Claim, Outcome, lost, not_run
from djq.running.execute import execute
from djq.running.pools.child_marks import ChildMarks, own_marks

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
        self.went: str | None = None  # the job (the first one) given the go-ahead: running
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
    def running(self) -> Claim | None:
        """The job whose body runs now (given the go-ahead), if any."""
        job = self.job
        return job if job is not None and job.id == self.went else None

    @property
    def hard_deadline(self) -> float | None:
        job = self.running
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
        self.answers: dict[str, bool] = {}  # go-ahead answers, by job id
        self.skips: set[str] = set()  # told to skip a job taken already (child marks: not run)
        self.stop = False
        self.closed = False  # the pipe: no message can come any more
        self.lock = threading.Condition()
        self.send_lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        with self.send_lock:
            self.conn.send_bytes(json.dumps(message, default=str).encode())

    def read(self) -> None:
        """The reader thread: queue jobs, answer skips of queued jobs, note a stop, hand the
        go-ahead answers over (it reads on after a stop: the answer to an ask may follow it)."""
        while True:
            try:
                message = json.loads(self.conn.recv_bytes())
                closed = False
            except (EOFError, OSError):
                message, closed = None, True
            with self.lock:
                if message is None:
                    self.stop = True
                    self.closed = closed
                elif "skip" in message:
                    self._skip(message["skip"])
                elif "go" in message:
                    self.answers[message["go"]] = bool(message["run"])
                else:
                    self.pending.append(message)
                self.lock.notify_all()
            if closed:
                return

    def _skip(self, job_id: str) -> None:
        for message in list(self.pending):
            if message["job"]["id"] == job_id:
                self.pending.remove(message)
                self.send({"skipped": job_id})
                return
        self.skips.add(job_id)  # taken by the main thread already: about to begin, or running

    def next(self, wait: bool = True) -> dict[str, Any] | None:
        """The next job to run, or None once told to stop (the jobs left are handed back), or
        (``wait`` false) when none is queued now."""
        with self.lock:
            while wait and not self.pending and not self.stop:
                self.lock.wait()
            if self.stop or not self.pending:
                return None
            return self.pending.popleft()

    def go_ahead(self, job_id: str, carry: dict[str, Any] | None = None) -> bool:
        """Ask the parent to let this job begin and wait for its answer: True once the job is
        STARTED in the database (committed), False when it must not run (no longer held).
        ``carry``: the outcome of the job just finished, sent in the same message, so that the
        parent records it and marks this one in the same write. (A stop does not cut the wait
        short: the parent answers every ask it reads; if the parent dies, this child dies with
        it.)"""
        self.send({**(carry or {}), "begin": job_id})
        with self.lock:
            while job_id not in self.answers:
                if self.closed:
                    return False  # (no answer can come: the parent is gone)
                self.lock.wait()
            return self.answers.pop(job_id)

    def start_own(self, job: Claim, marks: ChildMarks, carry: dict[str, Any] | None) -> bool:
        """(PostgreSQL) Mark ``job`` STARTED on this child's own connection, then tell the parent
        it began, with the outcome of the job before it (one message). False when it must not
        run: the child is stopping (``unstarted``), the job was skipped meanwhile (``skipped``),
        it is no longer this claim's (``refused``) or the database is out of reach
        (``unstarted``: it runs elsewhere, or here later)."""
        with self.lock:
            stop, skipped = self.stop, job.id in self.skips
            self.skips.discard(job.id)
        if stop or skipped:
            self.send({**(carry or {}), ("skipped" if skipped else "unstarted"): job.id})
            return False
        if carry:  # first: the job before it has ended (a slow mark must not look like it runs)
            self.send(carry)
        started = marks.start(job)
        with self.lock:
            self.skips.discard(job.id)  # (a skip that came while marking: too late, or moot)
        self.send({{True: "began", False: "refused", None: "unstarted"}[started]: job.id})
        return bool(started)

    def hand_back(self) -> None:
        with self.lock:
            left, self.pending = list(self.pending), deque()
        for message in left:
            self.send({"unstarted": message["job"]["id"]})


def _child_main(
    conn: Connection,
    hostname: str,
    max_tasks: int | None,
    max_memory: int | None,
    marks: ChildMarks | None,
) -> None:
    """The loop of a prefork child: take the next job, run it, send its outcome, repeat.

    Messages from the parent (read by a thread, see ``_Inbox``): ``{"job": …, "soft": …}``
    (queue it), ``{"skip": id}`` (revoked, or taken back from behind a long job: answered
    ``skipped`` unless it was asked for), ``{"go": id, "run": …}`` (the answer to the child's
    ``{"begin": id}``, sent before each job: run it, or drop it) and ``null`` (stop after the
    current job). Jobs left unstarted when the child stops are sent back as
    ``{"unstarted": id}``. With ``marks`` (PostgreSQL) the child marks each job itself instead of
    asking (``_Inbox.start_own``).
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
    message, carry = inbox.next(), None  # carry: an outcome to send with the next ask
    while message is not None:
        job = Claim.from_message(message["job"])
        try:
            if marks is None:
                run = inbox.go_ahead(job.id, carry)
            else:
                run = inbox.start_own(job, marks, carry)
        except OSError:
            return
        carry = None
        if not run:  # the parent took it back (or does not hold it any more): not run here
            message = inbox.next()
            continue
        close_old_connections()
        try:
            outcome = execute(job, hostname, message.get("soft"))
        except BaseException as exc:  # a bug in djq itself: still answer
            outcome = lost(job, exc)
        close_old_connections()
        done += 1
        retire = bool(max_tasks and done >= max_tasks) or bool(
            max_memory and resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > max_memory
        )
        # The next job queued already: its ask carries this outcome (one message, one write
        # for both); otherwise the outcome goes now, and the child waits for a job.
        message = None if retire else inbox.next(wait=False)
        if message is not None:
            carry = outcome.to_message()
            continue
        try:
            inbox.send(outcome.to_message())
        except OSError:
            return
        if retire:
            break
        message = inbox.next()
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
        using: str | None = None,
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
        self.began: list[Claim] = []  # jobs a child asked to begin, not yet taken (take_began)
        self.asking: dict[str, Child] = {}  # asked to begin, not answered yet: by job id
        self.withdrawn: set[str] = set()  # asked, then the child died: not to be marked
        self.skipped: set[str] = set()  # told to skip (revoked): refused if asked for meanwhile
        self.refused: list[Claim] = []  # (child marks) not this worker's to start any more
        # the database the children mark their jobs in themselves (None: they ask the worker)
        self.using = using
        self.child_marks = using is not None and own_marks(using) is not None
        # (the solo pool's: prefork children ask over their pipe)
        self.start_now: Callable[[Claim], None] | None = None
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
                marks = ChildMarks(self.using) if self.child_marks and self.using else None
                _child_main(child_end, self.hostname, self.max_tasks, self.max_memory, marks)
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
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            child.conn.close()
            self._started_unheard(child)
            if child.running is not None:
                running.append(child.jobs.popleft())
            self._forget_asks(child)
            self.unstarted.extend(child.jobs)  # never given the go-ahead: never started
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
        running = child.running is not None
        return child.stopping or (running and now - child.started > self.reserve_wait)

    def take_began(self) -> list[Claim]:
        """The jobs children asked to begin since the last call: the worker marks them STARTED
        in its next write, then answers with ``grant``."""
        began, self.began = self.began, []
        return began

    def take_withdrawn(self) -> set[str]:
        """Asks taken by ``take_began`` whose child died before the answer: the job was handed
        back (``unstarted``), so its mark must not be written."""
        withdrawn, self.withdrawn = self.withdrawn, set()
        return withdrawn

    def grant(self, asked: list[Claim], marked: set[str]) -> None:
        """After the commit of the STARTED marks: let each marked job run; a refused one (no
        longer held by this worker) is dropped by its child and forgotten here."""
        now, wall = time.monotonic(), time.time()
        for job in asked:
            child = self.asking.pop(job.id, None)
            if child is None or child.pid not in self.children:
                continue  # (its child died meanwhile: the job was withdrawn)
            run = job.id in marked
            if run:
                child.went, child.started, child.started_wall = job.id, now, wall
            else:
                child.jobs.remove(job)
                child.hard_limits.pop(job.id, None)
                if not child.jobs:
                    child.idle_since = now
            self._send(child, {"go": job.id, "run": run})

    def _asked(self, child: Child, job: Claim, outcomes: list[Outcome]) -> None:
        """A child is about to begin ``job``: queue its mark, unless the job was taken back or
        revoked meanwhile, or the worker is stopping (then it goes back to the queue)."""
        refuse = job.id in self.reclaiming or job.id in self.skipped or child.stopping
        if not refuse:
            self.asking[job.id] = child
            self.began.append(job)
            return
        child.jobs.remove(job)
        child.hard_limits.pop(job.id, None)
        if not child.jobs:
            child.idle_since = time.monotonic()
        self._send(child, {"go": job.id, "run": False})
        if job.id in self.skipped:
            self.skipped.discard(job.id)
            self.reclaiming.discard(job.id)
            outcomes.append(not_run(job, TaskRevokedError("revoked")))
        else:
            self.reclaiming.discard(job.id)
            self.unstarted.append(job)  # run elsewhere (or released at shutdown)

    def _forget_asks(self, child: Child) -> None:
        """A child is gone: its unanswered ask is withdrawn (its job was never started)."""
        for job_id in [i for i, c in self.asking.items() if c is child]:
            del self.asking[job_id]
            if any(j.id == job_id for j in self.began):
                self.began = [j for j in self.began if j.id != job_id]
            else:
                self.withdrawn.add(job_id)

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

    def started_jobs(self) -> list[Claim]:
        """The jobs given the go-ahead (their bodies run); the others wait for it."""
        return [job for c in self.children.values() if (job := c.running)]

    def active_jobs(self) -> list[tuple[Claim, int, float]]:
        """The jobs running now, with their process and start time: the first one of each
        child (the others wait behind it)."""
        return [(job, c.pid, c.started_wall) for c in self.children.values() if (job := c.running)]

    def pids(self) -> list[int]:
        return sorted(self.children)

    def submit(self, job: Claim, soft: float | None, hard: float | None) -> None:
        child = self._least_loaded()
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
        for key in ("begin", "began", "refused", "unstarted", "skipped"):
            if key in message and "id" in message:  # the outcome of the job before it: first
                about = message.pop(key)
                self._answered(child, message, outcomes)
                message = {key: about}
                break
        if "begin" in message:
            ask = message["begin"]
            self._asked(child, next(j for j in child.jobs if j.id == ask), outcomes)
            return
        if "began" in message:  # (child marks) the child marked it STARTED and runs it now
            child.went, child.started = message["began"], time.monotonic()
            child.started_wall = time.time()
            return
        if "refused" in message:  # (child marks) no longer this claim's: not run, forgotten
            job = next(j for j in child.jobs if j.id == message["refused"])
            child.jobs.remove(job)
            child.hard_limits.pop(job.id, None)
            self.skipped.discard(job.id)
            self.reclaiming.discard(job.id)
            if not child.jobs:
                child.idle_since = time.monotonic()
            self.refused.append(job)
            return
        job_id = message.get("unstarted") or message.get("skipped") or message["id"]
        job = next(j for j in child.jobs if j.id == job_id)
        was_running = job.id == child.went
        child.jobs.remove(job)
        child.hard_limits.pop(job_id, None)
        self.skipped.discard(job_id)
        now = time.monotonic()
        if was_running:
            child.terminating = None  # a terminate was for the job that just answered
            child.went = None
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
        self._forget_asks(child)
        if not between_jobs:
            self._started_unheard(child)
        # (also when stopping: its running job was lost; a job only asked for never started)
        if child.running is not None and not between_jobs:
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

    def _started_unheard(self, child: Child) -> None:
        """(Child marks) A dead child may have marked its next job STARTED before the parent
        heard ``began``: the database says. (The child is gone, so no mark of its can follow:
        one in flight is refused to any later start, see djq.running.pools.child_marks.) If the
        database cannot say, the job counts as started: at most once."""
        job = child.job
        if not self.child_marks or job is None or child.went == job.id:
            return
        try:
            started = job.id in store.started_of([job], using=self.using)
        except Exception as exc:
            logger.warning("Could not read whether %s[%s] started (%s)", job.name, job.id, exc)
            started = True
        if started:
            child.went, child.started = job.id, time.monotonic()

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
            self._forget_asks(child)
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
            if child.running is not None and child.running.id == job_id:
                child.terminating = signame
                os.kill(child.pid, _signal_number(signame))
                return True
            if any(j.id == job_id for j in child.jobs):
                self.skipped.add(job_id)  # (refused if the child asks to begin it meanwhile)
                self._send(child, {"skip": job_id})
                return True
        return False

    def skip(self, job_id: str) -> None:
        """A queued job was revoked: the child answers ``skipped`` instead of running it."""
        for child in self.children.values():
            if any(j.id == job_id for j in child.jobs if j.id != child.went):
                self.skipped.add(job_id)  # (refused if the child asks to begin it meanwhile)
                self._send(child, {"skip": job_id})

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
