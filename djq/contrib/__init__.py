"""Integrations: Celery compatibility and Django's Tasks framework."""
