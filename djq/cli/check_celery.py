"""``manage.py djq_check_celery SETTINGS``: what each Celery setting of a module becomes in djq."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.management.base import CommandError

from djq.contrib.celery_compat import check_settings, report


@dataclass(frozen=True)
class CheckCeleryConfig:
    module: str  # dotted module name (proj.settings) or a .py path


def check_celery(config: CheckCeleryConfig, write: Callable[[str], object]) -> None:
    """Write the report (``write`` takes the whole text: it ends with its own newline)."""
    try:
        findings = check_settings(config.module)
    except (FileNotFoundError, SyntaxError) as exc:
        raise CommandError(str(exc)) from None
    write(report(config.module, findings))
