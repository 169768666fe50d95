"""djq's tables: jobs (one row per task invocation), queues and workers.

Only ``djq.store`` writes job state; everything else reads these models through the ORM.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from djq import states
from djq.conf import timezone_name
from djq.options import ID_MAX, PRIORITY_MAX, PRIORITY_MIN  # (defined with the call checks)
from djq.schedules import clocked, crontab, interval, solar, zone
from djq.serialization import Decoder, Encoder

#: the longest task (and group) id: Celery's practical limit (ids are strings of any form)
TASK_ID_MAX = ID_MAX


def _new_id() -> str:
    return str(uuid.uuid4())


STATE_CHOICES = [(s, s) for s in sorted(states.ALL_STATES)]
_WAITING = sorted(states.WAITING_STATES)
_READY = sorted(states.READY_STATES)
_HELD = sorted(states.HELD_STATES)


class JobQuerySet(models.QuerySet):
    """Querysets named by state, for the admin, commands and tests."""

    def waiting(self) -> JobQuerySet:
        return self.filter(state__in=_WAITING)

    def running(self) -> JobQuerySet:
        return self.filter(state=states.STARTED)

    def reserved(self) -> JobQuerySet:
        """Claimed into a worker's reserve, not started yet."""
        return self.filter(state=states.RESERVED)

    def dead(self) -> JobQuerySet:
        """Dead letters: failures that will not be tried again by themselves (see states.DEAD)."""
        return self.exclude(dead_reason="")

    def finished(self) -> JobQuerySet:
        return self.filter(state__in=_READY)

    def failed(self) -> JobQuerySet:
        return self.filter(state=states.FAILURE)


