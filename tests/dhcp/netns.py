"""Real DHCP clients in a network namespace, for the DHCP integration
tests. Everything runs through the reactor, and every test removes what it
made (the namespace machinery is ``tests.netns_support``).

A ``Lab`` is one client namespace joined to the root namespace by a veth
pair: the host end (in the root namespace, where the test's luna2d binds)
gets ``<prefix>.254/24`` on a subnet of 198.18.0.0/16 (of the range set aside
for benchmarks and tests) not used on this machine; the client end is
``cli0`` inside the namespace, with the MAC the test asks for."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

from twisted.trial import unittest

from tests.netns_support import IP, Namespace, run, run_limited, the_reactor

__all__ = ["Lab", "the_reactor"]

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


class Lab(Namespace):
    """One client namespace and a veth pair to the root namespace."""

    def __init__(self, case: unittest.TestCase, folder: Path) -> None:
        super().__init__(case, "dhcp")
        self.folder = folder
        self.host_if = f"l2dh{self.tag}"[:15]

    @property
    def server(self) -> str:
        return f"{self.prefix}.254"

    @property
    def network(self) -> str:
        return f"{self.prefix}.0/24"

    async def create(self, mac: str) -> Lab:
        """Make the namespace, the veth pair and the addresses; cleanup is registered."""
        await self.add_namespace()
        await self.add_veth(self.host_if, CLIENT_IF)
        await self.set_mac(mac)
        await run(IP, "-n", self.ns, "link", "set", CLIENT_IF, "up")
        await run(IP, "addr", "add", f"{self.server}/24", "dev", self.host_if)
        await run(IP, "link", "set", self.host_if, "up")
        return self

    async def set_mac(self, mac: str) -> None:
        """Give the client interface another MAC (a different machine)."""
        await run(IP, "-n", self.ns, "link", "set", CLIENT_IF, "address", mac)

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
        argv = self.netns_exec(
            BUSYBOX,
            "udhcpc",
            "-f",
            "-q",
            "-n",
            "-t",
            "4",
            "-T",
            "1",
            "-A",
            "1",
            "-i",
            CLIENT_IF,
            "-s",
            str(script),
            *extra,
        )
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
        argv = self.netns_exec(
            DHCLIENT,
            "-4",
            "-1",
            "-v",
            "-sf",
            "/bin/true",
            "-lf",
            str(lease_file),
            "-pf",
            str(pid_file),
            CLIENT_IF,
        )
        output, reason = await run_limited(argv, timeout)
        try:
            text = lease_file.read_text() if lease_file.exists() else ""
            if "fixed-address" not in text:
                raise AssertionError(f"dhclient got no lease ({reason}):\n{output}")
            values = {"fixed-address": re.findall(r"fixed-address ([\d.]+);", text)[-1]}
            block = text[text.rindex("lease {") :]
            for name, value in re.findall(r"option ([\w-]+) (.+?);", block):
                values[name] = value.strip('"')
            return values
        finally:
            await run_limited(
                self.netns_exec(
                    DHCLIENT, "-x", "-pf", str(pid_file), "-lf", str(lease_file), CLIENT_IF
                ),
                10,
            )
