"""Helpers shared by the IPMI tests: a reactor-safe TestCase, an in-memory
wire between a Session and a FakeBMC, and an ipmi_sim process the test
configures and owns."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol, task
from twisted.internet.error import ProcessExitedAlready
from twisted.trial import unittest

from luna2d.ipmi import codec
from luna2d.ipmi.session import Outcome, Output, Session
from tests.ipmi.fakebmc import FakeBMC
from tests.support import Output as ProcessOutput
from tests.support import the_reactor

IPMI_SIM = shutil.which("ipmi_sim") or "/usr/bin/ipmi_sim"
IPMITOOL = shutil.which("ipmitool") or "/usr/bin/ipmitool"


def sleep(seconds: float) -> defer.Deferred:
    """A Deferred that fires after ``seconds`` on the reactor."""
    return task.deferLater(the_reactor(), seconds, lambda: None)


# -- an in-memory wire --------------------------------------------------------------------------
@dataclass
class Wire:
    """Carries datagrams between a Session and a FakeBMC with no sockets;
    time only moves when the session asks to be ticked. ``lose_to_bmc`` /
    ``lose_to_console`` decide, per datagram index, what gets lost."""

    session: Session
    bmc: FakeBMC
    now: float = 1000.0
    lose_to_bmc: Callable[[int, bytes], bool] = lambda i, d: False
    lose_to_console: Callable[[int, bytes], bool] = lambda i, d: False
    tamper: Callable[[bytes], bytes] = lambda d: d
    to_bmc: list[bytes] = field(default_factory=list)
    to_console: list[bytes] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    ticks: list[float] = field(default_factory=list)
    dropped: int = 0
    finished: bool = False

    def _take(self, output: Output) -> Output:
        if output.outcome is not None:
            self.outcomes.append(output.outcome)
        if output.dropped:
            self.dropped += 1
        self.finished = self.finished or output.finished
        return output

    def run(self, limit: int = 500) -> Outcome:
        """Run until the session finishes; its one outcome."""
        output = self._take(self.session.start(self.now))
        pending = list(output.send)
        deadline = output.deadline
        for _ in range(limit):
            if self.finished and not pending:
                break
            if pending:
                datagram = pending.pop(0)
                index = len(self.to_bmc)
                self.to_bmc.append(datagram)
                if self.lose_to_bmc(index, datagram):
                    continue
                for reply in self.bmc.handle(codec.decode(datagram), self.now):
                    reply = self.tamper(reply)
                    index = len(self.to_console)
                    self.to_console.append(reply)
                    if self.lose_to_console(index, reply) or self.finished:
                        continue
                    output = self._take(self.session.receive(codec.decode(reply), self.now))
                    pending.extend(output.send)
                    deadline = output.deadline if not output.dropped else deadline
                continue
            if deadline is None:
                break
            self.now = max(self.now, deadline)
            self.ticks.append(self.now)
            output = self._take(self.session.tick(self.now))
            pending.extend(output.send)
            deadline = output.deadline
        assert len(self.outcomes) == 1, f"expected one outcome, got {self.outcomes}"
        return self.outcomes[0]


# -- ipmi_sim -------------------------------------------------------------------------------------
CHASSIS_SCRIPT = """#!/bin/sh
# Records every call; keeps the power state in a file beside it.
here=$(dirname "$0")
echo "$*" >> "$here/calls"
shift
op=$1
shift
if [ "$op" = get ]; then
  for p in "$@"; do
    case $p in
      power) echo "power:$(cat "$here/power" 2>/dev/null || echo 0)";;
      boot) echo "boot:default";;
    esac
  done
  exit 0
