"""``manage.py djq_check_celery SETTINGS``: what each Celery setting of a module becomes in djq."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from djq.contrib.celery_compat import check_settings, report


class Command(BaseCommand):
    help = (
        "Read the CELERY_* (or celeryconfig-style) settings of a module, without importing it, "
        "and report the djq setting, option or reason each one maps to."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("module", help="dotted module name (proj.settings) or a .py path")

    def handle(self, *args, **options):
        try:
            findings = check_settings(options["module"])
        except (FileNotFoundError, SyntaxError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(report(options["module"], findings), ending="")
