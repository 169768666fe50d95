"""Enqueueing: delay/apply_async/send_task/enqueue_many write the right job row, in the caller's
transaction; bad calls raise before anything is written."""

from __future__ import annotations

import datetime as dt
import decimal
import fnmatch
import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from djq import EagerResult, enqueue_many, send_task, states, store, task
from djq.calling.result import AsyncResult
from djq.models import Job
from testproject.demo.tasks import add, echo, fail, record_slowly, retry_twice
from tests.inprocess import claim, in_thread

pytestmark = pytest.mark.django_db

ADD = "testproject.demo.tasks.add"


@task(queue="from-task", priority=7)
def routed(x):
    return x


ROUTED = routed.name


def job(result) -> Job:
    return Job.objects.get(id=result.id)


def seconds_after_db_now(value: dt.datetime) -> float:
    return (value - store.db_now()).total_seconds()


# --- the row ----------------------------------------------------------------------------------
def test_delay_writes_a_pending_job_with_the_defaults():
    result = add.delay(2, 3)
    assert isinstance(result, AsyncResult)
    row = job(result)
    assert row.name == ADD
    assert (row.queue, row.priority, row.state) == ("default", 0, states.PENDING)
    assert (row.args, row.kwargs) == ([2, 3], {})
    assert row.expires is None and row.retries == 0 and row.attempt == 0
    assert row.max_retries == add.max_retries
    assert row.acks_late is False
    assert row.worker == "" and row.lease_expires_at is None and row.finished_at is None
    assert row.options == {}
    assert abs(seconds_after_db_now(row.run_after)) < 1  # due now
    assert [event[0] for event in row.history] == [states.PENDING]


def test_apply_async_writes_every_option():
    task_id = uuid.uuid4()
    link = add.s(1)
    result = add.apply_async(
        (1,),
        {"y": 2},
        queue="q1",
        priority=9,
        countdown=60,
        expires=120,
        task_id=task_id,
        headers={"h": 1},
        link=link,
        link_error=[fail.si()],
        time_limit=30,
        soft_time_limit=20,
        ignore_result=True,
        max_retries=9,
        acks_late=True,
    )
    assert result.id == str(task_id)
    row = job(result)
    assert (row.queue, row.priority, row.args, row.kwargs) == ("q1", 9, [1], {"y": 2})
    assert row.max_retries == 9 and row.acks_late is True
    assert seconds_after_db_now(row.run_after) == pytest.approx(60, abs=1)
    assert seconds_after_db_now(row.expires) == pytest.approx(120, abs=1)
    assert row.options["headers"] == {"h": 1}
    assert row.options["time_limit"] == 30 and row.options["soft_time_limit"] == 20
    assert row.options["ignore_result"] is True
    assert row.options["link"] == [dict(link)]
    assert row.options["link_error"] == [dict(fail.si())]


def test_task_attributes_are_the_defaults():
    row = job(record_slowly.delay("/dev/null", "t"))
    assert row.acks_late is True
    row = job(retry_twice.delay())
    assert row.max_retries == 5


def test_eta_datetime_and_expires_datetime():
    eta = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    expires = eta + dt.timedelta(hours=1)
    row = job(add.apply_async((1, 1), eta=eta, expires=expires))
    assert row.run_after == eta
    assert row.expires == expires


def test_eta_with_another_offset_is_the_same_instant():
    eta = dt.datetime(2031, 1, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    row = job(add.apply_async((1, 1), eta=eta))
    assert row.run_after == eta
    assert row.run_after.astimezone(dt.UTC).hour == 3


def test_naive_eta_is_in_the_current_time_zone():
    row = job(add.apply_async((1, 1), eta=dt.datetime(2031, 1, 2, 3, 4, 5)))
    assert row.run_after == dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)  # TIME_ZONE = "UTC"


def test_eta_and_expires_as_iso_strings_and_timedeltas():
    row = job(add.apply_async((1, 1), eta="2031-01-02T03:04:05+00:00", expires=dt.timedelta(0, 90)))
    assert row.run_after == dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert seconds_after_db_now(row.expires) == pytest.approx(90, abs=1)


@pytest.mark.parametrize("countdown", [0, 0.5, 30, 3600, dt.timedelta(minutes=2)])
def test_countdown_is_by_the_database_clock(countdown):
    seconds = countdown.total_seconds() if isinstance(countdown, dt.timedelta) else countdown
    row = job(add.apply_async((1, 1), countdown=countdown))
    assert seconds_after_db_now(row.run_after) == pytest.approx(seconds, abs=0.5)


