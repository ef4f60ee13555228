"""The RMCP+ session state machine without sockets: driven against the
simulated BMC's policy over an in-memory wire, with time as plain numbers.
Every command on both cipher suites, the outcome reported before the
session closes, wrong password / unknown user / unsupported suite / too
little privilege as their own failures, retransmission after a lost
datagram, timeouts with exact deadlines, and datagrams that are not for the
session (garbage, tampered, replayed, late duplicates) dropped; and
hypothesis: any packets in any phase give an Output, never an exception."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from luna2d.ipmi import codec, commands
from luna2d.ipmi.session import Credentials, Fault, Output, Session, Success
from tests.ipmi.fakebmc import FakeBMC
from tests.ipmi.support import Wire
from tests.ipmi.test_codec import packets

GOOD = Credentials(b"admin", b"s3cret")


def counter_random() -> object:
    """Deterministic 'random' bytes so runs are repeatable."""
    counter = itertools.count(1)

    def random(size: int) -> bytes:
        value = next(counter)
        return bytes((value + i) & 0xFF for i in range(size))

    return random


def make(
    command: commands.Command,
    credentials: Credentials = GOOD,
    suite: int = 3,
    bmc: FakeBMC | None = None,
    timeout: float = 1.0,
    retries: int = 2,
) -> tuple[Session, FakeBMC]:
    """A session running ``command`` and the simulated BMC it talks to."""
    bmc = bmc or FakeBMC({b"admin": b"s3cret"})
    return Session(
        credentials,
        command,
        cipher_suite=suite,
        timeout=timeout,
        retries=retries,
        random=counter_random(),
    ), bmc  # type: ignore[arg-type]


class CommandTests(unittest.TestCase):
    def test_power_status_both_suites(self) -> None:
        """Power status over cipher suites 3 and 17: the session goes
        capabilities, open, RAKP 1-4, the command, close; ends finished."""
        for suite in (3, 17):
            session, bmc = make(commands.power_status(), suite=suite)
            bmc.power = True
            wire = Wire(session, bmc)
            self.assertEqual(wire.run(), Success("on"))
            self.assertTrue(wire.finished)
            self.assertEqual(bmc.sessions, {}, "the session was closed on the BMC")
            kinds = [codec.decode(d) for d in wire.to_bmc]
            self.assertIsInstance(kinds[0], codec.Ipmi15Packet)
            setup = [p.payload_type for p in kinds[1:4] if isinstance(p, codec.Ipmi20Packet)]
            self.assertEqual(setup, [0x10, 0x12, 0x14])
            self.assertEqual(len(wire.to_bmc), 6, "user-level command: no Set Session Privilege")

    def test_power_actions(self) -> None:
        """Each power action raises the session to operator first, then
        sends Chassis Control with its code; the result is the action."""
        expected = {
            "on": ["set power 1"],
            "off": ["set power 0"],
            "cycle": ["set power 0", "set power 1"],
            "reset": ["set reset 1"],
            "soft": ["set shutdown 1"],
        }
        for action, calls in expected.items():
            session, bmc = make(commands.power(action), suite=17)
            wire = Wire(session, bmc)
            self.assertEqual(wire.run(), Success(action))
            self.assertEqual(bmc.calls, calls)
            self.assertEqual(len(wire.to_bmc), 7)

    def test_identify_and_sel(self) -> None:
        """Identify on/off, SEL list over several records, and SEL clear."""
        session, bmc = make(commands.identify(True))
        self.assertEqual(Wire(session, bmc).run(), Success("identify"))
        self.assertEqual(bmc.calls, ["set identify 0 1"])
        session, bmc = make(commands.identify(False), bmc=bmc)
        self.assertEqual(Wire(session, bmc).run(), Success("noidentify"))
        self.assertFalse(bmc.identify)

        bmc.add_sel(0x01, 0x01, 0x01, 0x57)
        bmc.add_sel(0x07, 0x10, 0x6F, 0x01)
        bmc.add_sel(0x14, 0x02, 0x6F, 0x00, deassert=True, timestamp=1_800_000_000)
        session, _ = make(commands.sel_list(), bmc=bmc)
        outcome = Wire(session, bmc).run()
        assert isinstance(outcome, Success)
        self.assertEqual(
            outcome.value,
            [
                "1 | Pre-Init +0s | Temperature #0x01 | Upper Non-critical going high | Asserted",
                "2 | Pre-Init +0s | Processor #0x10 | Thermal Trip | Asserted",
                (
                    "3 | 2027-01-15 08:00:00 UTC | Button / Switch #0x02 | Power Button pressed | "
                    "Deasserted"
                ),
            ],
        )
        session, _ = make(commands.sel_clear(), bmc=bmc)
        self.assertEqual(Wire(session, bmc).run(), Success("cleared"))
        self.assertEqual(bmc.sel, [])
        session, _ = make(commands.sel_list(), bmc=bmc)
        self.assertEqual(Wire(session, bmc).run(), Success([]))

    def test_device_id(self) -> None:
        """Get Device ID decodes firmware, IPMI version, manufacturer, product."""
        session, bmc = make(commands.device_id())
        outcome = Wire(session, bmc).run()
        assert isinstance(outcome, Success)
        self.assertEqual(outcome.value["firmware"], "9.08")
        self.assertEqual(outcome.value["ipmi_version"], "2.0")
        self.assertEqual(outcome.value["manufacturer_id"], 0x1291)
        self.assertEqual(outcome.value["product_id"], 0x0F02)

    def test_outcome_before_close(self) -> None:
        """The outcome comes with the Close Session request, before the
        BMC has answered it; the session finishes when it does."""
        session, bmc = make(commands.power_status())
        wire = Wire(session, bmc, lose_to_console=lambda i, d: i == 5)  # lose the close's answer
        self.assertEqual(wire.run(), Success("off"))
        self.assertTrue(wire.finished)
        self.assertEqual(len(wire.ticks), 1, "one wait for the close, no retransmission of it")


class FailureTests(unittest.TestCase):
    def test_wrong_password(self) -> None:
        """A wrong password shows as a RAKP 2 code mismatch: unauthorized,
        and a RAKP 3 with an error status tells the BMC to drop the session."""
        session, bmc = make(commands.power_status(), Credentials(b"admin", b"wrong"))
        wire = Wire(session, bmc)
        outcome = wire.run()
        assert isinstance(outcome, Fault)
        self.assertEqual(outcome.kind, "unauthorized")
        self.assertIn("wrong password", outcome.detail)
        last = codec.Rakp3.decode(codec.decode(wire.to_bmc[-1]).payload)  # type: ignore[union-attr]
        self.assertEqual(last.status, 0x0F)
        self.assertEqual(bmc.sessions, {})

    def test_unknown_user(self) -> None:
        """An unknown user name: the BMC's RAKP 2 status 0x0d, unauthorized."""
        session, bmc = make(commands.power_status(), Credentials(b"nobody", b"s3cret"))
        outcome = Wire(session, bmc).run()
        self.assertEqual(
            outcome, Fault("unauthorized", "RAKP message 2: RMCP+ status 0x0d (unauthorized name)")
        )

    def test_unsupported_cipher_suite(self) -> None:
        """A BMC without the suite refuses Open Session: unsupported, naming
        the suite; a suite luna2d lacks fails before anything is sent."""
        session, bmc = make(
            commands.power_status(), suite=17, bmc=FakeBMC({b"admin": b"s3cret"}, suites=(3,))
        )
        outcome = Wire(session, bmc).run()
        assert isinstance(outcome, Fault)
        self.assertEqual(outcome.kind, "unsupported")
        self.assertIn("cipher suite 17", outcome.detail)
        session, _ = make(commands.power_status(), suite=2)
        output = session.start(0.0)
        self.assertEqual((output.send, output.finished), ((), True))
        self.assertEqual(output.outcome.kind, "unsupported")  # type: ignore[union-attr]

    def test_insufficient_privilege(self) -> None:
        """A completion code the command cannot accept is its failure; the
        session is still closed afterwards."""
        bmc = FakeBMC({b"admin": b"s3cret"})
        original = bmc._command

        def refuse(session, request):  # type: ignore[no-untyped-def]
            if request.netfn == 0x00:
                return 0xD4, b""
            return original(session, request)

        bmc._command = refuse  # type: ignore[method-assign]
        session, _ = make(commands.power("off"), bmc=bmc)
        outcome = Wire(session, bmc).run()
        self.assertEqual(
            outcome,
            Fault("unauthorized", "Chassis Control (off): 0xd4 (insufficient privilege level)"),
        )
        self.assertEqual(bmc.sessions, {})

    def test_bad_credentials_lengths(self) -> None:
        """User names over 16 bytes and passwords over 20 fail at once."""
        for credentials in (Credentials(b"u" * 17, b"pw"), Credentials(b"admin", b"p" * 21)):
            session, _ = make(commands.power_status(), credentials)
            output = session.start(0.0)
            self.assertTrue(output.finished)
            self.assertEqual(output.outcome.kind, "error")  # type: ignore[union-attr]


