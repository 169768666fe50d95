"""``djq.routers.DjqRouter``: djq's tables in ``DJQ_DATABASE``, and nothing else there.

Only needed when ``DJQ_DATABASE`` is not ``"default"`` (a dedicated queue database, see
docs/deployment.md): ``DATABASE_ROUTERS = ["djq.routers.DjqRouter"]``. The admin and any ORM
query on djq's models then read the queue database; ``manage.py migrate --database <alias>``
creates djq's tables there, and plain ``migrate`` leaves them out of ``default``.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

from djq.conf import settings

APP_LABEL = "djq"


class DjqRouter:
    def db_for_read(self, model, **hints):
        return settings.DATABASE if model._meta.app_label == APP_LABEL else None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == APP_LABEL:
            return db == settings.DATABASE
        if db == settings.DATABASE and db != DEFAULT_DB_ALIAS:
            return False  # the queue database holds djq's tables only
        return None
