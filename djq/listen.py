"""LISTEN on a dedicated PostgreSQL connection (never Django's, never shared across fork).

The worker puts ``fileno()`` in its select loop and calls ``drain()`` when it is readable; result
waiters call ``wait(timeout)``. Both read notifications without blocking on the connection.
"""

from __future__ import annotations

import select
from typing import Any, Literal

from django.db import connections

from djq.conf import settings


class Listener:
    def __init__(self, using: str | None, channels: list[str]):
        self.using = using or settings.DATABASE
        self.channels = list(channels)
        self.conn: Any = None  # a psycopg connection, once connected

    def connect(self) -> None:
        wrapper = connections[self.using]
        conn = wrapper.get_new_connection(wrapper.get_connection_params())
        conn.autocommit = True
        for channel in self.channels:
            conn.execute(f'LISTEN "{channel}"')
        self.conn = conn

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None

    def __enter__(self) -> Listener:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        self.close()
        return False

    def fileno(self) -> int:
        return self.conn.pgconn.socket

    def drain(self) -> list[tuple[str, str]]:
        """Notifications received so far, without blocking (raises if the connection broke)."""
        pgconn = self.conn.pgconn
        pgconn.consume_input()
        found = []
        while (note := pgconn.notifies()) is not None:
            found.append((note.relname.decode(), note.extra.decode()))
        return found

    def wait(self, timeout: float) -> list[tuple[str, str]]:
        """Block up to ``timeout`` seconds for notifications."""
        found = self.drain()
        if found:
            return found
        readable, _, _ = select.select([self.fileno()], [], [], max(0.0, timeout))
        return self.drain() if readable else []
