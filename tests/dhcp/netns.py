"""Network namespaces, veth pairs and real DHCP clients for the DHCP
integration tests. Everything runs through the reactor (spawnProcess,
getProcessOutputAndValue, deferLater) and every test removes what it made.

A ``Lab`` is one client namespace joined to the root namespace by a veth
pair: the host end (in the root namespace, where the test's luna2d binds)
gets ``<prefix>.254/24`` on a subnet of 198.18.0.0/16 (of the range set aside
for benchmarks and tests) not used on this machine; the client end is
``cli0`` inside the namespace, with the MAC the test asks for."""

from __future__ import annotations

import itertools
import os
import random
import re
import shutil
import signal
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol, task
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "/sbin/ip"
BUSYBOX = "/usr/bin/busybox" if os.path.exists("/usr/bin/busybox") else "/bin/busybox"
DHCLIENT = "/usr/sbin/dhclient" if os.path.exists("/usr/sbin/dhclient") else "/sbin/dhclient"
CLIENT_IF = "cli0"
_COUNTER = itertools.count(1)

UDHCPC_SCRIPT = """#!/bin/sh
# Records what udhcpc was given; configures nothing.
if [ "$1" = bound ] || [ "$1" = renew ]; then
    env > "$LUNA_TEST_OUT.tmp" && mv "$LUNA_TEST_OUT.tmp" "$LUNA_TEST_OUT"
fi
exit 0
"""


def the_reactor() -> Any:
    from twisted.internet import reactor

    return reactor


async def run(*argv: str, check: bool = True) -> tuple[str, str, int]:
    """Run a command to its end (through the reactor); (stdout, stderr, status)."""
    out, err, code = await getProcessOutputAndValue(argv[0], argv[1:], env=dict(os.environ))
    if check and code != 0:
        raise AssertionError(f"{' '.join(argv)} exited {code}: {err.decode(errors='replace')}")
    return out.decode(errors="replace"), err.decode(errors="replace"), code


