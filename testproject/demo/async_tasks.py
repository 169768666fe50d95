"""``async def`` tasks (docs/tasks.md "Async tasks"), for the demo and the test suite.

Imported by testproject/demo/tasks.py, so that a worker discovers them with the other demo tasks.
"""

from __future__ import annotations

import asyncio
import time

from django.contrib.auth.models import Group

from djq import task


@task
async def async_add(x, y):
    await asyncio.sleep(0)
    return x + y


@task(bind=True)
async def async_whoami(self):
    """A bound coroutine task sees its request, as a plain one does."""
    await asyncio.sleep(0)
    return {"id": self.request.id, "hostname": self.request.hostname}


@task
async def async_orm_write(name: str):
    """Django's async ORM inside a task: a row written with ``acreate``, counted with ``acount``."""
    group = await Group.objects.acreate(name=name)
    return {"pk": group.pk, "count": await Group.objects.filter(name=name).acount()}


@task
async def async_sleep(seconds: float, token: str = ""):
    """Sleep on the loop; return when it started and ended (epoch seconds, for overlap)."""
    started = time.time()
    await asyncio.sleep(seconds)
    return {"token": token, "start": started, "end": time.time()}


@task
async def async_soft_limited(seconds: float = 30.0):
    """Sleeps past its soft limit: the coroutine is cancelled and the job ends
    SoftTimeLimitExceeded."""
    await asyncio.sleep(seconds)
    return "finished"


@task
async def async_soft_caught(seconds: float = 30.0):
    """Catches its soft limit (a cancellation inside the coroutine) and says so."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        return "soft limit caught"
    return "finished"


@task
async def async_blocking(seconds: float = 30.0):
    """Blocks its loop (a sync sleep): only the hard limit can stop it in prefork."""
    time.sleep(seconds)
    return "finished"


@task
async def async_fail(message: str = "async boom"):
    await asyncio.sleep(0)
    raise ValueError(message)
