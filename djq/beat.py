"""The periodic scheduler: leader election, settings sync, due ticks → enqueue, exactly once.

Any number of beats may run (on every host, or inside workers with ``--beat``). Each turn:

    take/renew the lease (one conditional UPDATE, database clock)
    ─ not the leader → sleep a renewal interval, try again
    ─ leader → sync DJQ_BEAT_SCHEDULE (once) → give new/edited rows a next_run_at
             → fire due rows → sleep until the next due time (at most a renewal interval)

Firing a tick is one transaction: move ``next_run_at`` on (conditional on it still being the tick
we read), insert the (schedule, tick) guard row, insert the job. Two beats that both think they
lead (a paused leader whose lease ran out) cannot both commit the same tick: the conditional
UPDATE and the unique guard row each stop the second one.

Settings → rows (``sync_schedule``, the built-in schedules) live in ``djq.beat_sync``.
Everything here is by the database clock (``store.db_now``), so hosts with skewed clocks agree.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import select
import signal
import socket
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, IntegrityError, InterfaceError, connections, transaction
from django.db.models import Min

from djq import store
from djq.beat_sync import sync_schedule
from djq.calling.enqueue import send_task
from djq.conf import settings
from djq.models import PeriodicTask
from djq.schedules import clocked, interval, next_tick
from djq.store import leases
from djq.store import rows as store_rows

logger = logging.getLogger("djq.beat")

LEASE_NAME = "beat"
#: seconds a leader's lease lives; a dead leader is replaced within about this long
DEFAULT_LEASE = 5.0
#: how many due rows one turn fires before looking at the lease again
FIRE_BATCH = 100


# --- the maths of one row ---------------------------------------------------------------------
def first_run(pt: PeriodicTask, now: dt.datetime) -> dt.datetime | None:
    """When a new (or edited, or re-enabled) row first runs, seen at ``now``."""
    schedule = pt.schedule
    if isinstance(schedule, clocked):
        return schedule.at  # even when past: a one-off that never ran runs now
    start = pt.start_time
    if start is not None and start > now:
        if isinstance(schedule, interval):
            return start
        return next_tick(schedule, start - dt.timedelta(microseconds=1), tz=pt.zone_name())
    if isinstance(schedule, interval):
        return schedule.next_after(now, anchor=start or now)
    return next_tick(schedule, now, tz=pt.zone_name())


def following(pt: PeriodicTask, tick: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """The tick after ``tick``, fired at ``now``; ``None`` when the row is done.

    Missed ticks (``tick`` long past) are skipped, so they run once in all (``catch_up="once"``),
    unless the row asks for ``catch_up="all"``, which walks through them one by one.
    """
    schedule = pt.schedule
    if pt.one_off or isinstance(schedule, clocked):
        return None
    after = tick if pt.catch_up == "all" else max(tick, now)
    return next_tick(schedule, after, tz=pt.zone_name(), anchor=tick)


def backfill_limit(pt: PeriodicTask) -> int:
    """How many missed ticks ``catch_up="all"`` enqueues at most (at least one: the latest)."""
    limit = pt.backfill_limit if pt.backfill_limit is not None else settings.BEAT_BACKFILL_LIMIT
    return max(int(limit), 1)


def tick_to_fire(pt: PeriodicTask, tick: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """The due tick beat fires for ``pt`` at ``now``, by its missed-run policy: ``tick`` itself
    (on time, or ``catch_up="once"``); ``None`` for a missed tick under ``"skip"``; under
    ``"all"``, the first of the last ``backfill_limit`` due ticks (older ones are dropped).
    One-off and clocked schedules run their single tick whatever the policy."""
    schedule = pt.schedule
    if pt.one_off or isinstance(schedule, clocked) or pt.catch_up not in ("skip", "all"):
        return tick
    zone = pt.zone_name()
    if pt.catch_up == "skip":
        nxt = next_tick(schedule, tick, tz=zone, anchor=tick)
        late = (now - tick).total_seconds()
        on_time = late <= settings.BEAT_MISSED_AFTER and (nxt is None or nxt > now)
        return tick if on_time else None
    recent = deque([tick], maxlen=backfill_limit(pt))
    moment: dt.datetime | None = tick
    while moment is not None:
        moment = next_tick(schedule, moment, tz=zone, anchor=tick)
        if moment is None or moment > now:
            break
        recent.append(moment)
    return recent[0]


def preview(pt: PeriodicTask, now: dt.datetime, count: int = 5) -> list[dt.datetime]:
    """The next ``count`` run times of ``pt`` as beat will fire them (for the admin)."""
    moment = pt.next_run_at if pt.enabled and pt.next_run_at else first_run(pt, now)
    times: list[dt.datetime] = []
    while moment is not None and len(times) < count:
        times.append(moment)
        if pt.one_off or isinstance(pt.schedule, clocked):
            break
        moment = next_tick(pt.schedule, moment, tz=pt.zone_name(), anchor=moment)
    return times


def job_options(pt: PeriodicTask, tick: dt.datetime) -> dict[str, Any]:
    """``apply_async`` options for a tick's job: the row's options, queue, priority, expiry."""
    options = dict(pt.options or {})
    if pt.queue:
        options["queue"] = pt.queue
    if pt.priority is not None:
        options["priority"] = pt.priority
    if pt.expire_seconds:
        options["expires"] = tick + dt.timedelta(seconds=pt.expire_seconds)
    options["headers"] = {**(options.get("headers") or {}), "periodic_task_name": pt.name}
    return options


# --- enqueueing ticks -------------------------------------------------------------------------
def enqueue_tick(
    pt: PeriodicTask, tick: dt.datetime, now: dt.datetime, using: str, manual: bool = False
) -> str | None:
    """Insert the tick's guard row and its job; ``None`` if this tick was already enqueued.

    Call it inside ``transaction.atomic(using)``: the guard row, the job and the counters commit
    together or not at all. Beat and the admin's "run now" both come here.
    """
    job_id = str(uuid.uuid4())
    try:
        with transaction.atomic(using=using):
            store_rows.add_tick(pt.pk, tick, job_id, manual, now, using)
    except IntegrityError:
        return None
    send_task(pt.task, pt.args, pt.kwargs, task_id=job_id, using=using, **job_options(pt, tick))
    store_rows.count_run(pt.pk, now, using)
    return job_id


def run_now(pt: PeriodicTask, using: str | None = None) -> str | None:
    """Enqueue ``pt``'s job now, outside its schedule (the admin's "run now")."""
    using = store.alias(using)
    now = store.db_now(using)
    with transaction.atomic(using=using):
        return enqueue_tick(pt, now, now, using, manual=True)


def fire(pt: PeriodicTask, now: dt.datetime, using: str) -> str | None:
    """Enqueue ``pt``'s due tick and move ``next_run_at`` on, in one transaction.

    The UPDATE is conditional on ``next_run_at`` still being the tick we read: if another beat
    or an admin edit moved it, nothing happens. A tick whose job cannot be built (arguments the
    task refuses, say) is logged and skipped, so one bad row cannot stall the others.
    """
    tick = _apply_catch_up(pt, pt.next_run_at, now, using)
    if tick is None:
        return None
    nxt = following(pt, tick, now)
    with transaction.atomic(using=using):
        if not store_rows.move_next_run(pt.pk, tick, nxt, using):
            return None
        try:
            with transaction.atomic(using=using):
                job_id = enqueue_tick(pt, tick, now, using)
        except (TypeError, ValueError) as exc:
            logger.error(
                "beat: cannot enqueue %s (%s): %s; tick %s skipped",
                pt.name,
                pt.task,
                exc,
                tick.isoformat(),
            )
            return None
    if job_id is None:
        logger.warning("beat: %s tick %s was already enqueued", pt.name, tick.isoformat())
    else:
        logger.info(
            "Scheduler: Sending due task %s (%s) [tick %s] → %s",
            pt.name,
            pt.task,
            tick.isoformat(),
            job_id,
        )
    return job_id


def _apply_catch_up(
    pt: PeriodicTask, tick: dt.datetime, now: dt.datetime, using: str
) -> dt.datetime | None:
    """Move ``next_run_at`` past the ticks the missed-run policy drops (conditionally, like a
    firing: a second beat that read the same tick moves nothing); the tick to fire, or None."""
    start = tick_to_fire(pt, tick, now)
    if start == tick:
        return tick
    moved_to = start or next_tick(pt.schedule, now, tz=pt.zone_name(), anchor=tick)
    if not store_rows.move_next_run(pt.pk, tick, moved_to, using):
        return None
    logger.warning(
        "beat: %s missed ticks from %s %s; next run %s",
        pt.name,
        tick.isoformat(),
        "skipped (catch_up=skip)" if start is None else "dropped beyond the backfill limit",
        moved_to.isoformat() if moved_to else "never",
    )
    pt.next_run_at = moved_to
    return start


def schedule_new_rows(now: dt.datetime, using: str) -> int:
    """Give enabled rows without ``next_run_at`` (new, edited, re-enabled) their first tick."""
    count = 0
    for pt in PeriodicTask.objects.using(using).filter(enabled=True, next_run_at__isnull=True):
        try:
            first = first_run(pt, now)
        except (TypeError, ValueError) as exc:
            logger.error("beat: disabling %s: its schedule is unusable (%s)", pt.name, exc)
            store_rows.set_periodic_enabled([pt.pk], False, using, only_changed=False)
            continue
        count += store_rows.move_next_run(pt.pk, None, first, using)
        logger.info("beat: %s next runs at %s", pt.name, first and first.isoformat())
    return count


def fire_due(now: dt.datetime, using: str) -> int:
    """Fire up to ``FIRE_BATCH`` due rows, oldest tick first; returns how many were enqueued."""
    due = PeriodicTask.objects.using(using).filter(enabled=True, next_run_at__lte=now)
    return sum(fire(pt, now, using) is not None for pt in due.order_by("next_run_at")[:FIRE_BATCH])


def next_due(using: str) -> dt.datetime | None:
    found = PeriodicTask.objects.using(using).filter(enabled=True).aggregate(at=Min("next_run_at"))
    return found["at"]


# --- leader election --------------------------------------------------------------------------
def acquire(holder: str, lease: float, using: str, name: str = LEASE_NAME) -> bool:
    """Take or renew beat's lease (djq.leases: one conditional UPDATE, database clock)."""
    return leases.acquire(holder, lease, using, name)