class _Process(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.out = bytearray()
        self.ended: defer.Deferred = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(reason.value)


async def run_limited(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[str, Any]:
    """Run a command, killing it after ``timeout`` s; (its output, exit reason)."""
    reactor = the_reactor()
    proc = _Process()
    transport = reactor.spawnProcess(proc, argv[0], argv, env={**os.environ, **(env or {})})
    timer = reactor.callLater(timeout, lambda: transport.signalProcess("KILL"))
    try:
        reason = await proc.ended
    finally:
        if timer.active():
            timer.cancel()
    return proc.out.decode(errors="replace"), reason


class Lab:
    """One client namespace and a veth pair to the root namespace."""

    def __init__(self, case: unittest.TestCase, folder: Path) -> None:
        self.case = case
        self.folder = folder
        number = next(_COUNTER)
        tag = f"{os.getpid() % 100000}{number}"
        self.ns = f"luna2d-dhcp-{tag}"
        self.host_if = f"l2dh{tag}"[:15]
        self.peer_if = f"l2dp{tag}"[:15]
        self.prefix = ""

    @property
    def server(self) -> str:
        return f"{self.prefix}.254"

    @property
    def network(self) -> str:
        return f"{self.prefix}.0/24"

    def address(self, host: int) -> str:
        return f"{self.prefix}.{host}"

    async def _free_prefix(self) -> str:
        out, _, _ = await run(IP, "-4", "-o", "addr", "show")
        used = set(re.findall(r"inet (198\.18\.\d+)\.", out))
        for _ in range(200):
            candidate = f"198.{18}.{random.randrange(256)}"
            if candidate not in used:
                return candidate
        raise AssertionError("no free /24 in 198.18.0.0/16")

    async def create(self, mac: str) -> Lab:
        """Make the namespace, the veth pair and the addresses; cleanup is registered."""
        self.case.addCleanup(lambda: defer.ensureDeferred(self.destroy()))
        self.prefix = await self._free_prefix()
        etc = Path("/etc/netns") / self.ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        await run(IP, "netns", "add", self.ns)
        await run(IP, "link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if)
        await run(IP, "link", "set", self.peer_if, "netns", self.ns)
        await run(IP, "-n", self.ns, "link", "set", self.peer_if, "name", CLIENT_IF)
        await self.set_mac(mac)
        await run(IP, "-n", self.ns, "link", "set", "lo", "up")
        await run(IP, "-n", self.ns, "link", "set", CLIENT_IF, "up")
        await run(IP, "addr", "add", f"{self.server}/24", "dev", self.host_if)
        await run(IP, "link", "set", self.host_if, "up")
        return self

    async def set_mac(self, mac: str) -> None:
        """Give the client interface another MAC (a different machine)."""
        await run(IP, "-n", self.ns, "link", "set", CLIENT_IF, "address", mac)

    async def destroy(self) -> None:
        """Kill what still runs in the namespace, delete it and the veth pair."""
        out, _, _ = await run(IP, "netns", "pids", self.ns, check=False)
        for pid in out.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        await run(IP, "netns", "del", self.ns, check=False)
        await run(IP, "link", "del", self.host_if, check=False)
        shutil.rmtree(Path("/etc/netns") / self.ns, ignore_errors=True)

    # -- clients ------------------------------------------------------------------
    async def udhcpc(self, *extra: str, timeout: float = 20.0) -> dict[str, str]:
        """Run busybox udhcpc once in the namespace; what its script saw on
        ``bound`` (udhcpc's variables: ip, subnet, router, dns, domain,
        hostname, ntpsrv, lease, serverid, siaddr, boot_file, ...)."""
        script = self.folder / "udhcpc.sh"
        if not script.exists():
            script.write_text(UDHCPC_SCRIPT)
            script.chmod(0o755)
        out_file = self.folder / f"udhcpc-{next(_COUNTER)}.env"
        argv = [IP, "netns", "exec", self.ns, BUSYBOX, "udhcpc", "-f", "-q", "-n", "-t", "4", "-T", "1",
                "-A", "1", "-i", CLIENT_IF, "-s", str(script), *extra]
        output, reason = await run_limited(argv, timeout, env={"LUNA_TEST_OUT": str(out_file)})
        if not out_file.exists():
            raise AssertionError(f"udhcpc got no lease ({reason}):\n{output}")
        values = {}
        for line in out_file.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key] = value
        return values

    async def dhclient(self, timeout: float = 30.0) -> dict[str, str]:
        """Run ISC dhclient once (-1) in the namespace, read its lease file,
        stop it (-x); the lease's fixed-address and options by name."""
        run_id = next(_COUNTER)
        lease_file = self.folder / f"dhclient-{run_id}.leases"
        pid_file = self.folder / f"dhclient-{run_id}.pid"
        argv = [IP, "netns", "exec", self.ns, DHCLIENT, "-4", "-1", "-v", "-sf", "/bin/true",
                "-lf", str(lease_file), "-pf", str(pid_file), CLIENT_IF]
        output, reason = await run_limited(argv, timeout)
        try:
            text = lease_file.read_text() if lease_file.exists() else ""
            if "fixed-address" not in text:
                raise AssertionError(f"dhclient got no lease ({reason}):\n{output}")
            values = {"fixed-address": re.findall(r"fixed-address ([\d.]+);", text)[-1]}
            block = text[text.rindex("lease {"):]
            for name, value in re.findall(r"option ([\w-]+) (.+?);", block):
                values[name] = value.strip('"')
            return values
        finally:
            await run_limited([IP, "netns", "exec", self.ns, DHCLIENT, "-x", "-pf", str(pid_file),
                               "-lf", str(lease_file), CLIENT_IF], 10)


async def pause(seconds: float) -> None:
    await task.deferLater(the_reactor(), seconds, lambda: None)
