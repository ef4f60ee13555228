# -*- test-case-name: tests.ipmi.test_commands -*-
"""The IPMI commands luna2d sends, as pure step generators.

A :class:`Command` names the privilege it needs and makes a generator that
yields :class:`Request` objects and receives each :class:`Reply`; its return
value is the command's result. The session (``luna2d.ipmi.session``) drives
the generator over an established RMCP+ session, so a command that takes
several requests (SEL list, SEL clear) is still one value with no I/O.

Results: power status gives ``"on"`` or ``"off"``; power actions give the
action; identify gives ``"identify"`` / ``"noidentify"``; SEL list gives a
list of readable lines; SEL clear gives ``"cleared"``; device ID a dict."""

from __future__ import annotations

import datetime
import struct
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COMMANDS",
    "PRIV_ADMIN",
    "PRIV_OPERATOR",
    "PRIV_USER",
    "Command",
    "CommandFailed",
    "Reply",
    "Request",
    "Steps",
    "completion_text",
    "device_id",
    "identify",
    "lookup",
    "power",
    "power_status",
    "sel_clear",
    "sel_entry_text",
    "sel_list",
]

PRIV_CALLBACK = 0x01
PRIV_USER = 0x02
PRIV_OPERATOR = 0x03
PRIV_ADMIN = 0x04

NETFN_CHASSIS = 0x00
NETFN_APP = 0x06
NETFN_STORAGE = 0x0A

CMD_GET_CHASSIS_STATUS = 0x01
CMD_CHASSIS_CONTROL = 0x02
CMD_CHASSIS_IDENTIFY = 0x04
CMD_GET_DEVICE_ID = 0x01
CMD_GET_SEL_INFO = 0x40
CMD_RESERVE_SEL = 0x42
CMD_GET_SEL_ENTRY = 0x43
CMD_CLEAR_SEL = 0x47

CC_INVALID_DATA_FIELD = 0xCC
CC_NOT_PRESENT = 0xCB
CC_INSUFFICIENT_PRIVILEGE = 0xD4

POWER_ACTIONS = {"off": 0x00, "on": 0x01, "cycle": 0x02, "reset": 0x03, "soft": 0x05}

COMPLETION_CODES = {
    0x00: "command completed normally",
    0xC0: "node busy",
    0xC1: "invalid command",
    0xC2: "command invalid for given LUN",
    0xC3: "timeout while processing command",
    0xC4: "out of space",
    0xC5: "reservation canceled or invalid reservation ID",
    0xC6: "request data truncated",
    0xC7: "request data length invalid",
    0xC8: "request data field length limit exceeded",
    0xC9: "parameter out of range",
    0xCA: "cannot return number of requested data bytes",
    0xCB: "requested sensor, data, or record not present",
    0xCC: "invalid data field in request",
    0xCD: "command illegal for specified sensor or record type",
    0xCE: "command response could not be provided",
    0xCF: "cannot execute duplicated request",
    0xD0: "SDR repository in update mode",
    0xD1: "device in firmware update mode",
    0xD2: "BMC initialization in progress",
    0xD3: "destination unavailable",
    0xD4: "insufficient privilege level",
    0xD5: "not supported in present state",
    0xD6: "sub-function disabled or unavailable",
    0xFF: "unspecified error",
}


def completion_text(code: int) -> str:
    """A completion code as ``0xNN (meaning)``."""
    meaning = COMPLETION_CODES.get(code)
    if meaning is None:
        meaning = "OEM or command-specific code" if 0x01 <= code <= 0xBF else "unknown code"
    return f"0x{code:02x} ({meaning})"


@dataclass(frozen=True)
class Request:
    """One IPMI request a command wants sent."""

    netfn: int
    cmd: int
    data: bytes = b""
    name: str = ""


@dataclass(frozen=True)
class Reply:
    """The BMC's answer to a Request: completion code and data after it."""

    completion_code: int
    data: bytes = b""