class Job(models.Model):
    """One task invocation. ``id`` is the task id that ``AsyncResult`` takes."""

    # Any non-empty string up to 255 characters (Celery's ``apply_async(task_id=...)`` idiom);
    # a UUID4 (as text) when none is given. The id columns below are text for the same reason.
    id = models.CharField(max_length=TASK_ID_MAX, primary_key=True, default=_new_id, editable=False)
    name = models.CharField(max_length=255, help_text="registered task name")
    queue = models.CharField(max_length=200, default="default")
    priority = models.SmallIntegerField(default=0, help_text="higher runs first")
    state = models.CharField(max_length=16, choices=STATE_CHOICES, default=states.PENDING)
    #: state set by ``Task.update_state`` while the job runs (e.g. "PROGRESS"); shown as its state.
    custom_state = models.CharField(max_length=64, blank=True, default="")
    args = models.JSONField(default=list, encoder=Encoder, decoder=Decoder)
    kwargs = models.JSONField(default=dict, encoder=Encoder, decoder=Decoder)
    #: link/link_error, headers, time limits, track_started, ignore_result … from apply_async
    options = models.JSONField(default=dict, encoder=Encoder, decoder=Decoder)
    meta = models.JSONField(null=True, blank=True, encoder=Encoder, decoder=Decoder)
    #: the return value on SUCCESS; the exception (Celery's dict shape) on FAILURE/RETRY/REVOKED
    result = models.JSONField(null=True, blank=True, encoder=Encoder, decoder=Decoder)
    traceback = models.TextField(blank=True, default="")
    #: the ETA: the job is due once the database clock passes it
    run_after = models.DateTimeField()
    expires = models.DateTimeField(null=True, blank=True)
    retries = models.PositiveIntegerField(default=0, help_text="retries so far")
    max_retries = models.IntegerField(null=True, blank=True)
    #: claims so far; the fencing token every write of a running job is conditioned on
    attempt = models.PositiveIntegerField(default=0)
    acks_late = models.BooleanField(default=False)
    worker = models.CharField(max_length=255, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    #: set with revoked_at by revoke(terminate=True): the signal for the child running the job
    terminate_signal = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    parent_id = models.CharField(max_length=TASK_ID_MAX, null=True, blank=True)
    root_id = models.CharField(max_length=TASK_ID_MAX, null=True, blank=True)
    group_id = models.CharField(max_length=TASK_ID_MAX, null=True, blank=True)
    #: [[state, time, worker], ...]: every state change, appended by the statement that makes it
    history = models.JSONField(default=list)
    #: someone waits on this result (``AsyncResult.get()`` on PostgreSQL): its completion
    #: NOTIFYs the result's channel. Jobs nobody waits on finish without a NOTIFY.
    waited = models.BooleanField(default=False, db_default=False, editable=False)
    #: the task's ``concurrency_key`` resolved at enqueue ("" for none): per-key concurrency
    #: and rate limits count jobs of (task, key); fair claims take turns between keys
    concurrency_key = models.CharField(max_length=255, blank=True, default="", db_default="")
    #: why this FAILURE is a dead letter (states.DEAD_REASONS), "" for any other job: the
    #: admin shows it as DEAD and lists it under "Dead jobs" (requeue puts it back to waiting)
    dead_reason = models.CharField(
        max_length=32,
        blank=True,
        default="",
        db_default="",
        choices=[("", "")] + [(r, r.replace("_", " ")) for r in states.DEAD_REASONS],
    )
    #: times this job was lost with its worker while STARTED (the rescuer counts them):
    #: at DJQ_MAX_WORKER_LOST it is not requeued again but ends dead ("worker_lost")
    lost_count = models.PositiveIntegerField(default=0, db_default=0)

    objects = JobQuerySet.as_manager()

    class Meta:
        db_table = "djq_job"
        ordering = ["-created_at"]
        # Every index here is written by each state change (a change of ``state`` is never a
        # HOT update: the partial indexes name it), so only indexes a measured query needs are
        # kept, each with the query it serves (migration 0007 dropped the others; benchmarks/run.py
        # --only wal measures the WAL a job costs).
        indexes = [
            # The claim (djq.db.postgres.CLAIM): "due jobs of this queue, highest priority first,
            # oldest ETA first". Partial on the waiting states so the index holds only the
            # backlog, never the finished jobs; its column order matches the claim's ORDER BY.
            # It also answers NEXT_DUE (the worker's sleep: one probe per priority present);
            # ``inspect scheduled`` reads the queues' backlog from it and sorts it (rare).
            models.Index(
                fields=["queue", "-priority", "run_after"],
                condition=Q(state__in=_WAITING),
                name="djq_job_claim_idx",
            ),
            # The fair claim (djq.store.postgres.FAIR_CLAIM): the keys present in a queue's
            # backlog (a loose index scan, one probe per key), then each key's due jobs in the
            # claim's order; jobs without a key ("") are one more key here, walked the same way
            # (partial on keyed jobs only, their walk would read every keyed job ahead of them).
            models.Index(
                fields=["queue", "concurrency_key", "-priority", "run_after"],
                condition=Q(state__in=_WAITING),
                name="djq_job_key_claim_idx",
            ),
            # The held (reserved or running) jobs: a few rows per worker slot. The rescue sweep
            # (lease ran out), a dead worker's rescue (worker = …), concurrency limits
            # (``name`` / ``queue`` of held jobs, djq.store.claim_limited), the admin's running
            # jobs per worker. ``lease_expires_at`` is in no index, so a heartbeat (which only
            # moves the lease) is a HOT update.
            models.Index(
                fields=["name", "queue"], condition=Q(state__in=_HELD), name="djq_job_held_idx"
            ),
            # Result expiry (purge: finished_at < …), the per-minute rollup (djq.stats) and the
            # dashboard's recent window (djq.monitor: finished_at >= …).
            models.Index(
                fields=["finished_at"],
                condition=Q(finished_at__isnull=False),
                name="djq_job_finished_idx",
            ),
            # A group's results and a chord's members (group_id = …); children (parent_id = …).
            models.Index(
                fields=["group_id"], condition=Q(group_id__isnull=False), name="djq_job_group_idx"
            ),
            models.Index(
                fields=["parent_id"],
                condition=Q(parent_id__isnull=False),
                name="djq_job_parent_idx",
            ),
            # The admin's job list (benchmarks/admin.py): newest first (its default order and
            # date filter), and its task, state, queue and worker filters, each walked in that
            # order and stopped after one page, whatever the table's size. The state filter is
            # partial on the finished states: the waiting and held ones are served by the claim
            # and held indexes (a second index on the backlog tempts the planner into sorting
            # it). Pending jobs have no worker: not in the worker index.
            models.Index(fields=["name", "-created_at"], name="djq_job_name_idx"),
            models.Index(
                fields=["state", "-created_at"],
                condition=Q(state__in=_READY),
                name="djq_job_state_idx",
            ),
            models.Index(fields=["-created_at"], name="djq_job_created_idx"),
            # The admin's jobs of one concurrency key, newest first, and its list of keys (a
            # loose index scan): partial, so jobs without a key write no entry.
            models.Index(
                fields=["concurrency_key", "-created_at"],
                condition=~Q(concurrency_key=""),
                name="djq_job_key_idx",
            ),
            models.Index(fields=["queue", "-created_at"], name="djq_job_queue_idx"),
            models.Index(
                fields=["worker", "-created_at"], condition=~Q(worker=""), name="djq_job_worker_idx"
            ),
            # The admin's "Dead jobs" list (dead_reason <> ''), newest first: the dead letters
            # are few, so the index is small and never written by a job that is not one.
            models.Index(
                fields=["-created_at"], condition=~Q(dead_reason=""), name="djq_job_dead_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=sorted(states.ALL_STATES)), name="djq_job_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(priority__gte=PRIORITY_MIN, priority__lte=PRIORITY_MAX),
                name="djq_job_priority_range",
            ),
            # finished <=> finish time set
            models.CheckConstraint(
                condition=(Q(state__in=_READY) & Q(finished_at__isnull=False))
                | (~Q(state__in=_READY) & Q(finished_at__isnull=True)),
                name="djq_job_finished_at_iff_ready",
            ),
            # a held (reserved or running) job always has a lease and a worker
            models.CheckConstraint(
                condition=~Q(state__in=_HELD) | (Q(lease_expires_at__isnull=False) & ~Q(worker="")),
                name="djq_job_running_has_lease",
            ),
            # a dead letter is a FAILURE (Celery's semantics hold for its AsyncResult)
            models.CheckConstraint(
                condition=Q(dead_reason="") | Q(state=states.FAILURE),
                name="djq_job_dead_is_failure",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}[{self.id}] {self.state}"


class Queue(models.Model):
    """A queue's settings. Rows are optional: a job's queue needs no row until it is paused."""

    name = models.CharField(max_length=200, primary_key=True)
    paused = models.BooleanField(default=False, help_text="a paused queue's jobs are not claimed")
    concurrency_limit = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "djq_queue"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Worker(models.Model):
    """A worker process; its heartbeat (by the database clock) tells whether it is alive."""

    name = models.CharField(max_length=255, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.IntegerField()
    queues = models.JSONField(default=list)
    concurrency = models.PositiveIntegerField(default=1)
    pool = models.CharField(max_length=16, default="prefork")
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    processed = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "djq_worker"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Group(models.Model):
    """A group or chord: its members, and for a chord the body and how many members finished.

    The completion transaction that counts the last member enqueues the body (exactly once: the
    counter is incremented with a single UPDATE per recorded job, under the row lock).
    """

    id = models.CharField(max_length=TASK_ID_MAX, primary_key=True)
    size = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    children = models.JSONField(default=list, help_text="member job ids, in order")
    body = models.JSONField(null=True, blank=True, help_text="the chord body's signature")
    fired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "djq_group"

    def __str__(self) -> str:
        return f"group {self.id} ({self.completed}/{self.size})"


class Batch(models.Model):
    """A batch (``djq.batch``): its members and callbacks, and how many members ended.

    Unlike a chord's, a batch's callbacks run whatever the members' outcomes. The completion
    transaction that counts the last member of a closed batch sets ``finished_at`` and enqueues
    the callbacks: the counters are incremented by one UPDATE under the row lock, so exactly one
    completer sees the batch end, however many workers finish its last members at once. An open
    batch (``open=True``) takes members until it is closed; it cannot end before.
    """

    id = models.CharField(max_length=TASK_ID_MAX, primary_key=True)
    size = models.PositiveIntegerField(default=0, help_text="members added")
    ended = models.PositiveIntegerField(default=0, help_text="members that ended (any state)")
    failed = models.PositiveIntegerField(default=0, help_text="members that ended not SUCCESS")
    children = models.JSONField(default=list, help_text="member job ids, in order")
    on_finish = models.JSONField(null=True, blank=True, help_text="runs once all members ended")
    on_success = models.JSONField(null=True, blank=True, help_text="runs if all succeeded")
    on_failure = models.JSONField(null=True, blank=True, help_text="runs if any did not")
    callback_ids = models.JSONField(
        default=dict, blank=True, help_text="the callbacks' job ids, by name"
    )
    closed_at = models.DateTimeField(null=True, blank=True, help_text="no member added after")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="callbacks enqueued")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "djq_batch"
        verbose_name_plural = "batches"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"batch {self.id} ({self.ended}/{self.size})"


class Dashboard(Job):
    """No table: the admin's dashboard page (``djq.admin.DashboardAdmin``) needs a model to be
    listed in the admin index beside jobs, queues and workers. Seeing it takes a job permission."""

    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = verbose_name_plural = "dashboard"


# --- periodic tasks (beat) ------------------------------------------------------------------------
INTERVAL_PERIODS = [
    ("days", "days"),
    ("hours", "hours"),
    ("minutes", "minutes"),
    ("seconds", "seconds"),
]
#: the fields that define *when* a periodic task runs; changing one makes beat recompute
SCHEDULE_FIELDS = (
    "crontab",
    "interval_every",
    "interval_period",
    "clocked_time",
    "solar_event",
    "solar_latitude",
    "solar_longitude",
    "timezone",
    "start_time",
    "enabled",
)
#: what beat does with the ticks a schedule missed while no beat ran (``PeriodicTask.catch_up``)
CATCH_UP_CHOICES = [
    ("once", "once: one run for all missed ticks"),
    ("skip", "skip: drop missed ticks, run at the next one"),
    ("all", "all: one run per missed tick (bounded)"),
]
#: django-celery-beat's and Celery's solar events (djq.sun)
SOLAR_EVENTS = [
    (e, e.replace("_", " "))
    for e in (
        "dawn_astronomical",
        "dawn_nautical",
        "dawn_civil",
        "sunrise",
        "solar_noon",
        "sunset",
        "dusk_civil",
        "dusk_nautical",
        "dusk_astronomical",
    )
]


class PeriodicTask(models.Model):
    """A schedule: which task to enqueue, with what, and when (exactly one of four kinds).

    Beat keeps ``next_run_at`` (by the database clock) and advances it in the transaction that
    enqueues the tick's job; ``None`` means "beat: compute it", which is how edits take effect.
    Rows come from ``DJQ_BEAT_SCHEDULE`` (``settings_hash`` set) or from the admin.
    """

    name = models.CharField(max_length=200, unique=True)
    task = models.CharField(max_length=255, help_text="registered task name, e.g. app.tasks.f")
    args = models.JSONField(default=list, blank=True, encoder=Encoder, decoder=Decoder)
    kwargs = models.JSONField(default=dict, blank=True, encoder=Encoder, decoder=Decoder)
    queue = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="empty: the task's queue or DJQ_TASK_ROUTES",
    )
    priority = models.SmallIntegerField(
        null=True, blank=True, help_text="empty: the task's priority"
    )
    expire_seconds = models.FloatField(
        null=True,
        blank=True,
        help_text="a tick's job that has not started this many seconds after the tick is "
        "not run (it ends REVOKED)",
    )
    #: other apply_async options (headers, time_limit, soft_time_limit, ignore_result ...)
    options = models.JSONField(default=dict, blank=True, encoder=Encoder, decoder=Decoder)
    # -- the schedule: exactly one of crontab / interval / clocked / solar ----------------------
    crontab = models.CharField(
        max_length=200, blank=True, default="", help_text='5 cron fields, e.g. "*/15 * * * *"'
    )
    interval_every = models.PositiveIntegerField(null=True, blank=True)
    interval_period = models.CharField(
        max_length=8, choices=INTERVAL_PERIODS, blank=True, default=""
    )
    clocked_time = models.DateTimeField(null=True, blank=True, help_text="run once, at this time")
    solar_event = models.CharField(
        max_length=24,
        choices=SOLAR_EVENTS,
        blank=True,
        default="",
        help_text="at each sunrise, sunset, dawn … at a place",
    )
    solar_latitude = models.FloatField(
        null=True, blank=True, help_text="degrees, north positive (-90 … 90)"
    )
    solar_longitude = models.FloatField(
        null=True, blank=True, help_text="degrees, east positive (-180 … 180)"
    )
    timezone = models.CharField(
        max_length=63, blank=True, default="", help_text="zone of the cron fields (DJQ_TIMEZONE)"
    )
    # -- behaviour -------------------------------------------------------------------------------
    enabled = models.BooleanField(default=True)
    one_off = models.BooleanField(default=False, help_text="disable after the first run")
    catch_up = models.CharField(
        max_length=8,
        choices=CATCH_UP_CHOICES,
        default="once",
        help_text="ticks missed while beat was down: run once for all of them, skip them, or "
        "run each (up to the backfill limit)",
    )
    backfill_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text='with catch-up "all": at most this many missed ticks run, the latest ones '
        "(empty: DJQ_BEAT_BACKFILL_LIMIT)",
    )
    start_time = models.DateTimeField(null=True, blank=True, help_text="no run before this")
    description = models.TextField(blank=True, default="")
    # -- kept by beat ---------------------------------------------------------------------------
    next_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    total_run_count = models.PositiveIntegerField(default=0, editable=False)
    #: hash of the DJQ_BEAT_SCHEDULE entry this row was last synced from ("" = not from settings)
    settings_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "djq_periodic_task"
        ordering = ["name"]
        indexes = [
            # beat's "what is due next": enabled schedules by next_run_at
            models.Index(
                fields=["next_run_at"], condition=Q(enabled=True), name="djq_periodic_due_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(
                        crontab__gt="",
                        interval_every__isnull=True,
                        clocked_time__isnull=True,
                        solar_event="",
                    )
                    | Q(
                        crontab="",
                        interval_every__isnull=False,
                        clocked_time__isnull=True,
                        solar_event="",
                    )
                    | Q(
                        crontab="",
                        interval_every__isnull=True,
                        clocked_time__isnull=False,
                        solar_event="",
                    )
                    | Q(
                        crontab="",
                        interval_every__isnull=True,
                        clocked_time__isnull=True,
                        solar_event__gt="",
                    )
                ),
                name="djq_periodic_one_schedule",
            ),
            models.CheckConstraint(
                condition=Q(
                    solar_event="", solar_latitude__isnull=True, solar_longitude__isnull=True
                )
                | Q(
                    solar_event__gt="",
                    solar_latitude__gte=-90,
                    solar_latitude__lte=90,
                    solar_longitude__gte=-180,
                    solar_longitude__lte=180,
                ),
                name="djq_periodic_solar_complete",
            ),
            models.CheckConstraint(
                condition=Q(interval_every__isnull=True, interval_period="")
                | Q(interval_every__gte=1, interval_period__in=[p for p, _ in INTERVAL_PERIODS]),
                name="djq_periodic_interval_complete",
            ),
            models.CheckConstraint(
                condition=Q(priority__isnull=True)
                | Q(priority__gte=PRIORITY_MIN, priority__lte=PRIORITY_MAX),
                name="djq_periodic_priority_range",
            ),
            models.CheckConstraint(
                condition=Q(catch_up__in=[c for c, _ in CATCH_UP_CHOICES]),
                name="djq_periodic_catch_up_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.schedule_display()}"

    @property
    def schedule(self):
        """The schedule object (``djq.schedules``) this row describes."""
        if self.solar_event:
            return solar(self.solar_event, self.solar_latitude, self.solar_longitude)
        if self.crontab:
            return crontab.from_string(self.crontab)
        if self.interval_every:
            return interval(self.interval_every, self.interval_period or "seconds")
        if self.clocked_time:
            return clocked(self.clocked_time)
        raise ValueError(f"periodic task {self.name!r} has no schedule")

    def zone_name(self) -> str:
        return self.timezone or timezone_name()

    def schedule_display(self) -> str:
        if self.crontab:
            return f"cron {self.crontab} ({self.zone_name()})"
        if self.interval_every:
            unit = self.interval_period.removesuffix("s")
            if self.interval_every == 1:  # "every hour", not "every 1 hours"
                return f"every {unit}"
            return f"every {self.interval_every} {unit}s"
        if self.clocked_time:
            return f"once at {self.clocked_time.isoformat()}"
        if self.solar_event:
            return (
                f"{self.solar_event.replace('_', ' ')} at {self.solar_latitude:g}, "
                f"{self.solar_longitude:g}"
            )
        return "no schedule"

    def clean(self) -> None:
        """One schedule, a valid cron expression and time zone: errors named by field."""
        from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

        kinds = [
            bool(self.crontab),
            self.interval_every is not None,
            bool(self.clocked_time),
            bool(self.solar_event),
        ]
        errors: dict[str, str] = {}
        if sum(kinds) == 0:
            errors[NON_FIELD_ERRORS] = (
                "Give a schedule: a cron expression, an interval, a clocked time or a solar event."
            )
        elif sum(kinds) > 1:
            errors[NON_FIELD_ERRORS] = (
                "Give only one schedule: a cron expression, an interval, "
                "a clocked time or a solar event."
            )
        errors.update(self._solar_errors())
        if self.crontab:
            try:
                self.crontab = crontab.from_string(self.crontab).expression
            except ValueError as exc:
                errors["crontab"] = f"Invalid cron expression: {exc}"
        if self.interval_every is not None and not self.interval_period:
            errors["interval_period"] = "Choose the interval's unit."
        if self.interval_period and self.interval_every is None:
            errors["interval_every"] = "Give the number of units for the interval."
        if self.timezone:
            try:
                zone(self.timezone)
            except ValueError:
                errors["timezone"] = f"Unknown time zone {self.timezone!r}."
        if not isinstance(self.args, list):
            errors["args"] = "args must be a JSON list."
        if not isinstance(self.kwargs, dict):
            errors["kwargs"] = "kwargs must be a JSON object."
        if not isinstance(self.options, dict):
            errors["options"] = "options must be a JSON object."
        if errors:
            raise ValidationError(errors)

    def _solar_errors(self) -> dict[str, str]:
        """A solar event needs its place; a place needs its event."""
        place = {
            "solar_latitude": (self.solar_latitude, 90),
            "solar_longitude": (self.solar_longitude, 180),
        }
        if not self.solar_event:
            return {
                name: "Give a solar event for this place, or leave it empty."
                for name, (value, _) in place.items()
                if value is not None
            }
        errors = {}
        for name, (value, bound) in place.items():
            if value is None:
                errors[name] = f"A {self.solar_event} schedule needs its {name[6:]}."
            elif not -bound <= value <= bound:
                errors[name] = (
                    f"The {name[6:]} must be between -{bound} and {bound}, not {value:g}."
                )
        return errors


class PeriodicTick(models.Model):
    """One enqueued tick of a periodic task: the guard that makes each tick enqueue once.

    Inserted in the transaction that inserts the tick's job; the unique (task, tick) pair makes
    a second insert fail, so even two beats that both believe they lead cannot double a tick.
    """

    periodic_task = models.ForeignKey(PeriodicTask, on_delete=models.CASCADE, related_name="ticks")
    tick = models.DateTimeField()
    job_id = models.CharField(max_length=TASK_ID_MAX)
    manual = models.BooleanField(default=False, help_text='enqueued by "run now"')
    created_at = models.DateTimeField()

    class Meta:
        db_table = "djq_periodic_tick"
        ordering = ["-tick"]
        constraints = [
            models.UniqueConstraint(
                fields=["periodic_task", "tick"], name="djq_periodic_tick_once"
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="djq_periodic_tick_age_idx")]

    def __str__(self) -> str:
        return f"{self.periodic_task_id} @ {self.tick.isoformat()}"


class Lease(models.Model):
    """A named lease for a singleton service (beat): who holds it and until when (DB clock).

    Taken and renewed with one conditional UPDATE (``holder = me OR expires_at < now``), so at
    most one live holder exists; a dead holder's lease simply runs out.
    """

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=255, blank=True, default="")
    expires_at = models.DateTimeField()
    acquired_at = models.DateTimeField()

    class Meta:
        db_table = "djq_lease"

    def __str__(self) -> str:
        return f"{self.name}: {self.holder or 'free'} until {self.expires_at.isoformat()}"


