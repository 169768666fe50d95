"""What the shop's views call."""

from djq import chain, group

from .tasks import add, charge, send_receipt, total


def place_order(order_id, amount):
    """Charge, then send the receipt (on the email queue: see the routes in settings)."""
    return chain(charge.s(order_id, amount), send_receipt.s()).apply_async()


def add_later(x, y):
    return add.delay(x, y)


def sum_of_sums(pairs):
    """Add each pair in parallel, then total the sums (a chord)."""
    return (group(add.s(x, y) for x, y in pairs) | total.s()).apply_async()