fi
if [ "$op" = set ]; then
  while [ $# -ge 2 ]; do
    if [ "$1" = power ]; then echo "$2" > "$here/power"; fi
    shift 2
  done
  exit 0
fi
exit 1
"""

EMU = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 0x09 0x08 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
{sel}
mc_enable 0x20
"""

# Two system events: a temperature threshold crossing and a processor thermal trip.
SEL_EVENTS = [
    "0x02 0x00 0x00 0x00 0x00 0x20 0x00 0x04 0x01 0x01 0x01 0x57 0x70 0xa0",
    "0x02 0x00 0x00 0x00 0x00 0x20 0x00 0x04 0x07 0x10 0x6f 0x01 0xff 0xff",
]


def lan_conf(name: str, host: str, port: int, script: Path, users: list[tuple[str, str]]) -> str:
    """An ipmi_sim lan.conf: one LAN channel on host:port, the chassis script, the users as "
    "admins."""
    lines = [
        f'name "{name}"',
        "set_working_mc 0x20",
        "  startlan 1",
        f"    addr {host} {port}",
        "    priv_limit admin",
        "    allowed_auths_callback none md2 md5 straight",
        "    allowed_auths_user none md2 md5 straight",
        "    allowed_auths_operator none md2 md5 straight",
        "    allowed_auths_admin none md2 md5 straight",
        "    guid a123456789abcdefa123456789abcdef",
        "  endlan",
        f'  chassis_control "{script} 0x20"',
        '  user 1 false "" "unused" user 10 none md2 md5 straight',
    ]
    for number, (user, password) in enumerate(users, start=2):
        lines.append(f'  user {number} true "{user}" "{password}" admin 10 none md2 md5 straight')
    return "\n".join(lines) + "\n"


def port_623_free(host: str) -> bool:
    """Whether nothing listens on UDP 623 at ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, 623))
        except OSError:
            return False
    return True


def free_loopback() -> str:
    """A 127.x.y.z address where nothing listens on UDP 623 right now."""
    for _ in range(200):
        host = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        if port_623_free(host):
            return host
    raise RuntimeError("no free loopback address for a simulated BMC")


def free_subnet() -> str:
    """A 127.a.b (a /24 prefix) whose .10-.19 are free on UDP 623."""
    for _ in range(100):
        prefix = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
        if all(port_623_free(f"{prefix}.{host}") for host in range(10, 20)):
            return prefix
    raise RuntimeError("no free loopback /24")


class Simulator:
    """One ipmi_sim process on a loopback address, with users, a chassis
    control script that records calls, and a seeded SEL."""

    def __init__(
        self,
        case: unittest.TestCase,
        users: list[tuple[str, str]] | None = None,
        power: bool = False,
        host: str | None = None,
    ) -> None:
        self.case = case
        self.users = users or [("admin", "s3cret-pw")]
        self.folder = Path(tempfile.mkdtemp(prefix="luna2d-ipmisim-"))
        case.addCleanup(shutil.rmtree, str(self.folder), True)
        self.host = host or free_loopback()
        self.port = 623
        (self.folder / "state").mkdir()
        self.script = self.folder / "chassis"
        self.script.write_text(CHASSIS_SCRIPT)
        self.script.chmod(self.script.stat().st_mode | stat.S_IXUSR)
        (self.folder / "power").write_text("1\n" if power else "0\n")
        (self.folder / "lan.conf").write_text(
            lan_conf("bmc", self.host, self.port, self.script, self.users)
        )
        (self.folder / "sim.emu").write_text(
            EMU.format(sel="\n".join(f"sel_add 0x20 {e}" for e in SEL_EVENTS))
        )
        self.process: Any = None
        self.watch = ProcessOutput()

    @property
    def calls(self) -> list[str]:
        """Every chassis_control call so far, without the device argument."""
        path = self.folder / "calls"
        if not path.exists():
            return []
        return [line.split(" ", 1)[1] for line in path.read_text().splitlines() if " " in line]

    @property
    def sets(self) -> list[str]:
        """The chassis_control calls that changed something ("set ..."), in order."""
        return [call for call in self.calls if call.startswith("set")]

    @property
    def power(self) -> str:
        """The simulated chassis power as the script keeps it: '0' or '1'."""
        return (self.folder / "power").read_text().strip()

    async def start(self) -> Simulator:
        """Spawn ipmi_sim and wait until it answers a presence ping."""
        reactor = the_reactor()
        args = [
            IPMI_SIM,
            "-c",
            str(self.folder / "lan.conf"),
            "-f",
            str(self.folder / "sim.emu"),
            "-s",
            str(self.folder / "state"),
            "-n",
        ]
        self.process = reactor.spawnProcess(
            self.watch, IPMI_SIM, args, env=dict(os.environ), path=str(self.folder)
        )
        self.case.addCleanup(self.stop)
        # Ready once it answers a presence ping on its address.
        for _ in range(100):
            if self.watch.ended:
                raise RuntimeError(f"ipmi_sim exited: {self.watch.text()}")
            if await self._pong():
                return self
            await sleep(0.05)
        raise RuntimeError(f"ipmi_sim on {self.host} did not answer")

    async def _pong(self) -> bool:
        reactor = the_reactor()
        got: defer.Deferred = defer.Deferred()

        class Ping(protocol.DatagramProtocol):
            def datagramReceived(self, data: bytes, addr: Any) -> None:
                if not got.called:
                    got.callback(True)

        port = reactor.listenUDP(0, Ping(), interface="127.0.0.1")
        try:
            port.write(codec.AsfPacket.ping(1).encode(), (self.host, self.port))

            def silent() -> None:
                if not got.called:
                    got.callback(False)

            timer = reactor.callLater(0.1, silent)
            answered = await got
            if timer.active():
                timer.cancel()
            return bool(answered)
        finally:
            await port.stopListening()

    async def stop(self) -> None:
        """Kill the simulator (if running) and wait for it to end."""
        if self.process is not None and not self.watch.ended:
            with contextlib.suppress(ProcessExitedAlready):
                self.process.signalProcess(signal.SIGKILL)
            await self.watch.done
