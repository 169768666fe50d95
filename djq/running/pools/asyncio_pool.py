"""The ``asyncio`` pool: one event loop, in a thread of the worker process, running up to ``-c``
jobs at once as asyncio tasks.

For ``async def`` tasks that wait on I/O: ten thousand sockets cost one thread. A coroutine
task is awaited on the loop (``execute.aexecute``); a plain task runs in one of the loop's ``-c``
executor threads, so it never blocks the others. Limits: the soft limit cancels the coroutine
(the job ends ``SoftTimeLimitExceeded``); the hard limit cancels it and records
``TimeLimitExceeded`` at once; ``revoke(terminate=True)`` cancels it (REVOKED). A plain task in a
thread cannot be cancelled: its outcome is recorded as for a coroutine, the thread runs on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from djq.exceptions import TaskRevokedError, TimeLimitExceeded
from djq.records import Claim, Outcome, lost
from djq.running.execute import aexecute
from djq.running.pools.threads import ThreadPool

logger = logging.getLogger("djq.worker")


class AsyncioPool(ThreadPool):
    """Jobs run as asyncio tasks on one loop (the protocol and bookkeeping are ThreadPool's:
    the loop posts outcomes to the same outbox and wakes the worker through the same socket)."""

    name = "asyncio"
    threadsafe_stop = True  # terminate() only schedules a cancellation on the loop

    def __init__(
        self,
        concurrency: int,
        hostname: str,
        depth: int = 1,
        reserve_wait: float = 1.0,
        **ignored: object,
    ) -> None:
        super().__init__(concurrency, hostname, depth, reserve_wait)
        self.loop = asyncio.new_event_loop()
        self.runners: dict[str, asyncio.Future[Outcome]] = {}  # job id → its aexecute, on the loop
        self.terminated: dict[str, str] = {}  # job id → the signal of its revoke(terminate)

    def start(self) -> None:
        executor = ThreadPoolExecutor(self.max_procs, thread_name_prefix="djq-asyncio-sync")
        self.loop.set_default_executor(executor)  # plain tasks: up to -c threads
        thread = threading.Thread(target=self._loop_main, name="djq-asyncio", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _loop_main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, job: Claim, soft: float | None, hard: float | None) -> None:
        with self.lock:
            self.running[job.id] = job
            self.started_at[job.id] = time.monotonic()
        self.began.append(job)
        asyncio.run_coroutine_threadsafe(self._job(job, soft, hard), self.loop)

    async def _job(self, job: Claim, soft: float | None, hard: float | None) -> None:
        """Run one job under its hard limit and post its outcome."""
        runner = asyncio.ensure_future(aexecute(job, self.hostname, soft))
        self.runners[job.id] = runner
        done, _ = await asyncio.wait({runner}, timeout=hard or None)
        self.runners.pop(job.id, None)
        signame = self.terminated.pop(job.id, None)
        if signame is not None:
            outcome = lost(job, TaskRevokedError(f"terminated ({signame})"), state="REVOKED")
        elif not done:
            runner.cancel()
            logger.error("Hard time limit (%ss) exceeded for %s[%s]", hard, job.name, job.id)
            outcome = lost(job, TimeLimitExceeded(hard))
        else:
            try:
                outcome = runner.result()
            except BaseException as exc:  # (a cancellation nobody asked for, a crash)
                outcome = lost(job, exc)
        self.outbox.put(outcome)  # (before the job leaves ``running``, as in the threads pool)
        with self.lock:
            self.running.pop(job.id, None)
            self.started_at.pop(job.id, None)
            idle = not self.running
        if idle:  # the async ORM's thread keeps a connection: closed between jobs, as elsewhere
            await sync_to_async(close_old_connections)()
        self.wake_w.send(b"x")

    def terminate(self, job_id: str, signame: str) -> bool:
        """revoke(terminate=True): cancel the job's coroutine (whatever the signal's name)."""
        with self.lock:
            if job_id not in self.running:
                return False

        def cancel() -> None:
            runner = self.runners.get(job_id)
            if runner is not None and not runner.done():
                self.terminated[job_id] = signame
                runner.cancel()

        self.loop.call_soon_threadsafe(cancel)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop (the worker waited for running jobs, or gave up on them)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        for thread in self.threads:
            thread.join(timeout)
        executor = getattr(self.loop, "_default_executor", None)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def resize(self, max_procs: int, min_procs: int | None = None) -> None:
        logger.warning("The asyncio pool cannot be resized while running")
