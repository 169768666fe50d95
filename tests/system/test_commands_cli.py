"""Every djq management command, run as a user runs it: ``python manage.py djq_… --help`` and real
invocations as subprocesses (against a live worker where the command talks to workers), checking
exit codes and output.

``COMMANDS`` has one entry per command file in djq/management/commands/; a new command without an
entry fails ``test_every_command_has_a_subprocess_test``. Add a command's calls as one line:
``"djq_new": [Call(("--flag",), r"expected output")],``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from djq import AsyncResult, states
from testproject.demo.tasks import add
from tests.helpers import MANAGE_PY, REPO_ROOT, run_manage, worker_env

ADD = "testproject.demo.tasks.add"
COMMANDS_DIR = REPO_ROOT / "djq" / "management" / "commands"


@dataclass(frozen=True)
class Call:
    """One invocation: ``manage.py <command> *argv``; ``expect`` is a regex searched (multi-line)
    in stdout + stderr. ``{worker}`` (the live worker's name), ``{job}`` (a finished job's id)
    and ``{tmp}`` (a temporary directory) are filled in, in ``argv`` and ``expect``."""

    argv: tuple[str, ...]
    expect: str
    rc: int = 0
    worker: bool = False  # needs a live worker
    service: bool = False  # runs until stopped: wait for ``expect``, SIGTERM, expect exit 0


COMMANDS: dict[str, list[Call]] = {
    "djq_beat": [Call(("-l", "info", "--max-interval", "0.2"), r"beat \S+: ready", service=True)],
    "djq_call": [
        Call((ADD, "--args", "[2, 3]", "--task-id", "cli-call-1"), r"^cli-call-1$"),
        Call((ADD, "--args", "[2]"), r"arguments do not fit", rc=1),
    ],
    "djq_check_celery": [
        Call(("{tmp}/celeryconfig.py",), r"^CELERY_TASK_ACKS_LATE  \(setting\)"),
        Call(("no.such.module",), r"module no\.such\.module not found", rc=1),
    ],
    "djq_check_pending": [
        Call(("-Q", "nothing-here"), r"^0 waiting job\(s\) checked: all fit the code\.$"),
        Call(("-Q", "nothing-here", "--json"), r'"failing": 0'),
        Call(("--limit", "many"), r"argument --limit: invalid", rc=2),
    ],
    "djq_control": [
        Call(("rate_limit", ADD, "10/m", "-t", "2"), r"^-> {worker}: ", worker=True),
        Call(("revoke", "{job}", "x"), r"^x: not revoked", worker=True),
        Call(("pool_grow", "1", "-t", "2", "--json"), r'"{worker}"', worker=True),
        Call(("purge", "-Q", "nothing-here"), r"^0$"),
        Call(("rate_limit", ADD), r"takes 2 argument\(s\), got 1", rc=1),
    ],
    "djq_events": [
        Call(("--dump", "--once", "--last", "5"), r"starting capture"),
        Call(("--json", "--once"), r"^$"),
        Call(("--last", "abc"), r"--last: takes a number of events", rc=2),
    ],
    "djq_inspect": [
        Call(("ping", "-t", "5"), r"^-> {worker}: OK pong", worker=True),
        Call(("clock", "-t", "5"), r"^-> {worker}: clock \d+", worker=True),
        Call(("query_task", "{job}", "-t", "5", "--json"), r'"{worker}"', worker=True),
        Call(("stats", "-d", "nobody@nowhere", "-t", "0.3"), r"No workers replied", rc=1),
    ],
    "djq_purge": [Call(("--older-than", "0"), r"^Removed \d+ finished job\(s\) older than 0s\.$")],
    "djq_result": [
        Call(("{job}",), r"^5$"),
        Call(("{job}", "--json"), r'"state": "SUCCESS"'),
        Call(("never-sent",), r"PENDING \(no job has this id", rc=1),
    ],
    "djq_status": [
        Call((), r"^-> {worker}: OK \(pid \d+", worker=True),
        Call((), r"No workers online", rc=1),
    ],
    "djq_worker": [
        Call(("--burst", "-c", "1", "-n", "cli-burst@%h"), r"cli-burst@\S+ ready\."),
        Call(("--burst", "-c", "0"), r"-c/--concurrency: takes a positive", rc=2),
    ],
}


def _command_files() -> set[str]:
    return {p.stem for p in COMMANDS_DIR.glob("*.py") if not p.stem.startswith("_")}


def test_every_command_has_a_subprocess_test():
    assert _command_files() == set(COMMANDS), (
        "every command in djq/management/commands/ needs an entry in COMMANDS "
        f"(missing: {sorted(_command_files() - set(COMMANDS))}, "
        f"stale: {sorted(set(COMMANDS) - _command_files())})"
    )


# --help reads no database: one pass is enough.
@pytest.mark.sqlite_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help(command):
    proc = run_manage(command, "--help")
    assert proc.stdout.startswith(f"usage: manage.py {command}"), proc.stdout


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_invocations(command, start_worker, start_process, tmp_path):
    calls = COMMANDS[command]
    live = [c for c in calls if c.worker]
    worker = start_worker("-c", "1", "--poll-interval", "0.1") if live else None
    fill = {
        "worker": worker.nodename if worker else "",
        "job": _finished_job(worker),
        "tmp": str(tmp_path),
    }
    (tmp_path / "celeryconfig.py").write_text("CELERY_TASK_ACKS_LATE = True\n")
    for call in live + [c for c in calls if not c.worker]:
        if not call.worker and worker is not None and command == "djq_status":
            worker.terminate()  # "No workers online" once it is gone
            assert worker.wait(30) == 0
            worker = None
        argv = [a.format(**fill) for a in call.argv]
        expect = call.expect.format(**{k: re.escape(v) for k, v in fill.items()})
        if call.service:
            _run_service(start_process, command, argv, expect)
            continue
        proc = run_manage(command, *argv, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode == call.rc, (command, argv, output)
        assert re.search(expect, output, re.M), (command, argv, expect, output)


def _finished_job(worker) -> str:
    """A SUCCESS job's id (add(2, 3)): run by the live worker, or by a burst worker."""
    result = add.delay(2, 3)
    if worker is None:
        run_manage("djq_worker", "--burst", "-c", "1", "-n", "cli-setup@%h")
    assert result.get(timeout=30) == 5
    assert AsyncResult(result.id).state == states.SUCCESS
    return result.id


def _run_service(start_process, command: str, argv: list[str], ready: str) -> None:
    proc = start_process(
        [sys.executable, str(MANAGE_PY), command, *argv],
        name=command,
        env=worker_env(),
        ready_pattern=ready,
    )
    proc.terminate()
    assert proc.wait(30) == 0, proc.log_tail()


def test_command_modules_are_thin():
    """Commands parse options and call djq's functions (DESIGN: one way in)."""
    for path in COMMANDS_DIR.glob("djq_*.py"):
        text = Path(path).read_text()
        assert "cursor" not in text and ".execute(" not in text, path.name
