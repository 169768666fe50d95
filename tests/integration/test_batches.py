"""Batches without a worker: the completion hook through revoke (a revoked member has ended),
rows written by something else than djq, and what a batch refuses."""

from __future__ import annotations

import pytest

from djq import BatchResult, batch, states, store
from djq.batches import after_complete
from djq.models import Batch, Job
from testproject.demo.tasks import add, echo

pytestmark = pytest.mark.django_db


def test_revoking_every_member_ends_the_batch_and_enqueues_its_callbacks_once():
    b = batch(
        [add.s(1, 1).set(countdown=3600), add.s(2, 2).set(countdown=3600)],
        on_finish=echo.s(),
        on_success=echo.si("all good"),
        on_failure=echo.s(),
    ).apply_async()
    store.revoke([b.results[0].id])
    assert not b.ready() and b.progress()["ended"] == 1
    store.revoke([r.id for r in b.results])  # the first one again: already ended, not recounted
    assert b.ready() and b.progress() == {
        "total": 2,
        "ended": 2,
        "failed": 2,
        "closed": True,
        "finished": True,
    }
    finish = Job.objects.get(id=b.callbacks["on_finish"].id)
    (summary,) = finish.args
    assert summary["counts"] == {states.REVOKED: 2}
    assert summary["failed_ids"] == [r.id for r in b.results]
    assert Job.objects.get(id=b.callbacks["on_failure"].id).args == [summary]
    assert not Job.objects.filter(id=b.callbacks["on_success"].id).exists()
    assert Job.objects.count() == 4  # two members, on_finish, on_failure: nothing else


def test_a_batch_handle_is_rebuilt_from_its_id():
    b = batch([add.s(1, 1).set(countdown=3600)], open=True).apply_async()
    again = BatchResult(b.id)
    assert [r.id for r in again.results] == [r.id for r in b.results]
    assert again.progress()["closed"] is False
    assert again.close() is True and b.progress()["closed"] is True
    with pytest.raises(LookupError, match="batch nope does not exist"):
        BatchResult("nope").progress()


def test_member_rows_with_foreign_options_are_not_counted():
    b = batch([add.s(1, 1).set(countdown=3600)]).apply_async()
    rows = [
        {"id": "x", "state": states.SUCCESS, "options": "not json {"},
        {"id": "y", "state": states.SUCCESS, "options": '{"batch": 7}'},
        {"id": "z", "state": states.SUCCESS, "options": '["batch"]'},
        {"id": "w", "state": states.RETRY, "options": f'{{"batch": "{b.id}"}}'},  # not ended
        # a finished member re-run from the admin: its original was counted
        {"id": "v", "state": states.SUCCESS, "options": f'{{"batch": "{b.id}", "retry_of": "u"}}'},
    ]
    after_complete(rows)
    assert Batch.objects.get(id=b.id).ended == 0


def test_eager_mode_runs_members_at_once_and_callbacks_at_close(settings):
    settings.DJQ_TASK_ALWAYS_EAGER = True
    b = batch([add.s(1, 1), add.s(2, 2)], on_finish=echo.s(), on_failure=echo.s()).apply_async()
    assert [r.get() for r in b.results] == [2, 4] and b.ready()
    (summary,) = b.callbacks["on_finish"].get()["args"]
    assert summary["counts"] == {states.SUCCESS: 2} and summary["failed_ids"] == []
    assert "on_failure" not in b.callbacks
    opened = batch([add.s(1, 2)], on_success=echo.s(), open=True).apply_async()
    opened.add(add.s(3, 4))
    assert not opened.ready() and opened.close() and not opened.close()
    assert opened.callbacks["on_success"].get()["args"][0]["total"] == 2
    with pytest.raises(ValueError, match="is closed"):
        opened.add(add.s(0, 0))
    assert not Batch.objects.exists() and not Job.objects.exists()
