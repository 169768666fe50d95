"""djq.remote: the control table's sending side (broadcast) and a worker's mailbox (handlers,
replies, destinations), without a worker process (the worker is a stand-in object)."""

from __future__ import annotations

import pytest

from djq import store
from djq.models import ControlMessage, ControlReply
from djq.roles import remote
from djq.store import rows as store_rows

pytestmark = pytest.mark.django_db


class _Worker:
    def __init__(self, name: str):
        self.name = name


def test_a_mailbox_runs_commands_meant_for_it_and_replies():
    mailbox = remote.Mailbox(_Worker("a@h"), store.alias())
    remote.broadcast("ping", reply=False)  # (no reply wanted: none is written)
    asked = store_rows.add_control_message("ping", {}, None, True, 60)
    other = store_rows.add_control_message("ping", {}, ["b@h"], True, 60)
    assert mailbox.poll() == 3
    assert list(ControlReply.objects.values_list("message_id", "worker", "reply")) == [
        (asked.id, "a@h", {"ok": "pong"})
    ]
    assert not ControlReply.objects.filter(message=other).exists()
    assert mailbox.poll() == 0  # each message is read once


def test_an_unknown_command_and_a_failing_handler_answer_with_an_error():
    mailbox = remote.Mailbox(_Worker("a@h"), store.alias())
    assert mailbox.handle("nonsense", {}) == {"error": "unknown command 'nonsense'"}

    @remote.register("djq_test_boom")
    def boom(worker):
        raise RuntimeError("no")

    try:
        assert mailbox.handle("djq_test_boom", {}) == {"error": "RuntimeError: no"}
    finally:
        remote.HANDLERS.pop("djq_test_boom")


def test_broadcast_with_reply_returns_celerys_shape_within_the_timeout():
    assert remote.broadcast("ping", reply=True, timeout=0.05) == []  # no worker answers
    message = ControlMessage.objects.get()
    assert message.command == "ping" and message.reply and message.expires_at > message.created_at
