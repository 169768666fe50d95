"""``manage.py djq_demo_stream``: a steady stream of demo jobs to watch in the admin."""

from __future__ import annotations

import itertools
import random
import signal
import threading

from django.core.management.base import BaseCommand

from djq import chord, group
from testproject.demo.tasks import (
    add,
    chatty,
    demo_long,
    demo_report,
    demo_work,
    mul,
    retry_twice,
    xsum,
)

#: a summary line every this many rounds (not one per round)
REPORT_EVERY = 30


class Command(BaseCommand):
    help = "Enqueue a mix of demo jobs every --interval seconds until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0)
        parser.add_argument("--count", type=int, help="stop after this many rounds")

    def handle(self, *args, **options):
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        self.total = 0
        rounds = itertools.count(1) if options["count"] is None else range(1, options["count"] + 1)
        for n in rounds:
            self.enqueue_round(n)
            if stop.wait(options["interval"]):
                break
        self.stdout.write("demo stream stopped")

    def enqueue_round(self, n: int) -> None:
        jobs = [demo_work.delay(n), add.delay(n, n)]
        if n % 3 == 0:
            jobs.append(add.apply_async((n, 1), countdown=5, priority=5))
        if n % 4 == 1:
            jobs.append(demo_report.delay(random.choice(["daily", "weekly", "sales"])))
        if n % 5 == 0:
            jobs.append(retry_twice.delay())
            jobs.append((add.s(n, 1) | mul.s(2)).delay())
        if n % 6 == 2:
            jobs.append(group(add.s(n, i) for i in range(4)).delay())
        if n % 7 == 0:
            jobs.append(xsum.delay([random.randint(0, 9) for _ in range(5)]))
        if n % 8 == 3:
            jobs.append(chord([mul.s(n, i) for i in range(5)], xsum.s()).delay())
        if n % 60 == 1:
            jobs.append(demo_long.delay(90))
        if n % 9 == 4:  # logs per attempt on its page
            jobs.append(chatty.delay(lines=3, retries=1))
        self.total += len(jobs)
        if n == 1 or n % REPORT_EVERY == 0:
            self.stdout.write(f"round {n}: {self.total} work-flows and jobs enqueued so far")