class CommandFailed(Exception):
    """A command cannot finish. ``kind`` is ``unauthorized`` (the BMC
    refused for lack of privilege), ``unsupported`` or ``error``."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


Steps = Generator[Request, Reply, Any]


@dataclass(frozen=True)
class Command:
    """A named command, the session privilege it needs, and its steps."""

    name: str
    privilege: int
    steps: Callable[[], Steps]


def _ok(request: Request, reply: Reply, minimum: int = 0) -> bytes:
    """The reply's data when the completion code is 0 and at least
    ``minimum`` bytes came; CommandFailed naming the request otherwise."""
    if reply.completion_code == CC_INSUFFICIENT_PRIVILEGE:
        raise CommandFailed(
            "unauthorized", f"{request.name}: {completion_text(reply.completion_code)}"
        )
    if reply.completion_code == 0xC1:
        raise CommandFailed(
            "unsupported", f"{request.name}: {completion_text(reply.completion_code)}"
        )
    if reply.completion_code != 0:
        raise CommandFailed(
            "error", f"{request.name}: the BMC answered {completion_text(reply.completion_code)}"
        )
    if len(reply.data) < minimum:
        raise CommandFailed(
            "error", f"{request.name}: {len(reply.data)} data bytes, {minimum} expected"
        )
    return reply.data


# -- chassis ------------------------------------------------------------------------------
def _power_status() -> Steps:
    request = Request(NETFN_CHASSIS, CMD_GET_CHASSIS_STATUS, name="Get Chassis Status")
    data = _ok(request, (yield request), 1)
    return "on" if data[0] & 0x01 else "off"


def power_status() -> Command:
    """Chassis power status: ``"on"`` or ``"off"``."""
    return Command("power status", PRIV_USER, _power_status)


def power(action: str) -> Command:
    """Chassis Control: ``on``, ``off``, ``cycle``, ``reset`` or ``soft``
    (ACPI soft shutdown). The result is the action."""
    code = POWER_ACTIONS[action]

    def steps() -> Steps:
        """The command's requests; returns its result."""
        request = Request(
            NETFN_CHASSIS, CMD_CHASSIS_CONTROL, bytes((code,)), f"Chassis Control ({action})"
        )
        _ok(request, (yield request))
        return action

    return Command(f"power {action}", PRIV_OPERATOR, steps)


def identify(on: bool) -> Command:
    """Chassis Identify: on forces the identify light on until turned off
    (falling back to the longest interval, 255 s, on a BMC without the
    force bit); off turns it off. The result is ``identify`` or ``noidentify``."""

    def steps() -> Steps:
        """The command's requests; returns its result."""
        if not on:
            request = Request(
                NETFN_CHASSIS, CMD_CHASSIS_IDENTIFY, b"\x00", "Chassis Identify (off)"
            )
            _ok(request, (yield request))
            return "noidentify"
        request = Request(
            NETFN_CHASSIS, CMD_CHASSIS_IDENTIFY, b"\x00\x01", "Chassis Identify (force on)"
        )
        reply = yield request
        if reply.completion_code == CC_INVALID_DATA_FIELD:
            request = Request(
                NETFN_CHASSIS, CMD_CHASSIS_IDENTIFY, b"\xff", "Chassis Identify (255 s)"
            )
            reply = yield request
        _ok(request, reply)
        return "identify"

    return Command("chassis identify" if on else "chassis noidentify", PRIV_OPERATOR, steps)


# -- device ----------------------------------------------------------------------------------
def _device_id() -> Steps:
    request = Request(NETFN_APP, CMD_GET_DEVICE_ID, name="Get Device ID")
    data = _ok(request, (yield request), 11)
    version = data[4]
    return {
        "device_id": data[0],
        "device_revision": data[1] & 0x0F,
        "provides_sdrs": bool(data[1] & 0x80),
        "firmware": f"{data[2] & 0x7F}.{data[3]:02x}",
        "available": not data[2] & 0x80,
        "ipmi_version": f"{version & 0x0F}.{version >> 4}",
        "manufacturer_id": int.from_bytes(data[6:9], "little") & 0x0FFFFF,
        "product_id": int.from_bytes(data[9:11], "little"),
    }


def device_id() -> Command:
    """Get Device ID, decoded into a dict."""
    return Command("device id", PRIV_USER, _device_id)


