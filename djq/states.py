"""Task states, named and grouped as in Celery so that code written for it keeps working."""

PENDING = "PENDING"
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
UNREADY_STATES = frozenset({PENDING, STARTED, RETRY})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED})
ALL_STATES = frozenset({PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED, IGNORED})
