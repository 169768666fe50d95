"""Work-flows across several real worker processes: the continuation of a job is enqueued by
the transaction that records it, so chains advance once and a chord's body runs exactly once
even when its members finish on different workers at the same moment."""

from __future__ import annotations

import pytest

from djq import chain, chord, group, states
from djq.models import Job
from testproject.demo import tasks as demo
from tests.worker_support import T, tokens

pytestmark = pytest.mark.django_db(transaction=True)


def test_chain_group_and_chord_across_three_workers(start_worker, tmp_path):
    for i in range(3):
        start_worker("-c", "2", name=f"cw{i}")
    assert chain(demo.add.s(1, 1), demo.mul.s(3), demo.add.s(4)).apply_async().get(timeout=30) == 10
    assert group(demo.mul.s(i, i) for i in range(20)).apply_async().get(timeout=30) == [
        i * i for i in range(20)
    ]
    n = 60
    result = chord((demo.add.s(i, 0) for i in range(n)), demo.xsum.s()).apply_async()
    assert result.get(timeout=60) == sum(range(n))
    # The body ran exactly once, after every member.
    assert Job.objects.filter(name=T + "xsum").count() == 1
    members = Job.objects.filter(name=T + "add", group_id__isnull=False)
    assert members.count() == n and not members.exclude(state=states.SUCCESS).exists()


def test_many_small_chords_fire_once_each(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    for i in range(3):
        start_worker("-c", "2", name=f"cw{i}")
    results = [
        chord(
            [demo.record.s(str(path), f"c{c}m{m}") for m in range(4)],
            demo.record.si(str(path), f"c{c}body"),
        ).apply_async()
        for c in range(25)
    ]
    for c, r in enumerate(results):
        assert r.get(timeout=60) == f"c{c}body"
    counts = tokens(path)
    assert len(counts) == 25 * 5 and set(counts.values()) == {1}, counts.most_common(3)
