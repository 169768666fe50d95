"""The bad API calls and malformed rows of the ``bad_input`` scenario: the suite's own tables,
``tests/faults.py`` (``BAD_CALLS``, ``BAD_ROWS``), judged as tests/integration/test_fault_calls.py
and
tests/system/test_fault_rows.py judge them, against the campaign's durable server and real workers.

There is no second copy to fall back on: a campaign that quietly ran a smaller table would
prove less than it says. ``tests`` is imported from the checkout the campaign runs from (its
root is first on ``sys.path`` under ``python -m chaos``); ``SOURCE`` names the file actually
used, and a ``tests`` package found anywhere else (an installed distribution's) is an error.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.db import DatabaseError, connection, transaction

from djq import states
from djq.models import Job
from tests import faults as suite

REPO_ROOT = Path(__file__).resolve().parent.parent
SUITE_FILE = REPO_ROOT / "tests" / "faults.py"
if Path(suite.__file__).resolve() != SUITE_FILE:
    raise ImportError(f"chaos: tests.faults is {suite.__file__}, not this checkout's {SUITE_FILE}")
#: what the scenario's line reports as its tables' origin
SOURCE = SUITE_FILE.relative_to(REPO_ROOT).as_posix()


def bad_calls() -> list[suite.BadCall]:
    return list(suite.BAD_CALLS)


def bad_rows() -> list[suite.BadRow]:
    """The rows this server's column types can hold (``rows_for``), those the schema refuses
    included."""
    return suite.rows_for(connection.vendor)


class _Verdict(Exception):
    """Leaves the call's transaction (rolling back whatever it wrote) with the verdict."""

    def __init__(self, why: str):
        self.why = why


def judge_call(bad: suite.BadCall) -> str:
    """ "" if the call raised its table's error naming what it must name, wrote nothing, and
    left the caller's transaction usable (a database error would have aborted it); else why not.
    Everything, the ``setup`` job included, is rolled back so that it cannot disturb the
    scenarios after it."""
    try:
        with transaction.atomic():
            if bad.setup is not None:
                bad.setup()
            before = Job.objects.count()
            try:
                bad.call()
            except bad.error as exc:
                missing = [name for name in bad.names if name not in str(exc)]
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")  # the caller's transaction is still usable
                wrote = Job.objects.count() - before
                raise _Verdict(
                    f"message {str(exc)[:80]!r} does not name {missing}"
                    if missing
                    else f"wrote {wrote} job(s)"
                    if wrote
                    else ""
                ) from None
            except Exception as exc:
                raise _Verdict(f"{type(exc).__name__} instead of {bad.error.__name__}") from None
            raise _Verdict("accepted")
    except _Verdict as verdict:
        return verdict.why
    except DatabaseError as exc:
        return f"{type(exc).__name__} (the transaction was aborted)"


def write_row(bad: suite.BadRow, path: str, token: str) -> str | None:
    """INSERT the row with plain SQL, as anything may write one; its id, or None when the schema
    refused it (the INSERT raised: such a row never reaches a worker)."""
    try:
        with transaction.atomic():
            return suite.insert_raw(suite.bad_row_columns(bad, path, token))
    except DatabaseError:
        return None


def write_good(path: str, token: str) -> str:
    return suite.insert_raw(suite.good_columns(path, token))


def finished(ids: list[str]) -> dict[str, tuple] | None:
    """id → (state, result, traceback) once every job is finished, else None (read without the
    timestamp columns: a row may hold one Python cannot load)."""
    rows = Job.objects.filter(id__in=ids).values_list("id", "state", "result", "traceback")
    found = {str(i): (s, r, t) for i, s, r, t in rows}
    done = len(found) == len(ids) and all(s in states.READY_STATES for s, _, _ in found.values())
    return found if done else None


def judge_row(bad: suite.BadRow, found: tuple) -> str:
    """ "" if the finished row is in its expected state with its reason; else why not."""
    state, result, traceback = found
    if state != bad.state:
        return f"{state}, not {bad.state}"
    if bad.reason and bad.reason not in json.dumps(result) + (traceback or ""):
        return f"its result does not mention {bad.reason!r}"
    return ""


def runs(path: str) -> dict[str, int]:
    """How many times each token was recorded (``record`` appends one line per run)."""
    counts: dict[str, int] = {}
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return counts
    for line in text.split():
        counts[line] = counts.get(line, 0) + 1
    return counts
