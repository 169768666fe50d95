"""The campaign's scenarios. Each takes a ``Run`` and returns an ``Outcome`` (one printed line).

Every scenario starts from an empty queue and side table, uses real ``djq_worker`` processes and
ends with the delivery rules of ``harness.delivery_figures`` where jobs were drained.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection

from djq import enqueue_many, states
from djq.models import Job
from testproject.demo.tasks import ATOMIC_TABLE, atomic_insert, chaos_run

from . import faults, netns
from .harness import (
    ACTIVE,
    Cluster,
    Outcome,
    Proc,
    Workers,
    active_count,
    delivery_figures,
    reset,
    runs_per_job,
    subprocess_env,
    wait_until,
    worker_lost,
)


@dataclass
class Run:
    """What every scenario is given: sizes (short or full), the lease, the cluster, the hosts."""

    short: bool
    lease: float
    log_dir: Path
    cluster: Cluster
    hosts: list[netns.Host] = field(default_factory=list)
    net_error: str = ""
    started: list[Workers] = field(default_factory=list)

    def size(self, full: int, short: int) -> int:
        return short if self.short else full

    def workers(self) -> Workers:
        workers = Workers(self.log_dir, self.lease)
        self.started.append(workers)
        return workers

    def host_url(self, host: netns.Host) -> str:
        return f"postgres://postgres@{host.server_ip}:{self.cluster.port}/djq"


def enqueue(
    n: int, seconds: float = 0.0, late_every: int = 2, batch: int = 1000, durable: bool = False
) -> set[str]:
    """Enqueue ``n`` chaos jobs (every ``late_every``-th one acks_late); the acks_late ids.
    ``durable``: the side-table insert waits for its WAL flush (scenarios that crash the server).
    """
    late: set[str] = set()
    for start in range(0, n, batch):
        sigs = [
            chaos_run.s(seconds, durable).set(acks_late=bool(late_every) and i % late_every == 1)
            for i in range(start, min(n, start + batch))
        ]
        for sig, result in zip(sigs, enqueue_many(sigs), strict=True):
            if sig.options["acks_late"]:
                late.add(result.id)
    return late


def drained(stall: float, limit: float = 3600) -> float | None:
    """Seconds until no job is waiting or running; None once no job has finished for ``stall``
    seconds (the queue is stuck) or after ``limit``. A stall, not a total: the drain's speed is
    the machine's (2 cores shared with other work), what must never happen is that it stops."""
    started = time.monotonic()
    last = {"done": -1, "at": started}

    def empty_or_stalled():
        active, now = active_count(), time.monotonic()
        if active == 0:
            return "empty"
        done = done_count()
        if done != last["done"]:
            last.update(done=done, at=now)
        return "stalled" if now - last["at"] > stall or now - started > limit else None

    if wait_until(empty_or_stalled, limit + stall, interval=0.5) == "empty":
        return time.monotonic() - started
    return None


def done_count() -> int:
    return Job.objects.exclude(state__in=ACTIVE).count()


# --- kill -9 of worker process groups ---------------------------------------------------------
def kill9(run: Run) -> Outcome:
    """3 workers (two default, one prefetching) drain jobs, half acks_late, while a random one's
    process group is killed every 2–4 s (short form: 0.5–1.5 s) and started again under the
    same name."""
    out = Outcome("kill9")
    n = run.size(20_000, 1_000)
    workers = run.workers()
    # (all three up before the first job: started one by one under a backlog, the first ones
    # would drain a short run's jobs before the kills begin)
    procs = [
        workers.start("k1", "-c", "2"),
        workers.start("k2", "-c", "2"),
        workers.start("k3", "-c", "2", "--prefetch-multiplier", "4"),
    ]
    late = enqueue(n)
    kills, started = 0, time.monotonic()
    try:
        while active_count() and time.monotonic() - started < run.size(900, 150):
            # (the short form kills more often: its 1,000 jobs drain in a few seconds)
            time.sleep(random.uniform(2, 4) if not run.short else random.uniform(0.5, 1.5))
            victim = random.choice(procs)
            victim.kill_group()
            kills += 1
            victim.spawn()  # same name: its jobs are rescued at once (the process is gone)
        wait_until(lambda: active_count() == 0, run.lease * 3)
        out.figures.update(kills=kills, seconds=time.monotonic() - started)
    finally:
        workers.stop_all()
    delivery_figures(out, n, late)
    out.check(kills >= run.size(10, 3), f"only {kills} kill(s)")
    return out


