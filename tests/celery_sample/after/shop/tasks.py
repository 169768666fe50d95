"""The shop's background jobs."""

from djq import shared_task


@shared_task
def add(x, y):
    return x + y


@shared_task
def total(numbers):
    return sum(numbers)


@shared_task(bind=True, max_retries=3, default_retry_delay=1)
def charge(self, order_id, amount):
    """Charge an order; the payment gateway is flaky: the first attempt always times out."""
    if self.request.retries == 0:
        raise self.retry(exc=TimeoutError("gateway timeout"), countdown=0.1)
    return {"order": order_id, "charged": amount, "attempts": self.request.retries + 1}


@shared_task
def send_receipt(charge):
    return f"receipt for order {charge['order']}: {charge['charged']}"


@shared_task
def daily_report():
    return "report"


@shared_task
def heartbeat():
    return "ok"
