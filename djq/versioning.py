"""Task versions: ``@task(version=2, upgrade={1: fn})`` upgrades old jobs' arguments, like a
migration.

A job stores the version of its task at enqueue (``options["version"]``; absent means 1, the
version of every task that never declared one). Before a job runs, and in
``manage.py djq_check_pending``, its ``(args, kwargs)`` go through ``upgrade[v]``,
``upgrade[v + 1]`` … up to the code's version. An upgrade that is missing or raises, or a job
newer than the code, is an ``UpgradeError``: the job fails with that reason (a worker never
crashes on it, and never runs a job with arguments its code may not understand).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class UpgradeError(Exception):
    """A job's arguments could not be brought to the task's current version."""


def check(name: str, version: Any, upgrade: Any) -> None:
    """``@task(version=, upgrade=)``, checked at decoration (a bad value fails at import)."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{name}: version must be an integer >= 1, got {version!r}")
    if not isinstance(upgrade, Mapping):
        raise TypeError(f"{name}: upgrade must be a dict {{version: function}}, got {upgrade!r}")
    for step, fun in upgrade.items():
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step < version:
            raise ValueError(
                f"{name}: upgrade key {step!r} must be a version from 1 to {version - 1} "
                f"(upgrade[n] turns version n's arguments into version n + 1's)"
            )
        if not callable(fun):
            raise TypeError(f"{name}: upgrade[{step}] must be a function, got {fun!r}")


def job_version(value: Any) -> int:
    """The version a job was enqueued with (``options["version"]``; absent: 1)."""
    return 1 if value is None else value


def upgrade_arguments(task: Any, stored: Any, args: list, kwargs: dict) -> tuple[list, dict]:
    """``(args, kwargs)`` of a job of version ``stored`` brought to ``task.version``."""
    current = getattr(task, "version", 1)
    version = job_version(stored)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UpgradeError(f"{task.name}: the job's version {version!r} is not a version")
    if version > current:
        raise UpgradeError(
            f"{task.name}: the job was enqueued by version {version} of the task, newer than "
            f"this code's version {current}: it is not run with arguments this code may not "
            "understand (deploy the newer code on every worker of its queue)"
        )
    steps: Mapping[int, Callable] = getattr(task, "upgrade", None) or {}
    for step in range(version, current):
        if step not in steps:
            raise UpgradeError(
                f"{task.name}: no upgrade from version {step} to {step + 1} "
                f"(@task(upgrade={{{step}: fn}})) for a job of version {version}"
            )
        args, kwargs = _one_step(task.name, step, steps[step], args, kwargs)
    return args, kwargs


def _one_step(name: str, step: int, fun: Callable, args: list, kwargs: dict):
    try:
        result = fun(list(args), dict(kwargs))
    except Exception as exc:
        raise UpgradeError(
            f"{name}: upgrade from version {step} to {step + 1} raised {type(exc).__name__}: {exc}"
        ) from exc
    if (
        not isinstance(result, tuple | list)
        or len(result) != 2
        or not isinstance(result[0], list | tuple)
        or not isinstance(result[1], dict)
    ):
        raise UpgradeError(
            f"{name}: upgrade from version {step} to {step + 1} must return (args, kwargs), "
            f"a list and a dict; it returned {result!r}"
        )
    return list(result[0]), dict(result[1])