# --- atomic tasks under kill -9 -----------------------------------------------------------------
def atomic(run: Run) -> Outcome:
    """1,000 atomic acks_late jobs (``atomic_insert``: a row each, in the job's transaction)
    drained by two ``-c 2`` workers while one of them is killed with ``kill -9`` (its process
    group) 200 times, each time once a job more has succeeded, and started again under the same
    name. Exactly one row per job at the end, every job SUCCESS (short form: 200 jobs, 10 kills).
    """
    out = Outcome("atomic")
    n, wanted_kills = run.size(1_000, 200), run.size(200, 10)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {ATOMIC_TABLE} (token text, attempt int, pid int)"
        )
        cursor.execute(f"TRUNCATE {ATOMIC_TABLE}")
    os.environ["DJQ_MAX_WORKER_LOST"] = "0"  # (inherited by the workers: requeue forever)
    workers = run.workers()
    try:
        procs = [workers.start("a1", "-c", "2"), workers.start("a2", "-c", "2")]
        tokens = [f"a{i}" for i in range(n)]
        enqueue_many([atomic_insert.s(t, 0.02) for t in tokens])
        kills, started = 0, time.monotonic()
        while kills < wanted_kills and active_count():
            done = Job.objects.filter(state=states.SUCCESS).count()
            wait_until(
                lambda d=done: (
                    Job.objects.filter(state=states.SUCCESS).count() > d or not active_count()
                ),
                run.lease * 4,
            )
            victim = random.choice(procs)
            victim.kill_group()
            kills += 1
            victim.spawn()
            victim.wait_ready()
        unfinished = Job.objects.exclude(state__in=states.READY_STATES)
        wait_until(lambda: not unfinished.exists(), max(run.lease * 3, 60))
        out.figures.update(jobs=n, kills=kills, seconds=time.monotonic() - started)
    finally:
        workers.stop_all()
        os.environ.pop("DJQ_MAX_WORKER_LOST", None)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT token, count(*) FROM {ATOMIC_TABLE} GROUP BY token")
        found = dict(cursor.fetchall())
    success = Job.objects.filter(state=states.SUCCESS).count()
    out.figures.update(rows=sum(found.values()), success=success)
    others = Counter(Job.objects.exclude(state=states.SUCCESS).values_list("state", flat=True))
    out.check(success == n, f"{n - success} job(s) not SUCCESS: {dict(others)}")
    out.check(sorted(found) == sorted(tokens), "a job without its row, or a stray row")
    out.check(all(c == 1 for c in found.values()), "a job with more than one row")
    out.check(kills >= wanted_kills // 2, f"only {kills} kill(s)")
    return out


# --- PostgreSQL crashes under load ------------------------------------------------------------
def pg_crash(run: Run) -> Outcome:
    """Two crashes mid-drain with an enqueuer running: ``pg_ctl stop -m immediate``, then
    kill -9 of the postmaster. Each comes when about 2 s of work is left, so that the time from
    the database's return to an empty queue measures the recovery (bound: 2 × lease)."""
    out = Outcome("pg_crash")
    workers = run.workers()
    workers.start("p1", "-c", "2")
    workers.start("p2", "-c", "2", "--prefetch-multiplier", "4")
    log = run.log_dir / "enqueuer.log"
    enqueuer = Proc(
        [sys.executable, "-m", "chaos.enqueuer", str(log), "10"],
        "enqueuer",
        run.log_dir,
        subprocess_env(),
    )
    recoveries, late, n = [], set(), 0
    try:
        for crash in (run.cluster.stop_immediate, run.cluster.kill_postmaster):
            batch = run.size(1_500, 300)
            late |= enqueue(batch, seconds=0.002, durable=True)
            n += batch
            out.check(_nearly_drained(), "the backlog never came down to 2 s of work")
            recoveries.append(_crash_and_recover(run, crash))
        time.sleep(1)  # the enqueuer writes again after the last return
    finally:
        enqueuer.stop()
    ok, err, in_flight = _enqueue_log(log)
    wait_until(lambda: active_count() == 0, 120)
    workers.stop_all()
    sent = ok + err + in_flight
    written = {str(i) for i in Job.objects.filter(id__in=sent).values_list("id", flat=True)}
    late |= {
        str(i) for i in Job.objects.filter(id__in=sent, acks_late=True).values_list("id", flat=True)
    }
    out.figures.update(
        enqueued_ok=len(ok),
        enqueue_raised=len(err),
        raised_in_flight=len(in_flight),
        in_flight_written=len(set(in_flight) & written),
        recovery_s="/".join(f"{r:.1f}" for r in recoveries if r is not None),
        bound_s=2 * run.lease,
    )
    missing = set(ok) - written
    out.check(not missing, f"{len(missing)} enqueue(s) returned an id but wrote nothing")
    out.check(not set(err) & written, f"{len(set(err) & written)} raised enqueue(s) wrote a row")
    out.check(None not in recoveries, "the queue did not drain after a crash")
    out.check(
        all(r is None or r <= 2 * run.lease for r in recoveries),
        f"a recovery took more than 2 × lease = {2 * run.lease:.0f}s",
    )
    out.check(workers.log_count("Database unavailable") > 0, "no worker saw the outage")
    delivery_figures(out, n + len(ok) + len(set(in_flight) & written), late)
    return out


def _nearly_drained(seconds_left: float = 2.0) -> bool:
    """Wait until the jobs left would take the workers about ``seconds_left`` at their rate."""
    done0, t0 = done_count(), time.monotonic()
    deadline = t0 + 300
    while time.monotonic() < deadline:
        time.sleep(0.25)
        elapsed = time.monotonic() - t0
        rate = (done_count() - done0) / elapsed
        if elapsed > 1 and active_count() <= max(20, rate * seconds_left):
            return True
    return False


def _crash_and_recover(run: Run, crash) -> float | None:
    """Crash, stay down 3 s, start; seconds from the return until every job enqueued before it
    is finished (None if that takes more than 10 × lease)."""
    crash()
    time.sleep(3)
    run.cluster.start()
    returned = time.monotonic()
    back = wait_until(_db_now, 30)

    def caught_up():
        return not Job.objects.filter(state__in=ACTIVE, created_at__lte=back).exists()

    if wait_until(caught_up, 10 * run.lease, interval=0.1):
        return time.monotonic() - returned
    return None


def _db_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def _enqueue_log(path: Path) -> tuple[list[str], list[str], list[str]]:
    """Ids of the enqueues that returned, that raised unreached, that raised in flight."""
    ok, err, in_flight = [], [], []
    for line in path.read_text().splitlines():
        verdict, job_id, *rest = line.split()
        if verdict == "ok":
            ok.append(job_id)
        else:
            (in_flight if rest[:1] == ["in-flight"] else err).append(job_id)
    return ok, err, in_flight


# --- a worker frozen past its lease -----------------------------------------------------------
def sigstop(run: Run) -> Outcome:
    """SIGSTOP a worker's group mid-job for 2 × lease: its jobs are rescued (the plain one ends
    WorkerLostError, the acks_late one runs again elsewhere); after SIGCONT its late results are
    discarded."""
    out = Outcome("sigstop")
    workers = run.workers()
    frozen = workers.start("frozen", "-c", "2")
    plain, late = _two_running_jobs(run.lease / 2)
    frozen.signal_group(signal.SIGSTOP)
    try:
        workers.start("rescuer", "-c", "2")
        rescued = wait_until(lambda: _settled(plain, late), run.lease * 4)
        time.sleep(run.lease)
    finally:
        frozen.signal_group(signal.SIGCONT)
    discarded = wait_until(lambda: frozen.log().count("Discarded the late result") >= 2, 30)
    out.figures.update(
        stopped_s=2 * run.lease,
        rescued=2 if rescued else 0,
        late_results_discarded=frozen.log().count("Discarded the late result"),
    )
    _two_jobs_checks(out, plain, late, rescued, discarded)
    workers.stop_all()
    return out


def _two_running_jobs(seconds: float) -> tuple[str, str]:
    """A plain and an acks_late job, both running (their side-table rows written)."""
    plain = chaos_run.apply_async((seconds, False)).id
    late = chaos_run.apply_async((seconds, False), acks_late=True).id
    wait_until(lambda: runs_per_job().keys() >= {plain, late}, 30, interval=0.05)
    # (and recorded STARTED: before that, a job the worker began is still RESERVED in the
    # database, and a frozen worker's reserved jobs are requeued: docs/worker.md)
    wait_until(
        lambda: Job.objects.filter(id__in=[plain, late], state=states.STARTED).count() == 2,
        30,
        interval=0.05,
    )
    return plain, late


def _settled(plain: str, late: str) -> bool:
    jobs = dict(Job.objects.filter(id__in=[plain, late]).values_list("id", "state"))
    return {str(k): v for k, v in jobs.items()} == {plain: states.FAILURE, late: states.SUCCESS}


def _two_jobs_checks(out: Outcome, plain: str, late: str, rescued, discarded) -> None:
    runs = runs_per_job()
    out.figures.update(runs_plain=runs[plain], runs_late=runs[late])
    out.check(bool(rescued), "the jobs were not rescued")
    out.check(bool(discarded), "the late results were not discarded")
    out.check(_settled(plain, late), "a late result overwrote a rescued job")
    out.check(worker_lost([plain]) == {plain}, "the plain job did not end WorkerLostError")
    out.check(runs[plain] == 1 and runs[late] >= 2, f"runs: plain {runs[plain]}, late {runs[late]}")
    out.check(active_count() == 0, "a job is stuck")


# --- a worker cut off in its own network namespace --------------------------------------------
def partition(run: Run) -> Outcome:
    """A worker in its own namespace loses its link for 2 × lease mid-job: rescued, its late
    results discarded once the link is back, and it goes on working."""
    out = Outcome("partition")
    if not run.hosts:
        out.check(False, f"no network namespaces: {run.net_error}")
        return out
    host = run.hosts[0]
    workers = run.workers()
    cut = workers.start("cut", "-c", "2", netns=host.netns, database_url=run.host_url(host))
    plain, late = _two_running_jobs(run.lease / 2)
    netns.partition(host)
    try:
        workers.start("outside", "-c", "2")
        rescued = wait_until(lambda: _settled(plain, late), run.lease * 4)
        time.sleep(run.lease)
    finally:
        netns.heal(host)
    healed = time.monotonic()
    discarded = wait_until(lambda: cut.log().count("Discarded the late result") >= 2, 120)
    out.figures.update(
        cut_s=2 * run.lease,
        rescued=2 if rescued else 0,
        late_results_discarded=cut.log().count("Discarded the late result"),
        back_after_heal_s=time.monotonic() - healed,
    )
    _two_jobs_checks(out, plain, late, rescued, discarded)
    workers.procs[1].stop()  # only the healed worker is left to take the next job
    after = chaos_run.delay(0)
    runs = wait_until(lambda: runs_per_job()[after.id], 60)
    out.check(
        bool(runs) and "cut@" in (Job.objects.get(id=after.id).worker or ""),
        "the healed worker does not take new jobs",
    )
    workers.stop_all()
    return out


def hosts3(run: Run) -> Outcome:
    """Three workers in three namespaces drain one queue; one is partitioned for 2 × lease
    mid-drain and healed. Plain jobs: every success ran exactly once, none twice."""
    out = Outcome("hosts3")
    if len(run.hosts) < 3:
        out.check(False, f"no network namespaces: {run.net_error}")
        return out
    n = run.size(6_000, 400)
    late = enqueue(n, seconds=0.002, late_every=0)
    workers = run.workers()
    for i, host in enumerate(run.hosts[:3]):
        workers.start(f"host{i}", "-c", "2", netns=host.netns, database_url=run.host_url(host))
    started = time.monotonic()
    wait_until(lambda: done_count() >= n // 4, 120)
    netns.partition(run.hosts[1])
    time.sleep(2 * run.lease)
    netns.heal(run.hosts[1])
    took = drained(stall=10 * run.lease)
    out.figures.update(partitioned_s=2 * run.lease, drain_s=time.monotonic() - started)
    out.check(took is not None, f"the queue stalled (no job finished for {10 * run.lease:.0f}s)")
    workers.stop_all()
    delivery_figures(out, n, late)
    return out


# --- bad API calls and malformed rows ---------------------------------------------------------
def bad_input(run: Run) -> Outcome:
    """tests/faults.py's tables: every bad call raises its clear error at the call and writes
    nothing; every malformed row the schema accepts is written with plain SQL between good
    rows under two running workers (one prefetching: bad and good rows share claim batches) and
    ends in its expected state with its reason, every good row running once; the rows the
    schema refuses are refused; the workers never die, and the next good job runs."""
    out = Outcome("bad_input")
    calls = faults.bad_calls()
    wrong = [f"{bad.id}: {why}" for bad in calls if (why := faults.judge_call(bad))]
    path = str(run.log_dir / "bad_input.ran")
    rows = faults.bad_rows()
    bad_ids, good_ids, refused = {}, [], []
    for i, bad in enumerate(rows):
        good_ids.append(faults.write_good(path, f"good{i}"))
        job_id = faults.write_row(bad, path, f"bad{i}")
        if job_id is None:
            refused.append(bad.id)
        else:
            bad_ids[job_id] = bad
    workers = run.workers()
    procs = [
        workers.start("bad1", "-c", "2", "--prefetch-multiplier", "4"),
        workers.start("bad2", "-c", "1"),
    ]
    found = wait_until(lambda: faults.finished([*bad_ids, *good_ids]), run.lease * 10) or {}
    verdicts = {
        bad.id: faults.judge_row(bad, found[i]) if found else "not finished"
        for i, bad in bad_ids.items()
    }
    wrong_rows = [f"{label}: {why}" for label, why in verdicts.items() if why]
    should_refuse = {bad.id for bad in rows if bad.refused}
    ran = faults.runs(path)
    good = chaos_run.delay(0)
    next_ran = wait_until(lambda: runs_per_job()[good.id], 30)
    out.figures.update(
        source=faults.SOURCE,
        calls=len(calls),
        refused=len(calls) - len(wrong),
        rows=len(rows),
        rows_as_expected=len(bad_ids) - len(wrong_rows),
        rows_refused_by_schema=len(refused),
        good_rows=len(good_ids),
        good_ran_once=sum(ran.get(f"good{i}") == 1 for i in range(len(good_ids))),
        worker_starts=sum(p.log().count(" ready") for p in procs),
    )
    out.check(bool(calls) and bool(rows), f"{faults.SOURCE} has no calls or no rows")
    out.check(not wrong, f"bad calls: {'; '.join(wrong)}")
    out.check(bool(found), "a job is stuck")
    out.check(not wrong_rows, f"bad rows: {'; '.join(wrong_rows)}")
    out.check(
        set(refused) == should_refuse,
        f"schema refused {sorted(refused)}, not {sorted(should_refuse)}",
    )
    out.check(out.figures["good_ran_once"] == len(good_ids), "a good row did not run exactly once")
    out.check(not any(ran.get(f"bad{i}", 0) > 1 for i in range(len(rows))), "a bad row ran twice")
    out.check(bool(next_ran), "the good job after them did not run")
    out.check(all(p.proc.poll() is None for p in procs), "a worker died")
    out.check(not Job.objects.filter(state=states.STARTED).exists(), "a job is left STARTED")
    out.check(
        workers.log_count("Unexpected error in the worker loop") == 0,
        "a worker hit its loop's last-resort handler",
    )
    workers.stop_all()
    codes = [p.proc.returncode for p in procs]
    out.check(codes == [0, 0], f"the workers did not shut down cleanly: exit statuses {codes}")
    return out


# --- enqueue at volume while two workers drain --------------------------------------------------
def enqueue_under_drain(run: Run) -> Outcome:
    """100,000 jobs enqueued in batches while two workers drain them."""
    out = Outcome("enqueue_100k")
    n = run.size(100_000, 1_500)
    workers = run.workers()
    workers.start("d1", "-c", "2")
    workers.start("d2", "-c", "2", "--prefetch-multiplier", "4")
    started = time.monotonic()
    enqueue(n, late_every=0)
    enqueued = time.monotonic() - started
    took = drained(stall=10 * run.lease)
    total = time.monotonic() - started
    out.figures.update(
        enqueue_s=enqueued, enqueue_per_s=int(n / enqueued), drain_per_s=int(n / total)
    )
    out.check(took is not None, f"the queue stalled (no job finished for {10 * run.lease:.0f}s)")
    workers.stop_all()
    delivery_figures(out, n, set())
    return out


SCENARIOS = {
    "kill9": kill9,
    "atomic": atomic,
    "pg_crash": pg_crash,
    "sigstop": sigstop,
    "partition": partition,
    "bad_input": bad_input,
    "enqueue_100k": enqueue_under_drain,
    "hosts3": hosts3,
}


def run_one(run: Run, name: str) -> Outcome:
    """One scenario from an empty queue; an error in the campaign itself is a FAIL line."""
    reset()
    try:
        return SCENARIOS[name](run)
    except Exception as exc:  # the campaign must print a line for every scenario
        out = Outcome(name)
        out.check(False, f"{type(exc).__name__}: {str(exc).strip()[:300]}")
        return out
    finally:
        for workers in run.started:
            workers.stop_all()
        run.started.clear()
