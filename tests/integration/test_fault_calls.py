"""Bad calls raise at the call, name what is wrong, write nothing, and leave the caller's
transaction usable (issue 12, defect 4). The table is tests/faults.py's BAD_CALLS.

Each call runs inside the caller's ``transaction.atomic()``: on PostgreSQL a database error
(an IntegrityError, a DataError) would abort that transaction and the next query would fail.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from djq.calling.registry import tasks
from djq.models import Job
from tests.faults import BAD_CALLS, TAKEN_ID

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("bad", BAD_CALLS, ids=[bad.id for bad in BAD_CALLS])
def test_a_bad_call_raises_names_the_fault_and_writes_nothing(bad):
    with transaction.atomic():
        if bad.setup is not None:
            bad.setup()
        before = Job.objects.count()
        with pytest.raises(bad.error) as raised:
            bad.call()
        message = str(raised.value)
        for name in bad.names:
            assert name in message, (name, message)
        # the transaction goes on: a query works, a good call works, and nothing was written
        assert Job.objects.count() == before
        from testproject.demo.tasks import add

        assert Job.objects.filter(id=add.delay(1, 2).id).exists()
    assert not any(name.startswith("faults.") for name in tasks)


def test_a_reused_task_id_keeps_the_first_job():
    from testproject.demo.tasks import add

    first = add.apply_async((1, 2), task_id=TAKEN_ID)
    with pytest.raises(ValueError, match="task_id"):
        add.apply_async((5, 6), task_id=TAKEN_ID)
    assert Job.objects.get(id=first.id).args == [1, 2]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_callers_racing_for_one_task_id():
    """The second insert waits for the first's transaction; once that commits, the second
    caller gets the ValueError and its own transaction goes on."""
    from testproject.demo.tasks import add
    from tests.helpers import wait_for

    inserted, release, outcome = threading.Event(), threading.Event(), {}

    def first():
        try:
            with transaction.atomic():
                add.apply_async((1, 2), task_id=TAKEN_ID)
                inserted.set()
                release.wait(20)
        finally:
            connections.close_all()

    def second():
        try:
            with transaction.atomic():
                try:
                    add.apply_async((3, 4), task_id=TAKEN_ID)
                except ValueError as exc:
                    outcome["error"] = exc
                outcome["jobs"] = Job.objects.count()  # the transaction is still usable
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert inserted.wait(20)
    threads[1].start()
    with connection.cursor() as cursor:

        def waiting() -> bool:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            return cursor.fetchone()[0] > 0

        wait_for(waiting, timeout=20, message="the second insert to wait for the first")
    release.set()
    for thread in threads:
        thread.join(20)
    assert "already the id of another job" in str(outcome["error"])
    assert outcome["jobs"] == 1
    assert Job.objects.get(id=TAKEN_ID).args == [1, 2]
