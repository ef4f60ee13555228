"""A boot network in a namespace for the end-to-end tests, the real daemon
inside it, and readers of what the daemon logged.

``BootLab`` makes one network namespace holding a bridge ``br0`` (the boot
network, ``<prefix>.0/25``, luna2d at ``.1``), a tap device ``tap0`` on that
bridge for a virtual machine, and a veth pair to the root namespace
(``<prefix>.128/30``: ``.129`` outside, ``.130`` inside) through which the
test speaks HTTP to the daemon. The VM's broadcasts never leave the
namespace. ``<prefix>`` is a /24 of 198.18.0.0/16 (set aside for tests and
benchmarks) that no root-namespace address uses (``tests.netns_support``
makes the namespace and removes it).

``NamespaceDaemon`` is ``tests.integration.test_daemon.Daemon`` run through
``ip netns exec``: the same folder, ini, readiness check and clean-up, with
the API on every address inside the namespace. Everything goes through the
reactor (spawnProcess, getProcessOutputAndValue, deferLater), and every
cleanup is registered before the thing it removes exists."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from twisted.internet import defer
from twisted.internet.error import ProcessExitedAlready
from twisted.trial import unittest

from tests.integration.test_daemon import _LIVE, Daemon, ini_text
from tests.netns_support import IP, Namespace, Output, pause, run, the_reactor

REPO = Path(__file__).resolve().parents[2]
BRIDGE, TAP, UPLINK = "br0", "tap0", "up0"


class BootLab(Namespace):
    """One namespace with the boot bridge, a tap device and a veth uplink."""

    def __init__(self, case: unittest.TestCase) -> None:
        super().__init__(case, "e2e")
        self.outside = f"l2e{self.tag}"[:15]

    @property
    def server(self) -> str:
        """luna2d's address on the boot network (``br0``)."""
        return f"{self.prefix}.1"

    @property
    def network(self) -> str:
        return f"{self.prefix}.0/25"

    @property
    def api_host(self) -> str:
        """The daemon's address as the root namespace reaches it."""
        return f"{self.prefix}.130"

    def address(self, host: int) -> str:
        assert 1 < host < 127
        return super().address(host)

    async def create(self) -> BootLab:
        """Make the namespace, bridge, tap and uplink; cleanup is registered first."""
        await self.add_namespace()
        ns = ("-n", self.ns)
        await run(
            IP, *ns, "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0", "stp_state", "0"
        )
        await run(IP, *ns, "tuntap", "add", "dev", TAP, "mode", "tap")
        await run(IP, *ns, "link", "set", TAP, "master", BRIDGE)
        await run(IP, *ns, "addr", "add", f"{self.server}/25", "dev", BRIDGE)
        await run(IP, *ns, "link", "set", TAP, "up")
        await run(IP, *ns, "link", "set", BRIDGE, "up")
        await self.add_veth(self.outside, UPLINK)
        await run(IP, *ns, "addr", "add", f"{self.api_host}/30", "dev", UPLINK)
        await run(IP, *ns, "link", "set", UPLINK, "up")
        # The root end needs no IPv6: nothing of the boot network's IPv6 reaches it anyway.
        await run(
            "/usr/sbin/sysctl",
            "-q",
            "-w",
            f"net.ipv6.conf.{self.outside}.disable_ipv6=1",
            check=False,
        )
        await run(IP, "addr", "add", f"{self.prefix}.129/30", "dev", self.outside)
        await run(IP, "link", "set", self.outside, "up")
        return self


