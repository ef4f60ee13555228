"""luna2d's IPMI client against real OpenIPMI ``ipmi_sim`` processes on
loopback addresses (cipher suite 3), with ``ipmitool -I lanplus -C 3``
against the same simulator as the reference: power status, on, off, cycle,
reset, soft, identify, device ID, SEL list and clear, a wrong password, a
cipher suite the simulator lacks, and a dead address that fails alone while
the others answer. The simulator's chassis_control script records every
power and identify call for the test to read."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from twisted.internet.utils import getProcessOutputAndValue

from luna2d import render
from luna2d.ipmi import commands
from luna2d.ipmi.client import IPMIClient, Target
from luna2d.ipmi.session import Credentials, Fault, Success
from tests.ipmi.support import (
    IPMITOOL,
    Simulator,
    free_loopback,
    sleep,
)
from tests.support import ReactorCase, the_reactor

USER, PASSWORD = "admin", "s3cret-pw"


async def ipmitool(sim: Simulator, *args: str, password: str = PASSWORD) -> tuple[int, str]:
    """(exit code, stdout + stderr) of ipmitool against the simulator; the
    password goes through the environment (-E), never the command line."""
    env = dict(os.environ, IPMI_PASSWORD=password)
    out, err, code = await getProcessOutputAndValue(
        IPMITOOL,
        ["-I", "lanplus", "-C", "3", "-H", sim.host, "-p", str(sim.port), "-U", USER, "-E", *args],
        env=env,
    )
    return code, (out + err).decode(errors="replace")


class SimulatorCase(ReactorCase):
    def setUp(self) -> None:
        super().setUp()
        self.client = IPMIClient(the_reactor(), timeout=0.5, retries=1)
        self.addCleanup(self.client.stop)

    def target(self, sim: Simulator, password: str = PASSWORD, name: str = "node") -> Target:
        """The simulator as a client Target."""
        return Target(name, sim.host, Credentials(USER.encode(), password.encode()), sim.port)

    async def run_command(self, sim: Simulator, command: commands.Command, **kw: Any) -> Any:
        """The outcome of one command on the simulator."""
        outcome = await self.client.run(self.target(sim, **kw), command)
        return outcome


class PowerTests(SimulatorCase):
    async def test_status_on_off(self) -> None:
        """Power status agrees with ipmitool before and after luna2d powers
        the node on and off; the simulator saw exactly those calls."""
        sim = await Simulator(self).start()
        self.assertEqual(await self.run_command(sim, commands.power_status()), Success("off"))
        code, text = await ipmitool(sim, "chassis", "power", "status")
        self.assertEqual((code, text.strip()), (0, "Chassis Power is off"))

        self.assertEqual(await self.run_command(sim, commands.power("on")), Success("on"))
        self.assertEqual(sim.power, "1")
        self.assertEqual(await self.run_command(sim, commands.power_status()), Success("on"))
        code, text = await ipmitool(sim, "chassis", "power", "status")
        self.assertEqual(text.strip(), "Chassis Power is on")

        self.assertEqual(await self.run_command(sim, commands.power("off")), Success("off"))
        self.assertEqual(await self.run_command(sim, commands.power_status()), Success("off"))
        self.assertEqual(sim.sets, ["set power 1", "set power 0"])

    async def test_cycle_reset_soft(self) -> None:
        """Cycle turns power off then (the simulator's own timer) on again;
        reset and soft reach the chassis script as reset and shutdown."""
        sim = await Simulator(self, power=True).start()
        self.assertEqual(await self.run_command(sim, commands.power("cycle")), Success("cycle"))
        self.assertIn("set power 0", sim.calls)
        for _ in range(40):
            if sim.power == "1":
                break
            await sleep(0.1)
        self.assertEqual(sim.power, "1", "the simulator powers back on after a cycle")
        self.assertEqual(await self.run_command(sim, commands.power("reset")), Success("reset"))
        self.assertEqual(await self.run_command(sim, commands.power("soft")), Success("soft"))
        self.assertEqual(sim.sets, ["set power 0", "set power 1", "set reset 1", "set shutdown 1"])

    async def test_identify(self) -> None:
        """Identify forces the light on (interval 0, force 1); noidentify
        turns it off; ipmitool's own identify reaches the script the same way."""
        sim = await Simulator(self).start()
        self.assertEqual(await self.run_command(sim, commands.identify(True)), Success("identify"))
        self.assertEqual(
            await self.run_command(sim, commands.identify(False)), Success("noidentify")
        )
        code, _ = await ipmitool(sim, "chassis", "identify", "force")
        self.assertEqual(code, 0)
        self.assertEqual(sim.calls, ["set identify 0 1", "set identify 0 0", "set identify 0 1"])

    async def test_device_id(self) -> None:
        """Get Device ID matches ipmitool's mc info."""
        sim = await Simulator(self).start()
        outcome = await self.run_command(sim, commands.device_id())
        assert isinstance(outcome, Success)
        code, text = await ipmitool(sim, "mc", "info")
        self.assertEqual(code, 0)
        fields = dict(re.findall(r"^(\w[\w ]*?)\s+: (.*)$", text, re.MULTILINE))
        self.assertEqual(outcome.value["firmware"], fields["Firmware Revision"])
        self.assertEqual(outcome.value["ipmi_version"], fields["IPMI Version"])
        self.assertEqual(str(outcome.value["manufacturer_id"]), fields["Manufacturer ID"])
        self.assertEqual(outcome.value["product_id"], int(fields["Product ID"].split()[0]))


class SelTests(SimulatorCase):
    async def test_list_and_clear(self) -> None:
        """SEL list gives the simulator's two events as ipmitool describes
        them (sensor, event, asserted); after clear both see an empty SEL."""
        sim = await Simulator(self).start()
        outcome = await self.run_command(sim, commands.sel_list())
        assert isinstance(outcome, Success)
        ours = [line.split(" | ") for line in outcome.value]
        code, text = await ipmitool(sim, "sel", "list")
        self.assertEqual(code, 0)
        theirs = [
            [part.strip() for part in line.split("|")] for line in text.splitlines() if "|" in line
        ]
        self.assertEqual(len(ours), 2)
        self.assertEqual(len(theirs), 2)
        for mine, reference in zip(ours, theirs, strict=True):
            self.assertEqual(int(mine[0]), int(reference[0], 16))
            self.assertEqual(mine[2], reference[3])  # "Temperature #0x01"
            self.assertEqual(mine[3], reference[4])  # "Upper Non-critical going high"
            self.assertEqual(mine[4], reference[5])  # "Asserted"

        self.assertEqual(await self.run_command(sim, commands.sel_clear()), Success("cleared"))
        self.assertEqual(await self.run_command(sim, commands.sel_list()), Success([]))
        code, text = await ipmitool(sim, "sel", "list")
        self.assertIn("SEL has no entries", text)


class InstallScriptPasswordTests(SimulatorCase):
    async def test_ipmitool_exec_takes_the_words(self) -> None:
        """The install script sets the BMC password with ``ipmitool exec``
        and a command file, the password quoted by render.ipmitool_word.
        The real ipmitool reads such files: each password below, spaces,
        backslash, dollar and either quote kind included, is set on the
        simulator and then opens a session (luna2d's client, as that user),
        while the old one no longer does."""
        sim = await Simulator(self, users=[(USER, PASSWORD), ("other", "old-pw")]).start()
        folder = Path(self.mktemp())
        folder.mkdir(parents=True)
        old = "old-pw"
        for number, password in enumerate(["pass word$\\", "it's x", 'say "hi"']):
            word = render.ipmitool_word(password)
            self.assertTrue(word, password)
            commands_file = folder / f"commands{number}"
            commands_file.write_text(f"user set password 3 {word}\n")
            code, text = await ipmitool(sim, "exec", str(commands_file))
            self.assertEqual(code, 0, text)
            user = Target("other", sim.host, Credentials(b"other", password.encode()), sim.port)
            self.assertEqual(
                await self.client.run(user, commands.power_status()), Success("off"), password
            )
            stale = Target("other", sim.host, Credentials(b"other", old.encode()), sim.port)
            outcome = await self.client.run(stale, commands.power_status())
            assert isinstance(outcome, Fault), password
            self.assertEqual(outcome.kind, "unauthorized")
            old = password


class FailureTests(SimulatorCase):
    async def test_wrong_password(self) -> None:
        """A wrong password is 'unauthorized', as ipmitool also fails."""
        sim = await Simulator(self).start()
        outcome = await self.run_command(sim, commands.power_status(), password="not-the-password")
        assert isinstance(outcome, Fault)
        self.assertEqual(outcome.kind, "unauthorized")
        code, _ = await ipmitool(sim, "chassis", "power", "status", password="not-the-password")
        self.assertNotEqual(code, 0)
        self.assertEqual(await self.run_command(sim, commands.power_status()), Success("off"))

    async def test_suite_17_not_offered(self) -> None:
        """ipmi_sim offers suites 0-3 and 6; asking for 17 is 'unsupported'."""
        sim = await Simulator(self).start()
        outcome = await self.client.run(self.target(sim), commands.power_status(), cipher_suite=17)
        assert isinstance(outcome, Fault)
        self.assertEqual(outcome.kind, "unsupported")
        self.assertIn("cipher suite 17", outcome.detail)

    async def test_dead_address_fails_alone(self) -> None:
        """A fan-out over two simulators, a wrong password and a dead address:
        the dead one times out, the wrong one is unauthorized, and both live
        ones answer, each with its own state, in about one timeout."""
        first = await Simulator(self, power=True).start()
        second = await Simulator(self).start()
        dead = Target("dead", free_loopback(), Credentials(USER.encode(), PASSWORD.encode()))
        targets = [
            self.target(first, name="a"),
            self.target(second, name="b"),
            self.target(second, password="wrong", name="c"),
            dead,
        ]
        reactor = the_reactor()
        started = reactor.seconds()
        results = await self.client.fan_out(targets, commands.power_status)
        elapsed = reactor.seconds() - started
        self.assertEqual(results["a"], Success("on"))
        self.assertEqual(results["b"], Success("off"))
        self.assertEqual(results["c"].kind, "unauthorized")  # type: ignore[union-attr]
        self.assertEqual(
            results["dead"], Fault("timeout", "no answer from the BMC (2 tries, 0.5 s each)")
        )
        self.assertLess(elapsed, 2.0)