# -- SEL ---------------------------------------------------------------------------------------
SENSOR_TYPES = {
    0x01: "Temperature",
    0x02: "Voltage",
    0x03: "Current",
    0x04: "Fan",
    0x05: "Physical Security",
    0x06: "Platform Security",
    0x07: "Processor",
    0x08: "Power Supply",
    0x09: "Power Unit",
    0x0A: "Cooling Device",
    0x0B: "Other Units-based Sensor",
    0x0C: "Memory",
    0x0D: "Drive Slot",
    0x0E: "POST Memory Resize",
    0x0F: "System Firmware Progress",
    0x10: "Event Logging Disabled",
    0x11: "Watchdog 1",
    0x12: "System Event",
    0x13: "Critical Interrupt",
    0x14: "Button / Switch",
    0x15: "Module / Board",
    0x16: "Microcontroller / Coprocessor",
    0x17: "Add-in Card",
    0x18: "Chassis",
    0x19: "Chip Set",
    0x1A: "Other FRU",
    0x1B: "Cable / Interconnect",
    0x1C: "Terminator",
    0x1D: "System Boot / Restart Initiated",
    0x1E: "Boot Error",
    0x1F: "Base OS Boot / Installation Status",
    0x20: "OS Stop / Shutdown",
    0x21: "Slot / Connector",
    0x22: "System ACPI Power State",
    0x23: "Watchdog 2",
    0x24: "Platform Alert",
    0x25: "Entity Presence",
    0x26: "Monitor ASIC / IC",
    0x27: "LAN",
    0x28: "Management Subsystem Health",
    0x29: "Battery",
    0x2A: "Session Audit",
    0x2B: "Version Change",
    0x2C: "FRU State",
}

THRESHOLD_EVENTS = (
    "Lower Non-critical going low",
    "Lower Non-critical going high",
    "Lower Critical going low",
    "Lower Critical going high",
    "Lower Non-recoverable going low",
    "Lower Non-recoverable going high",
    "Upper Non-critical going low",
    "Upper Non-critical going high",
    "Upper Critical going low",
    "Upper Critical going high",
    "Upper Non-recoverable going low",
    "Upper Non-recoverable going high",
)

GENERIC_EVENTS = {
    0x02: ("Transition to Idle", "Transition to Active", "Transition to Busy"),
    0x03: ("State Deasserted", "State Asserted"),
    0x04: ("Predictive Failure deasserted", "Predictive Failure asserted"),
    0x05: ("Limit Not Exceeded", "Limit Exceeded"),
    0x06: ("Performance Met", "Performance Lags"),
    0x07: (
        "Transition to OK",
        "Transition to Non-Critical from OK",
        "Transition to Critical from less severe",
        "Transition to Non-recoverable from less severe",
        "Transition to Non-Critical from more severe",
        "Transition to Critical from Non-recoverable",
        "Transition to Non-recoverable",
        "Monitor",
        "Informational",
    ),
    0x08: ("Device Absent", "Device Present"),
    0x09: ("Device Disabled", "Device Enabled"),
    0x0A: (
        "Transition to Running",
        "Transition to In Test",
        "Transition to Power Off",
        "Transition to On Line",
        "Transition to Off Line",
        "Transition to Off Duty",
        "Transition to Degraded",
        "Transition to Power Save",
        "Install Error",
    ),
    0x0B: (
        "Fully Redundant",
        "Redundancy Lost",
        "Redundancy Degraded",
        "Non-redundant: Sufficient Resources from Redundant",
        "Non-redundant: Sufficient Resources from Insufficient Resources",
        "Non-redundant: Insufficient Resources",
        "Redundancy Degraded from Fully Redundant",
        "Redundancy Degraded from Non-redundant",
    ),
    0x0C: ("D0 Power State", "D1 Power State", "D2 Power State", "D3 Power State"),
}

