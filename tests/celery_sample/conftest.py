"""Fixtures for the converted sample project (after/): its settings in this process, and a worker
(with beat) started from its own manage.py."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from tests.helpers import worker_env

AFTER = Path(__file__).resolve().parent / "after"
if str(AFTER) not in sys.path:
    sys.path.insert(0, str(AFTER))


@pytest.fixture(autouse=True)
def shop_settings(settings):
    """The project's DJQ_* settings (routes, acks_late, time limits …) for calls made here."""
    project = importlib.import_module("proj.settings")
    for name in dir(project):
        if name.startswith("DJQ_"):
            setattr(settings, name, getattr(project, name))
    return project


@pytest.fixture
def shop_worker(process_pool):
    """``python after/manage.py djq_worker -Q default,email -B`` against the test database."""
    argv = [sys.executable, str(AFTER / "manage.py"), "djq_worker", "-n", "shop@%h", "-l", "info",
            "-Q", "default,email", "-c", "2", "-B", "--poll-interval", "0.1"]  # fmt: skip
    env = worker_env({"DJANGO_SETTINGS_MODULE": "proj.settings"})
    return process_pool.start(argv, name="shop", env=env, ready_pattern=r"\bready\b", cwd=AFTER)
