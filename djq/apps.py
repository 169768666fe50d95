"""The app config: registers the work-flow continuation and batches as the store's completion
hooks and imports every installed app's ``tasks`` module so that tasks register."""

from importlib import import_module

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules

from djq.conf import settings


class DjqConfig(AppConfig):
    name = "djq"
    verbose_name = "djq task queue"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Hook continuations into the store, then import ``tasks`` modules and ``DJQ_IMPORTS``.

        These imports must wait for ``ready()``: they import ``djq.models``, which Django only
        allows once the app registry is loaded.
        """
        # import here: models must be loaded first (see the docstring)
        from djq import batches, beat, builtins, checks, continuation, housekeeping, store  # noqa: F401
        from djq.contrib import django_tasks  # noqa: F401

        store.add_completion_hook(continuation.after_complete)
        store.add_completion_hook(batches.after_complete)
        autodiscover_modules("tasks")
        for module in settings.IMPORTS:
            import_module(module)