def test_countdown_job_is_not_claimed_before_it_is_due():
    later = add.apply_async((1, 1), countdown=30)
    now = add.apply_async((1, 1))
    assert [j.id for j in claim()] == [now.id]
    assert job(later).state == states.PENDING


def test_typed_arguments_round_trip_through_the_row():
    args = [
        dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC),
        dt.date(2026, 1, 2),
        dt.time(3, 4),
        uuid.UUID(int=5),
        decimal.Decimal("6.70"),
        "back\\u0000slash",
    ]
    result = echo.delay(*args, when=dt.date(2020, 2, 2))
    assert result.args == args
    assert result.kwargs == {"when": dt.date(2020, 2, 2)}
    claimed = claim()[0]
    assert store_args(claimed) == (args, {"when": dt.date(2020, 2, 2)})


def store_args(claimed: dict):
    from djq.serialization import loads

    return loads(claimed.args), loads(claimed.kwargs)


# --- routing ----------------------------------------------------------------------------------
ROUTES = {
    ADD: {"queue": "exact", "priority": 3},
    "testproject.demo.*": {"queue": "demo-glob"},
    "tests.*": {"queue": "tests-glob", "priority": 1},
}


@override_settings(DJQ_TASK_ROUTES=ROUTES)
@pytest.mark.parametrize(
    ("name", "args", "queue", "priority"),
    [
        (ADD, (1, 2), "exact", 3),  # exact name beats the glob listed after it
        ("testproject.demo.tasks.mul", (1, 2), "demo-glob", 0),
        (ROUTED, (1,), "tests-glob", 1),  # a route beats the task's own attributes
        ("unrelated.task", (), "default", 0),
    ],
)
def test_routes_exact_and_glob(name, args, queue, priority):
    row = job(send_task(name, args))
    assert (row.queue, row.priority) == (queue, priority)


def test_precedence_option_then_route_then_task_then_default():
    # no route: the task's attributes
    row = job(routed.delay(1))
    assert (row.queue, row.priority) == ("from-task", 7)
    with override_settings(DJQ_TASK_ROUTES={ROUTED: {"queue": "route"}}):
        row = job(routed.delay(1))
        assert (row.queue, row.priority) == ("route", 7)  # priority still from the task
        row = job(routed.apply_async((1,), queue="explicit", priority=-3))
        assert (row.queue, row.priority) == ("explicit", -3)
    with override_settings(DJQ_DEFAULT_QUEUE="fallback"):
        assert job(add.delay(1, 1)).queue == "fallback"
        assert job(routed.delay(1)).queue == "from-task"


def test_routes_as_a_list_first_match_wins_and_callables():
    def router(name):
        return {"queue": "called"} if name.endswith(".mul") else None

    routes = [router, {"testproject.*": {"queue": "first"}}, {ADD: {"queue": "second"}}]
    with override_settings(DJQ_TASK_ROUTES=routes):
        assert job(send_task("testproject.demo.tasks.mul", (1, 2))).queue == "called"
        assert job(add.delay(1, 2)).queue == "first"


def test_glob_is_case_sensitive():
    assert not fnmatch.fnmatchcase(ADD, "TESTPROJECT.*")  # the premise
    with override_settings(DJQ_TASK_ROUTES={"TESTPROJECT.*": {"queue": "upper"}}):
        assert job(add.delay(1, 2)).queue == "default"


# --- bad input: raises at enqueue, writes nothing -------------------------------------------
class Opaque:
    pass


