"""``manage.py djq_check_celery SETTINGS``: what each Celery setting of a module becomes in djq."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from djq.cli.check_celery import CheckCeleryConfig, check_celery


class Command(BaseCommand):
    help = (
        "Read the CELERY_* (or celeryconfig-style) settings of a module, without importing it, "
        "and report the djq setting, option or reason each one maps to."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("module", help="dotted module name (proj.settings) or a .py path")

    def handle(self, *args, **options):
        config = CheckCeleryConfig(module=options["module"])
        check_celery(config, lambda text: self.stdout.write(text, ending=""))
