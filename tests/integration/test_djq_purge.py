"""``manage.py djq_purge``: expired results (DJQ_RESULT_EXPIRES) and, on request, waiting jobs."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.test.utils import override_settings

from djq import states, store
from djq.models import Job
from testproject.demo.tasks import add
from tests.inprocess import drain

pytestmark = pytest.mark.django_db


def purge(*args) -> str:
    out = io.StringIO()
    call_command("djq_purge", *args, stdout=out)
    return out.getvalue()


def _finished(n: int, age: dt.timedelta) -> list[str]:
    results = [add.delay(i, i) for i in range(n)]
    drain()
    ids = [r.id for r in results]
    Job.objects.filter(id__in=ids).update(finished_at=store.db_now() - age)
    return ids


def _left() -> set[str]:
    return {str(i) for i in Job.objects.values_list("id", flat=True)}


def test_purge_removes_results_older_than_result_expires():
    old = _finished(3, dt.timedelta(days=2))
    recent = _finished(2, dt.timedelta(hours=1))
    waiting = add.delay(1, 1).id
    assert Job.objects.filter(id__in=old + recent, state=states.SUCCESS).count() == 5
    out = purge()  # DJQ_RESULT_EXPIRES: one day
    assert "Removed 3 finished job(s)" in out
    assert _left() == set(recent) | {waiting}


@override_settings(DJQ_RESULT_EXPIRES=dt.timedelta(minutes=30))
def test_result_expires_as_a_timedelta():
    _finished(2, dt.timedelta(hours=1))
    kept = _finished(1, dt.timedelta(minutes=5))
    assert "Removed 2" in purge()
    assert _left() == set(kept)


def test_older_than_option():
    _finished(1, dt.timedelta(minutes=10))
    kept = _finished(1, dt.timedelta(minutes=1))
    assert "Removed 1" in purge("--older-than", "300")
    assert _left() == set(kept)


@override_settings(DJQ_RESULT_EXPIRES=None)
def test_no_expiry_keeps_results():
    kept = _finished(2, dt.timedelta(days=365))
    assert "Removed" not in purge()
    assert _left() == set(kept)


def test_waiting_jobs_of_one_queue_or_all():
    add.apply_async((1, 1), queue="a")
    b = add.apply_async((1, 1), queue="b").id
    out = purge("--waiting", "-Q", "a")
    assert "Removed 1 waiting job(s) of queue 'a'" in out
    assert _left() == {b}
    assert "Removed 1 waiting job(s)." in purge("--waiting")
    assert _left() == set()
