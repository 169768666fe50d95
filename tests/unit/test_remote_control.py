"""djq.roles.remote's handlers reach a worker only through ``WorkerControl``: a Worker offers
every operation of the protocol, and the built-in commands run against a plain object that
offers them too (no worker, no database)."""

from __future__ import annotations

import inspect
import time
from collections import Counter
from typing import Any

import pytest

from djq.records import Claim
from djq.roles import remote
from djq.worker import ResolvedWorkerConfig, Worker, WorkerConfig


def _members() -> set[str]:
    members = getattr(remote.WorkerControl, "__protocol_attrs__", None)
    assert members, "typing.Protocol lists its members (Python >= 3.12)"
    return set(members)


def _claim(job_id: str, queue: str = "default") -> Claim:
    return Claim(
        id=job_id,
        name="demo.add",
        args="[1, 2]",
        kwargs="{}",
        options="{}",
        retries=0,
        max_retries=None,
        attempt=1,
        eta=None,
        expires=None,
        expired=False,
        parent_id=None,
        root_id=job_id,
        group_id=None,
        priority=0,
        queue=queue,
        acks_late=False,
        revoked=False,
    )


class FakeWorker:
    """A plain object offering WorkerControl: what a command did is read back from it."""

    def __init__(self) -> None:
        self.name = "fake@host"
        self.using = "default"
        self.config = WorkerConfig(queues=["default"], pool="threads").resolved()
        self.started = time.monotonic() - 5
        self.processed, self.failed = 7, 2
        self.totals: Counter[str | None] = Counter({"demo.add": 7})
        self.running = [(_claim("r1"), 4242, 100.0)]
        self.waiting = [_claim("w1")]
        self.revoked = {"x2", "x1"}
        self.size = (4, 2)
        self.autoscaled: tuple[int, int] | None = None
        self.limits: dict[str, tuple[float | None, float | None]] = {}
        self.refreshed = 0
        self.stopped = False
        self.events = False

    def control_clock(self) -> int:
        return 41

    def active_jobs(self) -> list[tuple[Claim, int, float | None]]:
        return list(self.running)

    def held_jobs(self) -> list[Claim]:
        return [job for job, _, _ in self.running] + self.waiting

    def revoked_ids(self) -> set[str]:
        return self.revoked

    def pool_stats(self) -> dict[str, Any]:
        return {"implementation": "threads", "max-concurrency": self.size[0], "processes": [1]}

    def pool_size(self) -> tuple[int, int]:
        return self.size

    def resize_pool(
        self, max_procs: int, min_procs: int | None = None, autoscale: bool = False
    ) -> int:
        self.size = (max_procs, self.size[1] if min_procs is None else min_procs)
        if autoscale:
            self.autoscaled = self.size
        return max_procs

    def set_time_limits(self, task_name: str, soft: float | None, hard: float | None) -> None:
        self.limits[task_name] = (soft, hard)

    def refresh_limits(self) -> None:
        self.refreshed += 1

    def set_queues(self, queues: list[str]) -> None:
        self.config.queues = queues

    def request_stop(self) -> None:
        self.stopped = True

    def set_events(self, on: bool) -> bool:
        changed, self.events = self.events != on, on
        return changed


def test_a_worker_offers_every_operation_of_the_protocol_with_its_signature():
    worker = Worker(WorkerConfig(queues=["default"], pool="threads"))
    try:
        assert isinstance(worker, remote.WorkerControl)
        assert isinstance(worker.config, ResolvedWorkerConfig)
        for name in _members():
            wanted = getattr(remote.WorkerControl, name)
            if isinstance(wanted, property):
                continue  # (an attribute or a property: isinstance above saw it)
            offered = getattr(Worker, name)
            assert list(inspect.signature(offered).parameters) == list(
                inspect.signature(wanted).parameters
            ), name
    finally:
        worker.sig_r.close()
        worker.sig_w.close()


def test_an_object_without_an_operation_is_no_worker_control():
    class Partial(FakeWorker):
        request_stop = None  # type: ignore[assignment]

    assert isinstance(FakeWorker(), remote.WorkerControl)
    assert not isinstance(object(), remote.WorkerControl)
    # (a member set to None is "not offered" for runtime_checkable protocols)
    assert not isinstance(Partial(), remote.WorkerControl)


def test_the_built_in_commands_run_against_a_plain_worker_control():
    worker = FakeWorker()

    def handle(command: str, **arguments: Any) -> Any:
        return remote.handle(worker, command, arguments)

    assert handle("ping") == {"ok": "pong"}
    assert handle("clock") == {"clock": 41}
    (running,) = handle("active")
    assert (
        running["id"] == "r1" and running["worker_pid"] == 4242 and running["time_start"] == 100.0
    )
    assert running["args"] == [1, 2] and running["hostname"] == "fake@host"
    assert [job["id"] for job in handle("reserved")] == ["w1"]
    assert handle("revoked") == ["x1", "x2"]
    assert handle("query_task", ids=["r1", "w1", "gone"]) == {
        "r1": ["active", remote._job_info(worker, worker.running[0][0])],
        "w1": ["reserved", remote._job_info(worker, worker.waiting[0])],
    }
    stats = handle("stats")
    assert stats["total"] == {"demo.add": 7} and (stats["processed"], stats["failed"]) == (7, 2)
    assert stats["pool"]["max-concurrency"] == 4 and stats["uptime"] >= 5
    assert stats["prefetch_count"] == worker.config.concurrency * worker.config.prefetch_multiplier
    assert handle("conf")["queues"] == ["default"]
    assert handle("active_queues") == [
        {"name": "default", "routing_key": "default", "exclusive": False}
    ]

    assert handle("add_consumer", queue="low") == {"ok": "add consumer low"}
    assert worker.config.queues == ["default", "low"]
    assert handle("cancel_consumer", queue="default") == {"ok": "no longer consuming from default"}
    assert handle("cancel_consumer", queue="low") == {"error": "a worker needs at least one queue"}
    assert worker.config.queues == ["low"]

    assert handle("pool_grow", n=2) == {"ok": "pool will grow to 6"}
    assert handle("pool_shrink", n=5) == {"ok": "pool will shrink to 1"}
    assert worker.size == (1, 1)
    assert handle("autoscale", max=8, min=3) == {"ok": "autoscale now max=8 min=3"}
    assert worker.autoscaled == (8, 3)

    assert handle("time_limit", task_name="demo.add", soft=1.5, hard=3)["ok"]
    assert worker.limits == {"demo.add": (1.5, 3)}
    assert handle("rate_limit", task_name="demo.add", rate_limit="5/s")["ok"]
    assert handle("refresh_limits") == {"ok": "limits reloaded"}
    assert worker.refreshed == 2

    assert handle("enable_events") == {"ok": "task events enabled"}
    assert handle("enable_events") == {"ok": "task events already enabled"}
    assert handle("disable_events") == {"ok": "task events disabled"}
    assert handle("shutdown") == {"ok": "shutting down"} and worker.stopped


@pytest.mark.parametrize(
    ("command", "arguments", "error"),
    [
        ("nonsense", {}, "unknown command 'nonsense'"),
        ("pool_grow", {"n": "many"}, "ValueError: invalid literal for int() with base 10: 'many'"),
        (
            "add_consumer",
            {},
            "TypeError: add_consumer() missing 1 required positional argument: 'queue'",
        ),
    ],
)
def test_a_bad_command_answers_with_an_error_naming_it(command, arguments, error):
    assert remote.handle(FakeWorker(), command, arguments) == {"error": error}