class TimingTests(unittest.TestCase):
    def test_dead_bmc_times_out(self) -> None:
        """Nothing answers: the first request is sent retries+1 times, one
        timeout apart, then the failure is a timeout naming the BMC."""
        session, bmc = make(commands.power_status(), timeout=1.5, retries=2)
        wire = Wire(session, bmc, lose_to_bmc=lambda i, d: True)
        outcome = wire.run()
        self.assertEqual(outcome, Fault("timeout", "no answer from the BMC (3 tries, 1.5 s each)"))
        self.assertEqual(len(wire.to_bmc), 3)
        self.assertEqual(len(set(wire.to_bmc)), 1, "the same Get Channel Auth Caps each time")
        self.assertEqual(wire.ticks, [1001.5, 1003.0, 1004.5])

    def test_late_stage_timeout(self) -> None:
        """A BMC that stops answering mid-way times out naming the stage."""
        session, bmc = make(commands.power_status(), timeout=1.0, retries=1)
        wire = Wire(session, bmc, lose_to_bmc=lambda i, d: i >= 2)  # RAKP 1 onwards is lost
        self.assertEqual(
            wire.run(), Fault("timeout", "no answer to RAKP message 1 (2 tries, 1 s each)")
        )

    def test_retransmission_recovers(self) -> None:
        """A lost command answer is recovered by retransmitting the request
        (same rqSeq, new session sequence number and IV)."""
        session, bmc = make(commands.power_status())
        wire = Wire(
            session, bmc, lose_to_console=lambda i, d: i == 4
        )  # the first Get Chassis Status answer
        self.assertEqual(wire.run(), Success("off"))
        first, second = (codec.decode(wire.to_bmc[i]) for i in (4, 5))
        assert isinstance(first, codec.Ipmi20Packet) and isinstance(second, codec.Ipmi20Packet)
        self.assertEqual(second.sequence, first.sequence + 1)
        self.assertNotEqual(first.payload, second.payload)

    def test_tick_before_deadline_does_nothing(self) -> None:
        """tick() before the deadline sends nothing and keeps the deadline."""
        session, _ = make(commands.power_status())
        first = session.start(10.0)
        self.assertEqual(first.deadline, 11.0)
        early = session.tick(10.5)
        self.assertEqual((early.send, early.deadline, early.outcome), ((), 11.0, None))


