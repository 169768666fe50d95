"""Running a worker as a daemon, as Celery's daemonizing guide describes: ``--detach`` and the
``%`` variables of ``--pidfile``/``--logfile`` names.

Under systemd (docs/deployment.md) none of this is needed: run ``djq_worker`` in the foreground.
"""

from __future__ import annotations

import os
import socket
import sys

from django.db import connections

#: set in the daemon's environment to its pid: a SIGHUP restart (execv) does not detach again
DETACHED_ENV = "DJQ_DETACHED"
#: the directory the daemon was started from (relative --pidfile/--logfile after a restart)
START_DIR_ENV = "DJQ_DETACHED_FROM"


def node_format(path: str | None, nodename: str) -> str | None:
    """Celery's file-name variables: %p full node name, %h host name, %n the node name's name
    part, %d domain, %i pool process index (0: one file per worker), %I the same with separator
    (empty), %% a literal %."""
    if not path:
        return path
    name, _, host = nodename.partition("@")
    host = host or socket.gethostname()
    values = {
        "p": nodename,
        "h": host,
        "n": name,
        "d": host.partition(".")[2],
        "i": "0",
        "I": "",
        "%": "%",
    }
    out, i = [], 0
    while i < len(path):
        if path[i] == "%" and i + 1 < len(path) and path[i + 1] in values:
            out.append(values[path[i + 1]])
            i += 2
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def already_detached() -> bool:
    return os.environ.get(DETACHED_ENV) == str(os.getpid())


def absolute(path: str | None) -> str | None:
    """``path`` made absolute against the directory the worker was started from."""
    if not path:
        return path
    start = os.environ.get(START_DIR_ENV) if already_detached() else None
    return os.path.join(start or os.getcwd(), path)


def running_pid(pidfile: str | None) -> int | None:
    """The pid in ``pidfile`` if that process is alive (checked before detaching, so that the
    error reaches the terminal)."""
    if not pidfile or not os.path.exists(pidfile):
        return None
    try:
        pid = int(open(pidfile).read().strip() or 0)
        if pid <= 0 or pid == os.getpid():
            return None
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def detach(logfile: str | None, workdir: str | None = None, umask: int = 0o022) -> None:
    """Become a daemon: fork, new session (no controlling terminal), fork again (never
    re-acquire one), chdir, umask, stdin from /dev/null, stdout/stderr to ``logfile`` (or
    /dev/null). The original process exits 0; this function returns in the daemon.

    Call before anything opens files or threads; database connections are closed first (a
    connection must never cross a fork)."""
    connections.close_all()
    sys.stdout.flush()
    sys.stderr.flush()
    if sys.argv and os.path.exists(sys.argv[0]):  # SIGHUP re-executes sys.argv after chdir
        sys.argv[0] = os.path.abspath(sys.argv[0])
    logfile = absolute(logfile)
    os.environ[START_DIR_ENV] = os.getcwd()
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir(workdir or "/")
    os.umask(umask)
    null = os.open(os.devnull, os.O_RDWR)
    out = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666) if logfile else null
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    for fd in {null, out}:
        os.close(fd)
    os.environ[DETACHED_ENV] = str(os.getpid())
