"""``manage.py check`` (a subprocess) finds a bad ``DJQ_FAIR_KEYS`` and a ``concurrency_key``
that names no argument of its task, naming the setting or task and the value (issue 15)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_manage

pytestmark = pytest.mark.django_db(transaction=True)


def _check(**djq_settings):
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.cli_settings",
        "DJQ_TEST_SETTINGS": json.dumps(djq_settings),
    }
    proc = run_manage("check", env_extra=env, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "value, named",
    [
        ("yes", "DJQ_FAIR_KEYS='yes'"),
        ({"gold": 0}, "'gold': 0 is not a weight"),
        ({"gold": -2}, "'gold': -2 is not a weight"),
        ({"gold": "3"}, "'gold': '3' is not a weight"),
        ({"gold": True}, "'gold': True is not a weight"),
        (["gold"], "DJQ_FAIR_KEYS=['gold']"),
    ],
)
def test_a_bad_fair_keys_setting_fails_check(value, named):
    code, out = _check(DJQ_FAIR_KEYS=value)
    assert code != 0 and "djq.E050" in out and named in out, out


@pytest.mark.parametrize("value", [True, False, {}, {"gold": 3, "trial": 0.5}])
def test_good_fair_keys_settings_pass_check(value):
    code, out = _check(DJQ_FAIR_KEYS=value)
    assert code == 0 and "djq.E050" not in out, out


def test_a_concurrency_key_naming_no_argument_fails_check():
    code, out = _check(DJQ_IMPORTS=["tests.bad_key_tasks"])
    assert code != 0, out
    assert "djq.E051" in out
    assert "task bad_keys.no_such_argument: concurrency_key='tenant_id' is not an argument" in out
    assert "task bad_keys.star_args: concurrency_key='tenants' names *tenants" in out
    assert "bad_keys.by_keyword" not in out  # (a keyword argument may carry it)
    assert out.count("djq.E051") == 2, out
