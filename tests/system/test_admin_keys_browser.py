"""The concurrency key in the admin, in Chromium (issue 15): shown on the job's page (a link to
its jobs), a list filter of the keys present, and ``key:V`` in the search box."""

from __future__ import annotations

import pytest
from django.urls import reverse

from djq import enqueue_many
from djq.adminsite.support import KEY_CHOICES, distinct_keys
from testproject.demo.tasks import add, tenant_record

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "pw-for-tests"


@pytest.fixture
def page(admin_browser, django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    page = admin_browser.login("admin", PASSWORD)
    page.base = admin_browser.url
    return page


def _listed(page) -> list[str]:
    return page.eval_on_selector_all("input[name=_selected_action]", "cs => cs.map(c => c.value)")


@pytest.mark.timeout(300)  # (six page loads: over 120 s on the loaded test machine once)
def test_the_concurrency_key_on_the_job_page_the_filter_and_the_search(page, tmp_path):
    path = str(tmp_path / "never-run.txt")
    acme = enqueue_many(tenant_record.s("acme", path) for _ in range(3))
    other = enqueue_many(tenant_record.s("globex", path) for _ in range(2))
    add.delay(1, 2)  # no key: not in the filter's choices
    changelist = page.base + reverse("admin:djq_job_changelist")

    page.goto(page.base + reverse("admin:djq_job_change", args=[acme[0].id]))
    link = page.locator("#djq-concurrency-key")
    assert link.inner_text() == "acme"
    link.click()
    page.wait_for_selector("#result_list")
    assert sorted(_listed(page)) == sorted(r.id for r in acme)

    page.goto(changelist)
    choices = page.locator("#changelist-filter a[href*='concurrency_key=']")
    assert sorted(choices.all_inner_texts()) == ["acme", "globex"]
    page.click("#changelist-filter a[href*='concurrency_key=globex']")
    page.wait_for_selector("#result_list")
    assert sorted(_listed(page)) == sorted(r.id for r in other)

    page.goto(changelist)
    page.fill("#searchbar", "key:acme")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    assert sorted(_listed(page)) == sorted(r.id for r in acme)

    page.goto(page.base + reverse("admin:djq_job_change", args=[add.delay(3, 4).id]))
    assert page.locator("#djq-concurrency-key").count() == 0  # a job without a key


def test_the_key_filter_offers_a_bounded_number_of_keys(tmp_path):
    """A loose index scan stopped after KEY_CHOICES keys, whatever the number of keys."""
    path = str(tmp_path / "never-run.txt")
    enqueue_many(tenant_record.s(f"t{i:03}", path) for i in range(KEY_CHOICES + 10))
    keys = distinct_keys(KEY_CHOICES)
    assert keys == {f"t{i:03}" for i in range(KEY_CHOICES)}
