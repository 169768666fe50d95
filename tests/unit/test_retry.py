"""djq.retry: the backoff policy as a pure function, checked with a table."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from djq.running.retry import autoretry_countdown, backoff_delay
from testproject.demo.tasks import divide

# retries, factor, maximum, expected delay without jitter
TABLE = [
    (0, 1, 600, 1),
    (1, 1, 600, 2),
    (2, 1, 600, 4),
    (5, 1, 600, 32),
    (9, 1, 600, 512),
    (10, 1, 600, 600),  # 1024 capped
    (20, 1, 600, 600),
    (0, 3, 600, 3),
    (3, 3, 600, 24),
    (4, 0.5, 600, 8),
    (3, 2, 10, 10),
    (3, 2, None, 16),  # no cap
    (30, 1, None, 2**30),
    (2, 0, 600, 0),
]


@pytest.mark.parametrize(("retries", "factor", "maximum", "expected"), TABLE)
def test_backoff_without_jitter(retries, factor, maximum, expected):
    assert backoff_delay(retries, factor, maximum, jitter=False) == expected


@pytest.mark.parametrize(("retries", "factor", "maximum", "expected"), TABLE)
@pytest.mark.parametrize("seed", [0, 1, 42])
def test_backoff_with_jitter_is_uniform_up_to_the_delay(retries, factor, maximum, expected, seed):
    got = backoff_delay(retries, factor, maximum, jitter=True, rand=random.Random(seed))
    assert got == pytest.approx(random.Random(seed).uniform(0, expected))
    assert 0 <= got <= expected


def test_jitter_spreads_delays_and_never_exceeds_the_cap():
    rand = random.Random(7)
    delays = [backoff_delay(10, 1, 600, jitter=True, rand=rand) for _ in range(500)]
    assert all(0 <= d <= 600 for d in delays)
    assert min(delays) < 100 and max(delays) > 500  # spread over the whole range
    assert len(set(delays)) > 400


def test_backoff_returns_a_float():
    assert isinstance(backoff_delay(1, 1, 600, jitter=False), float)


def _policy(backoff, maximum=600, jitter=False):
    return SimpleNamespace(retry_backoff=backoff, retry_backoff_max=maximum, retry_jitter=jitter)


@pytest.mark.parametrize(
    ("backoff", "maximum", "retries", "expected"),
    [
        (False, 600, 3, None),  # no backoff: the task's default_retry_delay applies
        (0, 600, 3, None),
        (True, 600, 0, 1),  # True means factor 1
        (True, 600, 4, 16),
        (5, 600, 2, 20),
        (5, 30, 4, 30),
        (0.05, 600, 1, 0.1),
    ],
)
def test_autoretry_countdown(backoff, maximum, retries, expected):
    got = autoretry_countdown(_policy(backoff, maximum), retries)
    assert got == (None if expected is None else pytest.approx(expected))


def test_autoretry_countdown_with_jitter_uses_the_given_random():
    got = autoretry_countdown(_policy(True, 600, jitter=True), 3, rand=random.Random(3))
    assert got == pytest.approx(random.Random(3).uniform(0, 8))


def test_autoretry_countdown_of_a_real_task():
    # divide: retry_backoff=0.05, retry_jitter=False
    assert [autoretry_countdown(divide, n) for n in range(4)] == pytest.approx(
        [0.05, 0.1, 0.2, 0.4]
    )
