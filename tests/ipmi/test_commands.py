"""The command step generators alone: the requests each command makes (netfn,
command, data bytes from the IPMI v2.0 tables), how each reads its replies,
fallbacks and loops (identify without force, SEL erase polling, SEL record
links), completion codes as failures, and SEL records as readable text."""

from __future__ import annotations

import struct
from typing import Any

from twisted.trial import unittest

from luna2d.ipmi import commands
from luna2d.ipmi.commands import CommandFailed, Reply, Request


def drive(command: commands.Command, replies: list[Reply]) -> tuple[list[Request], Any]:
    """Feed the replies in order; the requests made and the result."""
    steps = command.steps()
    made = [next(steps)]
    for reply in replies:
        try:
            made.append(steps.send(reply))
        except StopIteration as stop:
            return made, stop.value
    raise AssertionError(f"the command wanted more than {len(replies)} replies: {made}")


class ChassisTests(unittest.TestCase):
    def test_power_status(self) -> None:
        """Get Chassis Status (netfn 0, cmd 1): bit 0 of the first byte."""
        made, result = drive(commands.power_status(), [Reply(0, b"\x01\x00\x40")])
        self.assertEqual((made[0].netfn, made[0].cmd, made[0].data), (0x00, 0x01, b""))
        self.assertEqual(result, "on")
        self.assertEqual(drive(commands.power_status(), [Reply(0, b"\x60\x00\x00")])[1], "off")
        with self.assertRaises(CommandFailed):
            drive(commands.power_status(), [Reply(0, b"")])

    def test_power_actions(self) -> None:
        """Chassis Control (netfn 0, cmd 2) with 0 off, 1 on, 2 cycle,
        3 hard reset, 5 soft shutdown; each needs operator privilege."""
        for action, code in (("off", 0), ("on", 1), ("cycle", 2), ("reset", 3), ("soft", 5)):
            command = commands.power(action)
            made, result = drive(command, [Reply(0)])
            self.assertEqual(
                (made[0].netfn, made[0].cmd, made[0].data), (0x00, 0x02, bytes((code,)))
            )
            self.assertEqual(result, action)
            self.assertEqual(command.privilege, commands.PRIV_OPERATOR)

    def test_identify(self) -> None:
        """Identify on forces it on (interval 0, force bit); a BMC that
        refuses the force byte (0xcc) gets the longest interval instead."""
        made, result = drive(commands.identify(True), [Reply(0)])
        self.assertEqual((made[0].cmd, made[0].data, result), (0x04, b"\x00\x01", "identify"))
        made, result = drive(commands.identify(True), [Reply(0xCC), Reply(0)])
        self.assertEqual([r.data for r in made], [b"\x00\x01", b"\xff"])
        made, result = drive(commands.identify(False), [Reply(0)])
        self.assertEqual((made[0].data, result), (b"\x00", "noidentify"))
        with self.assertRaises(CommandFailed):
            drive(commands.identify(True), [Reply(0xCC), Reply(0xCC)])

    def test_completion_codes(self) -> None:
        """Non-zero completion codes fail with the code and its meaning;
        0xd4 is unauthorized, 0xc1 unsupported, the rest errors."""
        cases = [
            (0xD4, "unauthorized", "0xd4 (insufficient privilege level)"),
            (0xC1, "unsupported", "0xc1 (invalid command)"),
            (0xC0, "error", "0xc0 (node busy)"),
            (0x80, "error", "0x80 (OEM or command-specific code)"),
        ]
        for code, kind, text in cases:
            with self.assertRaises(CommandFailed) as caught:
                drive(commands.power("on"), [Reply(code)])
            self.assertEqual(caught.exception.kind, kind)
            self.assertIn(text, caught.exception.detail)
            self.assertIn("Chassis Control (on)", caught.exception.detail)

    def test_lookup(self) -> None:
        """The control API's command/action names map to commands."""
        self.assertEqual(commands.lookup("power", "status").name, "power status")  # type: ignore[union-attr]
        self.assertEqual(commands.lookup("chassis", "noidentify").name, "chassis noidentify")  # type: ignore[union-attr]
        self.assertIsNone(commands.lookup("power", "explode"))
        self.assertIsNone(commands.lookup("redfish", "upload"))


class DeviceTests(unittest.TestCase):
    def test_device_id(self) -> None:
        """Get Device ID: revision, BCD firmware minor, IPMI version nibbles,
        20-bit manufacturer, product."""
        data = bytes((0x20, 0x81, 0x02, 0x45, 0x51, 0xBF, 0x57, 0x01, 0x00, 0x34, 0x12))
        _, info = drive(commands.device_id(), [Reply(0, data)])
        self.assertEqual(
            info,
            {
                "device_id": 0x20,
                "device_revision": 1,
                "provides_sdrs": True,
                "firmware": "2.45",
                "available": True,
                "ipmi_version": "1.5",
                "manufacturer_id": 343,
                "product_id": 0x1234,
            },
        )
        with self.assertRaises(CommandFailed):
            drive(commands.device_id(), [Reply(0, data[:10])])


