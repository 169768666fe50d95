"""djq.store: every write of job state (claim, complete, release, heartbeat, rescue, revoke,
progress, purge), against the real database."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter

import pytest
from django.db import connection, connections
from django.utils import timezone

from djq import control, enqueue_many, states, store
from djq.calling.result import AsyncResult
from djq.exceptions import TaskRevokedError, WorkerLostError
from djq.models import Job, Worker
from djq.serialization import dumps, exception_to_dict, loads
from testproject.demo.tasks import add, echo, noop, record_slowly
from tests.inprocess import claim, in_thread

pytestmark = pytest.mark.django_db

W = "w1@test"


def row(job_id) -> Job:
    return Job.objects.get(id=job_id)


def history(job_id) -> list[str]:
    return [event[0] for event in row(job_id).history]


def outcome(job, state: str, result=None, **extra) -> dict:
    """An outcome (as a dict: ``store.complete`` takes those too) for a claim, or an
    {"id", "attempt"} dict."""
    fence = (
        {"id": job["id"], "attempt": job["attempt"]}
        if isinstance(job, dict)
        else {"id": job.id, "attempt": job.attempt}
    )
    base = {
        **fence,
        "state": state,
        "keep_result": True,
        "result": dumps(result),
        "traceback": None,
    }
    return {**base, **extra}


def ids(jobs) -> list[str]:
    return [j.id for j in jobs]


# --- claim ------------------------------------------------------------------------------------
def _start(worker, queues, limit, lease) -> list[dict]:
    """Claim and hand to a child, as a worker does: RESERVED, then STARTED."""
    jobs = store.claim(worker, queues, limit, lease)
    store.mark_started(jobs)
    return jobs


def test_claim_marks_reserved_with_worker_lease_and_attempt():
    result = add.apply_async((2, 3), priority=4, queue="q")
    [job] = store.claim(W, ["q"], 10, 45)
    assert job.id == result.id
    assert job.name == add.name and job.queue == "q" and job.priority == 4
    assert loads(job.args) == [2, 3] and loads(job.kwargs) == {}
    assert job.attempt == 1 and job.retries == 0 and job.expired is False
    assert isinstance(job.eta, dt.datetime) and job.eta.tzinfo is not None
    r = row(result.id)
    assert (r.state, r.worker, r.attempt) == (states.RESERVED, W, 1)
    assert r.started_at is None and r.finished_at is None
    lease = (r.lease_expires_at - store.db_now()).total_seconds()
    assert lease == pytest.approx(45, abs=1)
    assert history(result.id) == [states.PENDING, states.RESERVED]
    assert r.history[-1][2] == W
    # reserved is not started: Celery's API sees a prefetched task as PENDING
    assert AsyncResult(result.id).state == states.PENDING
    assert store.mark_started([job]) == [result.id]
    # (again for the same claim: the same answer, one STARTED in the history — a mark whose
    # commit was in flight when the connection broke is asked again)
    assert store.mark_started([job], durable=False) == [result.id]
    r = row(result.id)
    assert (r.state, r.worker, r.attempt) == (states.STARTED, W, 1)
    assert r.started_at is not None
    assert history(result.id) == [states.PENDING, states.RESERVED, states.STARTED]


def test_an_outcome_reaching_a_reserved_job_records_its_start_if_it_ran():
    ran, expired = add.delay(1, 1), add.delay(2, 2)
    jobs = {j.id: j for j in store.claim(W, ["default"], 10, 30)}
    store.complete(
        [outcome(jobs[ran.id], states.SUCCESS, 2), store.expire_outcome(jobs[expired.id])]
    )
    assert history(ran.id) == [states.PENDING, states.RESERVED, states.STARTED, states.SUCCESS]
    assert row(ran.id).started_at is not None
    assert history(expired.id) == [states.PENDING, states.RESERVED, states.REVOKED]
    assert row(expired.id).started_at is None


def test_started_marks_ride_with_the_completion_of_other_jobs():
    first, second = add.delay(1, 1), add.delay(2, 2)
    jobs = {j.id: j for j in store.claim(W, ["default"], 10, 30)}
    both = [jobs[first.id], jobs[second.id]]
    recorded = store.complete([outcome(jobs[first.id], states.SUCCESS, 2)], started=both)
    assert [r["id"] for r in recorded] == [first.id]
    assert row(second.id).state == states.STARTED
    assert history(first.id) == [states.PENDING, states.RESERVED, states.STARTED, states.SUCCESS]


def test_claim_reports_expired_jobs():
    past = add.apply_async((1, 1), expires=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    future = add.apply_async((1, 1), expires=3600)
    flags = {j.id: j.expired for j in claim()}
    assert flags == {past.id: True, future.id: False}


def test_claim_highest_priority_first():
    by_priority = {p: add.apply_async((p, 0), priority=p).id for p in (0, 5, -1, 255, -100, 10)}
    expected = [by_priority[p] for p in (255, 10, 5, 0, -1, -100)]
    assert ids(claim(limit=10)) == expected


def test_claim_one_at_a_time_follows_priority_in_the_database():
    by_priority = {p: add.apply_async((p, 0), priority=p).id for p in (1, 3, 2)}
    got = [ids(claim(limit=1)) for _ in range(4)]
    assert got == [[by_priority[3]], [by_priority[2]], [by_priority[1]], []]


def test_claim_earliest_eta_first_within_a_priority():
    base = store.db_now() - dt.timedelta(minutes=1)
    etas = [base + dt.timedelta(seconds=s) for s in (3, 1, 2)]
    jobs = [add.apply_async((i, 0), eta=eta).id for i, eta in enumerate(etas)]
    assert ids(claim(limit=1)) == [jobs[1]]
    assert ids(claim()) == [jobs[2], jobs[0]]


@pytest.mark.django_db(transaction=True)
def test_claim_is_fifo_within_a_priority():
    # One transaction per enqueue, as callers do: the database clock orders them.
    jobs = [add.delay(i, 0).id for i in range(6)]
    high = add.apply_async((9, 9), priority=1).id
    assert ids(claim(limit=1)) == [high]
    assert ids(claim(limit=2)) == jobs[:2]
    assert ids(claim(limit=10)) == jobs[2:]


def test_claim_skips_jobs_not_yet_due():
    add.apply_async((1, 1), countdown=60)
    add.apply_async((1, 1), eta=timezone.now() + dt.timedelta(hours=1))
    due = add.delay(1, 1)
    assert ids(claim()) == [due.id]
    assert claim() == []


def test_claim_only_the_given_queues():
    a = add.apply_async((1, 1), queue="a")
    b = add.apply_async((1, 1), queue="b")
    add.apply_async((1, 1), queue="c")
    assert sorted(ids(store.claim(W, ["a", "b"], 10, 30))) == sorted([a.id, b.id])
    assert store.claim(W, [], 10, 30) == []


def test_claim_skips_paused_queues_until_resumed():
    paused = add.apply_async((1, 1), queue="paused")
    running = add.apply_async((1, 1), queue="running")
    control.pause_queue("paused")
    assert ids(store.claim(W, ["paused", "running"], 10, 30)) == [running.id]
    assert store.claim(W, ["paused"], 10, 30) == []
    control.resume_queue("paused")
    assert ids(store.claim(W, ["paused"], 10, 30)) == [paused.id]


def test_claim_respects_the_limit():
    enqueue_many([noop.s() for _ in range(7)])
    assert [len(claim(limit=n)) for n in (3, 0, -1, 3, 3)] == [3, 0, 0, 3, 1]


def test_claim_takes_retry_state_jobs_too():
    result = add.delay(1, 1)
    [job] = claim()
    store.complete([outcome(job, states.RETRY, exception_to_dict(ValueError("x")), countdown=0)])
    assert row(result.id).state == states.RETRY
    [again] = claim()
    assert (again.id, again.attempt, again.retries) == (result.id, 2, 1)


def _claim_until_empty(barrier: threading.Barrier, name: str, limit: int) -> list[str]:
    barrier.wait()
    got: list[str] = []
    while jobs := store.claim(name, ["default"], limit, 30):
        got.extend(ids(jobs))
    return got


def _concurrent_claims(n_threads: int, n_jobs: int, limit: int) -> dict[str, list[str]]:
    expected = {r.id for r in enqueue_many([noop.s() for _ in range(n_jobs)])}
    barrier = threading.Barrier(n_threads)
    got: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def worker(name):
        try:
            got[name] = _claim_until_empty(barrier, name, limit)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(f"t{i}@test",)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    claimed = [job_id for jobs in got.values() for job_id in jobs]
    duplicates = [job_id for job_id, n in Counter(claimed).items() if n > 1]
    assert duplicates == [], "jobs claimed twice"
    assert set(claimed) == expected, "jobs not claimed"
    # The rows agree: each was claimed once, by the thread that says it claimed it.
    owners = dict(Job.objects.values_list("id", "worker"))
    for name, jobs in got.items():
        assert all(owners[j] == name for j in jobs)
    assert set(Job.objects.values_list("attempt", flat=True)) == {1}
    return got


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_skip_locked_claims_are_disjoint():
    got = _concurrent_claims(n_threads=8, n_jobs=800, limit=7)
    assert sum(1 for jobs in got.values() if jobs) > 1  # the claims really were concurrent


@pytest.mark.sqlite_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_on_sqlite_never_overlap():
    _concurrent_claims(n_threads=4, n_jobs=300, limit=5)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_claim_skips_rows_locked_by_another_transaction():
    # A row locked by another (still open) transaction is skipped, not waited for.
    from django.db import transaction

    first, second = add.delay(1, 1), add.delay(2, 2)
    with transaction.atomic():
        Job.objects.select_for_update().filter(id=first.id).get()
        assert in_thread(lambda: ids(store.claim("other@test", ["default"], 10, 30))) == [second.id]


@pytest.mark.postgres_only
def test_the_claim_query_uses_the_partial_claim_index():
    from djq.store.postgres import CLAIM

    with connection.cursor() as cursor:
        # A history of finished jobs (which the partial index leaves out) and a small backlog.
        cursor.execute(
            """
            INSERT INTO djq_job (id, name, queue, priority, state, custom_state, args, kwargs,
                options, traceback, run_after, retries, attempt, acks_late, worker,
                terminate_signal, created_at, finished_at, history)
            SELECT gen_random_uuid(), 'done.task', 'default', 0, 'SUCCESS', '', '[]', '{}', '{}',
                '', now(), 0, 1, false, '', '', now(), now(), '[]'
            FROM generate_series(1, 5000)
            """
        )
        enqueue_many([noop.s().set(priority=i % 3) for i in range(30)])
        cursor.execute("ANALYZE djq_job")
        params = {"queues": ["default"], "limit": 10, "worker": W, "lease": 30.0, "skip": []}
        cursor.execute("EXPLAIN " + CLAIM, params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    # one of the partial indexes of the waiting jobs (they leave the history out): the claim
    # index, or the due-time index (same rows, run_after order) for one queue
    assert "djq_job_claim_idx" in plan or "djq_job_due_idx" in plan, plan
    assert "Seq Scan on djq_job" not in plan, plan
    assert "djq_job_state_idx" not in plan and "djq_job_queue_idx" not in plan, plan
    # and the query it explains does what it says
    assert len(claim(limit=10)) == 10


# --- complete ---------------------------------------------------------------------------------
def test_complete_records_success():
    result = add.delay(2, 2)
    [job] = claim()
    recorded = store.complete([outcome(job, states.SUCCESS, 4)])
    assert [(r["id"], r["state"]) for r in recorded] == [(result.id, states.SUCCESS)]
    r = row(result.id)
    assert (r.state, r.result, r.traceback) == (states.SUCCESS, 4, "")
    assert r.finished_at is not None and r.lease_expires_at is None
    assert history(result.id) == [states.PENDING, states.RESERVED, states.STARTED, states.SUCCESS]
    assert AsyncResult(result.id).get() == 4


def test_complete_records_failure_with_traceback():
    result = add.delay(2, 2)
    [job] = claim()
    store.complete(
        [
            outcome(
                job,
                states.FAILURE,
                exception_to_dict(KeyError("k")),
                traceback="Traceback ...\nKeyError: 'k'",
            )
        ]
    )
    r = row(result.id)
    assert r.state == states.FAILURE and r.finished_at is not None
    assert r.result["exc_type"] == "KeyError"
    assert r.traceback.endswith("KeyError: 'k'")


def test_complete_records_retry_with_countdown_by_the_database_clock():
    result = add.delay(2, 2)
    [job] = claim()
    store.complete(
        [outcome(job, states.RETRY, exception_to_dict(ValueError("again")), countdown=120)]
    )
    r = row(result.id)
    assert (r.state, r.retries, r.finished_at, r.lease_expires_at) == (states.RETRY, 1, None, None)
    assert (r.run_after - store.db_now()).total_seconds() == pytest.approx(120, abs=1)
    assert claim() == []  # not due yet
    assert AsyncResult(result.id).state == states.RETRY
    assert history(result.id) == [states.PENDING, states.RESERVED, states.STARTED, states.RETRY]


def test_complete_records_retry_with_eta():
    result = add.delay(2, 2)
    [job] = claim()
    eta = dt.datetime(2030, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    store.complete([outcome(job, states.RETRY, None, eta=eta.isoformat())])
    assert row(result.id).run_after == eta


def test_a_retried_job_runs_again_and_keeps_counting():
    result = add.delay(2, 2)
    for n in range(1, 4):
        [job] = claim()
        assert (job.attempt, job.retries) == (n, n - 1)
        store.complete([outcome(job, states.RETRY, None, countdown=0)])
    [job] = claim()
    store.complete([outcome(job, states.SUCCESS, 4)])
    r = row(result.id)
    assert (r.state, r.retries, r.attempt) == (states.SUCCESS, 3, 4)
    run = [states.RESERVED, states.STARTED]
    assert history(result.id) == [states.PENDING] + (run + [states.RETRY]) * 3 + run + [
        states.SUCCESS
    ]


def test_complete_is_fenced_by_the_attempt():
    result = add.delay(2, 2)
    [job] = claim()
    stale = outcome(job, states.SUCCESS, "stale", attempt=job.attempt - 1)
    assert store.complete([stale]) == []
    assert row(result.id).state == states.STARTED
    # the job is rescued and claimed again: the first claim's outcome is now stale
    store.release([job])
    [again] = claim()
    assert store.complete([outcome(job, states.SUCCESS, "late")]) == []
    assert store.complete([outcome(again, states.SUCCESS, "fresh")])
    assert row(result.id).result == "fresh"


def test_complete_twice_records_once():
    add.delay(2, 2)
    [job] = claim()
    assert len(store.complete([outcome(job, states.SUCCESS, 1)])) == 1
    assert store.complete([outcome(job, states.FAILURE, None)]) == []
    assert Job.objects.get().state == states.SUCCESS


def test_complete_of_an_unknown_or_waiting_job_records_nothing():
    waiting = add.delay(1, 1)
    fake = {"id": str(uuid.uuid4()), "attempt": 1}
    assert store.complete([outcome(fake, states.SUCCESS, 1)]) == []
    assert store.complete([outcome({"id": waiting.id, "attempt": 0}, states.SUCCESS, 1)]) == []
    assert row(waiting.id).state == states.PENDING


def test_complete_a_batch_records_each_and_skips_the_stale():
    results = enqueue_many([add.s(i, i) for i in range(5)])
    jobs = claim()
    outs = [outcome(j, states.SUCCESS, i) for i, j in enumerate(jobs)]
    outs[2]["attempt"] = 99
    recorded = store.complete(outs)
    assert len(recorded) == 4
    done = set(Job.objects.filter(state=states.SUCCESS).values_list("id", flat=True))
    assert {str(i) for i in done} == {r.id for r in results} - {jobs[2].id}


def test_complete_without_keeping_the_result():
    result = add.delay(1, 1)
    [job] = claim()
    store.complete([outcome(job, states.SUCCESS, "dropped", keep_result=False)])
    r = row(result.id)
    assert (r.state, r.result) == (states.SUCCESS, None)


def test_complete_ignored_and_requeued():
    ignored, requeued = add.delay(1, 1), add.delay(2, 2)
    jobs = {j.id: j for j in claim()}
    store.complete(
        [
            outcome(jobs[ignored.id], states.IGNORED, None, keep_result=False),
            outcome(jobs[requeued.id], states.PENDING, None, keep_result=False, countdown=0),
        ]
    )
    assert row(ignored.id).state == states.IGNORED and row(ignored.id).finished_at is not None
    r = row(requeued.id)
    assert (r.state, r.finished_at, r.retries) == (states.PENDING, None, 0)
    assert ids(claim()) == [requeued.id]


# --- release, heartbeat -----------------------------------------------------------------------
def test_release_puts_started_jobs_back():
    results = enqueue_many([add.s(i, i) for i in range(3)])
    jobs = claim()
    released = store.release(jobs[:2])
    assert sorted(released) == sorted(ids(jobs[:2]))
    states_ = dict(Job.objects.values_list("id", "state"))
    assert sorted(states_.values()) == [states.PENDING, states.PENDING, states.STARTED]
    assert row(jobs[0].id).lease_expires_at is None
    again = claim()
    assert sorted(ids(again)) == sorted(ids(jobs[:2]))
    assert {j.attempt for j in again} == {2}
    assert history(jobs[0].id)[-4:] == [
        states.STARTED,
        states.PENDING,
        states.RESERVED,
        states.STARTED,
    ]
    assert len(results) == 3


def test_release_of_a_stale_claim_does_nothing():
    add.delay(1, 1)
    [job] = claim()
    store.complete([outcome(job, states.SUCCESS, 2)])
    assert store.release([job]) == []
    assert store.release([]) == []
    assert Job.objects.get().state == states.SUCCESS


def _register(name):
    assert store.register_worker(name, "host", 1, ["default"], 2, "threads", 30) is None


def test_heartbeat_extends_only_the_given_jobs_of_that_worker():
    _register(W)
    enqueue_many([add.s(i, i) for i in range(3)])
    mine = store.claim(W, ["default"], 2, 5)
    add.delay(9, 9)
    [theirs] = store.claim("w2@test", ["default"], 1, 5)
    before = dict(Job.objects.values_list("id", "lease_expires_at"))
    beats = store.heartbeat(W, [mine[0].id, theirs.id], 600, processed=7, failed=2)
    assert beats == [(mine[0].id, 1, False, "")]
    after = dict(Job.objects.values_list("id", "lease_expires_at"))
    key = str
    assert (after[key(mine[0].id)] - store.db_now()).total_seconds() == pytest.approx(600, abs=1)
    assert after[key(mine[1].id)] == before[key(mine[1].id)]
    assert after[key(theirs.id)] == before[key(theirs.id)]
    w = Worker.objects.get(name=W)
    assert (w.processed, w.failed) == (7, 2)


def test_heartbeat_reports_revoked_jobs():
    result = add.delay(1, 1)
    [job] = claim()
    control.revoke(result.id, terminate=True, signal="SIGKILL")
    assert store.heartbeat(W_INPROCESS, [job.id], 30) == [(job.id, 1, True, "SIGKILL")]


W_INPROCESS = "inprocess@test"


def test_heartbeat_with_no_jobs():
    _register(W)
    assert store.heartbeat(W, [], 30, processed=1) == []
    assert Worker.objects.get(name=W).processed == 1


# --- rescue -----------------------------------------------------------------------------------
def test_rescue_expired_leases():
    late = record_slowly.delay("/dev/null", "x")  # acks_late
    plain = add.delay(1, 1)
    alive = add.delay(2, 2)
    expired = {j.id: j for j in _start(W, ["default"], 2, -5)}  # lease already over
    assert set(expired) == {late.id, plain.id}
    [fresh] = _start(W, ["default"], 1, 600)
    assert fresh.id == alive.id

    rescued = {r["id"]: r for r in store.rescue()}
    assert set(rescued) == {late.id, plain.id}
    assert rescued[late.id]["state"] == states.PENDING
    assert rescued[plain.id]["state"] == states.FAILURE
    assert rescued[plain.id]["worker"] == W

    r = row(late.id)
    assert (r.state, r.finished_at, r.lease_expires_at) == (states.PENDING, None, None)
    r = row(plain.id)
    assert r.state == states.FAILURE and r.finished_at is not None
    assert row(alive.id).state == states.STARTED
    with pytest.raises(WorkerLostError):
        AsyncResult(plain.id).get(timeout=5)
    # the acks_late job runs again, on a new attempt
    [again] = claim()
    assert (again.id, again.attempt) == (late.id, 2)
    assert store.rescue() == []


def test_rescue_requeues_reserved_jobs_whatever_acks_late_says():
    late = record_slowly.delay("/dev/null", "x")  # acks_late
    plain = add.delay(1, 1)
    store.claim(W, ["default"], 2, -5)  # reserved, never started; lease already over
    rescued = {r["id"]: r["state"] for r in store.rescue()}
    assert rescued == {late.id: states.PENDING, plain.id: states.PENDING}
    for job_id in (late.id, plain.id):
        r = row(job_id)
        assert (r.state, r.finished_at, r.lease_expires_at, r.result) == (
            states.PENDING,
            None,
            None,
            None,
        )
    assert sorted((j.id, j.attempt) for j in claim()) == sorted([(late.id, 2), (plain.id, 2)])


def test_rescue_runs_the_continuations_of_failed_jobs():
    plain = add.apply_async((1, 1), link=add.s(1), link_error=echo.si("lost"))
    _start(W, ["default"], 1, -1)
    [rescued] = store.rescue()
    assert rescued["id"] == plain.id and rescued["state"] == states.FAILURE
    [errback] = AsyncResult(plain.id).children
    assert (errback.name, errback.args) == (echo.name, ["lost"])


def test_rescue_of_a_dead_worker_takes_all_its_jobs():
    enqueue_many([add.s(i, i) for i in range(3)])
    _start("dead@test", ["default"], 2, 600)
    [other] = _start("alive@test", ["default"], 1, 600)
    rescued = store.rescue(worker="dead@test")
    assert len(rescued) == 2 and {r["state"] for r in rescued} == {states.FAILURE}
    assert row(other.id).state == states.STARTED
    assert "dead@test" in str(AsyncResult(rescued[0]["id"]).result)


def test_a_rescued_jobs_late_outcome_is_discarded():
    result = record_slowly.delay("/dev/null", "x")
    [first] = _start("slow@test", ["default"], 1, -1)
    store.rescue()
    [second] = store.claim("fast@test", ["default"], 1, 30)
    assert store.complete([outcome(second, states.SUCCESS, "second")])
    assert store.complete([outcome(first, states.SUCCESS, "first")]) == []
    assert AsyncResult(result.id).get(timeout=5) == "second"


# --- revoke -----------------------------------------------------------------------------------
def test_revoke_a_waiting_job():
    result = add.apply_async((1, 1), countdown=0)
    later = add.apply_async((1, 1), countdown=60)
    revoked = store.revoke([result.id, later.id])
    assert sorted(revoked) == sorted(
        [(job_id, states.REVOKED, "") for job_id in (result.id, later.id)]
    )
    assert claim() == []
    r = row(result.id)
    assert r.state == states.REVOKED and r.finished_at is not None and r.revoked_at is not None
    assert history(result.id) == [states.PENDING, states.REVOKED]
    with pytest.raises(TaskRevokedError):
        AsyncResult(result.id).get(timeout=1)


def test_revoking_a_waiting_chord_member_still_completes_the_chord():
    # A revoked member is finished: the chord must count it (and its body fail with ChordError,
    # as for any member that did not succeed) instead of waiting for it forever.
    from djq import chord
    from djq.exceptions import ChordError
    from testproject.demo.tasks import xsum
    from tests.inprocess import drain

    body = chord([add.s(1, 1), add.s(2, 2)], xsum.s()).apply_async()
    first, second = body.parent.results
    first.revoke()
    drain()
    assert (first.state, second.state) == (states.REVOKED, states.SUCCESS)
    assert body.ready(), "the chord body never ran: the revoked member was not counted"
    with pytest.raises(ChordError):
        body.get(timeout=1)


def test_revoke_a_running_job_marks_it_and_keeps_it_running():
    result = add.delay(1, 1)
    [job] = claim()
    assert store.revoke([result.id]) == [(result.id, states.STARTED, W_INPROCESS)]
    r = row(result.id)
    assert (r.state, r.terminate_signal) == (states.STARTED, "")
    assert r.revoked_at is not None
    assert store.heartbeat(W_INPROCESS, [job.id], 30) == [(job.id, 1, True, "")]


def test_revoke_of_a_finished_or_unknown_job_changes_nothing():
    result = add.delay(1, 1)
    [job] = claim()
    store.complete([outcome(job, states.SUCCESS, 2)])
    assert store.revoke([result.id, str(uuid.uuid4())]) == []
    assert store.revoke([]) == []
    assert row(result.id).state == states.SUCCESS and row(result.id).revoked_at is None


# --- progress, next_due, purge ----------------------------------------------------------------
def test_set_progress_only_while_started():
    result = add.delay(1, 1)
    assert store.set_progress(result.id, "PROGRESS", {"n": 1}) is False
    [job] = claim()
    assert store.set_progress(result.id, "PROGRESS", {"n": 2}) is True
    r = row(result.id)
    assert (r.state, r.custom_state, r.meta) == (states.STARTED, "PROGRESS", {"n": 2})
    store.complete([outcome(job, states.SUCCESS, 2)])
    assert store.set_progress(result.id, "PROGRESS", {"n": 3}) is False


def test_next_due():
    assert store.next_due(["default"]) is None
    add.apply_async((1, 1), countdown=300)
    add.apply_async((1, 1), countdown=100, queue="other")
    assert store.next_due(["default"]) == pytest.approx(300, abs=1)
    assert store.next_due(["default", "other"]) == pytest.approx(100, abs=1)
    add.delay(1, 1)
    assert store.next_due(["default"]) == pytest.approx(0, abs=1)


def _finish(n: int, state=states.SUCCESS) -> list[str]:
    results = enqueue_many([add.s(i, i) for i in range(n)])
    jobs = [j for j in claim() if j.id in {r.id for r in results}]
    store.complete([outcome(j, state, 0) for j in jobs])
    return ids(jobs)


def test_purge_finished_removes_old_finished_jobs_only():
    old = _finish(3)
    Job.objects.filter(id__in=old).update(finished_at=timezone.now() - dt.timedelta(days=2))
    recent = _finish(2)
    waiting = add.delay(1, 1)
    running = add.delay(1, 1)
    _start(W, ["default"], 10, 30)  # running: started, not finished
    before = timezone.now() - dt.timedelta(days=1)
    assert store.purge_finished(before, batch=2) == 3
    left = {str(i) for i in Job.objects.values_list("id", flat=True)}
    assert left == set(recent) | {waiting.id, running.id}


def test_purge_waiting_by_queue_or_all():
    done = _finish(1)
    add.delay(1, 1)
    add.apply_async((1, 1), queue="other")
    add.apply_async((1, 1), queue="other", countdown=60)
    assert store.purge_waiting("other") == 2
    assert store.purge_waiting() == 1
    assert [str(i) for i in Job.objects.values_list("id", flat=True)] == done


def test_forget_removes_a_finished_job_only():
    waiting = add.delay(1, 1)
    [done] = _finish(1)
    assert store.forget(waiting.id) == 0
    assert store.forget(done) == 1
    assert not Job.objects.filter(id=done).exists()


def test_the_state_constraints_hold():
    # The schema catches what code might get wrong: a finished job without a finish time.
    from django.db import IntegrityError, transaction

    result = add.delay(1, 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(id=result.id).update(state=states.SUCCESS)
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(id=result.id).update(state=states.STARTED)  # no lease, no worker
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(id=result.id).update(priority=1000)
