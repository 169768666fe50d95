"""The test project's settings plus DJQ_* settings given as JSON in DJQ_TEST_SETTINGS, for
``manage.py`` subprocesses started by tests/system/test_celery_cli.py
(DJANGO_SETTINGS_MODULE=tests.cli_settings)."""

import json
import os

from testproject.settings import *  # noqa: F403

globals().update(json.loads(os.environ.get("DJQ_TEST_SETTINGS", "{}")))
