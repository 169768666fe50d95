"""A prefork child's own STARTED marks, on a PostgreSQL connection of its own.

The rule of the go-ahead stands (a job's body runs only once its STARTED mark is committed, so a
job found RESERVED never began anywhere), but on PostgreSQL the child writes the mark itself,
just before the body, instead of asking the worker and waiting for the worker's next turn: the
worker's loop (its claims, its durable batch commits) is then off the path from one job to the
next. The mark is one single-row statement whose commit does not wait for the disk (the worker
marks its running jobs again, durably, after a database outage).

The connection is the child's own, opened at its first job and kept (never Django's: Django closes
its connections around every job when ``CONN_MAX_AGE`` is 0). A mark that fails on a broken
connection is tried again on a new one; after a few failures the child gives the job back to the
worker unstarted. A mark is strict (RESERVED → STARTED, never twice), so a job given back after a
mark whose answer was lost is refused everywhere else rather than started again (at most once).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import connections

from djq import store
from djq.records import Claim

logger = logging.getLogger("djq.worker")

#: attempts at one mark before the job is handed back (a database outage), and the first pause
ATTEMPTS, PAUSE = 5, 0.1


class ChildMarks:
    def __init__(self, using: str) -> None:
        self.using = using
        self.conn: Any = None  # a psycopg connection, autocommitted

    def start(self, job: Claim) -> bool | None:
        """Mark ``job`` STARTED: True once committed, False when it is not this claim's to start
        (rescued, revoked or started elsewhere), None when the database could not be reached."""
        for attempt in range(ATTEMPTS):
            try:
                if self.conn is None:
                    self._connect()
                with self.conn.cursor() as cursor:
                    return store.start_reserved(cursor, job)
            except Exception as exc:  # (psycopg's errors: the connection is not Django's)
                logger.warning("Marking %s[%s] started failed (%s)", job.name, job.id, exc)
                self.close()
                time.sleep(PAUSE * 2**attempt)
        return None

    def _connect(self) -> None:
        wrapper = connections[self.using]
        conn = wrapper.get_new_connection(wrapper.get_connection_params())
        conn.autocommit = True
        self.conn = conn

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None


def own_marks(using: str) -> ChildMarks | None:
    """Marks for the children of a pool on ``using``: PostgreSQL only (SQLite's single writer
    would make every child's mark wait on the worker's writes: the worker marks there)."""
    return ChildMarks(using) if connections[using].vendor == "postgresql" else None
