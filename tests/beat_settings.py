"""The test project's settings plus a DJQ_BEAT_SCHEDULE read from the environment, for beat
processes started by tests/system/test_beat_processes.py
(DJANGO_SETTINGS_MODULE=tests.beat_settings)."""

import json
import os

from testproject.settings import *  # noqa: F403

DJQ_BEAT_SCHEDULE = json.loads(os.environ.get("DJQ_TEST_BEAT_SCHEDULE", "{}"))
