"""The retry policy as pure functions, so that it is tested with a table, not with a clock."""

from __future__ import annotations

import random
from typing import Any


def backoff_delay(
    retries: int,
    factor: float = 1,
    maximum: float | None = 600,
    jitter: bool = True,
    rand: random.Random | None = None,
) -> float:
    """Exponential backoff as Celery computes it: ``factor * 2**retries``, capped at ``maximum``;
    with ``jitter``, a uniformly random delay between 0 and that ("full jitter")."""
    delay = factor * (2**retries)
    if maximum is not None:
        delay = min(delay, maximum)
    if jitter:
        delay = (rand or random).uniform(0, delay)
    return max(0.0, float(delay))


def autoretry_countdown(task: Any, retries: int, rand: random.Random | None = None) -> float | None:
    """The countdown an ``autoretry_for`` retry waits; ``None`` means the default retry delay."""
    backoff = task.retry_backoff
    if not backoff:
        return None
    factor = 1 if backoff is True else backoff
    return backoff_delay(retries, factor, task.retry_backoff_max, task.retry_jitter, rand)
