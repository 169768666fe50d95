"""Task states, named and grouped as in Celery so that code written for it keeps working."""

PENDING = "PENDING"
#: claimed ahead of demand into a worker's reserve: leased, not started (Celery's prefetched
#: message). ``AsyncResult`` reports it as PENDING, as Celery does for a prefetched task; the
#: admin, ``inspect().reserved()`` and the worker's logs show it as RESERVED.
RESERVED = "RESERVED"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
#: internal terminal state of a job whose task raised ``Ignore`` (Celery has it too).
IGNORED = "IGNORED"
#: a dead letter: a FAILURE that will not be tried again by itself — its retries are exhausted,
#: it was rejected without requeue, or it was lost with its worker ``DJQ_MAX_WORKER_LOST`` times.
#: The row's state stays FAILURE (so ``AsyncResult.failed()`` is True and ``.get()`` raises, as
#: in Celery) and its ``dead_reason`` column says why; the admin shows such a job as DEAD and
#: lists them under "Dead jobs", from where they can be requeued. ``AsyncResult.dead_reason``.
DEAD = "DEAD"
#: the reasons a job is dead (the values of ``Job.dead_reason``; "" for a job that is not)
DEAD_RETRIES_EXHAUSTED = "retries_exhausted"
DEAD_REJECTED = "rejected"
DEAD_WORKER_LOST = "worker_lost"
DEAD_REASONS = (DEAD_RETRIES_EXHAUSTED, DEAD_REJECTED, DEAD_WORKER_LOST)

#: states a job waits in; the claim query looks only at these (see the partial index on Job).
WAITING_STATES = frozenset({PENDING, RETRY})
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED, IGNORED})
#: states of a job a worker holds (under a lease): the heartbeat extends them, the rescuer finds
#: them when the lease runs out (RESERVED ones go back to the queue; STARTED ones follow acks_late)
HELD_STATES = frozenset({RESERVED, STARTED})
UNREADY_STATES = frozenset({PENDING, RESERVED, STARTED, RETRY})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED})
ALL_STATES = frozenset({PENDING, RESERVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED, IGNORED})