class DropTests(unittest.TestCase):
    def test_garbage_and_foreign_packets(self) -> None:
        """Packets of the wrong kind, for another session, or with a
        tampered integrity code are dropped and change nothing."""
        session, _ = make(commands.power_status())
        start = session.start(0.0)
        foreign: list[codec.Packet] = [
            codec.AsfPacket.ping(1),
            codec.Ipmi20Packet(codec.PAYLOAD_RAKP2, bytes(40)),
            codec.Ipmi15Packet(codec.IpmiResponse(0x07, 0x38, 0, bytes(8), rq_seq=9).encode()),
            codec.RmcpAck(7, 1),
        ]
        for packet in foreign:
            output = session.receive(packet, 0.1)
            self.assertTrue(output.dropped)
            self.assertEqual(output.deadline, start.deadline)
        self.assertEqual(session.phase, "capabilities")

    def test_tampered(self) -> None:
        """After the session is up, an answer with one bit flipped in its
        integrity-covered bytes is dropped; the retransmission's answer is taken."""
        flipped: list[bytes] = []

        def tamper(datagram: bytes) -> bytes:
            packet = codec.decode(datagram)
            if isinstance(packet, codec.Ipmi20Packet) and packet.authenticated and not flipped:
                flipped.append(datagram)
                return replace(packet, sequence=packet.sequence ^ 0x100).encode()
            return datagram

        session, bmc = make(commands.power_status())
        bmc.power = True
        wire = Wire(session, bmc, tamper=tamper)
        self.assertEqual(wire.run(), Success("on"))
        self.assertEqual(wire.dropped, 1)
        self.assertEqual(len(wire.ticks), 1, "one retransmission")

    def test_replayed_answer(self) -> None:
        """rqSeq wraps every 63 requests, so an old answer can match a new
        request; the BMC's session sequence number gives it away. A SEL of 70
        entries where answer 70 is replaced by answer 7 (same rqSeq) still
        lists the 70 entries in order."""
        session, bmc = make(commands.sel_list())
        for number in range(70):
            bmc.add_sel(0x01, number, 0x01, 0x57)
        answers: list[bytes] = []

        def replay(datagram: bytes) -> bytes:
            packet = codec.decode(datagram)
            if isinstance(packet, codec.Ipmi20Packet) and packet.authenticated:
                answers.append(datagram)
                if len(answers) == 71:  # the answer for entry 70 (answer 1 is Get SEL Info)
                    return answers[71 - 63 - 1]
            return datagram

        wire = Wire(session, bmc, tamper=replay)
        outcome = wire.run()
        assert isinstance(outcome, Success)
        self.assertEqual(
            [line.split(" | ")[2] for line in outcome.value],
            [f"Temperature #0x{number:02x}" for number in range(70)],
        )
        self.assertEqual(wire.dropped, 1)

    def test_input_after_finish(self) -> None:
        """Once finished, a session drops everything and asks for nothing."""
        session, bmc = make(commands.power_status())
        Wire(session, bmc).run()
        output = session.receive(codec.AsfPacket.ping(1), 0.0)
        self.assertTrue(output.dropped and output.finished)
        self.assertIsNone(session.tick(1e9).deadline)

    def test_bmc_choosing_other_algorithms(self) -> None:
        """A BMC that answers Open Session with algorithms of another suite
        is refused as unsupported."""
        bmc = FakeBMC({b"admin": b"s3cret"})
        original = bmc._open

        def downgrade(request: codec.OpenSessionRequest) -> list[bytes]:
            return original(replace(request, integrity=1, authentication=1))

        bmc._open = downgrade  # type: ignore[method-assign]
        session, _ = make(commands.power_status(), suite=17, bmc=bmc)
        outcome = Wire(session, bmc).run()
        assert isinstance(outcome, Fault)
        self.assertEqual(outcome.kind, "unsupported")
        self.assertIn("chose algorithms", outcome.detail)


