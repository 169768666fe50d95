"""The worker's event publisher: what ``djq_worker -E`` sends, at which moment.

The worker calls one method per moment of a job's life (received at the claim, started when
handed to the pool, and the outcome once recorded); each is a no-op while events are off.
Events are buffered and written by ``flush``, once per turn of the worker loop, so a batch of
jobs costs one INSERT however many events it makes. ``worker-heartbeat`` (sent from the
heartbeat, maybe on its own thread) is written at once. Old events are deleted by the elected
worker's maintenance (djq.roles.rescuer).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from djq import states
from djq.conf import settings
from djq.events import SW_IDENT, SW_SYS, EventDispatcher, sw_ver
from djq.records import Claim, Outcome

if TYPE_CHECKING:  # (for annotations only: the worker imports this module)
    from djq.worker import Worker

#: the fewest seconds between two worker-heartbeat events (Celery sends one every 2 s)
MIN_HEARTBEAT = 2.0
#: events wait at most this long in the worker to be written together (seconds): under load a
#: turn of the loop handles a few jobs, and a write per turn would cost more than the jobs
FLUSH_DELAY = 0.05
#: ... or until this many are waiting
FLUSH_EVENTS = 2000
#: longest argument, result and exception text carried by an event (Celery's reprs are short)
MAX_TEXT = 1024


def _short(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT - 3] + "..."


class WorkerEvents:
    def __init__(self, worker: Worker, enabled: bool | None = None) -> None:
        self.worker = worker
        on = settings.WORKER_SEND_TASK_EVENTS if enabled is None else enabled
        self.dispatcher = EventDispatcher(worker.name, bool(on), worker.using, buffered=True)
        self.next_heartbeat = 0.0
        self.pending_since: float | None = None  # when the oldest unwritten event was seen

    @property
    def enabled(self) -> bool:
        return self.dispatcher.enabled

    def set_enabled(self, on: bool) -> bool:
        """``enable_events``/``disable_events``; True when that changed anything. A worker that
        starts publishing announces itself (worker-online), so monitors learn of it at once."""
        if on == self.enabled:
            return False
        if not on:
            self.flush(force=True)
        self.dispatcher.enabled = on
        if on:
            self.online()
        return True

    # --- worker events -------------------------------------------------------------------
    def _worker_fields(self) -> dict[str, Any]:
        return {"freq": self.freq(), "sw_ident": SW_IDENT, "sw_ver": sw_ver(), "sw_sys": SW_SYS}

    def freq(self) -> float:
        return max(MIN_HEARTBEAT, self.worker.config.lease / 3)

    def online(self) -> None:
        self.dispatcher.send("worker-online", **self._worker_fields())
        self.next_heartbeat = time.monotonic() + self.freq()

    def offline(self) -> None:
        self.dispatcher.send("worker-offline", **self._worker_fields())
        self.flush(force=True)

    def heartbeat(self) -> None:
        """worker-heartbeat, at most every ``freq`` seconds."""
        now = time.monotonic()
        if not self.enabled:
            return
        if now < self.next_heartbeat - 0.2:
            return
        self.next_heartbeat = now + self.freq()
        self.dispatcher.publish(
            "worker-heartbeat",
            active=len(self.worker.held),
            processed=self.worker.processed,
            **self._worker_fields(),
        )

    # --- task events ---------------------------------------------------------------------
    # The hot path: events appended straight to the buffer in their compact form (see
    # djq.events.COMPACT), one timestamp per batch (the jobs of one claim were received
    # together), times as text (the JSON encoder then calls back for nothing).
    def received(self, jobs: list[Claim]) -> None:
        if not self.enabled or not jobs:
            return
        append, now = self.dispatcher.buffer.append, time.time()
        for job in jobs:
            eta, expires = job.eta, job.expires
            append(
                (
                    "task-received",
                    now,
                    job.id,
                    job.name,
                    _short(job.args),
                    _short(job.kwargs),
                    job.retries,
                    eta.isoformat() if isinstance(eta, dt.datetime) else eta,
                    expires.isoformat() if isinstance(expires, dt.datetime) else expires,
                    job.root_id,
                    job.parent_id,
                )
            )

    def started(self, job: Claim) -> None:
        if self.enabled:
            self.dispatcher.buffer.append(("task-started", time.time(), job.id))

    def recorded(
        self, batch: list[Outcome], recorded: set[str], jobs: dict[str, Claim | None]
    ) -> None:
        """The events of a batch of outcomes just recorded (late, discarded ones send none)."""
        if not self.enabled:
            return
        append, now = self.dispatcher.buffer.append, time.time()
        for outcome in batch:
            if outcome.id not in recorded:
                continue
            if outcome.state == states.SUCCESS and not outcome.rejected:
                append(
                    (
                        "task-succeeded",
                        now,
                        outcome.id,
                        _short(outcome.repr),
                        outcome.runtime or 0.0,
                    )
                )
            else:
                self._outcome(outcome, jobs.get(outcome.id))

    def _outcome(self, outcome: Outcome, job: Claim | None) -> None:
        send, state, uuid = self.dispatcher.send, outcome.state, outcome.id
        if outcome.rejected:
            send("task-rejected", uuid=uuid, requeue=state in states.WAITING_STATES)
        if state == states.SUCCESS:
            send(
                "task-succeeded",
                uuid=uuid,
                result=_short(outcome.repr),
                runtime=outcome.runtime or 0.0,
            )
        elif state == states.FAILURE:
            send(
                "task-failed",
                uuid=uuid,
                exception=_short(outcome.repr),
                traceback=outcome.traceback or "",
            )
        elif state == states.RETRY:
            send(
                "task-retried",
                uuid=uuid,
                exception=_short(outcome.repr),
                traceback=outcome.traceback or "",
            )
        elif state == states.REVOKED:
            send("task-revoked", uuid=uuid, **_revoked_fields(outcome, job))

    def flush(self, force: bool = False) -> None:
        """Write the waiting events once the oldest has waited ``FLUSH_DELAY`` (the worker's
        loop wakes for it: ``deadline``), or now with ``force``."""
        buffer = self.dispatcher.buffer
        if not buffer:
            return
        now = time.monotonic()
        if self.pending_since is None:
            self.pending_since = now
        if force or len(buffer) >= FLUSH_EVENTS or now - self.pending_since >= FLUSH_DELAY:
            self.pending_since = None
            self.dispatcher.flush()

    def deadline(self) -> float:
        """When the loop must next call ``flush`` (monotonic time; inf: nothing waits)."""
        if not self.dispatcher.buffer:
            return float("inf")
        return (self.pending_since or time.monotonic()) + FLUSH_DELAY


def _revoked_fields(outcome: Outcome, job: Claim | None) -> dict[str, Any]:
    """task-revoked's fields: killed while running (terminated, signum) or expired."""
    text = outcome.repr or ""
    marker = "terminated ("
    if marker in text:
        signame = text.split(marker, 1)[1].split(")", 1)[0]
        return {"terminated": True, "signum": signame, "expired": False}
    return {"terminated": False, "signum": None, "expired": bool(job and job.expired)}