def record(
    record_id: int,
    record_type: int = 0x02,
    timestamp: int = 0,
    sensor_type: int = 0x01,
    sensor: int = 1,
    direction: int = 0x01,
    data1: int = 0x57,
) -> bytes:
    """A 16-byte system event SEL record."""
    return struct.pack(
        "<HBIHBBBBBBB",
        record_id,
        record_type,
        timestamp,
        0x20,
        0x04,
        sensor_type,
        sensor,
        direction,
        data1,
        0xFF,
        0xFF,
    )


class SelTests(unittest.TestCase):
    def test_entry_text(self) -> None:
        """System events read as id | time | sensor | event | state; OEM
        records show their bytes; unknown offsets name type and offset."""
        self.assertEqual(
            commands.sel_entry_text(record(1)),
            "1 | Pre-Init +0s | Temperature #0x01 | Upper Non-critical going high | Asserted",
        )
        self.assertEqual(
            commands.sel_entry_text(
                record(
                    2,
                    timestamp=0x65000000,
                    sensor_type=0x08,
                    sensor=0x30,
                    direction=0xEF,
                    data1=0x01,
                )
            ),
            "2 | 2023-09-12 06:06:56 UTC | Power Supply #0x30 | Failure detected | Deasserted",
        )
        self.assertEqual(
            commands.sel_entry_text(record(3, sensor_type=0xC0, direction=0x6F, data1=0x05)),
            "3 | Pre-Init +0s | Sensor type 0xc0 #0x01 | event type 0x6f offset 0x05 | Asserted",
        )
        self.assertEqual(
            commands.sel_entry_text(record(4, timestamp=0xFFFFFFFF, direction=0x0B, data1=0x01)),
            "4 | unspecified time | Temperature #0x01 | Redundancy Lost | Asserted",
        )
        oem = struct.pack("<HB", 5, 0xE1) + bytes(range(13))
        self.assertEqual(
            commands.sel_entry_text(oem), "5 | OEM record 0xe1 | " + bytes(range(13)).hex()
        )
        timed = struct.pack("<HBI", 6, 0xC3, 100) + bytes(range(9))
        self.assertEqual(
            commands.sel_entry_text(timed),
            "6 | Pre-Init +100s | OEM record 0xc3 | " + "030405060708",
        )

    def test_list_follows_links(self) -> None:
        """SEL list asks Get SEL Info, then Get SEL Entry from record 0,
        following each answer's next-record ID until 0xffff."""
        info = Reply(0, struct.pack("<BHHIIB", 0x51, 3, 1000, 0, 0, 0))
        replies = [
            info,
            Reply(0, struct.pack("<H", 7) + record(3)),
            Reply(0, struct.pack("<H", 9) + record(7)),
            Reply(0, struct.pack("<H", 0xFFFF) + record(9)),
        ]
        made, lines = drive(commands.sel_list(), replies)
        self.assertEqual([(r.netfn, r.cmd) for r in made], [(0x0A, 0x40)] + [(0x0A, 0x43)] * 3)
        self.assertEqual(
            [struct.unpack("<HHBB", r.data) for r in made[1:]],
            [(0, 0, 0, 0xFF), (0, 7, 0, 0xFF), (0, 9, 0, 0xFF)],
        )
        self.assertEqual([line.split(" | ")[0] for line in lines], ["3", "7", "9"])

    def test_list_empty_and_loops(self) -> None:
        """An empty SEL needs one request; a record that links back to one
        already read is an error, not an endless loop."""
        made, lines = drive(
            commands.sel_list(), [Reply(0, struct.pack("<BHHIIB", 0x51, 0, 1000, 0, 0, 0))]
        )
        self.assertEqual((len(made), lines), (1, []))
        info = Reply(0, struct.pack("<BHHIIB", 0x51, 2, 1000, 0, 0, 0))
        with self.assertRaises(CommandFailed):
            drive(
                commands.sel_list(),
                [
                    info,
                    Reply(0, struct.pack("<H", 5) + record(1)),
                    Reply(0, struct.pack("<H", 5) + record(5)),
                ],
            )

    def test_clear_polls_until_done(self) -> None:
        """SEL clear reserves, initiates the erase with 'CLR' 0xaa, and polls
        with 'CLR' 0x00 while the erasure is in progress."""
        made, result = drive(
            commands.sel_clear(),
            [Reply(0, b"\x34\x12"), Reply(0, b"\x00"), Reply(0, b"\x00"), Reply(0, b"\x01")],
        )
        self.assertEqual([r.cmd for r in made], [0x42, 0x47, 0x47, 0x47])
        self.assertEqual(
            [r.data for r in made[1:]], [b"\x34\x12CLR\xaa", b"\x34\x12CLR\x00", b"\x34\x12CLR\x00"]
        )
        self.assertEqual(result, "cleared")
        with self.assertRaises(CommandFailed):
            drive(commands.sel_clear(), [Reply(0, b"\x01\x00")] + [Reply(0, b"\x00")] * 30)
