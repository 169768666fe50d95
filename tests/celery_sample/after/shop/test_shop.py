"""The shop's own tests, run on djq with a real worker (tests/celery_sample/conftest.py)."""

import pytest

from djq import AsyncResult, states
from djq.models import Job, PeriodicTask
from shop.services import add_later, place_order, sum_of_sums
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_add_later(shop_worker):
    assert add_later(2, 3).get(timeout=20) == 5


def test_place_order_charges_then_sends_the_receipt_on_the_email_queue(shop_worker):
    receipt = place_order(7, 100)
    assert receipt.get(timeout=30) == "receipt for order 7: 100"
    charge = receipt.parent
    assert charge.get(timeout=5) == {"order": 7, "charged": 100, "attempts": 2}  # one retry
    assert Job.objects.get(id=charge.id).queue == "default"
    assert Job.objects.get(id=receipt.id).queue == "email"  # DJQ_TASK_ROUTES
    assert Job.objects.get(id=charge.id).acks_late is True  # DJQ_TASK_ACKS_LATE


def test_sum_of_sums(shop_worker):
    assert sum_of_sums([(1, 2), (3, 4), (5, 6)]).get(timeout=30) == 21


def test_beat_schedule(shop_worker):
    def synced():
        rows = {pt.name: pt for pt in PeriodicTask.objects.all()}
        return rows if {"nightly-report", "heartbeat"} <= set(rows) else None

    rows = wait_for(synced, timeout=20, message="beat to sync DJQ_BEAT_SCHEDULE")
    assert rows["nightly-report"].task == "shop.tasks.daily_report"
    assert rows["nightly-report"].crontab == "0 3 * * *"
    assert rows["heartbeat"].interval_every == 1 and rows["heartbeat"].interval_period == "seconds"
    beat = wait_for(lambda: Job.objects.filter(name="shop.tasks.heartbeat").first(), timeout=20)
    assert AsyncResult(beat.id).get(timeout=20) == "ok"
    assert AsyncResult(beat.id).state == states.SUCCESS