def boot_ini(port: int, lab: BootLab) -> str:
    """The integration tests' ini with the API on every address of the
    namespace, DHCP on the bridge and TFTP on port 69 (the namespace's own)."""
    text = ini_text(port)
    for old, new in (
        (f"ENDPOINT = 127.0.0.1:{port}\n", f"ENDPOINT = 0.0.0.0:{port}\n"),
        ("[DHCP]\nENABLED = no\n", f"[DHCP]\nENABLED = yes\nINTERFACES = {BRIDGE}\n"),
        ("[TFTP]\nENABLED = no\n", "[TFTP]\nENABLED = yes\nPORT = 69\nROOT = var/tftpboot\n"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


class NamespaceDaemon(Daemon):
    """``twistd luna2d`` inside the lab's namespace, reached over the uplink."""

    def __init__(self, case: unittest.TestCase, lab: BootLab) -> None:
        super().__init__(case, ini="")
        self.lab = lab
        self.ini.write_text(boot_ini(self.port, lab))

    @property
    def url(self) -> str:
        return f"http://{self.lab.api_host}:{self.port}"

    @property
    def boot_url(self) -> str:
        """The API as machines on the boot network reach it."""
        return f"http://{self.lab.server}:{self.port}"

    def argv(self, *extra: str) -> list[str]:
        """The daemon's command line, run in the lab's namespace."""
        return self.lab.netns_exec(*super().argv(*extra))


class Spawned(Output):
    """A child process (in the lab's namespace) whose output is kept; killed
    by id at cleanup if still running."""

    def __init__(self, case: unittest.TestCase, argv: list[str], cwd: Path | None = None) -> None:
        super().__init__()
        self._line_waiters: list[tuple[re.Pattern, defer.Deferred]] = []
        reactor = the_reactor()
        self.transport_: Any = reactor.spawnProcess(
            self, argv[0], argv, env=dict(os.environ), path=str(cwd) if cwd else None
        )
        self.pid: int = self.transport_.pid  # the transport forgets it once the process is reaped
        _LIVE.add(self.pid)
        case.addCleanup(lambda: defer.ensureDeferred(self.kill()))

    def outReceived(self, data: bytes) -> None:
        super().outReceived(data)
        self._check_waiters()

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        _LIVE.discard(self.pid)
        super().processEnded(reason)
        self._check_waiters()

    def _check_waiters(self) -> None:
        for pattern, waiter in list(self._line_waiters):
            if pattern.search(self.text()):
                self._line_waiters.remove((pattern, waiter))
                waiter.callback(True)
            elif self.ended:
                self._line_waiters.remove((pattern, waiter))
                waiter.callback(False)

    def wait_for(self, pattern: str) -> defer.Deferred:
        """Fires True once the output matches ``pattern``, False if the process ends first."""
        waiter: defer.Deferred = defer.Deferred()
        self._line_waiters.append((re.compile(pattern), waiter))
        self._check_waiters()
        return waiter

    async def wait(self, timeout: float) -> bool:
        """Wait for the process to end by itself; False if it still runs after ``timeout`` s."""
        deadline = the_reactor().seconds() + timeout
        while not self.ended and the_reactor().seconds() < deadline:
            await pause(0.2)
        return self.ended

    async def kill(self) -> None:
        """SIGKILL by process id if still running, and wait for the end."""
        if not self.ended:
            try:
                self.transport_.signalProcess("KILL")
            except (OSError, ProcessExitedAlready):
                pass
            while not self.ended:
                await pause(0.05)


def watch_records(spawned: Spawned) -> list[dict[str, Any]]:
    """The JSON lines ``tests.e2e.netwatch`` printed so far."""
    records = []
    for line in spawned.text().splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
    return records


def start_watch(case: unittest.TestCase, lab: BootLab) -> Spawned:
    """The router advertiser and wire watcher on the lab's bridge."""
    return Spawned(
        case, lab.netns_exec(sys.executable, "-m", "tests.e2e.netwatch", BRIDGE), cwd=REPO
    )


@dataclass(frozen=True)
class HTTPLine:
    client: str
    method: str
    path: str
    status: int
    agent: str


@dataclass(frozen=True)
class TFTPLine:
    client: str
    name: str
    outcome: str
    size: int  # the bytes the client acknowledged
    blksize: int


@dataclass(frozen=True)
class DHCPLine:
    event: str
    mac: str
    interface: str
    address: str
    file: str


# The request log line of luna2d.resources.site.
_ACCESS = re.compile(
    r"(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) user=.*? "
    r"from (?P<client>[0-9.]+) agent='(?P<agent>[^']*)'"
)
_TFTP = re.compile(
    r"TFTP (?P<client>[0-9.]+):\d+ '(?P<name>[^']*)' (?P<outcome>[^:]+): "
    r"(?P<size>\d+) of \d+ bytes, blksize (?P<blksize>\d+)"
)
_DHCP = re.compile(
    r"DHCP (?P<event>\w+) (?P<mac>[0-9a-f]{2}(?::[0-9a-f]{2}){5}) on (?P<interface>\S+): "
    r"(?P<address>[0-9.]+) file '(?P<file>[^']*)'"
)


def daemon_log(text: str) -> list[HTTPLine | TFTPLine | DHCPLine]:
    """luna2d's request log in order: the HTTP request lines (paths
    unquoted), the TFTP server's one line per transfer and the DHCP
    server's one line per answer sent."""
    events: list[HTTPLine | TFTPLine | DHCPLine] = []
    for line in text.splitlines():
        match = _ACCESS.search(line)
        if match:
            events.append(
                HTTPLine(
                    match["client"],
                    match["method"],
                    unquote(match["path"]),
                    int(match["status"]),
                    match["agent"],
                )
            )
            continue
        match = _TFTP.search(line)
        if match:
            events.append(
                TFTPLine(
                    match["client"],
                    match["name"],
                    match["outcome"],
                    int(match["size"]),
                    int(match["blksize"]),
                )
            )
            continue
        match = _DHCP.search(line)
        if match:
            events.append(
                DHCPLine(
                    match["event"],
                    match["mac"],
                    match["interface"],
                    match["address"],
                    match["file"],
                )
            )
    return events


def ipxe_file(name: str) -> Path:
    """An iPXE binary as luna2d's TFTP fallback directory holds it (links followed)."""
    return Path("/usr/lib/ipxe", name).resolve()
