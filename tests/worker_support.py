"""Small helpers shared by the worker acceptance tests (tests/test_worker_*.py).

They read job rows through the ORM and side-effect files written by the demo tasks
(``record``, ``record_slowly``, ...): a line per run, so that a test can count how often a job ran.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from djq import states
from djq.models import Job
from tests.helpers import wait_for

#: the demo tasks' names (workers import them from testproject.demo.tasks)
T = "testproject.demo.tasks."


def job(result) -> Job:
    """The job row of an AsyncResult (or id), fresh from the database."""
    return Job.objects.get(id=getattr(result, "id", result))


def history_states(result) -> list[str]:
    return [event[0] for event in job(result).history]


def lines(path: Path) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []


def tokens(path: Path) -> Counter:
    """How many times each token was recorded (``record``: one line per run)."""
    return Counter(lines(path))


def wait_state(result, wanted: str | set[str], timeout: float = 20.0) -> Job:
    """Wait until the job's row is in ``wanted`` (a state or a set); return the row."""
    wanted = {wanted} if isinstance(wanted, str) else set(wanted)
    last: list[str] = []

    def check():
        row = Job.objects.filter(id=result.id).first()
        last[:] = [row.state if row else "<no row>"]
        return row if row is not None and row.state in wanted else None

    try:
        return wait_for(check, timeout=timeout, interval=0.05)
    except AssertionError:
        raise AssertionError(
            f"job {result.id} did not reach {sorted(wanted)} within {timeout}s "
            f"(last state {last[0] if last else '?'})"
        ) from None


def wait_all_ready(results, timeout: float = 60.0) -> None:
    ids = [r.id for r in results]

    def done():
        return not Job.objects.filter(id__in=ids).exclude(state__in=states.READY_STATES).exists()

    wait_for(done, timeout=timeout, interval=0.1, message=f"{len(ids)} jobs to finish")


def wait_lines(path: Path, predicate, timeout: float = 20.0, message: str = "") -> list[str]:
    """Wait until ``predicate(lines(path))`` holds; return the lines."""
    return wait_for(
        lambda: predicate(lines(path)) and lines(path),
        timeout=timeout,
        message=message or f"side effects in {path}",
    )
