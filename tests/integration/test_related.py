"""``apply_async(related=...)`` (issue 14): the objects a job is about, stored as
"app_label.model:pk" keys; bad values are refused at the call, naming the task, the option and
the value; the job list's ``related:`` search finds the jobs. (In the admin, with Retry and
Revoke: tests/system/test_admin_related_browser.py.)"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from djq.models import Job
from testproject.demo.tasks import echo

pytestmark = pytest.mark.django_db


def test_related_objects_and_keys_are_stored_as_keys():
    user = get_user_model().objects.create_user("bob")
    result = echo.apply_async((1,), related=[user, f"auth.user:{user.pk}", "shop.order:7"])
    assert Job.objects.get(id=result.id).options["related"] == [
        f"auth.user:{user.pk}",
        "shop.order:7",
    ]


@pytest.mark.parametrize(
    ("value", "error", "text"),
    [
        (42, TypeError, "related= takes model instances or 'app_label.model:pk' strings, got 42"),
        ("order-7", TypeError, "got 'order-7'"),
        (["shop.order:7", None], TypeError, "got None"),
        (["shop.order:%d" % i for i in range(101)], ValueError, "names 101 objects"),
    ],
)
def test_bad_related_values_are_refused_at_the_call(value, error, text):
    with pytest.raises(error, match=text):
        echo.apply_async((1,), related=value)
    assert not Job.objects.exists()


def test_an_unsaved_object_is_refused():
    with pytest.raises(ValueError, match=r"testproject.demo.tasks.echo: related= takes saved"):
        echo.apply_async((1,), related=get_user_model()(username="nobody"))


def test_the_job_list_searches_related(admin_client):
    mine = echo.apply_async((1,), related="shop.order:7")
    echo.apply_async((2,), related="shop.order:8")
    echo.delay(7)
    page = admin_client.get(reverse("admin:djq_job_changelist"), {"q": "related:shop.order:7"})
    ids = [str(j.pk) for j in page.context["cl"].result_list]
    assert ids == [mine.id]
