"""Monitoring events as a user reaches them: ``djq_worker -E``, ``DJQ_WORKER_SEND_TASK_EVENTS``,
``control.enable_events()``, ``manage.py djq_events`` (--dump, --json, the curses monitor under
tmux), the event signals, and docs/monitoring.md's command lines. On PostgreSQL and SQLite."""

from __future__ import annotations

import datetime
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import transaction

from djq import chain, control, signals, states
from djq.events import EVENT_TYPES, EventDispatcher, Receiver
from djq.events.monitor import Dumper
from djq.events_state import State
from djq.listen import Listener
from djq.models import EventBatch
from testproject.demo import tasks as demo
from tests.helpers import MANAGE_PY, REPO_ROOT, run_manage, wait_for, worker_env
from tests.worker_support import wait_state

pytestmark = pytest.mark.django_db(transaction=True)

FAST = ("--poll-interval", "0.1", "--lease", "3", "-c", "2")
COMMON = ("type", "hostname", "timestamp", "utcoffset", "pid", "clock", "local_received")


def start_events(start_process, *args: str, name: str = "events"):
    """``manage.py djq_events ARGS`` in the background, once it has started capturing."""
    argv = [sys.executable, str(MANAGE_PY), "djq_events", *args]
    return start_process(argv, name=name, env=worker_env(), ready_pattern="starting capture")


def json_events(proc) -> list[dict]:
    return [json.loads(line) for line in proc.log_text().splitlines() if line.startswith("{")]


def wait_json(proc, predicate, timeout: float = 30.0, message: str = "") -> list[dict]:
    def found():
        events = json_events(proc)
        return events if predicate(events) else None

    return wait_for(found, timeout=timeout, interval=0.1, message=message or "events")


def stored() -> list[dict]:
    """Every stored event, oldest first (what ``djq_events --last`` begins with)."""
    return Receiver(last=10**6).poll()


def of(events: list[dict], kind: str, uuid_: str | None = None) -> list[dict]:
    return [e for e in events if e["type"] == kind and (uuid_ is None or e.get("uuid") == uuid_)]


# --- the dump of a chain, through a real worker ---------------------------------------------------
def test_dump_shows_the_events_of_a_chain_in_order(start_worker, start_process):
    start_worker("-E", *FAST, name="ev")
    dump = start_events(start_process, "--dump")
    result = chain(demo.add.s(2, 2), demo.mul.s(10), demo.add.s(1)).delay()
    assert result.get(timeout=30) == 41
    ids = [result.parent.parent.id, result.parent.id, result.id]

    def chain_done():
        lines = dump.log_text().splitlines()
        return lines if any("succeeded: " in ln and ids[2] in ln for ln in lines) else None

    lines = wait_for(chain_done, timeout=30, message="the chain's last task-succeeded line")
    kinds = ("task received", "task started", "task succeeded")
    task_lines = [ln for ln in lines if any(f"({i})" in ln for i in ids)]
    seen = [
        (k, re.search(r"\(([0-9a-f-]{36})\)", ln)[1])
        for ln in task_lines
        for k in kinds
        if f"] {k}: " in ln
    ]
    expected = [(kind, i) for i in ids for kind in kinds]
    assert seen == expected
    host = f"ev@{socket.gethostname()}"
    first = next(ln for ln in task_lines if "task received" in ln)
    # Celery's dump format: "<host> [<utc time>] task received: name(uuid) args=… kwargs={} …"
    assert re.match(
        rf"{re.escape(host)} \[\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\] task "
        rf"received: testproject\.demo\.tasks\.add\({ids[0]}\) args=\[2, ?2\] "
        r"kwargs=\{\} clock=\d+, ",
        first,
    ), first
    succeeded = next(ln for ln in task_lines if "task succeeded" in ln and ids[1] in ln)
    assert "result=40" in succeeded and "runtime=" in succeeded


