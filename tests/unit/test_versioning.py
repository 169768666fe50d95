"""djq.versioning: a job's arguments brought to its task's version, step by step (issue 15, 9)."""

from __future__ import annotations

import pytest

from djq import task
from djq.versioning import UpgradeError, check, upgrade_arguments
from testproject.demo.versioned_tasks import greet


@pytest.mark.parametrize(
    ("version", "args", "kwargs", "expected"),
    [
        (None, ["Ada Lovelace"], {}, (["Ada", "Lovelace"], {"greeting": "hello"})),  # absent: 1
        (1, ["Ada Lovelace"], {}, (["Ada", "Lovelace"], {"greeting": "hello"})),
        (2, ["Ada", "Lovelace"], {"greeting": "hey"}, (["Ada", "Lovelace"], {"greeting": "hey"})),
        (3, ["Ada", "L"], {"greeting": "yo"}, (["Ada", "L"], {"greeting": "yo"})),  # current
    ],
)
def test_the_chain_of_upgrades(version, args, kwargs, expected):
    assert upgrade_arguments(greet, version, args, kwargs) == expected


@pytest.mark.parametrize(
    ("version", "args", "kwargs", "message"),
    [
        (4, ["a", "b"], {}, r"enqueued by version 4 of the task, newer than this code's version 3"),
        (2, ["a", "b"], {"shout": True}, r"upgrade from version 2 to 3 raised ValueError"),
        (1, [42], {}, r"upgrade from version 1 to 2 raised AttributeError"),
        (0, [], {}, r"the job's version 0 is not a version"),
        ("2", [], {}, r"the job's version '2' is not a version"),
    ],
)
def test_upgrades_that_cannot_be_made_name_the_task_and_the_step(version, args, kwargs, message):
    with pytest.raises(UpgradeError, match=message) as caught:
        upgrade_arguments(greet, version, args, kwargs)
    assert "testproject.demo.versioned_tasks.greet" in str(caught.value)


def test_a_missing_step_and_a_bad_return_are_clear():
    @task(name="tests.versioning.gappy", version=3, upgrade={2: lambda a, k: (a, k)})
    def gappy(x):
        return x

    with pytest.raises(UpgradeError, match=r"no upgrade from version 1 to 2"):
        upgrade_arguments(gappy, 1, [1], {})
    assert upgrade_arguments(gappy, 2, [1], {}) == ([1], {})

    @task(name="tests.versioning.sloppy", version=2, upgrade={1: lambda a, k: a})
    def sloppy(x):
        return x

    with pytest.raises(UpgradeError, match=r"must return \(args, kwargs\).*returned \[1\]"):
        upgrade_arguments(sloppy, 1, [1], {})


@pytest.mark.parametrize(
    ("version", "upgrade", "message"),
    [
        (0, {}, r"version must be an integer >= 1, got 0"),
        (True, {}, r"version must be an integer >= 1, got True"),
        (2, {2: print}, r"upgrade key 2 must be a version from 1 to 1"),
        (2, {1: "nope"}, r"upgrade\[1\] must be a function"),
        (2, [print], r"upgrade must be a dict"),
    ],
)
def test_bad_options_fail_at_decoration(version, upgrade, message):
    with pytest.raises((TypeError, ValueError), match=message):
        check("t", version, upgrade)
    with pytest.raises((TypeError, ValueError), match=message):
        task(name="tests.versioning.bad", version=version, upgrade=upgrade)(lambda: None)
