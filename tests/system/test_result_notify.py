"""A completion NOTIFYs only results someone waits on (issue 11), through a real worker.

``AsyncResult.get()`` LISTENs on its results' channels (``djq.db.postgres.done_channel``: one of
256, by a hash of the id) and flags their rows (``waited``); the completion NOTIFYs flagged rows
only. A drain nobody waits on sends no notification; ``get()`` still returns as soon as its job
is done. On SQLite ``get()`` polls (the last test runs on both).
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from djq import enqueue_many, states
from djq.models import Job
from testproject.demo import tasks as demo
from tests.helpers import wait_for
from tests.worker_support import wait_all_ready

pytestmark = pytest.mark.django_db(transaction=True)


def _listen_everywhere():
    """A connection LISTENing on every result channel: it hears any completion NOTIFY."""
    from djq.listen import Listener
    from djq.store.postgres import DONE_CHANNEL_PREFIX

    channels = [f"{DONE_CHANNEL_PREFIX}{i:02x}" for i in range(256)]
    return Listener(None, channels)  # (connects on ``with``)


def _heard(listener, seconds: float = 0.5) -> list[tuple[str, str]]:
    found, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        found.extend(listener.wait(left))
    return found


@pytest.mark.postgres_only
def test_completions_nobody_waits_on_send_no_notify(start_worker):
    with _listen_everywhere() as listener:
        start_worker("-c", "2")
        results = [demo.add.delay(i, i) for i in range(20)]
        results += [demo.noop.delay() for _ in range(5)]
        enqueue_many([demo.add.s(i, 1) for i in range(100)])
        wait_for(lambda: Job.objects.filter(state=states.SUCCESS).count() == 125, timeout=60)
        assert _heard(listener) == []
        assert not Job.objects.filter(waited=True).exists()
        # one get(): exactly its own job is announced, on its own channel
        from djq.store.postgres import done_channel

        waited = demo.slow_add.delay(2, 3, seconds=0.5)
        assert waited.get(timeout=20) == 5
        assert _heard(listener) == [(done_channel(waited.id), waited.id)]


@pytest.mark.postgres_only
def test_get_returns_promptly_on_the_completion_notify(start_worker):
    start_worker("-c", "2")
    assert demo.add.delay(1, 1).get(timeout=20) == 2  # the worker is up
    for seconds in (0.2, 0.0):
        result = demo.slow_add.delay(20, 22, seconds=seconds)
        started = time.monotonic()
        # a 30 s poll: only the NOTIFY of the completion can end this wait in time
        assert result.get(timeout=20, interval=30) == 42
        assert time.monotonic() - started < 5
        if seconds:  # (a job done before get() looked is read at once, not flagged)
            assert Job.objects.get(id=result.id).waited


@pytest.mark.postgres_only
def test_concurrent_getters_each_wake_on_their_results(start_worker):
    start_worker("-c", "2")
    shared = demo.slow_add.delay(1, 2, seconds=0.3)
    own = [demo.slow_add.delay(i, i, seconds=0.1) for i in range(6)]
    answers: dict = {}
    errors: list = []

    def getter(key, result):
        try:
            answers[key] = result.get(timeout=30, interval=30)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            from django.db import connections

            connections.close_all()

    threads = [threading.Thread(target=getter, args=(("shared", i), shared)) for i in range(3)]
    threads += [threading.Thread(target=getter, args=(("own", i), r)) for i, r in enumerate(own)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    assert not errors, errors
    assert {k: v for k, v in answers.items() if k[0] == "shared"} == {
        ("shared", i): 3 for i in range(3)
    }
    assert {k: v for k, v in answers.items() if k[0] == "own"} == {
        ("own", i): 2 * i for i in range(6)
    }
    # 30 s polls: every getter was woken by its NOTIFY
    assert time.monotonic() - started < 20


@pytest.mark.postgres_only
def test_get_in_an_open_transaction_does_not_hold_up_the_completion(start_worker):
    """The flag is written on get()'s own connection: the caller's transaction locks nothing."""
    from django.db import transaction

    start_worker("-c", "1")
    with transaction.atomic():
        result = demo.add.delay(5, 5)
    with transaction.atomic():
        Job.objects.filter(id=result.id).exists()  # a read inside the caller's transaction
        assert result.get(timeout=20, interval=30) == 10


def test_get_through_a_worker_on_either_database(start_worker):
    """SQLite polls; PostgreSQL listens: the same get() either way, many results at once."""
    start_worker("-c", "2")
    results = [demo.add.delay(i, 1) for i in range(10)]
    assert [r.get(timeout=30, interval=0.05) for r in results] == [i + 1 for i in range(10)]
    wait_all_ready(results)
    if connection.vendor == "sqlite":
        assert not Job.objects.filter(waited=True).exists()
