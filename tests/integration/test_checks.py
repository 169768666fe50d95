"""System checks (``manage.py check``) for djq's settings."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test.utils import override_settings

from djq.checks import check_database, check_eager, check_routes


def ids(errors) -> list[str]:
    return [e.id for e in errors]


# (check_database reads this pass's vendor: both passes)
@pytest.mark.every_db
def test_the_project_settings_pass():
    assert check_database(None) == []
    assert check_routes(None) == []
    assert check_eager(None) == []


@override_settings(DJQ_DATABASE="nope")
def test_djq_database_must_name_a_database():
    errors = check_database(None)
    assert ids(errors) == ["djq.E001"]
    assert "'nope'" in errors[0].msg and errors[0].level == checks.ERROR


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        ({"app.*": {"queue": "q"}, "app.add": {"priority": 1}}, []),
        ([{"app.*": {"queue": "q", "priority": 2}}, lambda name: None], []),
        ("not a dict", ["djq.E003"]),
        ([{"a": {"queue": "q"}}, 5], ["djq.E003"]),
        ({"app.*": "q"}, []),  # Celery's short form: a queue name
        ({"app.*": ""}, ["djq.E004"]),
        ({"app.*": {"queue": "q", "colour": "red"}}, ["djq.E004"]),
        ({"a": {"queues": "q"}, "b": None}, ["djq.E004", "djq.E004"]),
    ],
    ids=[
        "ok",
        "ok-list",
        "string",
        "list-with-int",
        "target-queue-name",
        "target-empty",
        "extra-key",
        "two-bad",
    ],
)
def test_task_routes_shape(routes, expected):
    with override_settings(DJQ_TASK_ROUTES=routes):
        errors = check_routes(None)
    assert ids(errors) == expected
    assert all(e.level == checks.ERROR for e in errors)


@pytest.mark.parametrize(
    "routes",
    [
        {"app.*": {"queue": ""}},
        {"app.*": {"queue": 5}},
        {"app.*": {"priority": 1000}},
        {"app.*": {"priority": "high"}},
    ],
    ids=["empty-queue", "int-queue", "priority-range", "priority-str"],
)
def test_task_routes_values(routes):
    # A route that would make every enqueue of its tasks fail is caught by the check.
    with override_settings(DJQ_TASK_ROUTES=routes):
        assert ids(check_routes(None)) == ["djq.E004"]


@override_settings(DJQ_TASK_ALWAYS_EAGER=True)
def test_always_eager_warns():
    assert ids(check_eager(None)) == ["djq.W001"]


@pytest.mark.django_db
def test_checks_are_registered_with_django():
    with override_settings(DJQ_DATABASE="nope", DJQ_TASK_ROUTES="bad"):
        found = ids(checks.run_checks())
    assert "djq.E001" in found and "djq.E003" in found


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({"DJQ_TASK_LOG_LEVEL": "debug", "DJQ_TASK_LOG_MAX_BYTES": 0}, []),
        ({"DJQ_TASK_LOG_LEVEL": None, "DJQ_TASK_LOG_PRINT": True}, []),
        ({"DJQ_TASK_LOG_LEVEL": "LOUD"}, ["djq.E040"]),
        ({"DJQ_TASK_LOG_MAX_BYTES": "64k"}, ["djq.E041"]),
        ({"DJQ_TASK_LOG_MAX_BYTES": -1}, ["djq.E041"]),
        ({"DJQ_TASK_LOG_PRINT": "yes"}, ["djq.E042"]),
    ],
)
def test_task_log_settings(overrides, expected):
    from djq.checks import check_task_logs

    with override_settings(**overrides):
        errors = check_task_logs(None)
    assert ids(errors) == expected
    if expected == ["djq.E040"]:
        assert "DJQ_TASK_LOG_LEVEL" in errors[0].msg and "'LOUD'" in errors[0].msg
