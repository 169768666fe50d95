"""A test app written against Django's own Tasks framework only (``from django.tasks import task``).

Nothing in it imports djq: ``TASKS`` in the settings points Django at ``djq.backends.DjqBackend``,
so these tasks run on ``manage.py djq_worker`` (tests/test_django_tasks*.py). Installed only on
Django >= 6.0 (the first with ``django.tasks``).
"""
