"""What the management commands do, one module per command (``manage.py djq_X`` → ``djq.cli.X``).

A command in ``djq/management/commands/`` only parses its options into the typed config of its
module here and makes one call; the call does the work and writes through an ``Output`` (the
command's stdout and stderr), so a command's logic is tested and typed like the rest of djq.
Errors meant for the user are ``CommandError``: Django prints them and exits 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Output:
    """Where a command writes: ``out`` and ``err`` take one line (Django's
    ``OutputWrapper.write``: the line ending is added)."""

    out: Callable[[str], object]
    err: Callable[[str], object]
