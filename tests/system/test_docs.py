"""The documentation's examples run: ``docs/check_examples.sh`` (doctests of README.md and
docs/*.md against a real worker, the documented commands) must pass.

The script uses its own throwaway SQLite database, so it runs once, in the SQLite pass.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

ROOT = REPO_ROOT


@pytest.mark.sqlite_only
@pytest.mark.timeout(600)
def test_documentation_examples_run(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(PYTHON=sys.executable, TMPDIR=str(tmp_path))
    proc = subprocess.run(
        ["bash", str(ROOT / "docs" / "check_examples.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert proc.returncode == 0, (
        f"docs/check_examples.sh failed ({proc.returncode}):\n{proc.stdout[-8000:]}\n"
        f"{proc.stderr[-4000:]}"
    )
    assert "all examples passed" in proc.stdout
