"""Celery's command-line flags that djq accepts so that a Celery command line starts unchanged.

Flags with a meaning here are plain options of ``djq_worker``/``djq_beat`` (``--maxtasksperchild``
is ``--max-tasks-per-child``, ``-P gevent`` the threads pool). The ones below have none: each is
accepted and, when given, logged once at start as a warning that says why it is not needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger("djq")


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]  # option strings, e.g. ("-S", "--statedb")
    reason: str  # why djq does not need it
    kwargs: dict = field(default_factory=dict)  # argparse keyword arguments (default: a switch)

    @property
    def dest(self) -> str:
        return "celery_" + self.names[-1].lstrip("-").replace("-", "_")


WORKER_FLAGS = (
    Flag(("--without-gossip",), "workers share their state through the database, not gossip"),
    Flag(("--without-mingle",), "nothing to sync at start: revokes and limits are in the database"),
    Flag(("--without-heartbeat",), "djq's heartbeat is its jobs' lease and stays on"),
    Flag(
        ("-O", "--optimization"),
        "djq hands a job only to a free pool slot (as -O fair does)",
        {"metavar": "fair|default", "choices": ["fair", "default"]},
    ),
    Flag(
        ("-S", "--statedb"),
        "revokes are stored in the job rows and survive restarts",
        {"metavar": "FILE"},
    ),
    Flag(
        ("--heartbeat-interval",),
        "the heartbeat runs every lease / 3 (--lease)",
        {"metavar": "SECONDS"},
    ),
    Flag(
        ("-s", "--schedule-filename"),
        "beat (-B) keeps its state in the database",
        {"metavar": "FILE"},
    ),
    Flag(
        ("--scheduler",),
        "beat (-B) always reads its schedules from the database",
        {"metavar": "CLASS"},
    ),
)

BEAT_FLAGS = (
    Flag(
        ("-s", "--schedule"),
        "beat keeps its state in the database, not in a file",
        {"metavar": "FILE"},
    ),
    Flag(
        ("-S", "--scheduler"),
        "schedules always live in the database (PeriodicTask rows, as "
        "with django_celery_beat's DatabaseScheduler)",
        {"metavar": "CLASS"},
    ),
)

#: pools of Celery that djq does not have → the pool that takes their place
POOL_STANDINS = {"eventlet": "threads", "gevent": "threads", "processes": "prefork"}


def add_flags(parser, flags: tuple[Flag, ...]) -> None:
    for flag in flags:
        kwargs = flag.kwargs or {"action": "store_true"}
        parser.add_argument(
            *flag.names, dest=flag.dest, help=f"(Celery; ignored: {flag.reason})", **kwargs
        )


def warn_given(options: dict, flags: tuple[Flag, ...], command: str) -> None:
    """One warning line per Celery flag given on the command line."""
    for flag in flags:
        value = options.get(flag.dest)
        if value not in (None, False):
            logger.warning("%s: %s is not needed: %s", command, "/".join(flag.names), flag.reason)


def standin_pool(pool: str | None, command: str) -> str | None:
    """``-P eventlet`` / ``-P gevent``: the threads pool, with a warning."""
    if pool not in POOL_STANDINS:
        return pool
    logger.warning(
        "%s: there is no %s pool in djq; using the %s pool (-P %s)",
        command,
        pool,
        POOL_STANDINS[pool],
        POOL_STANDINS[pool],
    )
    return POOL_STANDINS[pool]
