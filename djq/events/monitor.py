"""``djq_events``: Celery's ``celery events`` — the event dump and the live curses monitor.

The dump prints one event a line in Celery's ``evdump`` format (``--json``: one JSON object a
line, for tools). The monitor folds events into a ``djq.events_state.State`` and draws workers,
tasks (running ones first), per-task counts and recent events; keys act on the selected task
through ``djq.control`` (the same revoke the admin and the API use).
"""

from __future__ import annotations

import curses
import datetime as dt
import json
import time
from typing import TextIO

from djq import control
from djq.events import Receiver
from djq.events_state import State, TaskState

HUMAN_TYPES = {
    "worker-offline": "shutdown",
    "worker-online": "started",
    "worker-heartbeat": "heartbeat",
}
HELP = "j/k or up/down: select | i: info | r: revoke | t: terminate | q: quit"


# --- the dump -------------------------------------------------------------------------------------
class Dumper:
    """Celery's ``celery.events.dumper.Dumper`` line format, one event a line (newlines in
    values, e.g. tracebacks, are written as ``\\n``)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.names: dict[str, str] = {}  # uuid → "name(uuid) args=… kwargs=…"

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def on_event(self, event: dict) -> None:
        self.say(self.format(event))

    def format(self, event: dict) -> str:
        ev = dict(event)
        stamp = _utc(ev.pop("timestamp", None))
        kind = str(ev.pop("type", "")).lower()
        hostname = ev.pop("hostname", "")
        task = ""
        if kind.startswith("task-"):
            uuid = ev.pop("uuid", "")
            if kind in ("task-received", "task-sent"):
                task = self.names[uuid] = (
                    f"{ev.pop('name', '')}({uuid}) args={ev.pop('args', '')} "
                    f"kwargs={ev.pop('kwargs', '')}"
                )
                if len(self.names) > 4096:
                    self.names.pop(next(iter(self.names)))
            else:
                task = self.names.get(uuid, f"({uuid})")
        fields = ", ".join(f"{key}={_flat(ev[key])}" for key in sorted(ev))
        sep = ":" if fields or task else ""
        human = HUMAN_TYPES.get(kind, kind.replace("-", " "))
        return " ".join(p for p in (f"{hostname} [{stamp}] {human}{sep}", task, fields) if p)


def _utc(timestamp) -> str:
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(float(timestamp), dt.UTC).replace(tzinfo=None).isoformat(" ")


def _flat(value) -> str:
    return str(value).replace("\r", "").replace("\n", "\\n")


def json_line(event: dict) -> str:
    return json.dumps(event, sort_keys=True, default=str)


# --- the curses monitor ---------------------------------------------------------------------------
class Monitor:
    """The live screen. ``step`` reads new events and handles one key; ``draw`` paints."""

    def __init__(self, receiver: Receiver, frequency: float = 0.5, vendor: str = ""):
        self.receiver = receiver
        self.state = State()
        self.frequency = frequency
        self.vendor = vendor
        self.selected = 0
        self.info = False
        self.message = ""
        self.lines: list[tuple[str, int]] = []  # the screen being drawn: (text, attribute)

    def run(self, screen) -> None:
        try:
            curses.curs_set(0)
        except curses.error:  # (a terminal without an invisible cursor)
            pass
        screen.timeout(int(self.frequency * 1000))
        while True:
            for event in self.receiver.poll():
                self.state.event(event)
            self.draw(screen)
            if not self.key(screen.getch()):
                return

    # --- keys -----------------------------------------------------------------------------
    def key(self, key: int) -> bool:
        """Act on a key press; False to quit."""
        if key in (ord("q"), ord("Q")):
            return False
        if key in (ord("j"), curses.KEY_DOWN):
            self.selected += 1
        elif key in (ord("k"), curses.KEY_UP):
            self.selected = max(0, self.selected - 1)
        elif key in (ord("i"), ord("\n"), curses.KEY_ENTER):
            self.info = not self.info
        elif key in (ord("r"), ord("c"), ord("R"), ord("C")):
            self.revoke(terminate=False)
        elif key in (ord("t"), ord("T")):
            self.revoke(terminate=True)
        return True

    def selection(self) -> TaskState | None:
        tasks = self.state.tasks_by_time(200)
        if not tasks:
            return None
        self.selected = min(self.selected, len(tasks) - 1)
        return tasks[self.selected]

    def revoke(self, terminate: bool) -> None:
        task = self.selection()
        if task is None:
            self.message = "no task selected"
            return
        rows = control.revoke(task.uuid, terminate=terminate, using=self.receiver.using)
        verb = "terminate" if terminate else "revoke"
        if rows:
            self.message = f"{verb}: {task.name}[{task.uuid}] was {rows[0][1]}"
        else:
            self.message = f"{verb}: {task.name}[{task.uuid}] has already finished"

    # --- drawing --------------------------------------------------------------------------
    def draw(self, screen) -> None:
        screen.erase()
        height, width = screen.getmaxyx()
        self.lines = []
        self._header()
        self._workers()
        selected = self.selection()
        room = max(3, (height - len(self.lines) - 14) // 2)
        self._tasks(room, selected)
        if self.info and selected is not None:
            self._info(selected)
        else:
            self._counts()
            self._recent(max(2, height - len(self.lines) - 3))
        for row, (text, attr) in enumerate(self.lines[: height - 2]):
            _put(screen, row, text, width, attr)
        _put(screen, height - 2, self.message, width, curses.A_BOLD)
        _put(screen, height - 1, HELP, width, curses.A_REVERSE)
        screen.refresh()

    def _add(self, text: str, attr: int = 0) -> None:
        self.lines.append((text, attr))

    def _header(self) -> None:
        s = self.state
        self._add(
            f"djq events - {self.vendor} | workers online: {len(s.alive_workers())} | "
            f"events: {s.event_count} | tasks: {s.task_count}",
            curses.A_BOLD,
        )

    def _workers(self) -> None:
        self._add("")
        self._add(
            f"{'WORKER':<40} {'STATUS':<8} {'ACTIVE':>6} {'PROCESSED':>9}  HEARTBEAT",
            curses.A_UNDERLINE,
        )
        now = time.time()
        for w in sorted(self.state.workers.values(), key=lambda w: w.hostname)[:8]:
            status = "online" if w.alive(now) else "offline"
            ago = f"{now - w.last_heartbeat:.0f}s ago" if w.last_heartbeat else "-"
            self._add(f"{w.hostname[:40]:<40} {status:<8} {w.active:>6} {w.processed:>9}  {ago}")

    def _tasks(self, room: int, selected: TaskState | None) -> None:
        self._add("")
        self._add(
            f"  {'UUID':<36} {'TASK':<34} {'STATE':<9} {'WORKER':<24} RUNTIME", curses.A_UNDERLINE
        )
        tasks = self.state.tasks_by_time(200)
        first = max(0, self.selected - room + 1)
        for task in tasks[first : first + room]:
            mark = ">" if task is selected else " "
            runtime = f"{task.runtime:.3f}s" if task.runtime is not None else ""
            self._add(
                f"{mark} {task.uuid[:36]:<36} {task.name[-34:]:<34} {task.state:<9} "
                f"{task.worker[:24]:<24} {runtime}",
                curses.A_REVERSE if task is selected else 0,
            )

    def _info(self, task: TaskState) -> None:
        self._add("")
        self._add(f"TASK {task.uuid}", curses.A_UNDERLINE)
        for key in (
            "name",
            "state",
            "worker",
            "args",
            "kwargs",
            "retries",
            "runtime",
            "result",
            "exception",
        ):
            value = getattr(task, key)
            if value not in (None, ""):
                self._add(f"  {key:<10} {value}")
        for line in (task.traceback or "").splitlines()[-8:]:
            self._add(f"  {line}")

    def _counts(self) -> None:
        self._add("")
        self._add(
            f"{'TASK NAME':<44} {'RECEIVED':>8} {'SUCCEEDED':>9} {'FAILED':>6} "
            f"{'RETRIED':>7} {'REVOKED':>7}",
            curses.A_UNDERLINE,
        )
        for name, c in sorted(self.state.counts.items())[:8]:
            self._add(
                f"{name[-44:]:<44} {c['task-received']:>8} {c['task-succeeded']:>9} "
                f"{c['task-failed']:>6} {c['task-retried']:>7} {c['task-revoked']:>7}"
            )

    def _recent(self, room: int) -> None:
        self._add("")
        self._add("RECENT EVENTS", curses.A_UNDERLINE)
        for event in list(self.state.recent)[-room:]:
            stamp = _utc(event.get("timestamp"))[11:23]
            self._add(
                f"{stamp} {event.get('hostname', '')[:30]:<30} {event.get('type', ''):<17} "
                f"{event.get('uuid', '')}"
            )


def _put(screen, row: int, text: str, width: int, attr: int = 0) -> None:
    try:
        screen.addnstr(row, 0, text, max(0, width - 1), attr)
    except curses.error:  # (off the screen: a terminal smaller than the layout)
        pass
