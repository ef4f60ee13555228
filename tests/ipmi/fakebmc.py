"""A lightweight simulated BMC for tests and the benchmark.

It speaks enough RMCP+ for luna2d's client and for ``ipmitool -I lanplus``:
Get Channel Authentication Capabilities, Open Session, RAKP 1-4 with cipher
suites 3 and 17, Set Session Privilege Level, Close Session, Get Device ID,
chassis status / control / identify and the SEL (info, reserve, get entry,
clear). Its answers are checked against OpenIPMI's ``ipmi_sim`` by
tests.ipmi.test_fakebmc, and ``ipmitool -C 17`` against it is the
independent proof of luna2d's SHA-256 suite.

Layered like luna2d's own protocols: :class:`FakeBMC` is a pure policy
(``handle(packet, now) -> replies``), :class:`FakeBMCProtocol` a thin
DatagramProtocol. ``python -m tests.ipmi.fakebmc`` serves many addresses
from one process (the benchmark's fleet)."""

from __future__ import annotations

import argparse
import os
import struct
import sys
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.protocol import DatagramProtocol

from luna2d.ipmi import codec, crypto
from luna2d.ipmi.session import seal

GUID = bytes(range(0xA0, 0xB0))
SUITE_BY_ALGORITHMS = {
    (cs.authentication, cs.integrity, cs.confidentiality): cs for cs in crypto.SUITES.values()
}


@dataclass
class _BmcSession:
    bmc_id: int
    console_id: int
    suite: crypto.CipherSuite
    privilege: int
    console_random: bytes = b""
    bmc_random: bytes = b""
    role: int = 0
    username: bytes = b""
    keys: crypto.SessionKeys | None = None
    out_sequence: int = 0
    active: bool = False