BAD_CALLS = {
    "non-JSON argument": (lambda: add.delay(1, Opaque()), TypeError, r"add.*argument 1"),
    "NaN keyword argument": (
        lambda: echo.delay(x=float("nan")),
        TypeError,
        r"echo.*keyword argument 'x'",
    ),
    "NUL in a string": (lambda: echo.delay("a\x00"), TypeError, r"echo.*argument 0"),
    "too many arguments": (lambda: add.delay(1, 2, 3), TypeError, r"add.*do not fit"),
    "missing argument": (lambda: add.delay(1), TypeError, r"add.*do not fit"),
    "unknown keyword": (lambda: add.delay(1, z=2), TypeError, r"add.*do not fit"),
    "args not a sequence": (lambda: add.apply_async(5), TypeError, r"args must be"),
    "kwargs not a dict": (lambda: add.apply_async((1, 2), [1]), TypeError, r"kwargs must be"),
    "priority too high": (lambda: add.apply_async((1, 2), priority=256), ValueError, "priority"),
    "priority too low": (lambda: add.apply_async((1, 2), priority=-101), ValueError, "priority"),
    "priority not an int": (lambda: add.apply_async((1, 2), priority="high"), TypeError, "prio"),
    "priority a bool": (lambda: add.apply_async((1, 2), priority=True), TypeError, "priority"),
    "empty queue": (lambda: add.apply_async((1, 2), queue=""), ValueError, "queue"),
    "queue not a str": (lambda: add.apply_async((1, 2), queue=5), ValueError, "queue"),
    "queue too long": (lambda: add.apply_async((1, 2), queue="q" * 201), ValueError, "queue"),
    "unknown option": (lambda: add.apply_async((1, 2), colour="red"), TypeError, "colour"),
    "task_id empty": (lambda: add.apply_async((1, 2), task_id=""), ValueError, "task_id"),
    "task_id too long": (lambda: add.apply_async((1, 2), task_id="x" * 256), ValueError, "255"),
    "task_id not text": (lambda: add.apply_async((1, 2), task_id=b"ab"), ValueError, "task_id"),
    "task_id with NUL": (lambda: add.apply_async((1, 2), task_id="a\x00b"), ValueError, "NUL"),
    "countdown and eta": (
        lambda: add.apply_async((1, 2), countdown=1, eta=dt.datetime.now(dt.UTC)),
        ValueError,
        "countdown or eta",
    ),
    "countdown not a number": (
        lambda: add.apply_async((1, 2), countdown="soon"),
        TypeError,
        "countdown",
    ),
    "eta not a datetime": (lambda: add.apply_async((1, 2), eta=5), TypeError, "eta"),
    "send_task non-JSON": (
        lambda: send_task("no.such.task", (Opaque(),)),
        TypeError,
        r"no\.such\.task.*argument 0",
    ),
    "options not JSON": (
        lambda: add.apply_async((1, 2), headers={"x": Opaque()}),
        TypeError,
        "options",
    ),
}


