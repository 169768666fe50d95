"""`make run`: the djq demo on SQLite.

1. Creates the superuser `admin` once per demo database, with a random password kept next to
   the database in `<database>-login.txt` (`db.sqlite3-login.txt`): the same login every run,
   a new one when the database is removed (`make clean`).
2. Starts, as child processes (each in its own process group, output prefixed with its name),
   with DJQ_DEMO=1 (the demo's schedules and quieter request logs, see testproject/settings.py):
     web      manage.py runserver 127.0.0.1:$PORT                  (PORT defaults to 8000)
     worker   manage.py djq_worker -Q default -c 2 --beat -l warning
     reports  manage.py djq_worker -Q reports -c 1 -l warning     (a second queue, its own slot)
     stream   manage.py djq_demo_stream                           (chains, groups, chords,
                                                                   long jobs, reports, failures)
   Tracebacks in the children's output are shortened to their last line (the job's page in the
   admin has the whole traceback); DJQ_DEMO_VERBOSE=1 shows them whole.
3. Prints the login last, and again once the first worker's banner has gone by.
4. Ctrl-C / SIGTERM: forwarded once to every child (warm shutdown), then waits for them; a second
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
#: the demo workers' log level: warnings and failures, not a line per job (the admin has those)
LEVEL = os.environ.get("DJQ_DEMO_LOG_LEVEL", "warning")


def setup_django():
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    import django

    django.setup()


def login_file() -> Path:
    """Where the demo database's login is kept: beside the database, removed with it."""
    from django.conf import settings

    return Path(f"{settings.DATABASES['default']['NAME']}-login.txt")


def ensure_admin() -> str:
    """The `admin` superuser with the password kept in `login_file()` (made on first run)."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    path = login_file()
    kept = path.read_text().split("password:", 1)[-1].split()[:1] if path.exists() else []
    password = kept[0] if kept else secrets.token_urlsafe(12)
    User = get_user_model()
    user, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
    user.is_staff = user.is_superuser = user.is_active = True
    if not user.check_password(password):
        user.set_password(password)
    user.save()
    connections.close_all()
    return password


def login_box(url: str, password: str) -> str:
    bar = "=" * 64
    return (
        f"\n{bar}\n  djq demo\n  open:     {url}\n  user:     admin\n"
        f"  password: {password}\n  (kept in {login_file()})\n  stop:     Ctrl-C\n{bar}\n"
    )


def available_commands() -> set[str]:
    from django.core.management import get_commands

    return set(get_commands())


class Output:
    """The children's output, one line at a time: prefixed, tracebacks shortened to their last
    line, and the login shown again after the first worker banner (``after_banner``)."""

    def __init__(self, after_banner: str, verbose: bool):
        self.after_banner = after_banner
        self.verbose = verbose
        self.lock = threading.Lock()
        self.banner_seen = False

    def write(self, label: str, line: str, state: dict) -> None:
        with self.lock:
            for text in self._filter(line, state):
                sys.stdout.write(f"[{label}] {text}")
            if label.startswith("worker") and not self.banner_seen and line.startswith("[tasks]"):
                state["in_tasks"] = True
            elif state.get("in_tasks") and not line.strip():
                state["in_tasks"] = False
                self.banner_seen = True
                sys.stdout.write(self.after_banner)
            sys.stdout.flush()

    def _filter(self, line: str, state: dict) -> list[str]:
        if self.verbose:
            return [line]
        if "Traceback (most recent call last)" in line:
            state["traceback"] = 0
            return []
        if "traceback" in state:
            if line.startswith((" ", "\t")) or not line.strip():
                state["traceback"] += 1
                return []
            hidden = state.pop("traceback")
            return [f"{line.rstrip()}  (traceback of {hidden} lines on the job's admin page)\n"]
        return [line]


class Child:
    def __init__(self, label: str, argv: list[str], *, group_signal: bool, output: Output):
        self.label = label
        self.argv = argv
        self.output = output
        # Send signals to the whole process group (runserver's autoreloader runs the server in a
        # grandchild) or only to the leader (the worker manages its own pool processes).
        self.group_signal = group_signal
        env = dict(os.environ, PYTHONUNBUFFERED="1", DJQ_DEMO="1")
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
        state: dict = {}
        for line in iter(self.proc.stdout.readline, b""):
            self.output.write(self.label, line.decode(errors="replace"), state)
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
        worker = [sys.executable, MANAGE, "djq_worker", "-Q", "default", "-c", "2", "-l", LEVEL]
        if "djq_beat" in commands:
            worker.append("--beat")
        plan.append(("worker", worker, False))
        plan.append(
            (
                "reports",
                [
                    sys.executable,
                    MANAGE,
                    "djq_worker",
                    "-Q",
                    "reports",
                    "-c",
                    "1",
                    "-n",
                    "reports@%h",
                    "-l",
                    LEVEL,
                ],
                False,
            )
        )
    else:
        print("note: no djq_worker command yet; running without a worker", file=sys.stderr)
    if "djq_demo_stream" in commands:
        plan.append(("stream", [sys.executable, MANAGE, "djq_demo_stream"], True))
    else:
        print(
            "note: no djq_demo_stream command yet; skipping the demo task stream", file=sys.stderr
        )

    url = f"http://127.0.0.1:{port}/admin/"
    box = login_box(url, password)
    login_file().write_text(box.strip() + "\n")
    output = Output(box, verbose=os.environ.get("DJQ_DEMO_VERBOSE") == "1")

    stop_requested = {"count": 0}

    def on_signal(signum, frame):
        stop_requested["count"] += 1

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    children = [Child(label, argv, group_signal=grp, output=output) for label, argv, grp in plan]
    with output.lock:
        print(box, flush=True)  # last, after the children's first lines

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
