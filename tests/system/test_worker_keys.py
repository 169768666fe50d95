"""Acceptance: per-key concurrency and fair claims through real workers (issue 15, point 2).

A tenant with 20,000 waiting jobs does not starve a tenant with 20 enqueued after them: the
claim takes turns between the keys. Per-key concurrency limits hold across three workers,
counted from the start and end times the jobs record.
"""

from __future__ import annotations

import pytest

from djq import enqueue_many, states
from testproject.demo import tasks as demo
from tests.helpers import wait_for
from tests.worker_support import lines

pytestmark = pytest.mark.django_db(transaction=True)


def _peaks(path) -> dict[str, int]:
    """The most jobs of each tenant running at once, from their start/end lines."""
    events: dict[str, list[tuple[float, int]]] = {}
    for line in lines(path):
        tenant, _, kind, stamp = line.split()
        events.setdefault(tenant, []).append((float(stamp), 0 if kind == "end" else 1))
    peaks = {}
    for tenant, marks in events.items():
        running = peak = 0
        for _, starts in sorted(marks):
            running += 1 if starts else -1
            peak = max(peak, running)
        peaks[tenant] = peak
    return peaks


def test_per_key_concurrency_holds_across_three_workers(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    for i in range(3):
        start_worker("-c", "4", name=f"keys{i}")
    sigs = [
        demo.tenant_exclusive.s(tenant, str(path), str(i), 0.2)
        for i in range(12)
        for tenant in ("t1", "t2", "t3")
    ]
    results = enqueue_many(sigs)
    wait_for(
        lambda: sum(1 for line in lines(path) if " end " in line) == len(sigs),
        timeout=120,
        interval=0.1,
        message="all keyed jobs done",
    )
    peaks = _peaks(path)
    assert peaks == {"t1": 2, "t2": 2, "t3": 2}, peaks  # never more, and the limit was used
    assert {r.state for r in results} == {states.SUCCESS}


def test_a_small_tenant_is_not_starved_by_a_big_one(start_worker, tmp_path):
    """Tenant A: 20,000 jobs; tenant B: 20 enqueued after them. All of B's finish before 5 %
    of A's have."""
    path = tmp_path / "order.txt"
    enqueue_many(demo.tenant_record.s("A", str(path)) for _ in range(20_000))
    small = enqueue_many(demo.tenant_record.s(tenant="B", path=str(path)) for _ in range(20))
    start_worker("-c", "4", name="fair0")
    start_worker("-c", "4", name="fair1")
    for result in small:
        result.get(timeout=120)
    ran = lines(path)
    first_b_done = max(i for i, tenant in enumerate(ran) if tenant == "B")
    a_before = sum(1 for tenant in ran[:first_b_done] if tenant == "A")
    assert sum(1 for tenant in ran if tenant == "B") == 20
    assert a_before < 20_000 * 0.05, f"{a_before} of A's jobs ran before B's 20 finished"
