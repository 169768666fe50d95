"""The test project's settings with a TASKS entry for DjqBackend even where Django has no
``django.tasks`` (tests/system/test_django_tasks.py simulates Django 5.2 with it)."""

from testproject.settings import *  # noqa: F403

TASKS = {"default": {"BACKEND": "djq.backends.DjqBackend"}}
