"""Network namespaces for the campaign's "hosts": one veth pair each, addresses it makes up.

Host ``i`` is the namespace ``djqc<K>n<i>``; its veth pair has ``10.200.K.(4i+1)/30`` on the
root side (where PostgreSQL listens) and ``10.200.K.(4i+2)/30`` inside. ``K`` is picked from the
process id among the 10.200.K.0/24 networks no interface uses yet, so concurrent campaigns do not
collide. No traffic goes anywhere but to these addresses. A partition is the namespace's end of
the link brought down (from inside the namespace); healing brings it up again.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass


@dataclass
class Host:
    netns: str
    outer_if: str
    inner_if: str
    server_ip: str  # the root side: PostgreSQL listens here
    ip: str  # the namespace side


class NetError(RuntimeError):
    """A namespace command failed; the message quotes the command and its error."""


def ip(*args: str, netns: str | None = None) -> str:
    argv = ["ip", *(["netns", "exec", netns, "ip"] if netns else []), *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except FileNotFoundError as exc:
        raise NetError(f"{' '.join(argv)}: {exc}") from exc
    if done.returncode != 0:
        raise NetError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _free_block() -> int:
    used = ip("-4", "-o", "addr", "show")
    start = os.getpid() % 200 + 20
    for k in [*range(start, 250), *range(20, start)]:
        if f"10.200.{k}." not in used:
            return k
    raise NetError("no free 10.200.K.0/24 network for the campaign's namespaces")


def create(count: int) -> list[Host]:
    """Make ``count`` namespaces, each linked to the root namespace by a veth pair."""
    block = _free_block()
    hosts: list[Host] = []
    try:
        for i in range(count):
            host = Host(
                f"djqc{block}n{i}",
                f"djqc{block}h{i}",
                f"djqc{block}p{i}",
                f"10.200.{block}.{4 * i + 1}",
                f"10.200.{block}.{4 * i + 2}",
            )
            hosts.append(host)
            ip("netns", "add", host.netns)
            ip("link", "add", host.outer_if, "type", "veth", "peer", "name", host.inner_if)
            ip("link", "set", host.inner_if, "netns", host.netns)
            ip("addr", "add", f"{host.server_ip}/30", "dev", host.outer_if)
            ip("link", "set", host.outer_if, "up")
            ip("addr", "add", f"{host.ip}/30", "dev", host.inner_if, netns=host.netns)
            ip("link", "set", host.inner_if, "up", netns=host.netns)
            ip("link", "set", "lo", "up", netns=host.netns)
    except NetError:
        destroy(hosts)
        raise
    return hosts


def destroy(hosts: list[Host]) -> None:
    """Remove the namespaces and links (deleting one end of a veth pair deletes both)."""
    for host in hosts:
        for args in (("link", "del", host.outer_if), ("netns", "del", host.netns)):
            try:
                ip(*args)
            except NetError:
                pass


def partition(host: Host) -> None:
    ip("link", "set", host.inner_if, "down", netns=host.netns)


def heal(host: Host) -> None:
    ip("link", "set", host.inner_if, "up", netns=host.netns)


def network(hosts: list[Host]) -> str:
    """The /24 the hosts live in (for pg_hba.conf)."""
    return hosts[0].server_ip.rsplit(".", 1)[0] + ".0/24"


def dumps_hosts(hosts: list[Host]) -> str:
    return json.dumps([asdict(h) for h in hosts])


def loads_hosts(text: str) -> list[Host]:
    return [Host(**h) for h in json.loads(text)] if text else []