@dataclass
class FakeBMC:
    """One simulated BMC: users, chassis state and an SEL, plus a record of
    every chassis call (like ipmi_sim's chassis_control script)."""

    users: dict[bytes, bytes]
    power: bool = False
    suites: tuple[int, ...] = (3, 17)
    sel: list[bytes] = field(default_factory=list)
    random: Any = os.urandom
    calls: list[str] = field(default_factory=list)
    sessions: dict[int, _BmcSession] = field(default_factory=dict)
    identify: bool = False
    malformed: int = 0
    next_sel_id: int = 1

    def add_sel(
        self,
        sensor_type: int,
        sensor_number: int,
        event_type: int,
        data1: int,
        deassert: bool = False,
        timestamp: int = 0,
    ) -> None:
        """Append a system event record."""
        record = struct.pack(
            "<HBIHBBBBBBB",
            self.next_sel_id,
            0x02,
            timestamp,
            0x0020,
            0x04,
            sensor_type,
            sensor_number,
            (0x80 if deassert else 0) | event_type,
            data1,
            0xFF,
            0xFF,
        )
        self.sel.append(record)
        self.next_sel_id += 1

    def add_record(self, record_type: int, body: bytes) -> None:
        """Append a record given as ipmi_sim's ``sel_add`` takes it: the
        type and the 13 bytes after it."""
        if len(body) != 13:
            raise ValueError("a SEL record body is 13 bytes")
        self.sel.append(struct.pack("<HB", self.next_sel_id, record_type) + body)
        self.next_sel_id += 1

    # -- the policy ------------------------------------------------------------------------
    def handle(self, packet: codec.Packet, now: float) -> list[bytes]:
        """The datagrams to answer ``packet`` with (none for what it drops)."""
        try:
            if isinstance(packet, codec.AsfPacket) and packet.message_type == codec.ASF_PING:
                pong = codec.AsfPacket(codec.ASF_PONG, packet.tag, codec.AsfPong().encode())
                return [pong.encode()]
            if isinstance(packet, codec.Ipmi15Packet) and packet.session_id == 0:
                return self._sessionless(packet)
            if isinstance(packet, codec.Ipmi20Packet):
                return self._rmcp_plus(packet)
        except (codec.DecodeError, crypto.CryptoError):
            self.malformed += 1
        return []

    def _sessionless(self, packet: codec.Ipmi15Packet) -> list[bytes]:
        request = codec.IpmiRequest.decode(packet.message)
        if (request.netfn, request.cmd) != (0x06, 0x38):
            return []
        data = bytes((0x01, 0x80 | 0x04 | 0x02 | 0x01, 0x04, 0x02, 0, 0, 0, 0))
        response = codec.IpmiResponse(0x07, 0x38, 0, data, request.rq_seq)
        return [codec.Ipmi15Packet(response.encode()).encode()]

    def _rmcp_plus(self, packet: codec.Ipmi20Packet) -> list[bytes]:
        kind = packet.payload_type
        if kind == codec.PAYLOAD_OPEN_SESSION_REQUEST:
            return self._open(codec.OpenSessionRequest.decode(packet.payload))
        if kind == codec.PAYLOAD_RAKP1:
            return self._rakp1(codec.Rakp1.decode(packet.payload))
        if kind == codec.PAYLOAD_RAKP3:
            return self._rakp3(codec.Rakp3.decode(packet.payload))
        if kind == codec.PAYLOAD_IPMI:
            return self._message(packet)
        return []

    def _plain(self, payload_type: int, payload: bytes) -> list[bytes]:
        return [codec.Ipmi20Packet(payload_type, payload).encode()]

    def _open(self, request: codec.OpenSessionRequest) -> list[bytes]:
        cs = SUITE_BY_ALGORITHMS.get(
            (request.authentication, request.integrity, request.confidentiality)
        )
        if cs is None or cs.number not in self.suites:
            reply = codec.OpenSessionResponse(request.tag, 0x11, request.console_session_id)
            return self._plain(codec.PAYLOAD_OPEN_SESSION_RESPONSE, reply.encode())
        bmc_id = 0
        while bmc_id == 0 or bmc_id in self.sessions:
            bmc_id = int.from_bytes(self.random(4), "little")
        self.sessions[bmc_id] = _BmcSession(
            bmc_id, request.console_session_id, cs, request.privilege or 4
        )
        reply = codec.OpenSessionResponse(
            request.tag,
            0,
            request.console_session_id,
            request.privilege or 4,
            bmc_id,
            cs.authentication,
            cs.integrity,
            cs.confidentiality,
        )
        return self._plain(codec.PAYLOAD_OPEN_SESSION_RESPONSE, reply.encode())

    def _rakp1(self, message: codec.Rakp1) -> list[bytes]:
        session = self.sessions.get(message.bmc_session_id)
        if session is None:
            return []
        password = self.users.get(message.username)
        if password is None:
            reply = codec.Rakp2(message.tag, 0x0D, session.console_id)
            del self.sessions[session.bmc_id]
            return self._plain(codec.PAYLOAD_RAKP2, reply.encode())
        session.console_random = message.console_random
        session.bmc_random = self.random(16)
        session.role = message.role
        session.username = message.username
        code = crypto.rakp2_code(
            session.suite,
            crypto.user_key(password),
            session.console_id,
            session.bmc_id,
            session.console_random,
            session.bmc_random,
            GUID,
            session.role,
            session.username,
        )
        reply = codec.Rakp2(message.tag, 0, session.console_id, session.bmc_random, GUID, code)
        return self._plain(codec.PAYLOAD_RAKP2, reply.encode())

    def _rakp3(self, message: codec.Rakp3) -> list[bytes]:
        session = self.sessions.get(message.bmc_session_id)
        if session is None or not session.bmc_random:
            return []
        if message.status != 0:
            del self.sessions[session.bmc_id]
            return []
        kuid = crypto.user_key(self.users[session.username])
        expected = crypto.rakp3_code(
            session.suite,
            kuid,
            session.bmc_random,
            session.console_id,
            session.role,
            session.username,
        )
        if expected != message.auth_code:
            del self.sessions[session.bmc_id]
            return self._plain(
                codec.PAYLOAD_RAKP4, codec.Rakp4(message.tag, 0x0F, session.console_id).encode()
            )
        session.keys = crypto.derive_keys(
            session.suite,
            kuid,
            session.console_random,
            session.bmc_random,
            session.role,
            session.username,
        )
        session.active = True
        icv = crypto.rakp4_code(
            session.suite, session.keys.sik, session.console_random, session.bmc_id, GUID
        )
        return self._plain(
            codec.PAYLOAD_RAKP4, codec.Rakp4(message.tag, 0, session.console_id, icv).encode()
        )

    def _message(self, packet: codec.Ipmi20Packet) -> list[bytes]:
        session = self.sessions.get(packet.session_id)
        if session is None or not session.active or session.keys is None:
            return []
        keys = session.keys
        _, _, code = codec.split_trailer(packet.trailer, keys.suite.integrity_length)
        if not keys.verify(packet.signed_bytes(keys.suite.integrity_length), code):
            self.malformed += 1
            return []
        request = codec.IpmiRequest.decode(
            keys.decrypt(packet.payload) if packet.encrypted else packet.payload
        )
        completion, data = self._command(session, request)
        response = codec.IpmiResponse(
            request.netfn | 1, request.cmd, completion, data, request.rq_seq
        )
        sealed = self._seal(session, response.encode())
        if (request.netfn, request.cmd) == (0x06, 0x3C) and completion == 0:
            self.sessions.pop(session.bmc_id, None)
        return [sealed]

    def _seal(self, session: _BmcSession, message: bytes) -> bytes:
        keys = session.keys
        assert keys is not None
        session.out_sequence += 1
        return seal(
            keys, session.console_id, session.out_sequence, message, self.random(crypto.AES_BLOCK)
        )

    # -- commands ----------------------------------------------------------------------------------
    def _command(self, session: _BmcSession, request: codec.IpmiRequest) -> tuple[int, bytes]:
        key = (request.netfn, request.cmd)
        data = request.data
        if key == (0x06, 0x3B):  # Set Session Privilege Level
            level = data[0] & 0x0F if data else 0
            if level > (session.role & 0x0F):
                return 0x81, b""
            session.privilege = level or session.privilege
            return 0, bytes((session.privilege,))
        if key == (0x06, 0x3C):  # Close Session
            if len(data) < 4 or struct.unpack("<I", data[:4])[0] != session.bmc_id:
                return 0x87, b""
            return 0, b""
        if key == (0x06, 0x01):  # Get Device ID
            return 0, bytes(
                (0x00, 0x03, 0x09, 0x08, 0x02, 0x9F, 0x91, 0x12, 0x00, 0x02, 0x0F, 0, 0, 0, 0)
            )
        if key == (0x00, 0x01):  # Get Chassis Status
            return 0, bytes((0x01 if self.power else 0x00, 0x00, 0x00))
        if key == (0x00, 0x02):  # Chassis Control
            if session.privilege < 3:
                return 0xD4, b""
            action = data[0] & 0x0F if data else -1
            if action == 0:
                self.power = False
                self.calls.append("set power 0")
            elif action == 1:
                self.power = True
                self.calls.append("set power 1")
            elif action == 2:
                self.calls.append("set power 0")
                self.calls.append("set power 1")
                self.power = True
            elif action == 3:
                self.calls.append("set reset 1")
            elif action == 5:
                self.calls.append("set shutdown 1")
            else:
                return 0xCC, b""
            return 0, b""
        if key == (0x00, 0x04):  # Chassis Identify
            if session.privilege < 3:
                return 0xD4, b""
            interval = data[0] if data else 15
            force = data[1] & 1 if len(data) > 1 else 0
            self.identify = bool(force or interval)
            self.calls.append(f"set identify {interval} {force}")
            return 0, b""
        if key == (0x0A, 0x40):  # Get SEL Info
            free = 16 * (1000 - len(self.sel))
            return 0, struct.pack("<BHHIIB", 0x51, len(self.sel), free, 0, 0, 0x0A)
        if key == (0x0A, 0x42):  # Reserve SEL
            return 0, b"\x01\x00"
        if key == (0x0A, 0x43):  # Get SEL Entry
            if len(data) < 6:
                return 0xC7, b""
            record_id = struct.unpack_from("<H", data, 2)[0]
            index = (
                0
                if record_id == 0
                else next(
                    (
                        i
                        for i, r in enumerate(self.sel)
                        if struct.unpack_from("<H", r)[0] == record_id
                    ),
                    -1,
                )
            )
            if index < 0 or index >= len(self.sel):
                return 0xCB, b""
            following = (
                struct.unpack_from("<H", self.sel[index + 1])[0]
                if index + 1 < len(self.sel)
                else 0xFFFF
            )
            return 0, struct.pack("<H", following) + self.sel[index]
        if key == (0x0A, 0x47):  # Clear SEL
            if len(data) < 6 or data[2:5] != b"CLR":
                return 0xCC, b""
            if data[5] == 0xAA:
                self.sel.clear()
            return 0, b"\x01"
        return 0xC1, b""