# --- every event type, with Celery's fields ------------------------------------------------------
def test_json_events_carry_celerys_fields(start_worker, start_process):
    """The setting (not -E) turns events on; every task outcome makes its event."""
    worker = start_worker(*FAST, name="js", env_extra={"DJQ_WORKER_SEND_TASK_EVENTS": "1"})
    assert "task events: ON" in worker.log_text()
    out = start_events(start_process, "--json")
    ok = demo.add.delay(1, 2)
    bad = demo.fail.delay("kaput")
    retried = demo.divide.delay(1, 0)
    rejected = demo.reject_me.delay(False)
    later = demo.add.apply_async((1, 1), countdown=30)
    later.revoke()
    running = demo.sleep.delay(30)
    wait_state(running, states.STARTED, timeout=30)
    running.revoke(terminate=True)
    for r in (ok, bad, retried, rejected, running):
        wait_state(r, states.READY_STATES, timeout=30)
    events = wait_json(
        out,
        lambda ev: (
            of(ev, "task-revoked", running.id)
            and of(ev, "task-failed", retried.id)
            and of(ev, "task-rejected")
        ),
    )
    for event in events:
        assert event["type"] in EVENT_TYPES
        assert set(COMMON) <= set(event), event
    received = of(events, "task-received", ok.id)[0]
    assert received["hostname"] == worker.nodename and received["name"] == demo.add.name
    for key in (
        "uuid",
        "name",
        "args",
        "kwargs",
        "retries",
        "eta",
        "expires",
        "root_id",
        "parent_id",
    ):
        assert key in received
    assert of(events, "task-started", ok.id)[0]["pid"]
    succeeded = of(events, "task-succeeded", ok.id)[0]
    assert succeeded["result"] == "3" and succeeded["runtime"] >= 0
    failed = of(events, "task-failed", bad.id)[0]
    assert "kaput" in failed["exception"] and "Traceback" in failed["traceback"]
    assert len(of(events, "task-retried", retried.id)) == 3  # max_retries=3, then it fails
    assert of(events, "task-rejected", rejected.id)[0]["requeue"] is False
    revoked = of(events, "task-revoked", running.id)[0]
    assert revoked["terminated"] is True and revoked["signum"] == "SIGTERM"
    online = of(events, "worker-online") or Receiver(last=1000).poll()
    online = [
        e for e in online if e["type"] == "worker-online" and e["hostname"] == worker.nodename
    ]
    assert online and {"freq", "sw_ident", "sw_ver", "sw_sys"} <= set(online[0])
    heartbeats = wait_json(out, lambda ev: of(ev, "worker-heartbeat"), timeout=15)
    beat = of(heartbeats, "worker-heartbeat")[0]
    assert beat["sw_ident"] == "djq" and {"active", "processed", "freq"} <= set(beat)
    clocks = [e["clock"] for e in json_events(out)]
    assert clocks == sorted(clocks)
    worker.terminate()
    assert worker.wait(timeout=30) == 0
    wait_json(out, lambda ev: of(ev, "worker-offline"), timeout=15)


def test_without_E_a_worker_sends_nothing_until_enable_events(start_worker):
    worker = start_worker(*FAST, name="quiet")
    assert "task events: OFF" in worker.log_text()
    assert demo.add.delay(1, 1).get(timeout=30) == 2
    assert stored() == []
    assert control.enable_events(reply=True, timeout=5) == [
        {worker.nodename: {"ok": "task events enabled"}}
    ]
    assert control.enable_events(reply=True, timeout=5) == [
        {worker.nodename: {"ok": "task events already enabled"}}
    ]
    on = demo.add.delay(2, 2)
    assert on.get(timeout=30) == 4
    types = [e["type"] for e in wait_for(stored, timeout=10)]
    assert types[0] == "worker-online"  # a worker that starts publishing announces itself
    wait_for(lambda: of(stored(), "task-succeeded", on.id), timeout=10)
    assert control.disable_events(reply=True, timeout=5) == [
        {worker.nodename: {"ok": "task events disabled"}}
    ]
    count = len(stored())
    off = demo.add.delay(3, 3)
    assert off.get(timeout=30) == 6
    assert len(stored()) == count
    assert not [e for e in stored() if e.get("uuid") == off.id]


