from django.apps import AppConfig


class DjTasksConfig(AppConfig):
    name = "testproject.djtasks"
    label = "djtasks"
    verbose_name = "Django Tasks on djq (tests)"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - receivers of Django's task signals