class FakeBMCProtocol(DatagramProtocol):
    """Serves one FakeBMC on one socket; drops what does not decode."""

    def __init__(self, bmc: FakeBMC, clock: Any) -> None:
        self.bmc = bmc
        self.clock = clock
        self.dropped = 0

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        """Decode (drop what does not), answer what the policy says."""
        try:
            packet = codec.decode(datagram)
        except codec.DecodeError:
            self.dropped += 1
            return
        for reply in self.bmc.handle(packet, self.clock.seconds()):
            self.transport.write(reply, addr)  # type: ignore[union-attr,call-arg,arg-type,misc]


def serve(
    reactor: Any, addresses: list[tuple[str, int]], users: dict[bytes, bytes], power: bool = False
) -> tuple[list[FakeBMC], list[Any]]:
    """One FakeBMC per address, listening; (bmcs, listening ports)."""
    bmcs, ports = [], []
    for host, port in addresses:
        bmc = FakeBMC(dict(users), power=power)
        ports.append(reactor.listenUDP(port, FakeBMCProtocol(bmc, reactor), interface=host))
        bmcs.append(bmc)
    return bmcs, ports


def main(argv: list[str]) -> None:
    """Serve the addresses listed in a file (``host`` or ``host:port`` per
    line) until killed; print ``ready`` once listening."""
    parser = argparse.ArgumentParser(description="serve simulated BMCs")
    parser.add_argument("addresses", help="file with one host[:port] per line")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="admin")
    args = parser.parse_args(argv)
    from twisted.internet import asyncioreactor

    asyncioreactor.install()
    from twisted.internet import reactor

    targets = []
    with open(args.addresses) as handle:
        for line in handle:
            line = line.strip()
            if line:
                host, _, port = line.partition(":")
                targets.append((host, int(port or 623)))
    serve(reactor, targets, {args.user.encode(): args.password.encode()})
    reactor.callWhenRunning(lambda: print("ready", flush=True))
    reactor.run()  # type: ignore[attr-defined,misc]


if __name__ == "__main__":
    main(sys.argv[1:])