# --- task-sent, in the caller's transaction ---------------------------------------------------
def test_task_sent_is_written_with_the_job_in_the_callers_transaction(settings):
    settings.DJQ_TASK_SEND_SENT_EVENT = True
    receiver = Receiver()
    with pytest.raises(RuntimeError), transaction.atomic():
        demo.add.delay(1, 2)
        raise RuntimeError("rolled back")
    assert receiver.poll() == []
    with transaction.atomic():
        sent = demo.add.apply_async((5, 6), countdown=60, queue="low")
    (event,) = receiver.poll()
    assert event["type"] == "task-sent" and event["uuid"] == sent.id
    assert event["name"] == demo.add.name and event["args"] == "[5,6]"
    assert event["queue"] == event["routing_key"] == "low" and event["eta"]
    assert re.fullmatch(r"gen\d+@.+", event["hostname"])
    settings.DJQ_TASK_SEND_SENT_EVENT = False
    demo.add.delay(1, 1)
    assert receiver.poll() == []


# --- signals -----------------------------------------------------------------------------------
def test_event_signals_let_a_project_forward_events(settings):
    sent, received = [], []
    on_sent = lambda sender, event, **kw: sent.append(event)  # noqa: E731
    on_received = lambda sender, event, **kw: received.append(event)  # noqa: E731
    signals.event_sent.connect(on_sent)
    signals.event_received.connect(on_received)
    try:
        receiver = Receiver(handlers={"task-failed": lambda e: received.append("handler")})
        EventDispatcher("me@here").send("task-failed", uuid="x", exception="E()", traceback="")
        assert [e["type"] for e in sent] == ["task-failed"]
        receiver.capture(limit=1, timeout=5)
        assert received[0]["uuid"] == "x" and received[0]["clock"] and received[1] == "handler"
    finally:
        signals.event_sent.disconnect(on_sent)
        signals.event_received.disconnect(on_received)


def test_old_events_are_pruned_by_the_elected_worker(start_worker):
    EventDispatcher("old@host").send("worker-heartbeat", freq=2.0)
    old = EventBatch.objects.get()
    EventBatch.objects.update(created_at=old.created_at - datetime.timedelta(hours=2))
    start_worker(*FAST, name="pruner")  # (maintenance: whether or not it publishes events)
    wait_for(
        lambda: not EventBatch.objects.filter(id=old.id).exists(),
        timeout=20,
        message="the 2-hour-old event to be pruned",
    )


