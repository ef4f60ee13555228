"""Network namespaces and child processes for the tests that put real
clients, real machines or the real daemon on a network of their own
(tests/dhcp, tests/e2e).

``Namespace`` is one namespace a test creates, with the cleanup that
removes it registered before it exists: its loopback up, ``/etc/netns``
giving it a resolver on its own loopback (so nothing run in it asks the
host's), a /24 of 198.18.0.0/16 (set aside for tests and benchmarks) that
no root-namespace address uses, and veth pairs to the root namespace. Its
traffic stays on its own links and on the root ends of its veth pairs.
Everything goes through the reactor (spawnProcess,
getProcessOutputAndValue, deferLater)."""

from __future__ import annotations

import itertools
import os
import random
import re
import shutil
import signal
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from tests.support import Output, the_reactor

__all__ = ["IP", "Namespace", "Output", "free_prefix", "pause", "run", "run_limited", "the_reactor"]

IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "/sbin/ip"
NETNS_ETC = Path("/etc/netns")
_COUNTER = itertools.count(1)


async def run(*argv: str, check: bool = True) -> tuple[str, str, int]:
    """Run a command to its end through the reactor; (stdout, stderr, status)."""
    out, err, code = await getProcessOutputAndValue(argv[0], argv[1:], env=dict(os.environ))
    if check and code != 0:
        raise AssertionError(f"{' '.join(argv)} exited {code}: {err.decode(errors='replace')}")
    return out.decode(errors="replace"), err.decode(errors="replace"), code


async def pause(seconds: float) -> None:
    await task.deferLater(the_reactor(), seconds, lambda: None)


async def run_limited(
    argv: list[str], timeout: float, env: dict[str, str] | None = None
) -> tuple[str, Any]:
    """Run a command, killing it after ``timeout`` s; (its output, exit reason)."""
    reactor = the_reactor()
    proc = Output()
    transport = reactor.spawnProcess(proc, argv[0], argv, env={**os.environ, **(env or {})})
    timer = reactor.callLater(timeout, lambda: transport.signalProcess("KILL"))
    try:
        reason = await proc.done
    finally:
        if timer.active():
            timer.cancel()
    return proc.text(), reason


async def free_prefix() -> str:
    """``198.18.<n>``: a /24 of 198.18.0.0/16 that no root-namespace address is in."""
    out, _, _ = await run(IP, "-4", "-o", "addr", "show")
    used = set(re.findall(r"inet (198\.18\.\d+)\.", out))
    for _ in range(200):
        candidate = f"198.18.{random.randrange(256)}"
        if candidate not in used:
            return candidate
    raise AssertionError("no free /24 in 198.18.0.0/16")


class Namespace:
    """One network namespace ``luna2d-<kind>-<tag>`` of a test; ``tag`` (the
    process id and a count) is short enough for interface names built from it."""

    def __init__(self, case: unittest.TestCase, kind: str) -> None:
        self.case = case
        self.tag = f"{os.getpid() % 100000}{next(_COUNTER)}"
        self.ns = f"luna2d-{kind}-{self.tag}"
        self.prefix = ""
        self._outside: list[str] = []

    def address(self, host: int) -> str:
        return f"{self.prefix}.{host}"

    def netns_exec(self, *argv: str) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec`` execs it, so
        the process id is the command's own)."""
        return [IP, "netns", "exec", self.ns, *argv]

    async def add_namespace(self) -> None:
        """Register the cleanup, pick the /24, make the namespace with its
        resolver file and its loopback up."""
        self.case.addCleanup(lambda: defer.ensureDeferred(self.destroy()))
        self.prefix = await free_prefix()
        etc = NETNS_ETC / self.ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        await run(IP, "netns", "add", self.ns)
        await run(IP, "-n", self.ns, "link", "set", "lo", "up")

    async def add_veth(self, outside: str, inside: str) -> None:
        """A veth pair: ``outside`` in the root namespace, its peer moved into
        the namespace and named ``inside``; both down, with no address. The
        pair goes with ``outside`` at cleanup."""
        self._outside.append(outside)
        peer = f"l2p{self.tag}"[:15]
        await run(IP, "link", "add", outside, "type", "veth", "peer", "name", peer)
        await run(IP, "link", "set", peer, "netns", self.ns)
        await run(IP, "-n", self.ns, "link", "set", peer, "name", inside)

    async def destroy(self) -> None:
        """Kill whatever still runs in the namespace (only what the test
        started there can be), wait until it is gone, then delete the
        namespace, its veth pairs and its ``/etc/netns`` folder."""
        out, _, _ = await run(IP, "netns", "pids", self.ns, check=False)
        for pid in out.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        for _ in range(50):
            out, _, _ = await run(IP, "netns", "pids", self.ns, check=False)
            if not out.split():
                break
            await pause(0.1)
        await run(IP, "netns", "del", self.ns, check=False)
        for outside in self._outside:
            await run(IP, "link", "del", outside, check=False)
        shutil.rmtree(NETNS_ETC / self.ns, ignore_errors=True)
