from django.apps import AppConfig


class DjqConfig(AppConfig):
    name = "djq"
    verbose_name = "djq task queue"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Import every installed app's ``tasks`` module (and ``DJQ_IMPORTS``) so tasks register."""
        from importlib import import_module

        from django.utils.module_loading import autodiscover_modules

        from . import (  # noqa: F401 - djq tasks and checks
            beat,
            builtins,
            checks,
            django_tasks,  # noqa: F401 - djq.django_task and its check
            housekeeping,
        )
        from .conf import settings

        autodiscover_modules("tasks")
        for module in settings.IMPORTS:
            import_module(module)