SENSOR_SPECIFIC_EVENTS = {
    0x05: (
        "General Chassis Intrusion",
        "Drive Bay Intrusion",
        "I/O Card Area Intrusion",
        "Processor Area Intrusion",
        "LAN Leash Lost",
        "Unauthorized Dock",
        "FAN Area Intrusion",
    ),
    0x07: (
        "IERR",
        "Thermal Trip",
        "FRB1/BIST failure",
        "FRB2/Hang in POST failure",
        "FRB3/Processor Startup/Initialization failure",
        "Configuration Error",
        "SM BIOS Uncorrectable CPU-complex Error",
        "Presence detected",
        "Disabled",
        "Terminator Presence Detected",
        "Throttled",
        "Machine Check Exception",
        "Correctable Machine Check Error",
    ),
    0x08: (
        "Presence detected",
        "Failure detected",
        "Predictive failure",
        "Power Supply input lost (AC/DC)",
        "Power Supply input lost or out-of-range",
        "Power Supply input out-of-range, but present",
        "Configuration error",
        "Inactive",
    ),
    0x09: (
        "Power Off / Power Down",
        "Power Cycle",
        "240VA Power Down",
        "Interlock Power Down",
        "AC lost",
        "Soft Power Control Failure",
        "Power Unit Failure detected",
        "Predictive Failure",
    ),
    0x0C: (
        "Correctable ECC",
        "Uncorrectable ECC",
        "Parity",
        "Memory Scrub Failed",
        "Memory Device Disabled",
        "Correctable ECC logging limit reached",
        "Presence detected",
        "Configuration error",
        "Spare",
        "Memory Automatically Throttled",
        "Critical Overtemperature",
    ),
    0x0D: (
        "Drive Present",
        "Drive Fault",
        "Predictive Failure",
        "Hot Spare",
        "Parity Check In Progress",
        "In Critical Array",
        "In Failed Array",
        "Rebuild In Progress",
        "Rebuild Aborted",
    ),
    0x0F: ("System Firmware Error", "System Firmware Hang", "System Firmware Progress"),
    0x10: (
        "Correctable Memory Error Logging Disabled",
        "Event Type Logging Disabled",
        "Log Area Reset/Cleared",
        "All Event Logging Disabled",
        "SEL Full",
        "SEL Almost Full",
        "Correctable Machine Check Error Logging Disabled",
    ),
    0x11: (
        "BIOS Watchdog Reset",
        "OS Watchdog Reset",
        "OS Watchdog Shut Down",
        "OS Watchdog Power Down",
        "OS Watchdog Power Cycle",
        "OS Watchdog NMI / Diagnostic Interrupt",
        "OS Watchdog Expired",
        "OS Watchdog pre-timeout Interrupt",
    ),
    0x12: (
        "System Reconfigured",
        "OEM System Boot Event",
        "Undetermined system hardware failure",
        "Entry added to Auxiliary Log",
        "PEF Action",
        "Timestamp Clock Synch",
    ),
    0x13: (
        "Front Panel NMI / Diagnostic Interrupt",
        "Bus Timeout",
        "I/O channel check NMI",
        "Software NMI",
        "PCI PERR",
        "PCI SERR",
        "EISA Fail Safe Timeout",
        "Bus Correctable Error",
        "Bus Uncorrectable Error",
        "Fatal NMI",
        "Bus Fatal Error",
        "Bus Degraded",
    ),
    0x14: (
        "Power Button pressed",
        "Sleep Button pressed",
        "Reset Button pressed",
        "FRU latch open",
        "FRU service request button",
    ),
    0x1D: (
        "Initiated by power up",
        "Initiated by hard reset",
        "Initiated by warm reset",
        "User requested PXE boot",
        "Automatic boot to diagnostic",
        "OS initiated hard reset",
        "OS initiated warm reset",
        "System Restart",
    ),
    0x20: (
        "Critical stop during OS load / initialization",
        "Run-time Critical Stop",
        "OS Graceful Stop",
        "OS Graceful Shutdown",
        "Soft Shutdown initiated by PEF",
        "Agent Not Responding",
    ),
    0x23: (
        "Timer expired",
        "Hard Reset",
        "Power Down",
        "Power Cycle",
        "",
        "",
        "",
        "",
        "Timer interrupt",
    ),
    0x25: ("Entity Present", "Entity Absent", "Entity Disabled"),
    0x29: ("Battery low (predictive failure)", "Battery failed", "Battery presence detected"),
    0x2A: (
        "Session Activated",
        "Session Deactivated",
        "Invalid Username or Password",
        "Invalid password disable",
    ),
}

PRE_INIT_LIMIT = 0x20000000  # timestamps at or below count seconds since BMC initialization


def _timestamp(value: int) -> str:
    if value == 0xFFFFFFFF:
        return "unspecified time"
    if value <= PRE_INIT_LIMIT:
        return f"Pre-Init +{value}s"
    moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _event_text(sensor_type: int, event_type: int, offset: int) -> str:
    table: tuple[str, ...] | None = None
    if event_type == 0x01:
        table = THRESHOLD_EVENTS
    elif event_type in GENERIC_EVENTS:
        table = GENERIC_EVENTS[event_type]
    elif event_type == 0x6F:
        table = SENSOR_SPECIFIC_EVENTS.get(sensor_type)
    if table is not None and offset < len(table) and table[offset]:
        return table[offset]
    return f"event type 0x{event_type:02x} offset 0x{offset:02x}"


