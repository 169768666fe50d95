"""``python -m chaos``: make the namespaces, start a durable throwaway PostgreSQL listening on
their addresses too, run the scenarios inside it, tear everything down.

The outer process owns what lives outside the cluster (network namespaces); the inner one
(``CHAOS_INNER=1``, started by ``scripts/pg-throwaway run``) owns the cluster's contents.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import netns

REPO_ROOT = Path(__file__).resolve().parent.parent
#: the campaign's lease: short, so that rescues happen within the run (seconds; --short: 3)
DEFAULT_LEASE = 6.0
SHORT_LEASE = 3.0
#: the scenarios, in the order they run (chaos.scenarios.SCENARIOS; named here so that the outer
#: process can check --only without setting Django up)
NAMES = (
    "bad_input",
    "sigstop",
    "partition",
    "pg_crash",
    "kill9",
    "atomic",
    "hosts3",
    "enqueue_100k",
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="small sizes (make test)")
    parser.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(NAMES)}")
    parser.add_argument("--lease", type=float, help=f"worker lease (s; {DEFAULT_LEASE:.0f})")
    args = parser.parse_args(argv)
    args.only = [s for s in args.only.split(",") if s] or list(NAMES)
    unknown = sorted(set(args.only) - set(NAMES))
    if unknown:
        parser.error(f"--only: unknown scenario(s) {', '.join(unknown)}")
    if args.lease is None:
        args.lease = SHORT_LEASE if args.short else DEFAULT_LEASE
    if not 1 <= args.lease <= 120:
        parser.error(f"--lease: {args.lease} is not between 1 and 120 seconds")
    return args


def outer(argv: list[str]) -> int:
    parse(argv)  # (errors before anything is created)
    hosts, error = [], ""
    try:
        hosts = netns.create(3)
    except netns.NetError as exc:
        error = str(exc)
    env = {
        **os.environ,
        "CHAOS_INNER": "1",
        "DJQ_PG_DURABLE": "1",
        "DJQ_PG_LISTEN": ",".join(["127.0.0.1", *(h.server_ip for h in hosts)]),
        "CHAOS_HOSTS": netns.dumps_hosts(hosts),
        "CHAOS_NET_ERROR": error,
    }
    script = REPO_ROOT / "scripts" / "pg-throwaway"
    try:
        proc = subprocess.Popen(
            [str(script), "run", sys.executable, "-m", "chaos", *argv], cwd=REPO_ROOT, env=env
        )
        try:
            return proc.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the whole foreground group: give the inner process time to stop its
            # workers and pg-throwaway time to remove its cluster (subprocess.run would SIGKILL
            # the script after 0.25 s, leaving a durable server running)
            try:
                proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    finally:
        netns.destroy(hosts)


def inner(argv: list[str]) -> int:
    args = parse(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    import django

    django.setup()
    # (after django.setup(): these import models)
    from django.core.management import call_command

    from .harness import Cluster, create_side_table
    from .scenarios import Run, run_one

    call_command("migrate", verbosity=0)
    create_side_table()
    cluster = Cluster()
    hosts = netns.loads_hosts(os.environ.get("CHAOS_HOSTS", ""))
    if hosts:
        cluster.allow_network(netns.network(hosts))
    log_dir = Path(tempfile.mkdtemp(prefix="djq-chaos-"))
    print(
        f"chaos: lease {args.lease:.0f}s, {'short' if args.short else 'full'} run, "
        f"logs in {log_dir}",
        flush=True,
    )
    run = Run(
        short=args.short,
        lease=args.lease,
        log_dir=log_dir,
        cluster=cluster,
        hosts=hosts,
        net_error=os.environ.get("CHAOS_NET_ERROR", ""),
    )
    failed = 0
    for name in args.only:
        started = time.monotonic()
        outcome = run_one(run, name)
        outcome.figures["scenario_s"] = time.monotonic() - started
        print(outcome.line(), flush=True)
        failed += not outcome.passed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit((inner if os.environ.get("CHAOS_INNER") else outer)(sys.argv[1:]))