# --- the command's options ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["--last", "-1"], "argument --last: takes a number of events"),
        (["--last", "many"], "argument --last: takes a number of events"),
        (["--frequency", "0"], "argument -F/--frequency/--freq: takes seconds"),
        (["--once"], "--once goes with --dump or --json"),
        (["--dump", "--database", "nope"], "no database alias 'nope'"),
        ([], "the monitor needs a terminal"),
    ],
)
def test_bad_options_are_refused_naming_the_option(args, message):
    proc = run_manage("djq_events", *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_once_prints_the_stored_events_and_celery_flags_are_accepted():
    EventDispatcher("a@host").send("worker-online", freq=2.0, sw_ident="djq")
    EventDispatcher("a@host").send("task-received", uuid="u1", name="t", args="[]", kwargs="{}")
    proc = run_manage("djq_events", "--dump", "--once", "--camera", "x.Camera")
    lines = proc.stdout.splitlines()
    assert lines[0] == "-> evdump: starting capture..."
    assert lines[1].startswith("a@host [") and "] started: " in lines[1]
    assert "] task received: t(u1) args=[] kwargs={} clock=" in lines[2]
    assert "--camera is ignored" in proc.stderr
    proc = run_manage("djq_events", "--json", "--once", "--last", "1")
    (line,) = proc.stdout.splitlines()
    assert json.loads(line)["uuid"] == "u1"
    again = run_manage("djq_events", "--json", "--once", "--last", "1")
    assert again.stdout == proc.stdout.replace(
        str(json.loads(line)["local_received"]), str(json.loads(again.stdout)["local_received"])
    )


# --- the curses monitor, under tmux -------------------------------------------------------------
class Tmux:
    """A tmux server of our own (its own socket) running one command in a pane."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.socket = f"djq-test-{uuid.uuid4().hex[:8]}"
        env = {k: v for k, v in env.items() if k not in ("LINES", "COLUMNS")}  # (the pane's)
        exports = " ".join(f"{k}={_quote(v)}" for k, v in env.items() if k.isidentifier())
        argv = " ".join(_quote(c) for c in command)
        line = f"env -u LINES -u COLUMNS {exports} {argv}; echo MONITOR-EXITED $?; sleep 30"
        self.tmux("new-session", "-d", "-x", "150", "-y", "50", line)

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            check=True,
            text=True,
            capture_output=True,
            cwd=REPO_ROOT,
        ).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def wait_screen(self, predicate, timeout: float = 30.0, message: str = "") -> str:
        def check():
            text = self.screen()
            return text if predicate(text) else None

        try:
            return wait_for(check, timeout=timeout, interval=0.2, message=message)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- screen ---\n{self.screen()}") from None

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.fixture
def tmux_monitor():
    assert shutil.which("tmux"), "tmux is needed for the curses monitor test (apt install tmux)"
    sessions = []

    def start() -> Tmux:
        session = Tmux(
            [sys.executable, str(MANAGE_PY), "djq_events", "-F", "0.2"],
            worker_env({"TERM": "xterm-256color"}),
        )
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()


def test_curses_monitor_shows_the_cluster_and_terminates_the_selected_job(
    start_worker, tmux_monitor
):
    worker = start_worker("-E", *FAST, name="mon")
    done = demo.add.delay(20, 22)
    assert done.get(timeout=30) == 42
    tmux = tmux_monitor()
    screen = tmux.wait_screen(
        lambda s: done.id in s and "workers online: 1" in s, message="the worker and a finished job"
    )
    assert re.search(rf"{re.escape(worker.nodename)}\s+online", screen)
    assert "testproject.demo.tasks.add" in screen and "SUCCESS" in screen, screen
    assert "RECENT EVENTS" in screen and "task-succeeded" in screen
    long = demo.sleep.delay(60)
    running = rf"> {long.id}\s+testproject\.demo\.tasks\.sleep\s+STARTED"
    tmux.wait_screen(
        lambda s: re.search(running, s),
        message="the running job, selected (running jobs come first)",
    )
    tmux.keys("t")
    wait_state(long, states.REVOKED, timeout=15)
    screen = tmux.wait_screen(
        lambda s: (
            f"terminate: testproject.demo.tasks.sleep[{long.id}]" in s
            and re.search(rf"{long.id}\s+\S+\s+REVOKED", s)
        )
    )
    tmux.keys("j")
    tmux.wait_screen(lambda s: re.search(rf"> {done.id}", s), message="j to select the next job")
    tmux.keys("i")
    tmux.wait_screen(
        lambda s: f"TASK {done.id}" in s and "result" in s and "42" in s,
        message="i to show the selected job",
    )
    tmux.keys("q")
    tmux.wait_screen(lambda s: "MONITOR-EXITED 0" in s, message="q to quit with status 0")


# --- pure parts ----------------------------------------------------------------------------------
def test_state_folds_events_like_celerys():
    state = State()
    now = time.time()
    state.event({"type": "worker-online", "hostname": "w@h", "timestamp": now, "freq": 2.0})
    state.event(
        {
            "type": "task-received",
            "uuid": "a",
            "name": "t.add",
            "hostname": "w@h",
            "timestamp": now,
            "args": "[1]",
            "kwargs": "{}",
        }
    )
    state.event({"type": "task-sent", "uuid": "a", "name": "t.add", "timestamp": now - 1})
    state.event({"type": "task-started", "uuid": "a", "hostname": "w@h", "timestamp": now})
    assert state.tasks["a"].state == "STARTED"  # a late task-sent does not move it back
    state.event({"type": "task-received", "uuid": "b", "name": "t.add", "hostname": "w@h"})
    state.event({"type": "task-succeeded", "uuid": "a", "result": "1", "runtime": 0.5})
    assert [t.uuid for t in state.tasks_by_time()] == ["b", "a"]  # unfinished first
    assert state.counts["t.add"]["task-received"] == 2
    assert [w.hostname for w in state.alive_workers(now + 3)] == ["w@h"]
    assert state.alive_workers(now + 5) == []  # no heartbeat within 2 × freq
    state.event({"type": "worker-offline", "hostname": "w@h", "timestamp": now + 1})
    assert state.alive_workers(now + 1) == []


def test_dump_format_is_celerys():
    dumper = Dumper(None)
    line = dumper.format(
        {"type": "worker-heartbeat", "hostname": "w@h", "timestamp": 0.0, "freq": 2.0, "active": 0}
    )
    assert line == "w@h [1970-01-01 00:00:00] heartbeat: active=0, freq=2.0"
    dumper.format(
        {
            "type": "task-received",
            "hostname": "w@h",
            "timestamp": 0.5,
            "uuid": "u",
            "name": "t",
            "args": "[1]",
            "kwargs": "{}",
        }
    )
    line = dumper.format(
        {
            "type": "task-failed",
            "hostname": "w@h",
            "timestamp": 1.0,
            "uuid": "u",
            "exception": "E()",
            "traceback": "a\nb",
        }
    )
    assert line == (
        "w@h [1970-01-01 00:00:01] task failed: t(u) args=[1] kwargs={} "
        "exception=E(), traceback=a\\nb"
    )


# --- docs/monitoring.md: every command line is run here ------------------------------------------
DOC = REPO_ROOT / "docs" / "monitoring.md"
#: docs/monitoring.md's command lines (the page is checked against these): kind, args, env
DOC_COMMANDS = {
    "python manage.py djq_worker -E": ("worker", ["-E"], {}),
    "python manage.py djq_worker --task-events -l info": ("worker", ["--task-events"], {}),
    "DJQ_WORKER_SEND_TASK_EVENTS=1 python manage.py djq_worker": (
        "worker",
        [],
        {"DJQ_WORKER_SEND_TASK_EVENTS": "1"},
    ),
    "python manage.py djq_events": ("monitor", [], {}),  # run under tmux, above
    "python manage.py djq_events --dump": ("follow", ["--dump"], {}),
    "python manage.py djq_events --json": ("follow", ["--json"], {}),
    "python manage.py djq_events --dump --last 20 --once": (
        "once",
        ["--dump", "--last", "20", "--once"],
        {},
    ),
}


def doc_command_lines() -> set[str]:
    text = DOC.read_text()
    blocks = re.findall(r"```(?:console|sh|shell|bash)\n(.*?)```", text, re.S)
    return {ln.strip()[2:] for b in blocks for ln in b.splitlines() if ln.strip().startswith("$ ")}


def test_docs_monitoring_command_lines_are_the_ones_run_here():
    assert doc_command_lines() == set(DOC_COMMANDS)
    assert '"djq_events", "-F", "0.2"' in Path(__file__).read_text()  # the monitor's line


def test_docs_monitoring_command_lines_run(start_process):
    workers = [
        (line, args, env) for line, (kind, args, env) in DOC_COMMANDS.items() if kind == "worker"
    ]
    for n, (line, args, env) in enumerate(workers):
        argv = [sys.executable, str(MANAGE_PY), "djq_worker", *args, "-n", f"doc{n}@%h", *FAST]
        worker = start_process(
            argv, name=f"doc{n}", env=worker_env(env), ready_pattern=r"\bready\b"
        )
        assert "task events: ON" in worker.log_text(), line
        worker.terminate()
        assert worker.wait(timeout=30) == 0, line
    assert len(of(stored(), "worker-offline")) == len(workers)
    for n in range(25):
        EventDispatcher("doc@host").send("worker-heartbeat", freq=2.0, processed=n)
    for n, (line, (kind, args, _)) in enumerate(DOC_COMMANDS.items()):
        if kind == "follow":
            proc = start_events(start_process, *args, name=f"follow{n}")
            EventDispatcher("doc@host").send("worker-heartbeat", freq=2.0, processed=99)
            wait_for(
                lambda p=proc: "processed=99" in p.log_text() or '"processed": 99' in p.log_text(),
                timeout=20,
                message=line,
            )
        elif kind == "once":
            out = run_manage("djq_events", *args).stdout.splitlines()
            assert out[0] == "-> evdump: starting capture..." and len(out) == 21, out
            assert all(" heartbeat: " in x or " shutdown" in x for x in out[1:]), out


def test_docs_monitoring_python_examples_compile():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 3
    for n, block in enumerate(blocks):
        compile(block, f"docs/monitoring.md python block {n + 1}", "exec")


@pytest.mark.parametrize(
    "name, value, code",
    [
        ("DJQ_WORKER_SEND_TASK_EVENTS", "yes", "djq.E030"),
        ("DJQ_TASK_SEND_SENT_EVENT", 1, "djq.E030"),
        ("DJQ_EVENTS_EXPIRES", 0, "djq.E031"),
        ("DJQ_EVENTS_EXPIRES", "an hour", "djq.E031"),
        ("DJQ_EVENTS_EXPIRES", datetime.timedelta(seconds=-1), "djq.E031"),
    ],
)
def test_bad_event_settings_stop_manage_py_check(settings, name, value, code):
    setattr(settings, name, value)
    with pytest.raises(SystemCheckError, match=rf"{code}.*{name}"):
        call_command("check")


def test_good_event_settings_pass_the_check(settings):
    settings.DJQ_WORKER_SEND_TASK_EVENTS = True
    settings.DJQ_EVENTS_EXPIRES = datetime.timedelta(minutes=5)
    call_command("check")


@pytest.mark.postgres_only
def test_each_batch_is_notified_on_postgresql_with_its_row_id():
    """A tool can LISTEN on djq_events; the payload is the newest batch's id (at commit)."""
    with Listener(None, ["djq_events"]) as listener:
        with transaction.atomic():
            EventDispatcher("n@host").send("worker-online", freq=2.0)
            assert listener.wait(0.3) == []  # not before the commit
        notes = wait_for(lambda: listener.wait(1.0), timeout=10)
    assert notes == [("djq_events", str(EventBatch.objects.latest("id").id))]


def test_a_batch_larger_than_a_row_is_split_and_read_back_in_order():
    receiver = Receiver()
    dispatcher = EventDispatcher("big@host", buffered=True)
    for n in range(2500):
        dispatcher.send("task-received", uuid=f"u{n}", name="t", args="[]", kwargs="{}")
    dispatcher.flush()
    assert EventBatch.objects.count() == 3  # rows of at most ROW_EVENTS events
    events = [e for _ in range(3) for e in receiver.poll()]
    assert [e["uuid"] for e in events] == [f"u{n}" for n in range(2500)]
    clocks = [e["clock"] for e in events]
    assert clocks == sorted(set(clocks))