class TaskLimit(models.Model):
    """Cluster-wide flow control for one task name: rate limit and concurrency limit.

    A row exists once a limit is set at run time (``control.rate_limit``) or the first time a
    worker claims a job of a task that has a limit (from its decorator or DJQ_TASK_ANNOTATIONS).
    ``next_slot_at`` is the rate limiter's state (GCRA): the time the next job may start; each
    claimed job takes the next slot, so all workers together keep the rate. The row is also the
    lock that serialises claimers when counting a task's running jobs for its concurrency limit.
    """

    name = models.CharField(max_length=255, primary_key=True)
    rate_limit = models.CharField(
        max_length=32, blank=True, default="", help_text='e.g. "100/m"; overrides the task\'s own'
    )
    concurrency_limit = models.PositiveIntegerField(null=True, blank=True)
    next_slot_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "djq_task_limit"

    def __str__(self) -> str:
        return self.name


class UniqueLock(models.Model):
    """Unique jobs: one row per unique key, naming the job that holds it and until when.

    Taken with ``INSERT … ON CONFLICT DO UPDATE … WHERE <the holder is finished and expired>``
    in the enqueuing transaction, so concurrent enqueues of one key make exactly one job.
    """

    key = models.CharField(max_length=255, primary_key=True)
    job_id = models.CharField(max_length=TASK_ID_MAX)
    until = models.DateTimeField()

    class Meta:
        db_table = "djq_unique_lock"

    def __str__(self) -> str:
        return self.key


