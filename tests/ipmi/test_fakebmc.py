"""The lightweight simulated BMC (used by the client tests and the benchmark's
fleet) answers like OpenIPMI's ipmi_sim: ``ipmitool -I lanplus -C 3`` and
luna2d's client get the same answers from both for power status and
control, identify, device ID and the SEL. And ``ipmitool -C 17`` completes
sessions with it: since the simulated BMC derives its keys with
luna2d.ipmi.crypto, that is the independent proof of luna2d's
RAKP-HMAC-SHA256 / HMAC-SHA256-128 / AES suite (ipmi_sim has no suite 17)."""

from __future__ import annotations

import os
import re

from twisted.internet.utils import getProcessOutputAndValue

from luna2d.ipmi import commands
from luna2d.ipmi.client import IPMIClient, Target
from luna2d.ipmi.session import Credentials, Success
from tests.ipmi.fakebmc import FakeBMC, FakeBMCProtocol
from tests.ipmi.support import (
    IPMITOOL,
    SEL_EVENTS,
    Simulator,
    free_loopback,
)
from tests.support import ReactorCase, the_reactor

USER, PASSWORD = "admin", "s3cret-pw"


async def ipmitool(host: str, port: int, suite: int, *args: str) -> str:
    """ipmitool's stdout against a BMC (password by environment); AssertionError on failure."""
    env = dict(os.environ, IPMI_PASSWORD=PASSWORD)
    out, err, code = await getProcessOutputAndValue(
        IPMITOOL,
        ["-I", "lanplus", "-C", str(suite), "-H", host, "-p", str(port), "-U", USER, "-E", *args],
        env=env,
    )
    if code != 0:
        raise AssertionError(
            f"ipmitool {' '.join(args)} failed ({code}): {(out + err).decode(errors='replace')}"
        )
    return out.decode(errors="replace")


def sel_columns(text: str) -> list[list[str]]:
    """ipmitool's sel list without the timestamp columns (the simulators'
    clocks differ)."""
    rows = [[part.strip() for part in line.split("|")] for line in text.splitlines() if "|" in line]
    return [[row[0], *row[3:]] for row in rows]


def mc_fields(text: str) -> dict[str, str]:
    """The identity fields of ipmitool's mc info."""
    fields = dict(re.findall(r"^(\w[\w ]*?)\s+: (.*)$", text, re.MULTILINE))
    keep = (
        "Device ID",
        "Device Revision",
        "Firmware Revision",
        "IPMI Version",
        "Manufacturer ID",
        "Product ID",
    )
    return {key: fields[key] for key in keep}


class AgainstIpmiSimTests(ReactorCase):
    async def test_same_answers(self) -> None:
        """ipmitool (suite 3) and luna2d's client see the same power states,
        control replies, identify, device ID and SEL from both simulators."""
        reactor = the_reactor()
        sim = await Simulator(self, users=[(USER, PASSWORD)]).start()
        fake = FakeBMC({USER.encode(): PASSWORD.encode()})
        for event in SEL_EVENTS:
            values = [int(v, 16) for v in event.split()]
            fake.add_record(values[0], bytes(values[1:]))
        host = free_loopback()
        listening = reactor.listenUDP(623, FakeBMCProtocol(fake, reactor), interface=host)
        self.addCleanup(listening.stopListening)
        client = IPMIClient(reactor, timeout=0.5, retries=1)
        self.addCleanup(client.stop)

        answers: dict[str, list[object]] = {}
        for name, bmc_host in (("ipmi_sim", sim.host), ("fake", host)):
            seen: list[object] = []
            for args in (
                ["chassis", "power", "status"],
                ["chassis", "power", "on"],
                ["chassis", "power", "status"],
                ["chassis", "identify", "force"],
                ["chassis", "power", "off"],
            ):
                seen.append(await ipmitool(bmc_host, 623, 3, *args))
            seen.append(mc_fields(await ipmitool(bmc_host, 623, 3, "mc", "info")))
            seen.append(sel_columns(await ipmitool(bmc_host, 623, 3, "sel", "list")))
            target = Target(name, bmc_host, Credentials(USER.encode(), PASSWORD.encode()))
            for command in (
                commands.power_status(),
                commands.power("on"),
                commands.power_status(),
                commands.device_id(),
                commands.identify(False),
            ):
                seen.append(await client.run(target, command))
            outcome = await client.run(target, commands.sel_list())
            assert isinstance(outcome, Success)
            seen.append([line.split(" | ")[2:] for line in outcome.value])
            answers[name] = seen
        self.assertEqual(answers["fake"], answers["ipmi_sim"])
        self.assertEqual(len(answers["fake"][6]), 2)  # type: ignore[arg-type]
        self.assertEqual(
            fake.calls,
            ["set power 1", "set identify 0 1", "set power 0", "set power 1", "set identify 0 0"],
        )
        self.assertEqual(sim.sets, fake.calls)


class Suite17Tests(ReactorCase):
    async def test_ipmitool_suite_17(self) -> None:
        """ipmitool -C 17 (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128)
        opens sessions with the simulated BMC and runs power and SEL commands;
        luna2d's client over suite 17 agrees."""
        reactor = the_reactor()
        fake = FakeBMC({USER.encode(): PASSWORD.encode()}, suites=(17,))
        fake.add_sel(0x08, 0x30, 0x6F, 0x01)
        host = free_loopback()
        listening = reactor.listenUDP(623, FakeBMCProtocol(fake, reactor), interface=host)
        self.addCleanup(listening.stopListening)
        self.assertEqual(
            (await ipmitool(host, 623, 17, "chassis", "power", "status")).strip(),
            "Chassis Power is off",
        )
        self.assertIn("Up/On", await ipmitool(host, 623, 17, "chassis", "power", "on"))
        self.assertEqual(
            (await ipmitool(host, 623, 17, "chassis", "power", "status")).strip(),
            "Chassis Power is on",
        )
        listing = await ipmitool(host, 623, 17, "sel", "list")
        self.assertIn("Power Supply #0x30 | Failure detected | Asserted", listing)

        client = IPMIClient(reactor, timeout=0.5, retries=1, cipher_suite=17)
        self.addCleanup(client.stop)
        target = Target("n", host, Credentials(USER.encode(), PASSWORD.encode()))
        self.assertEqual(await client.run(target, commands.power_status()), Success("on"))
        self.assertEqual(await client.run(target, commands.power("off")), Success("off"))
        self.assertEqual(
            (await ipmitool(host, 623, 17, "chassis", "power", "status")).strip(),
            "Chassis Power is off",
        )
        self.assertEqual(fake.malformed, 0)
