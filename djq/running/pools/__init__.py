"""The pools behind ``--pool``: prefork, threads and solo, and asyncio (an event loop).

One protocol (start, submit, collect, check_limits, waitables, resize, stop); the worker picks the
class here, so ``djq.pool`` and ``djq.threads`` need not know each other's classes.
"""

from __future__ import annotations

from djq.running.pools.asyncio_pool import AsyncioPool
from djq.running.pools.prefork import PreforkPool
from djq.running.pools.threads import SoloPool, ThreadPool

#: what the worker holds: one of the pools (the protocol above)
Pool = PreforkPool | ThreadPool | AsyncioPool

POOLS: dict[str, type[PreforkPool] | type[ThreadPool] | type[AsyncioPool]] = {
    "prefork": PreforkPool,
    "threads": ThreadPool,
    "solo": SoloPool,
    "asyncio": AsyncioPool,
}


def pool_class(name: str) -> type[PreforkPool] | type[ThreadPool]:
    """The pool implementation for ``--pool`` (a name the option parser validated)."""
    return POOLS[name]