@pytest.mark.parametrize(("call", "error", "match"), BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_calls_raise_and_write_nothing(call, error, match):
    with pytest.raises(error, match=match):
        call()
    assert Job.objects.count() == 0


def test_argument_errors_name_the_task_and_the_argument():
    with pytest.raises(TypeError) as info:
        echo.delay(1, 2, when=Opaque())
    assert "testproject.demo.tasks.echo" in str(info.value)
    assert "keyword argument 'when'" in str(info.value)
    assert "Opaque" in str(info.value)


def test_send_task_of_an_unknown_name_is_accepted():
    result = send_task("somewhere.else.unknown", (1, "x"), {"k": None}, queue="other")
    row = job(result)
    assert (row.name, row.queue, row.args, row.kwargs) == (
        "somewhere.else.unknown",
        "other",
        [1, "x"],
        {"k": None},
    )
    assert result.name == "somewhere.else.unknown"


def test_task_id_is_kept_as_given_a_uuid_object_as_its_text():
    given = uuid.uuid4()
    assert add.apply_async((1, 1), task_id=given).id == str(given)
    result = add.apply_async((1, 1), task_id=given.hex.upper())
    assert result.id == given.hex.upper() == job(result).id


# --- enqueue_many -------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [5, 60, 300])
def test_enqueue_many_is_one_statement_and_keeps_the_order(n):
    # (On PostgreSQL large batches may be loaded with COPY, which Django's query log does not
    # see; the statement counted then is the NOTIFY: still one, not one per job.)
    sigs = [add.s(i, i) for i in range(n)] + [echo.s("x").set(queue="other", priority=5)]
    with CaptureQueriesContext(connection) as queries:
        results = enqueue_many(sigs)
    assert len(queries.captured_queries) == 1, [q["sql"][:80] for q in queries.captured_queries]
    assert len(results) == n + 1 and all(isinstance(r, AsyncResult) for r in results)
    rows = {str(r.id): r for r in Job.objects.all()}
    assert set(rows) == {r.id for r in results}
    now = store.db_now()
    for i, result in enumerate(results[:n]):
        row = rows[result.id]
        assert (row.name, row.args, row.kwargs, row.queue) == (ADD, [i, i], {}, "default")
        assert (row.state, row.attempt, row.retries, row.expires) == (states.PENDING, 0, 0, None)
        assert abs((row.run_after - now).total_seconds()) < 1
        assert abs((row.created_at - now).total_seconds()) < 1
        assert [event[0] for event in row.history] == [states.PENDING]
    other = rows[results[n].id]
    assert (other.name, other.queue, other.priority) == (echo.name, "other", 5)
    assert [j.id for j in claim(queues=("default", "other"), limit=1)] == [results[n].id]


def test_enqueue_many_with_countdowns_and_expiry():
    results = enqueue_many(
        [add.s(i, i).set(countdown=100 + i, expires=1000) for i in range(60)] + [add.s(0, 0)]
    )
    rows = {str(r.id): r for r in Job.objects.all()}
    for i, result in enumerate(results[:60]):
        assert seconds_after_db_now(rows[result.id].run_after) == pytest.approx(100 + i, abs=1)
        assert seconds_after_db_now(rows[result.id].expires) == pytest.approx(1000, abs=1)
    assert [j.id for j in claim()] == [results[60].id]


def test_enqueue_many_accepts_signature_dicts_and_names_without_a_task():
    from djq import signature

    results = enqueue_many([dict(add.s(1, 2)), signature("not.imported.here", args=(3,))])
    assert [job(r).name for r in results] == [ADD, "not.imported.here"]


def test_enqueue_many_with_one_bad_signature_writes_nothing():
    with pytest.raises(TypeError, match="argument 1"):
        enqueue_many([add.s(1, 2), add.s(1, Opaque()), add.s(3, 4)])
    assert Job.objects.count() == 0


def test_enqueue_many_of_nothing():
    with CaptureQueriesContext(connection) as queries:
        assert enqueue_many([]) == []
    assert len(queries.captured_queries) == 0


# --- eager -----------------------------------------------------------------------------------
@override_settings(DJQ_TASK_ALWAYS_EAGER=True)
def test_always_eager_runs_inline_and_writes_nothing():
    result = add.delay(2, 2)
    assert isinstance(result, EagerResult)
    assert result.get() == 4 and result.state == states.SUCCESS
    result = add.apply_async((3, 3), countdown=60, queue="elsewhere")
    assert result.get() == 6
    failed = fail.delay("no")
    assert failed.state == states.FAILURE and isinstance(failed.result, ValueError)
    assert Job.objects.count() == 0


@override_settings(DJQ_TASK_ALWAYS_EAGER=True)
def test_always_eager_still_checks_the_signature():
    with pytest.raises(TypeError):
        add.delay(1)


# --- transactions ----------------------------------------------------------------------------
class Rollback(Exception):
    pass


def test_enqueue_in_a_rolled_back_block_leaves_no_job():
    kept = add.delay(0, 0)
    with pytest.raises(Rollback), transaction.atomic():
        lost = add.delay(1, 1)
        assert Job.objects.filter(id=lost.id).exists()  # written in the transaction
        raise Rollback()
    assert not lost.exists()
    assert list(Job.objects.values_list("id", flat=True)) == [kept.id]


def _exists(job_id: str) -> bool:
    return Job.objects.filter(id=job_id).exists()


@pytest.mark.django_db(transaction=True)
def test_a_job_is_visible_to_other_connections_only_after_commit():
    with transaction.atomic():
        result = add.delay(1, 1)
        assert _exists(result.id)
        assert not in_thread(_exists, result.id)  # another connection: not yet
    assert in_thread(_exists, result.id)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_job_is_never_visible():
    with pytest.raises(Rollback), transaction.atomic():
        result = add.delay(1, 1)
        raise Rollback()
    assert not in_thread(_exists, result.id)
    assert Job.objects.count() == 0


def _claim_ids(queue="default"):
    return [j.id for j in store.claim("other@test", [queue], 10, 30)]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_worker_cannot_claim_a_job_before_its_transaction_commits():
    with transaction.atomic():
        result = add.delay(1, 1)
        assert in_thread(_claim_ids) == []
    assert in_thread(_claim_ids) == [result.id]


@pytest.mark.django_db(transaction=True)
def test_delay_on_commit_enqueues_only_on_commit():
    with transaction.atomic():
        assert add.delay_on_commit(1, 2) is None
        add.apply_async_on_commit((3, 4), queue="other")
        assert Job.objects.count() == 0  # not even inside the transaction
    rows = sorted(Job.objects.values_list("queue", "args"))
    assert rows == [("default", [1, 2]), ("other", [3, 4])]


@pytest.mark.django_db(transaction=True)
def test_delay_on_commit_never_enqueues_on_rollback():
    with pytest.raises(Rollback), transaction.atomic():
        add.delay_on_commit(1, 2)
        raise Rollback()
    with transaction.atomic():
        pass  # a later commit does not resurrect it
    assert Job.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_delay_on_commit_outside_a_transaction_enqueues_at_once():
    add.delay_on_commit(5, 6)
    assert list(Job.objects.values_list("args", flat=True)) == [[5, 6]]


def test_delay_on_commit_validates_at_the_call():
    # A bad call must fail where it is made, not later inside the commit.
    with pytest.raises(TypeError):
        add.delay_on_commit(1, Opaque())
