"""djq's tables: jobs (one row per task invocation), queues and workers.

Only ``djq.store`` writes job state; everything else reads these models through the ORM.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from . import states
from .serialization import Decoder, Encoder

PRIORITY_MIN, PRIORITY_MAX = -100, 255

STATE_CHOICES = [(s, s) for s in sorted(states.ALL_STATES)]
_WAITING = sorted(states.WAITING_STATES)
_READY = sorted(states.READY_STATES)


class JobQuerySet(models.QuerySet):
    """Querysets named by state, for the admin, commands and tests."""

    def waiting(self):
        return self.filter(state__in=_WAITING)

    def running(self):
        return self.filter(state=states.STARTED)

    def finished(self):
        return self.filter(state__in=_READY)

    def failed(self):
        return self.filter(state=states.FAILURE)


class Job(models.Model):
    """One task invocation. ``id`` is the task id that ``AsyncResult`` takes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, help_text="registered task name")
    queue = models.CharField(max_length=200, default="default")
    priority = models.SmallIntegerField(default=0, help_text="higher runs first")
    state = models.CharField(max_length=16, choices=STATE_CHOICES, default=states.PENDING)
    #: state set by ``Task.update_state`` while the job runs (e.g. "PROGRESS"); shown as its state.
    custom_state = models.CharField(max_length=64, blank=True, default="")
    args = models.JSONField(default=list, encoder=Encoder, decoder=Decoder)
    kwargs = models.JSONField(default=dict, encoder=Encoder, decoder=Decoder)
    #: link/link_error, headers, time limits, track_started, ignore_result ... as given to apply_async
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
    parent_id = models.UUIDField(null=True, blank=True)
    root_id = models.UUIDField(null=True, blank=True)
    group_id = models.UUIDField(null=True, blank=True)
    #: [[state, time, worker], ...]: every state change, appended by the statement that makes it
    history = models.JSONField(default=list)

    objects = JobQuerySet.as_manager()

    class Meta:
        db_table = "djq_job"
        ordering = ["-created_at"]
        indexes = [
            # The claim: "due jobs of these queues, highest priority first, oldest ETA first".
            # Partial on the waiting states so the index holds only the (small) backlog, never
            # the history of finished jobs; its column order matches the claim's ORDER BY.
            models.Index(
                fields=["queue", "-priority", "run_after"],
                condition=Q(state__in=_WAITING),
                name="djq_job_claim_idx",
            ),
            # Heartbeats ("extend my jobs' leases") and the rescuer ("leases that ran out") scan
            # running jobs only: a few rows per worker slot, whatever the table's size.
            models.Index(
                fields=["worker"], condition=Q(state=states.STARTED), name="djq_job_running_idx"
            ),
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(state=states.STARTED),
                name="djq_job_lease_idx",
            ),
            # Result expiry removes finished jobs by age.
            models.Index(
                fields=["finished_at"],
                condition=Q(finished_at__isnull=False),
                name="djq_job_finished_idx",
            ),
            models.Index(
                fields=["group_id"], condition=Q(group_id__isnull=False), name="djq_job_group_idx"
            ),
            models.Index(
                fields=["parent_id"], condition=Q(parent_id__isnull=False), name="djq_job_parent_idx"
            ),
            models.Index(fields=["name", "-created_at"], name="djq_job_name_idx"),
            models.Index(fields=["state", "-created_at"], name="djq_job_state_idx"),
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
            # a running job always has a lease and a worker
            models.CheckConstraint(
                condition=~Q(state=states.STARTED)
                | (Q(lease_expires_at__isnull=False) & ~Q(worker="")),
                name="djq_job_running_has_lease",
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

    id = models.UUIDField(primary_key=True)
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