class ControlMessage(models.Model):
    """A remote-control command broadcast to workers (all, or ``destination``)."""

    command = models.CharField(max_length=64)
    arguments = models.JSONField(default=dict)
    destination = models.JSONField(null=True, blank=True, help_text="worker names; null: all")
    reply = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "djq_control_message"
        indexes = [models.Index(fields=["expires_at"], name="djq_control_expires_idx")]

    def __str__(self) -> str:
        return f"{self.command} #{self.pk}"


class ControlReply(models.Model):
    message = models.ForeignKey(ControlMessage, on_delete=models.CASCADE, related_name="replies")
    worker = models.CharField(max_length=255)
    reply = models.JSONField(null=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "djq_control_reply"

    def __str__(self) -> str:
        return f"{self.worker} → #{self.message_id}"


class EventBatch(models.Model):
    """Monitoring events (Celery's event stream: task-received, worker-heartbeat …), a batch a row.

    A worker started with ``-E`` writes the events of one turn of its loop as one row (one
    INSERT however many jobs the turn handled); ``djq_events`` and ``djq.events.Receiver`` read
    the rows in id order. Rows older than ``DJQ_EVENTS_EXPIRES`` are pruned by the workers.
    """

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField()
    hostname = models.CharField(max_length=255)
    count = models.PositiveIntegerField()
    payload = models.TextField(help_text='JSON: {"sender": {hostname, pid, utcoffset}, "events"}')

    class Meta:
        db_table = "djq_event_batch"
        indexes = [models.Index(fields=["created_at"], name="djq_event_created_idx")]

    def __str__(self) -> str:
        return f"{self.count} event(s) of {self.hostname} #{self.pk}"


#: upper bounds (seconds) of the run-time histogram buckets of ``JobStat`` (the last: the rest)
RUNTIME_BOUNDS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0)


