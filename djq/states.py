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
