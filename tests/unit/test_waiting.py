"""djq.waiting: the worker loop's poll over many file descriptors (no database)."""

from __future__ import annotations

import socket

from djq.running.waiting import Waiter


def test_wait_returns_the_readable_objects_and_rebuilds_only_on_a_new_set():
    a, a_w = socket.socketpair()
    b, b_w = socket.socketpair()
    waiter = Waiter()
    assert waiter.wait([a, b], 0.01) == []  # nothing to read: the timeout
    poller = waiter.poller
    b_w.send(b"x")
    assert waiter.wait([a, b], 1.0) == [b]
    assert waiter.poller is poller  # same fds: the poller is kept
    a_w.send(b"x")
    assert sorted(waiter.wait([b, a], 1.0), key=id) == sorted([a, b], key=id)
    assert waiter.wait([a], 1.0) == [a] and waiter.poller is not poller
    for s in (a, a_w, b, b_w):
        s.close()
