"""Tasks whose ``concurrency_key`` passes the decorator but fits no call: imported only by
``manage.py check`` subprocesses (DJQ_IMPORTS) in tests/system/test_keys_checks.py."""

from djq import task


@task(name="bad_keys.no_such_argument", concurrency_key="tenant_id")
def no_such_argument(tenant):
    """The key names an argument the task does not have."""


@task(name="bad_keys.star_args", concurrency_key="tenants")
def star_args(*tenants):
    """The key names ``*tenants``: many values, not one."""


@task(name="bad_keys.by_keyword", concurrency_key="tenant")
def by_keyword(**options):
    """Fine: ``tenant`` may come as a keyword argument (resolved at each call)."""