def session_in(phase: str) -> tuple[Session, float]:
    """A session stepped against the simulated BMC until it waits in ``phase``."""
    session, bmc = make(commands.sel_list())
    bmc.add_sel(0x01, 0x01, 0x01, 0x57)
    now = 0.0
    pending = list(session.start(now).send)
    while session.phase != phase:
        datagram = pending.pop(0)
        for reply in bmc.handle(codec.decode(datagram), now):
            pending.extend(session.receive(codec.decode(reply), now).send)
    return session, now


class FuzzTests(unittest.TestCase):
    @given(
        st.sampled_from(["capabilities", "open", "rakp2", "rakp4", "command", "closing"]),
        st.lists(
            st.one_of(packets, st.binary(max_size=120).map(lambda b: b"\x06\x00\xff\x07\x06" + b)),
            max_size=8,
        ),
    )
    @settings(max_examples=300, deadline=None)
    def test_any_packets_in_any_phase(self, phase: str, inputs: list) -> None:
        """Whatever arrives, in whatever phase, the session answers with an
        Output and never raises; foreign input leaves it waiting as before."""
        session, now = session_in(phase)
        for item in inputs:
            if isinstance(item, bytes):
                try:
                    item = codec.decode(item)
                except codec.DecodeError:
                    continue
            output = session.receive(item, now)
            self.assertIsInstance(output, Output)
            if output.dropped:
                self.assertEqual(session.phase, phase)