def sel_entry_text(record: bytes) -> str:
    """One 16-byte SEL record as a readable line: record ID, time, sensor,
    event and whether it was asserted or deasserted."""
    if len(record) != 16:
        raise ValueError("a SEL record is 16 bytes")
    record_id, record_type = struct.unpack_from("<HB", record)
    if record_type >= 0xE0:
        return f"{record_id} | OEM record 0x{record_type:02x} | {record[3:].hex()}"
    timestamp = _timestamp(int.from_bytes(record[3:7], "little"))
    if record_type >= 0xC0:
        return f"{record_id} | {timestamp} | OEM record 0x{record_type:02x} | {record[10:].hex()}"
    if record_type != 0x02:
        return f"{record_id} | {timestamp} | record type 0x{record_type:02x} | {record[7:].hex()}"
    sensor_type, sensor_number, direction = record[10], record[11], record[12]
    event_type = direction & 0x7F
    offset = record[13] & 0x0F
    sensor = SENSOR_TYPES.get(sensor_type, f"Sensor type 0x{sensor_type:02x}")
    event = _event_text(sensor_type, event_type, offset)
    state = "Deasserted" if direction & 0x80 else "Asserted"
    return f"{record_id} | {timestamp} | {sensor} #0x{sensor_number:02x} | {event} | {state}"


MAX_SEL_ENTRIES = 4096  # a SEL holds at most a few thousand 16-byte records


def _sel_list() -> Steps:
    info_request = Request(NETFN_STORAGE, CMD_GET_SEL_INFO, name="Get SEL Info")
    info = _ok(info_request, (yield info_request), 3)
    count = int.from_bytes(info[1:3], "little")
    lines: list[str] = []
    if count == 0:
        return lines
    record_id = 0x0000
    seen: set[int] = set()
    while record_id != 0xFFFF and len(lines) < MAX_SEL_ENTRIES:
        request = Request(
            NETFN_STORAGE,
            CMD_GET_SEL_ENTRY,
            struct.pack("<HHBB", 0, record_id, 0, 0xFF),
            f"Get SEL Entry 0x{record_id:04x}",
        )
        reply = yield request
        if reply.completion_code == CC_NOT_PRESENT and not lines:
            break  # emptied between Get SEL Info and now
        data = _ok(request, reply, 18)
        lines.append(sel_entry_text(data[2:18]))
        seen.add(record_id)
        record_id = int.from_bytes(data[0:2], "little")
        if record_id in seen:
            raise CommandFailed(
                "error", f"SEL entry 0x{record_id:04x} links back to an entry already read"
            )
    return lines


def sel_list() -> Command:
    """Every SEL entry as a readable line (oldest first)."""
    return Command("sel list", PRIV_USER, _sel_list)


MAX_ERASE_POLLS = 20


def _sel_clear() -> Steps:
    reserve = Request(NETFN_STORAGE, CMD_RESERVE_SEL, name="Reserve SEL")
    reservation = _ok(reserve, (yield reserve), 2)[:2]
    request = Request(
        NETFN_STORAGE, CMD_CLEAR_SEL, reservation + b"CLR\xaa", "Clear SEL (initiate erase)"
    )
    progress = _ok(request, (yield request), 1)[0] & 0x0F
    polls = 0
    while progress == 0:  # 0: erasure in progress, 1: completed
        polls += 1
        if polls > MAX_ERASE_POLLS:
            raise CommandFailed(
                "error", f"Clear SEL: erasure still in progress after {MAX_ERASE_POLLS} polls"
            )
        request = Request(
            NETFN_STORAGE, CMD_CLEAR_SEL, reservation + b"CLR\x00", "Clear SEL (erasure status)"
        )
        progress = _ok(request, (yield request), 1)[0] & 0x0F
    return "cleared"


def sel_clear() -> Command:
    """Erase the SEL; the result is ``"cleared"``."""
    return Command("sel clear", PRIV_OPERATOR, _sel_clear)


# -- names as the control API uses them ---------------------------------------------------------
COMMANDS: dict[tuple[str, str], Callable[[], Command]] = {
    ("power", "status"): power_status,
    ("power", "on"): lambda: power("on"),
    ("power", "off"): lambda: power("off"),
    ("power", "reset"): lambda: power("reset"),
    ("power", "cycle"): lambda: power("cycle"),
    ("power", "soft"): lambda: power("soft"),
    ("chassis", "identify"): lambda: identify(True),
    ("chassis", "noidentify"): lambda: identify(False),
    ("sel", "list"): sel_list,
    ("sel", "clear"): sel_clear,
    ("device", "id"): device_id,
}


def lookup(command: str, action: str) -> Command | None:
    """The Command for ``<command> <action>`` (``power status``,
    ``chassis identify``, ``sel list``...), or None."""
    factory = COMMANDS.get((command, action))
    return factory() if factory is not None else None
