"""``manage.py djq_demo_stream``: a steady stream of demo jobs to watch in the admin."""

from __future__ import annotations

import itertools
import random
import signal
import threading

from django.core.management.base import BaseCommand

from testproject.demo.tasks import add, demo_work, mul, retry_twice, xsum


class Command(BaseCommand):
    help = "Enqueue a mix of demo jobs every --interval seconds until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0)
        parser.add_argument("--count", type=int, help="stop after this many rounds")

    def handle(self, *args, **options):
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
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
        if n % 5 == 0:
            jobs.append(retry_twice.delay())
            jobs.append((add.s(n, 1) | mul.s(2)).delay())
        if n % 7 == 0:
            jobs.append(xsum.delay([random.randint(0, 9) for _ in range(5)]))
        self.stdout.write(f"round {n}: enqueued {len(jobs)} jobs")
