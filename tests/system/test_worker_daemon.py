"""Daemonizing as in Celery's guide (issue 7): ``djq_worker -n`` name expansion, ``%`` variables in
``--pidfile``/``--logfile``, and ``--detach`` (double fork, new session, chdir, umask, stdio to the
log file), with real processes. docs/deployment.md shows these command lines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from djq.models import Worker
from djq.roles.daemon import node_format
from djq.worker import expand_name
from testproject.demo import tasks as demo
from tests.helpers import MANAGE_PY, wait_for, worker_env


def test_node_names_expand_as_in_celery():
    """Celery's -n variables (worker guide): %h host, %n its first label, %d the domain."""
    host = "george.example.com"
    assert expand_name("worker1@%h", host) == "worker1@george.example.com"
    assert expand_name("worker1@%n", host) == "worker1@george"
    assert expand_name("worker1@%d", host) == "worker1@example.com"
    assert expand_name("w%i@%h", host) == "w0@george.example.com"
    assert expand_name("solo", host) == "solo@george.example.com"


def test_file_names_expand_as_in_celery():
    """Celery's --logfile/--pidfile variables (daemonizing guide) for node w1@george.example.com:
    %p full node name, %h host, %n node name, %d domain, %i/%I pool process index."""
    node = "w1@george.example.com"
    assert node_format("/var/log/djq/%p.log", node) == "/var/log/djq/w1@george.example.com.log"
    assert node_format("%h.log", node) == "george.example.com.log"
    assert node_format("/run/djq/%n.pid", node) == "/run/djq/w1.pid"
    assert node_format("%d.log", node) == "example.com.log"
    assert node_format("%n%I.log", node) == "w1.log"
    assert node_format("%n-%i.log", node) == "w1-0.log"
    assert node_format("100%%-%n.log", node) == "100%-w1.log"
    assert node_format(None, node) is None


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _manage(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE_PY), *args],
        cwd=cwd,
        env=worker_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
def test_pidfile_and_logfile_names_expand(start_process, tmp_path):
    argv = [
        sys.executable,
        str(MANAGE_PY),
        "djq_worker",
        "-n",
        "x%i@%h",
        "-c",
        "1",
        "--pidfile",
        str(tmp_path / "%n.pid"),
        "--logfile",
        str(tmp_path / "%p%I.log"),
    ]
    w = start_process(argv, env=worker_env(), ready_pattern=r"\bready\b")
    node = expand_name("x%i@%h", os.uname().nodename)
    assert Worker.objects.filter(name=node, stopped_at__isnull=True).exists()
    pidfile, logfile = tmp_path / "x0.pid", tmp_path / f"{node}.log"
    assert pidfile.read_text().strip() == str(w.pid)
    wait_for(lambda: f"{node} ready." in logfile.read_text(), timeout=10)
    w.terminate()
    assert w.wait(timeout=30) == 0
    assert not pidfile.exists()


@pytest.mark.django_db(transaction=True)
def test_detach(tmp_path):
    """--detach: the command returns at once; the daemon (pid in --pidfile) has no controlling
    terminal, is not a session leader, runs in --workdir with --umask, reads /dev/null and
    writes stdout/stderr to --logfile; it runs jobs, restarts on SIGHUP under the same pid, and
    stops warm on SIGTERM, removing its pidfile. Relative paths are the caller's."""
    start, workdir = tmp_path / "start", tmp_path / "workdir"
    for directory in (start, workdir, start / "run", start / "log"):
        directory.mkdir()
    args = [
        "djq_worker",
        "--detach",
        "-n",
        "det@%h",
        "-c",
        "1",
        "--poll-interval",
        "0.1",
        "--pidfile",
        "run/%n.pid",
        "--logfile",
        "log/%n%I.log",
        "--workdir",
        str(workdir),
        "--umask",
        "027",
    ]
    pidfile, logfile = start / "run" / "det.pid", start / "log" / "det.log"
    started = time.monotonic()
    proc = _manage(*args, cwd=start)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 30
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=30))
    try:
        assert _alive(pid)
        wait_for(
            lambda: (
                logfile.exists()
                and "det@" in logfile.read_text()
                and " ready." in logfile.read_text()
            ),
            timeout=30,
        )
        assert os.getsid(pid) != os.getsid(0)  # a session of its own: no terminal of ours
        assert os.getsid(pid) != pid  # not the session leader: can never get a terminal
        assert os.readlink(f"/proc/{pid}/cwd") == str(workdir)
        status = Path(f"/proc/{pid}/status").read_text()
        assert "Umask:\t0027" in status
        assert os.readlink(f"/proc/{pid}/fd/0") == os.devnull
        assert os.readlink(f"/proc/{pid}/fd/1") == str(logfile)
        assert os.readlink(f"/proc/{pid}/fd/2") == str(logfile)
        assert demo.add.delay(2, 2).get(timeout=20) == 4

        again = _manage(*args, cwd=start)  # the pidfile names a live worker: refused at once
        assert again.returncode != 0
        assert f"names a running process ({pid})" in again.stderr

        os.kill(pid, signal.SIGHUP)  # restart: same process (execv), same pidfile, no 2nd fork
        wait_for(lambda: logfile.read_text().count(" ready.") >= 2, timeout=60)
        assert _alive(pid) and pidfile.read_text().strip() == str(pid)
        assert demo.add.delay(3, 3).get(timeout=20) == 6
        text = logfile.read_text()
        assert text.count("] succeeded in ") == text.count("received") == 2  # logged once each

        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not _alive(pid), timeout=30, message="the daemon to stop")
        assert not pidfile.exists()
        assert "warm shutdown" in logfile.read_text()
    finally:
        if _alive(pid):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
