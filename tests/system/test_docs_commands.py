"""Every ``manage.py`` command line shown in README.md and docs/*.md runs, as a subprocess, against
the test database with a live worker (issue 10): the lines of ``sh``/``ini`` code blocks, and the
inline ones (a synopsis with placeholders maps to concrete lines in ``SYNOPSES``).

Lines are run as written, with what a test needs: ``djq_worker`` gets ``--burst`` (it would run
for ever), ``djq_events`` gets ``--once`` (and ``--dump`` for the monitor, which
tests/system/test_events.py drives in a terminal), ``djq_beat`` is started until ready and stopped,
paths under /run and /var/log go to a temporary directory, systemd's ``%i``/``%H`` are filled in.
"""

from __future__ import annotations

import itertools
import re
import shlex
import socket
import sys
from pathlib import Path

import pytest

from tests.helpers import MANAGE_PY, REPO_ROOT, run_manage, wait_for, worker_env

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
INLINE = re.compile(r"`([^`\n]*\bmanage\.py [^`\n]*)`")
PLACEHOLDER = re.compile(r"[<>…|\[]|\bID\b|\bTASK\b|\bQUEUE\b")
SHELL_LANGS = {"sh", "bash", "console", "shell", "ini", ""}
_BEATS = itertools.count(1)

#: inline synopses (placeholders) → the concrete command lines that stand for them
SYNOPSES = {
    "manage.py djq_inspect ping|clock|active|… [ids] [-d w1@host,w2@host] [-t 2] [--json]": [
        "manage.py djq_inspect clock -t 2 --json",
        "manage.py djq_inspect reserved -d {worker}",
        "manage.py djq_inspect query_task report-2026-11 -t 2",
    ],
    "manage.py djq_control revoke ID… [--terminate] [--signal SIGKILL]": [
        "manage.py djq_control revoke report-2026-11 never-sent --terminate --signal SIGKILL"
    ],
    "manage.py djq_inspect <method>": ["manage.py djq_inspect stats -t 2"],
    "manage.py djq_control <command>": [
        "manage.py djq_control time_limit testproject.demo.tasks.add 5 10 -t 2"
    ],
    "manage.py djq_control purge [-Q q]": ["manage.py djq_control purge -Q q"],
    "manage.py djq_result ID [--traceback] [--timeout S] [--json]": [
        "manage.py djq_result report-2026-11 --timeout 30 --json"
    ],
    "manage.py djq_call NAME --args '[…]' --kwargs '{…}' [--queue Q --countdown S --eta ISO "
    "--expires S\\|ISO --priority N --task-id ID]": [
        "manage.py djq_call testproject.demo.tasks.echo --args '[1]' --kwargs '{\"a\": 2}' "
        "--queue q --countdown 5 --expires 60 --priority 3 --task-id call-synopsis"
    ],
}


def documented_lines() -> list[tuple[str, str]]:
    """(page, command line) for every manage.py line of the pages, in page order."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            if match.group(1) in SHELL_LANGS:
                found += [(page.name, ln) for ln in match.group(2).splitlines() if _is_command(ln)]
        prose = FENCE.sub("", text)
        found += [(page.name, span) for span in INLINE.findall(prose)]
    return found


def _is_command(line: str) -> bool:
    """A line that runs manage.py (``python manage.py …``, ``ExecStart=… manage.py …``), not a
    line of output or prose that mentions it."""
    if "manage.py " not in line:
        return False
    prefix = line[: line.index("manage.py ")].strip()
    return prefix == "" or re.fullmatch(r"(ExecStart=)?\S*python[\d.]*", prefix) is not None


def concrete(line: str) -> list[str]:
    """The runnable form(s) of a documented line: from ``manage.py`` on, without a comment."""
    line = line.strip()
    if line in SYNOPSES:
        return SYNOPSES[line]
    line = re.split(r"\s+#\s", line, maxsplit=1)[0]
    line = line[line.index("manage.py ") :]
    if PLACEHOLDER.search(line.replace("'[", "").replace("]'", "")):
        raise AssertionError(f"a synopsis with placeholders needs an entry in SYNOPSES: {line!r}")
    return [line]


def test_every_synopsis_in_the_table_is_documented():
    lines = {line.strip() for _, line in documented_lines()}
    stale = [s for s in SYNOPSES if s not in lines]
    assert not stale, f"SYNOPSES entries no page shows any more: {stale}"


# One database is enough to prove a documented line runs (docs/check_examples.sh, run by
# tests/system/test_docs.py, walks the SQLite quick start); PostgreSQL is what production runs.
@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(900)
def test_every_documented_command_line_runs(start_worker, start_process, tmp_path):
    worker = start_worker("-c", "1", "--poll-interval", "0.1", name="docs-live")
    runs = list(dict.fromkeys(c for _, line in documented_lines() for c in concrete(line)))
    assert len(runs) > 30
    for run in runs:
        argv = shlex.split(run.replace("{worker}", worker.nodename))[1:]
        _run(argv, tmp_path, start_process)


def _run(argv: list[str], tmp: Path, start_process) -> None:
    argv = [_fill(a, tmp) for a in argv]
    env, cwd = _environment(argv, tmp)
    command = argv[0] if argv else ""
    if command == "djq_beat":
        proc = start_process(
            [sys.executable, str(MANAGE_PY), *argv],
            name=f"beat{next(_BEATS)}",
            env=worker_env(env),
            ready_pattern=r"beat \S+: ready",
        )
        proc.terminate()
        assert proc.wait(30) == 0, (argv, proc.log_tail())
        return
    if command == "djq_worker" and "--burst" not in argv:
        argv.append("--burst")
    if command == "djq_events":  # (it runs until stopped; the curses monitor needs a terminal:
        # tests/system/test_events.py drives it under tmux) — here: the stored events, then exit
        argv += [] if {"--dump", "--json"} & set(argv) else ["--dump"]
        argv += [] if "--once" in argv else ["--once"]
    proc = run_manage(*argv, env_extra=env, check=False, timeout=180, cwd=cwd)
    assert proc.returncode == 0, (argv, proc.stdout[-3000:], proc.stderr[-3000:])
    if "--detach" in argv:  # the daemon writes its pidfile, logs "ready", runs, removes it

        def ended():
            logs = list(tmp.glob("run/*.log"))
            return logs and " ready." in logs[0].read_text() and not list(tmp.glob("run/*.pid"))

        wait_for(ended, timeout=60, message="the detached worker to run and exit")


def _fill(arg: str, tmp: Path) -> str:
    for prefix in ("/run/djq/", "/var/log/djq/", "/var/run/celery/"):
        if arg.startswith(prefix):
            (tmp / "run").mkdir(exist_ok=True)
            return str(tmp / "run" / arg[len(prefix) :])
    return arg.replace("%i@%H", f"docs-unit@{socket.gethostname()}")


def _environment(argv: list[str], tmp: Path) -> tuple[dict[str, str], Path]:
    """What a line needs beyond the test database: another settings module for the dedicated
    queue database, the Celery sample project's directory for ``djq_check_celery proj.settings``."""
    if argv[:3] == ["migrate", "--database", "queue"]:
        queue_db = f"sqlite:///{tmp / 'queue.sqlite3'}"
        return (
            {"DJANGO_SETTINGS_MODULE": "tests.queue_db_settings", "QUEUE_DATABASE_URL": queue_db},
            REPO_ROOT,
        )
    if argv[:1] == ["djq_check_celery"]:
        return {}, REPO_ROOT / "tests" / "celery_sample" / "before"
    return {}, REPO_ROOT
