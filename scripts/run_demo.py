"""`make run`: the djq demo on SQLite.

1. Creates (or updates) the superuser `admin` with a fresh random password and prints the login.
2. Starts, as child processes (each in its own process group, output prefixed with its name):
     web     manage.py runserver 127.0.0.1:$PORT          (PORT defaults to 8000)
     worker  manage.py djq_worker -l info [--beat]       (--beat if the djq_beat command exists)
     stream  manage.py djq_demo_stream                   (if the demo app provides it)
3. Ctrl-C / SIGTERM: forwarded once to every child (warm shutdown), then waits for them; a second
   Ctrl-C kills them. If any child exits on its own, all others are stopped and we exit non-zero.

Run from the repository root (the Makefile does): `python scripts/run_demo.py`.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MANAGE = str(REPO_ROOT / "manage.py")
STOP_GRACE_SECONDS = 30.0


def setup_django():
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    import django

    django.setup()


def ensure_admin() -> str:
    from django.contrib.auth import get_user_model
    from django.db import connections

    password = secrets.token_urlsafe(12)
    User = get_user_model()
    user, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
    user.is_staff = True
    user.is_superuser = True
    user.is_active = True
    user.set_password(password)
    user.save()
    connections.close_all()
    return password


def available_commands() -> set[str]:
    from django.core.management import get_commands

    return set(get_commands())


class Child:
    def __init__(self, label: str, argv: list[str], *, group_signal: bool):
        self.label = label
        self.argv = argv
        # Send signals to the whole process group (runserver's autoreloader runs the server in a
        # grandchild) or only to the leader (the worker manages its own pool processes).
        self.group_signal = group_signal
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C on the terminal reaches only us; we forward it
        )
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        prefix = f"[{self.label}] ".encode()
        out = sys.stdout.buffer
        for line in iter(self.proc.stdout.readline, b""):
            out.write(prefix + line)
            out.flush()
        self.proc.stdout.close()

    def send(self, sig: int):
        if self.proc.poll() is not None and not self.group_signal:
            return
        try:
            if self.group_signal:
                os.killpg(self.proc.pid, sig)
            else:
                os.kill(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill_group(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def main() -> int:
    setup_django()
    port = os.environ.get("PORT", "8000")
    password = ensure_admin()
    commands = available_commands()

    plan: list[tuple[str, list[str], bool]] = [
        ("web", [sys.executable, MANAGE, "runserver", f"127.0.0.1:{port}"], True),
    ]
    if "djq_worker" in commands:
        worker = [sys.executable, MANAGE, "djq_worker", "-l", "info"]
        if "djq_beat" in commands:
            worker.append("--beat")
        plan.append(("worker", worker, False))
    else:
        print("note: no djq_worker command yet; running without a worker", file=sys.stderr)
    if "djq_demo_stream" in commands:
        plan.append(("stream", [sys.executable, MANAGE, "djq_demo_stream"], True))
    else:
        print(
            "note: no djq_demo_stream command yet; skipping the demo task stream", file=sys.stderr
        )

    url = f"http://127.0.0.1:{port}/admin/"
    bar = "=" * 64
    print(
        f"\n{bar}\n  djq demo\n  open:     {url}\n  user:     admin\n"
        f"  password: {password}\n  stop:     Ctrl-C\n{bar}\n",
        flush=True,
    )

    stop_requested = {"count": 0}

    def on_signal(signum, frame):
        stop_requested["count"] += 1

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    children = [Child(label, argv, group_signal=grp) for label, argv, grp in plan]

    exit_code = 0
    reason = ""
    while True:
        if stop_requested["count"]:
            reason = "stop requested"
            break
        dead = [c for c in children if c.proc.poll() is not None]
        if dead:
            c = dead[0]
            reason = f"{c.label} exited with status {c.proc.returncode}"
            exit_code = c.proc.returncode or 1
            if exit_code < 0:
                exit_code = 128 - exit_code
            break
        time.sleep(0.2)

    print(
        f"\nrun_demo: {reason}; stopping {', '.join(c.label for c in children)}",
        file=sys.stderr,
        flush=True,
    )
    seen = stop_requested["count"]
    for c in children:
        c.send(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while any(c.proc.poll() is None for c in children):
        if stop_requested["count"] > seen or time.monotonic() > deadline:
            print("run_demo: killing the remaining children", file=sys.stderr, flush=True)
            break
        time.sleep(0.1)
    for c in children:
        c.kill_group()  # leftovers: a stuck child or grandchildren of a finished one
        c.proc.wait()
        c.thread.join(timeout=2)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
