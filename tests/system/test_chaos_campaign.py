"""The fault campaign's short form (``python -m chaos --short``, docs/chaos.md) passes.

It runs as a subprocess with its own durable PostgreSQL (the campaign crashes its server, which
must not be the suite's) and its own network namespaces; every scenario must print a PASS line.
One run is enough, and it uses no database of the pass: it has no database marker, so that
`make test` runs it on the SQLite pass (the shorter one; tests/conftest.py, DJQ_TEST_DB_AGNOSTIC_ON)
and not on the PostgreSQL pass it used to lengthen by minutes.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from chaos.__main__ import NAMES
from tests.helpers import REPO_ROOT

LINE = re.compile(r"^(\w+): (PASS|FAIL)\b", re.M)


@pytest.mark.timeout(600)
def test_the_short_campaign_passes():
    done = subprocess.run(
        [sys.executable, "-m", "chaos", "--short"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=580,
        stdin=subprocess.DEVNULL,
    )
    report = f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr[-4000:]}"
    verdicts = dict(LINE.findall(done.stdout))
    assert list(verdicts) == list(NAMES), report
    assert set(verdicts.values()) == {"PASS"}, report
    assert done.returncode == 0, report


def test_a_bad_option_is_refused_before_anything_is_created():
    done = subprocess.run(
        [sys.executable, "-m", "chaos", "--lease", "0", "--only", "nope"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "--only: unknown scenario(s) nope" in done.stderr
    assert "pg-throwaway" not in done.stderr  # no cluster was started


def test_the_documented_commands_are_the_ones_run():
    """docs/chaos.md's commands: the short form is what the test above runs; `make chaos` (too
    long for the suite) runs the same module, with CHAOS_ARGS passed through."""
    text = (REPO_ROOT / "docs" / "chaos.md").read_text()
    block = re.search(r"```console\n(.*?)```", text, re.S).group(1)
    commands = [line[2:].split("  #")[0].strip() for line in block.splitlines()]
    assert commands == [
        "make chaos",
        ".venv/bin/python -m chaos --short",
        'make chaos CHAOS_ARGS="--only pg_crash --lease 30"',
    ]
    for args in ("", "--only pg_crash --lease 30"):
        dry = subprocess.run(
            ["make", "-n", "chaos", f"CHAOS_ARGS={args}"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert f"-m chaos {args}".strip() in dry.stdout.splitlines()[-1], dry.stdout
