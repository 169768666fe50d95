"""An enqueuer that keeps calling ``apply_async`` through database crashes.

    python -m chaos.enqueuer LOG RATE

One line per call in LOG: ``ok <id>`` when ``apply_async`` returned, ``err <id> <kind> <error>``
when it raised (the id is chosen before the call, so the campaign can check what was written).
``kind`` is ``refused`` when the server could not be reached (nothing can have been written) and
``in-flight`` when the connection broke during the call: the crash may have come after the
commit and before its answer, so the job may exist (no client can know). Runs until SIGTERM;
half of the jobs are ``acks_late``.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import uuid

import django

running = True
#: libpq's messages for a server that is not there (yet): the call never reached it
UNREACHABLE = re.compile(
    r"Connection refused|the database system is (starting up|not yet accepting|shutting down|"
    r"in recovery)|No such file or directory"
)


def _stop(signum, frame) -> None:
    global running
    running = False


def main(log_path: str, rate: float) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    django.setup()
    # (after django.setup(): the task module needs the app registry)
    from django.db import connections

    from testproject.demo.tasks import chaos_run

    signal.signal(signal.SIGTERM, _stop)
    with open(log_path, "a", buffering=1) as log:
        n = 0
        while running:
            job_id = str(uuid.uuid4())
            try:
                chaos_run.apply_async((0,), task_id=job_id, acks_late=n % 2 == 1)
                log.write(f"ok {job_id}\n")
            except Exception as exc:
                kind = "refused" if UNREACHABLE.search(str(exc)) else "in-flight"
                log.write(f"err {job_id} {kind} {type(exc).__name__}\n")
                connections.close_all()
            n += 1
            time.sleep(1 / rate)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
