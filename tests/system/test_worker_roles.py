"""Acceptance: rescue and maintenance run in one elected worker at a time (issue 11).

Every worker asks for the database lease ``djq.maintenance``; only its holder sweeps expired
leases (and rolls up statistics, prunes events). Killing the holder hands the role to a survivor
once its lease runs out, and that survivor rescues the dead worker's jobs.
"""

from __future__ import annotations

import signal

import pytest

from djq import enqueue_many, states, store
from djq.exceptions import WorkerLostError
from djq.models import Job, Lease
from djq.roles.rescuer import LEASE_NAME, Rescuer
from djq.store import leases
from testproject.demo import tasks as demo
from tests.helpers import wait_for
from tests.worker_support import job, lines, wait_lines, wait_state

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = 2.0
ELECTED = r"elected: runs rescue and maintenance"
STANDING_BY = r"standing by \(another worker holds the lease djq\.maintenance\)"


def _starts(lines_: list[str], token: str) -> int:
    return sum(line.startswith(f"{token} start") for line in lines_)


def _holder():
    return leases.holder("default", LEASE_NAME)


def test_a_lease_has_one_holder_until_it_expires_or_is_released():
    assert leases.holder("default", "x") is None
    assert leases.acquire("a", 30, "default", "x")
    assert not leases.acquire("b", 30, "default", "x")
    assert leases.holder("default", "x") == "a"
    assert not leases.release("b", "default", "x")
    assert leases.release("a", "default", "x")
    assert leases.holder("default", "x") is None
    assert leases.acquire("b", 0.001, "default", "x")  # expires at once ...
    wait_for(lambda: leases.acquire("a", 30, "default", "x"), timeout=5)  # ... then it is free
    assert Lease.objects.get(name="x").holder == "a"


def test_a_rescuer_that_is_not_elected_leaves_expired_leases_alone():
    result = demo.add.delay(1, 2)
    assert len(store.claim("dead@host", ["default"], 1, 0.001)) == 1  # a lease of 1 ms
    wait_for(lambda: _expired(result), timeout=5)
    elected, standby = Rescuer("a@host", "default", 30.0), Rescuer("b@host", "default", 30.0)
    elected.turn(grace=0)  # takes the lease and rescues: the reserved job is requeued
    assert job(result).state == states.PENDING
    assert len(store.claim("dead@host", ["default"], 1, 0.001)) == 1
    wait_for(lambda: _expired(result), timeout=5)
    standby.turn(grace=0)
    assert not standby.elected and job(result).state == states.RESERVED  # not its job to rescue
    elected.stop()  # a warm shutdown gives the lease up: the next to ask takes the role
    standby.turn(grace=0)
    assert standby.elected and job(result).state == states.PENDING
    assert _holder() == "b@host"


def _expired(result) -> bool:
    return Job.objects.filter(id=result.id, lease_expires_at__lt=store.db_now()).exists()


def test_only_the_elected_worker_rescues_and_a_survivor_takes_over(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    plain, late = enqueue_many(
        [
            demo.record_start.s(str(path), "plain", 60.0),
            demo.record_slowly.s(str(path), "late", 60.0),
        ]
    )
    first = start_worker("-c", "2", "--lease", str(LEASE), name="first")
    first.wait_for_log(ELECTED)
    assert _holder() == first.nodename
    wait_lines(
        path,
        lambda ls: _starts(ls, "plain") == _starts(ls, "late") == 1,
        message="both jobs to start on the elected worker",
    )
    wait_for(
        lambda: job(plain).state == job(late).state == states.STARTED,
        timeout=10,
        message="both jobs to be recorded STARTED",
    )
    peers = [start_worker("-c", "1", "--lease", str(LEASE), name=f"peer{i}") for i in (1, 2)]
    for peer in peers:
        peer.wait_for_log(STANDING_BY)
    assert _holder() == first.nodename  # one holder among three workers

    first.kill_group(signal.SIGKILL)
    first.wait(timeout=10)
    # the dead worker's lease runs out (<= LEASE) and a survivor's next turn (<= LEASE/3 x 1.2)
    # takes it; the deadline leaves room for a loaded machine
    wait_for(
        lambda: _holder() in {p.nodename for p in peers},
        timeout=4 * LEASE,
        message="a survivor to take the maintenance lease",
    )
    new = next(p for p in peers if p.nodename == _holder())
    other = next(p for p in peers if p is not new)
    new.wait_for_log(ELECTED)
    wait_state(plain, states.FAILURE, timeout=4 * LEASE)
    with pytest.raises(WorkerLostError):
        plain.get(timeout=1)
    new.wait_for_log(r"Rescued testproject\.demo\.tasks\.record_start\[.*failed \(WorkerLost")
    new.wait_for_log(r"Rescued testproject\.demo\.tasks\.record_slowly\[.*requeued")
    wait_lines(
        path,
        lambda ls: _starts(ls, "late") == 2,
        timeout=4 * LEASE,
        message="the acks_late job to run again on a survivor",
    )
    assert "Rescued" not in other.log_text() and "elected" not in other.log_text()
    assert _starts(lines(path), "plain") == 1