class JobStat(models.Model):
    """Finished jobs per minute, queue, task and state: the history behind the admin's charts.

    Written once per finished minute by the elected worker (``djq.stats``), so charts over 30
    days read a small table, whatever the size of ``djq_job``, and survive the pruning of old
    jobs. Run time is finish − start; wait is start − due time (``run_after``).
    """

    bucket = models.DateTimeField()
    queue = models.CharField(max_length=200)
    name = models.CharField(max_length=255)
    state = models.CharField(max_length=16)
    count = models.PositiveIntegerField()
    runtime_sum = models.FloatField(default=0.0)
    runtime_max = models.FloatField(default=0.0)
    wait_sum = models.FloatField(default=0.0)
    wait_max = models.FloatField(default=0.0)
    runtime_hist = models.JSONField(default=list)  # counts per RUNTIME_BOUNDS bucket, then rest

    class Meta:
        db_table = "djq_job_stat"
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "queue", "name", "state"], name="djq_job_stat_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.queue} {self.name} {self.state}: {self.count}"


class JobLog(models.Model):
    """The log records a task emitted during one attempt (``djq.task_log``), written with the
    attempt's outcome by the worker (``djq.job_logs``). The database deletes them with their job
    (ON DELETE CASCADE), however the job is deleted."""

    job = models.ForeignKey(Job, on_delete=models.DB_CASCADE, related_name="logs")
    attempt = models.PositiveIntegerField()
    created_at = models.DateTimeField(db_default=Now())
    text = models.TextField()
    #: the text was cut at DJQ_TASK_LOG_MAX_BYTES (it ends with a marker saying how much)
    truncated = models.BooleanField(default=False)

    class Meta:
        db_table = "djq_job_log"
        constraints = [
            models.UniqueConstraint(fields=["job", "attempt"], name="djq_job_log_attempt"),
        ]

    def __str__(self) -> str:
        return f"log of {self.job_id} attempt {self.attempt}"


class QueueDepth(models.Model):
    """Waiting and running jobs per queue, sampled once a minute by the elected worker
    (``djq.stats``): the history behind the queue-depth charts."""

    bucket = models.DateTimeField()
    queue = models.CharField(max_length=200)
    waiting = models.PositiveIntegerField()
    running = models.PositiveIntegerField()

    class Meta:
        db_table = "djq_queue_depth"
        constraints = [
            models.UniqueConstraint(fields=["bucket", "queue"], name="djq_queue_depth_key"),
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.queue}: {self.waiting} waiting"
