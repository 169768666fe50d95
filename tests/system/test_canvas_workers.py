"""Work-flows through real worker processes on PostgreSQL (issue 3 acceptance).

The chord's body must run exactly once whatever the timing: header jobs finishing at the same
instant on different workers, or a worker killed in the middle of the header.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from djq import chain, chord, group
from djq.exceptions import ChordError
from djq.models import Job
from testproject.demo.tasks import add, fail, mul, slow_add, tally, xsum
from tests.helpers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_seed_examples_through_a_worker(start_worker):
    start_worker("-c", "2", name="canvas")
    assert group(add.s(i, i) for i in range(10))().get(timeout=30) == list(range(0, 20, 2))
    assert group(add.s(i) for i in range(10))(10).get(timeout=30) == list(range(10, 20))
    assert chain(add.s(4, 4) | mul.s(8))().get(timeout=30) == 64
    assert (add.si(1, 2) | add.s(3))().get(timeout=30) == 6
    assert chord((add.s(i, i) for i in range(10)), xsum.s())().get(timeout=30) == 90
    assert (group(add.s(i, i) for i in range(10)) | xsum.s())().get(timeout=30) == 90
    parent = add.apply_async((2, 2), link=mul.s(10))
    parent.get(timeout=30)
    child = wait_for(lambda: parent.children, timeout=30, message="the linked job")[0]
    assert child.get(timeout=30) == 40
    with pytest.raises(ChordError):
        chord([add.s(1, 1), fail.si("no")], xsum.s())().get(timeout=30)


def test_chord_of_1000_runs_its_body_once_20_times_in_a_row(start_worker, tmp_path):
    for i in range(3):
        start_worker("-c", "2", "--prefetch-multiplier", "20", name=f"chord{i}")
    for round_ in range(20):
        path = tmp_path / f"body-{round_}.txt"
        result = chord([add.s(i, 1) for i in range(1000)], tally.s(str(path)))()
        assert result.get(timeout=120) == sum(range(1, 1001))
        members = Job.objects.filter(group_id=result.parent.id)
        workers = set(members.values_list("worker", flat=True))
        assert lines(path) == [f"1000 {sum(range(1, 1001))}"], f"round {round_}: {lines(path)}"
        assert len(workers) > 1  # the header really was shared out


def test_kill_9_during_an_acks_late_chord_header(start_worker, tmp_path):
    marker, path = tmp_path / "started.txt", tmp_path / "body.txt"
    victim = start_worker("-c", "2", "--lease", "2", name="victim")
    header = [slow_add.s(i, 1, str(marker), 2.0) for i in range(4)]
    result = chord(header, tally.s(str(path)))()
    wait_for(lambda: len(lines(marker)) >= 2, timeout=30, message="header jobs to start")
    victim.kill_group(signal.SIGKILL)
    victim.wait(timeout=10)
    start_worker("-c", "2", "--lease", "2", name="rescuer")
    assert result.get(timeout=60) == sum(range(1, 5))
    assert lines(path) == [f"4 {sum(range(1, 5))}"]  # the body ran once
