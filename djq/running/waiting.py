"""Waiting on many file descriptors at once, cheaply, in the worker's loop."""

from __future__ import annotations

import math
import select
from typing import Any


class Waiter:
    """``select.poll`` over the loop's waitables, rebuilt only when the set of fds changes
    (``multiprocessing.connection.wait`` builds a new selector on every call)."""

    def __init__(self) -> None:
        self.key: tuple[int, ...] = ()
        self.poller = select.poll()

    def wait(self, objects: list[Any], timeout: float) -> list[Any]:
        by_fd = {obj.fileno(): obj for obj in objects}
        key = tuple(sorted(by_fd))
        if key != self.key:
            self.poller = select.poll()
            for fd in key:
                self.poller.register(fd, select.POLLIN)
            self.key = key
        try:
            events = self.poller.poll(math.ceil(max(timeout, 0.0) * 1000))
        except InterruptedError:
            return []
        return [by_fd[fd] for fd, _ in events if fd in by_fd]
