"""Vendor SQL for the hot path: one module per database, the same functions in each.

``djq.store`` picks the module for a connection with :func:`sql_for` and is the only caller.
"""

from __future__ import annotations

from types import ModuleType

from django.db.backends.base.base import BaseDatabaseWrapper

from djq.store import postgres, sqlite


def sql_for(connection: BaseDatabaseWrapper) -> ModuleType:
    if connection.vendor == "postgresql":
        return postgres
    if connection.vendor == "sqlite":
        return sqlite
    raise NotImplementedError(
        f"djq supports PostgreSQL and SQLite; the database {connection.alias!r} is "
        f"{connection.vendor}"
    )