def release(holder: str, using: str, name: str = LEASE_NAME) -> bool:
    """Give the lease up (at shutdown) so that another beat takes over at once."""
    return leases.release(holder, using, name)


# --- the process ------------------------------------------------------------------------------
@dataclass
class BeatConfig:
    """What ``djq_beat`` (or ``djq_worker --beat``) can be told."""

    max_interval: float = 1.0
    lease: float = DEFAULT_LEASE
    using: str | None = None
    sync: bool = True
    name: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )


class Beat:
    """One beat: a loop that leads or stands by; ``stop()`` ends it from any thread."""

    def __init__(self, config: BeatConfig | None = None):
        self.config = config or BeatConfig()
        self.using = store.alias(self.config.using)
        self.name = self.config.name
        self.leading = False
        self.synced = False
        self.stopping = False
        self.failures = 0
        self._wake_r: socket.socket | None = None  # a self-pipe while loop() runs
        self._wake_w: socket.socket | None = None

    @property
    def renew_every(self) -> float:
        return self.config.lease / 5

    def run(self) -> int:
        """Run in the main thread of a process: SIGTERM/SIGINT stop it and release the lease."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop())
        self.loop()
        return 0

    def loop(self) -> None:
        logger.info(
            "beat %s: ready (lease %gs, database %s)", self.name, self.config.lease, self.using
        )
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        try:
            while not self.stopping:
                self._sleep(self.step())
        finally:
            self._shutdown()

    def stop(self) -> None:
        self.stopping = True
        try:
            if self._wake_w is not None:
                self._wake_w.send(b"x")
        except OSError:
            pass

    def step(self) -> float:
        """One turn; returns how long to sleep before the next."""
        try:
            delay = self._turn()
        except (DatabaseError, InterfaceError) as exc:
            return self._database_down(exc)
        self.failures = 0
        return delay

    def _turn(self) -> float:
        leading = acquire(self.name, self.config.lease, self.using)
        if leading != self.leading:
            self.leading = leading
            logger.info(
                "beat %s: %s",
                self.name,
                "leading (the lease is ours)" if leading else "standing by",
            )
        if not leading:
            return self.renew_every
        if self.config.sync and not self.synced:
            report = sync_schedule(using=self.using)
            self.synced = True
            logger.info(
                "beat %s: schedule synced: %s", self.name, {k: v for k, v in report.items() if v}
            )
        now = store.db_now(self.using)
        schedule_new_rows(now, self.using)
        if fire_due(now, self.using) >= FIRE_BATCH:
            return 0.0
        return self._until_due(now)

    def _until_due(self, now: dt.datetime) -> float:
        cap = min(self.renew_every, self.config.max_interval)
        due = next_due(self.using)
        if due is None:
            return cap
        return min(cap, max(0.0, (due - now).total_seconds()))

    def _database_down(self, exc: Exception) -> float:
        self.failures += 1
        self.leading = False
        delay = min(5.0, 0.2 * 2**self.failures)
        logger.warning(
            "beat %s: database unavailable (%s: %s); retrying in %.1fs",
            self.name,
            type(exc).__name__,
            str(exc).strip(),
            delay,
        )
        try:
            connections[self.using].close()
        except Exception:
            pass
        return delay

    def _sleep(self, seconds: float) -> None:
        if self.stopping or seconds <= 0 or self._wake_r is None:
            return
        ready, _, _ = select.select([self._wake_r], [], [], seconds)
        if ready:
            try:
                self._wake_r.recv(64)
            except OSError:
                pass

    def _shutdown(self) -> None:
        try:
            if release(self.name, self.using):
                logger.info("beat %s: lease released", self.name)
        except (DatabaseError, InterfaceError) as exc:
            logger.warning("beat %s: could not release the lease (%s)", self.name, exc)
        finally:
            connections[self.using].close()
            for sock in (self._wake_r, self._wake_w):
                if sock is not None:
                    sock.close()
        logger.info("beat %s: stopped", self.name)


class BeatThread(threading.Thread):
    """A beat inside another process (``djq_worker --beat``): a daemon thread, own connection.

    Django connections are per thread, so the beat never shares the worker's; forked pool
    children never touch it (they only inherit memory, and psycopg does not close a parent's
    connection in a child).
    """

    def __init__(self, config: BeatConfig | None = None):
        super().__init__(name="djq-beat", daemon=True)
        self.beat = Beat(config)

    def run(self) -> None:
        try:
            self.beat.loop()
        finally:
            connections.close_all()

    def stop(self, timeout: float = 10.0) -> None:
        self.beat.stop()
        self.join(timeout)


def start_beat_thread(using: str | None = None) -> BeatThread:
    """Start a beat in a daemon thread of this process (``djq_worker --beat``)."""
    thread = BeatThread(BeatConfig(using=using))
    thread.start()
    return thread
