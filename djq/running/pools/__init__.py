"""The pools behind ``--pool``: prefork (``djq.pool``), threads and solo (``djq.threads``).

One protocol (start, submit, collect, check_limits, waitables, resize, stop); the worker picks the
class here, so ``djq.pool`` and ``djq.threads`` need not know each other's classes.
"""

from __future__ import annotations

from djq.running.pools.prefork import PreforkPool
from djq.running.pools.threads import SoloPool, ThreadPool

#: what the worker holds: one of the pools (the protocol above)
Pool = PreforkPool | ThreadPool

POOLS: dict[str, type[PreforkPool] | type[ThreadPool]] = {
    "prefork": PreforkPool,
    "threads": ThreadPool,
    "solo": SoloPool,
}


def pool_class(name: str) -> type[PreforkPool] | type[ThreadPool]:
    """The pool implementation for ``--pool`` (a name the option parser validated)."""
    return POOLS[name]
