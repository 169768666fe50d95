"""The completer: records what the pool finished, in batches as they come, with no fixed delay.

The worker hands it outcomes (``add``) and the jobs its pool asks to begin (``took``); each turn
of the worker's loop asks it to ``record``:

    asks → ``mark``: every ask since the last turn marked STARTED in one statement, committed
           → ``granted(asked, marked)``: the pool lets each marked job run
    outcomes, when due (at once when the pool is idle, else once the oldest waited
    OUTCOME_WRITE_DELAY) → decide each outcome's continuations (from its claim's options)
           → one statement for the batch (``store.complete``)
           → forget the batch's claims, send its events, log each job, run lost jobs' hooks

A job's body runs only once its STARTED mark is committed, so a job the rescuer finds RESERVED
never ran (it goes back to the queue), and a STARTED one that is not acks_late is never run
again. The marks are what children wait for: they go first, in a transaction of their own that
does not wait for the server's disk (``store.mark_started(durable=False)``: committed, so seen by
every other session — a rescuer after a kill -9 — at once; see docs/worker.md for a database
crash). Outcomes wait for no child: under load they are gathered for a moment and written in
large batches, durably, with the next claim when one is due.

What finishes while a write is in flight is collected meanwhile and goes into the next write:
under load each write carries many jobs, and an idle worker writes at once. A batch the database
refuses (bad data, not an outage) is recorded job by job, and a job it refuses as a FAILURE
saying why. The worker may instead call ``batch``/``write``/``done`` itself to share the write's
transaction with its next claim.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from django.db import InterfaceError, OperationalError, transaction

from djq import signals, states, store
from djq.job_guard import safely
from djq.options import may_continue
from djq.records import Claim, Outcome, unstorable
from djq.running.execute import report_lost
from djq.store import job_logs

if TYPE_CHECKING:  # (for annotations only: the worker's layer imports this module)
    from djq.roles.events import WorkerEvents

logger = logging.getLogger("djq.worker")

#: what the completer calls after a commit: the jobs whose marks it wrote, and the ids marked
Granted = Callable[[list[Claim], set[str]], None]
#: how long outcomes may wait for more while children run (seconds): fewer, larger durable
#: writes; an idle pool's outcomes are written at once
OUTCOME_WRITE_DELAY = 0.05


class Completer:
    def __init__(
        self,
        using: str,
        held: dict[str, Claim],
        held_lock: threading.Lock,
        events: WorkerEvents,
        granted: Granted,
    ) -> None:
        self.using = using
        self.granted = granted
        self.held = held  # the worker's claims, by id: a recorded job is forgotten here
        self.held_lock = held_lock
        self.events = events
        self.outcomes: list[Outcome] = []  # finished, not yet recorded
        self.began: list[Claim] = []  # asked to begin, not yet marked STARTED
        self.outcomes_at = 0.0  # when the oldest outcome not yet recorded came (monotonic)
        self.processed = self.failed = 0
        self.totals: Counter[str | None] = Counter()  # recorded jobs per task name

    def add(self, outcomes: Iterable[Outcome]) -> None:
        outcomes = list(outcomes)
        if outcomes and not self.outcomes:
            self.outcomes_at = time.monotonic()
        self.outcomes.extend(outcomes)

    def took(self, began: list[Claim]) -> None:
        """Jobs the pool asks to begin: marked STARTED with the next write, which is due now."""
        self.began.extend(began)

    def withdraw(self, ids: set[str]) -> None:
        """Asks that no longer stand (their child died before its go-ahead): not to be marked."""
        if ids:
            self.began = [job for job in self.began if job.id not in ids]

    def due(self, idle: bool) -> bool:
        """Outcomes to write now: the pool is ``idle`` (nobody to gather more from), or the
        oldest one waited OUTCOME_WRITE_DELAY."""
        if not self.outcomes:
            return False
        return idle or time.monotonic() >= self.outcomes_at + OUTCOME_WRITE_DELAY

    def deadline(self) -> float | None:
        """When the outcomes waiting must be written (monotonic), or None."""
        return self.outcomes_at + OUTCOME_WRITE_DELAY if self.outcomes else None

    def mark(self) -> None:
        """Mark the asks STARTED (one statement, committed), then let the marked jobs run; a
        job whose mark is refused (no longer RESERVED by this claim) is not run."""
        if not self.began:
            return
        asked = self.began
        marked = store.mark_started(asked, using=self.using, durable=False)  # (autocommitted)
        self.began = []
        self.granted(asked, set(marked))

    def record(self, force: bool = False, idle: bool = True) -> bool:
        """Write what is due (see the module): the marks always, the outcomes when due (or
        ``force``); True when a job went back to waiting (a retry: the worker should look at
        the queue again to learn its ETA)."""
        self.mark()
        if not self.outcomes or not (force or self.due(idle)):
            return False
        batch = self.batch()
        return self.done(batch, self.write(batch))

    def batch(self) -> list[Outcome]:
        """The outcomes to write now, each told whether its completion runs continuations."""
        batch = self.outcomes
        for outcome in batch:  # (a job failed by the guard has none: ``continues`` is False)
            if outcome.continues is None:
                job = self.held.get(outcome.id)
                outcome.continues = may_continue(job.options if job else None)
        return batch

    def write(self, batch: list[Outcome]) -> set[str]:
        """Record a batch and the STARTED marks; the ids recorded (a stale one is not).

        An atomic task's outcome arrives recorded already (``committed``: its child wrote it in
        the transaction of the task's writes): it counts as recorded and is not written again.
        """
        committed = {o.id for o in batch if o.committed}
        if committed:
            batch = [o for o in batch if not o.committed]
        try:
            # (a savepoint when the claim shares the transaction: a refused batch must not
            # abort the claim, nor the one-by-one retry below)
            with transaction.atomic(using=self.using):
                rows = store.complete(batch, using=self.using)
                ids = {row["id"] for row in rows}
                job_logs.write(batch, ids, using=self.using)
            return ids | committed
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            if len(batch) == 1 and batch[0].unstorable:
                raise
            logger.exception("Recording %d outcome(s) failed; recording one by one", len(batch))
        recorded: set[str] = set(committed)
        for outcome in batch:
            try:
                recorded |= self.write([outcome])
            except (OperationalError, InterfaceError):
                raise
            except Exception as exc:
                recorded |= self._unstorable(outcome, exc)
        return recorded

    def done(self, batch: list[Outcome], recorded: set[str]) -> bool:
        """After the batch's write committed: forget its jobs, log them, run lost-job hooks."""
        self.outcomes = []
        with self.held_lock:
            jobs = {outcome.id: self.held.pop(outcome.id, None) for outcome in batch}
        self.events.recorded(batch, recorded, jobs)
        waiting = False
        for outcome in batch:
            self._log(outcome, outcome.id in recorded)
            job = jobs[outcome.id]
            if outcome.lost and outcome.id in recorded and job:
                safely(report_lost, job, outcome)
            waiting = waiting or outcome.state in states.WAITING_STATES
        return waiting

    def _unstorable(self, outcome: Outcome, exc: BaseException) -> set[str]:
        """Record a FAILURE saying why the outcome could not be stored; if even that is refused,
        give the job up (not held: its lease runs out and the rescuer takes it)."""
        try:
            return self.write([unstorable(outcome, exc)])
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            logger.exception("Could not record job %s at all; left to the rescuer", outcome.id)
            return set()

    def _log(self, outcome: Outcome, recorded: bool) -> None:
        name, job_id, state = outcome.name, outcome.id, outcome.state
        if not recorded:
            logger.warning(
                "Discarded the late result of %s[%s] (attempt %s, %s): the job was rescued or "
                "finished elsewhere",
                name,
                job_id,
                outcome.attempt,
                state,
            )
            return
        self.processed += 1
        self.totals[name] += 1
        if state == states.SUCCESS:
            logger.info(
                "Task %s[%s] succeeded in %.3fs: %s",
                name,
                job_id,
                outcome.runtime or 0.0,
                outcome.repr,
            )
        elif state == states.FAILURE and outcome.expected:  # in the task's ``throws``
            self.failed += 1
            logger.info("Task %s[%s] raised expected: %s", name, job_id, outcome.repr)
        elif state == states.FAILURE:
            self.failed += 1
            logger.error("Task %s[%s] raised unexpected: %s", name, job_id, outcome.repr)
            if outcome.traceback:
                logger.error("%s", outcome.traceback.rstrip())
        elif state == states.RETRY:
            logger.info("Task %s[%s] retry: %s", name, job_id, outcome.repr)
        elif state == states.REVOKED:
            logger.info("Task %s[%s] revoked: %s", name, job_id, outcome.repr)
            signals.task_revoked.send(
                sender=name, request=job_id, terminated=True, signum=None, expired=False
            )
        elif outcome.repr:
            logger.info("Task %s[%s] %s: %s", name, job_id, state.lower(), outcome.repr)
        else:  # e.g. Ignore: "Task name[id] ignored", as Celery logs it
            logger.info("Task %s[%s] %s", name, job_id, state.lower())
