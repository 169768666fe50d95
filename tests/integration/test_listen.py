"""djq.listen: LISTEN on a dedicated PostgreSQL connection; notifications are read without
blocking (drain) or with a deadline (wait)."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from djq import store
from djq.listen import Listener

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def _notify(channel: str, payload: str) -> None:
    with connection.cursor() as cursor:  # autocommit: delivered at once
        cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])


def test_a_listener_receives_notifications_of_its_channels_only():
    with Listener(store.alias(), ["djq_test_a"]) as listener:
        assert listener.drain() == []
        _notify("djq_test_b", "not mine")
        _notify("djq_test_a", "one")
        deadline = time.monotonic() + 5
        found: list[tuple[str, str]] = []
        while not found and time.monotonic() < deadline:
            found = listener.wait(0.5)
        assert found == [("djq_test_a", "one")]
        assert listener.fileno() > 0
    assert listener.conn is None  # closed on exit


def test_wait_returns_empty_after_the_timeout():
    with Listener(store.alias(), ["djq_test_a"]) as listener:
        started = time.monotonic()
        assert listener.wait(0.05) == []
        assert time.monotonic() - started < 5
