"""The pure TFTP policy: which names are served, option negotiation (RFC 2347,
2348, 2349, 7440), netascii, and the read transfer state machine driven by
a ``Clock`` (times come from it, as the transport reads them from the
reactor): lock-step and windowed transfers, loss and retransmission,
duplicate and stale ACKs, the OACK handshake, block-number rollover, the
final ACK, timeouts, and a source that is not loaded yet."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial import unittest

from luna2d.protocols.tftp.codec import (
    Ack,
    Data,
    Error,
    ErrorCode,
    OptionAck,
    ReadRequest,
)
from luna2d.protocols.tftp.policy import (
    BUSY,
    CLIENT_BUSY,
    COMPLETE,
    TIMED_OUT,
    UNANSWERED,
    Admission,
    BytesSource,
    Limits,
    LineBudget,
    ReadTransfer,
    RequestRate,
    Settings,
    Verdict,
    negotiate,
    safe_path,
    to_netascii,
)


class SafePathTests(unittest.TestCase):
    def test_plain_names(self) -> None:
        """Relative names split into components; '.', empty components and
        backslashes (DOS-style firmware) are normalised."""
        self.assertEqual(safe_path("undionly.kpxe"), ("undionly.kpxe",))
        self.assertEqual(safe_path("efi/x64//./ipxe.efi"), ("efi", "x64", "ipxe.efi"))
        self.assertEqual(safe_path("boot\\pxe\\a.0"), ("boot", "pxe", "a.0"))

    def test_escapes_refused(self) -> None:
        """Absolute names, '..' anywhere, and names that are empty after
        normalisation are refused (None)."""
        for name in [
            "",
            "/etc/passwd",
            "\\windows",
            "..",
            "../x",
            "a/../../b",
            "a/..",
            "a\\..\\..\\b",
            ".",
            "./",
            "//",
        ]:
            self.assertIsNone(safe_path(name), name)

    def test_dots_inside_names_allowed(self) -> None:
        """'..' only matters as a whole component: 'a..b' and '...' are names."""
        self.assertEqual(safe_path("a..b/..."), ("a..b", "..."))


class NegotiateTests(unittest.TestCase):
    def test_no_options_no_oack(self) -> None:
        """Without options: RFC 1350 defaults (512 bytes, window 1) and no OACK."""
        settings, oack = negotiate((), 1000, Limits())
        self.assertEqual(settings, Settings(512, 1, 1.0, 5))
        self.assertIsNone(oack)

    def test_ipxe_options(self) -> None:
        """iPXE's blksize 1432 and tsize: both accepted, tsize answered with the size."""
        settings, oack = negotiate((("blksize", "1432"), ("tsize", "0")), 74213, Limits())
        self.assertEqual(settings.blksize, 1432)
        self.assertEqual(oack, OptionAck((("blksize", "1432"), ("tsize", "74213"))))

    def test_all_options_order_and_spelling_kept(self) -> None:
        """The OACK lists accepted options in the client's order and spelling."""
        _, oack = negotiate(
            (("WindowSize", "8"), ("TIMEOUT", "3"), ("BlkSize", "1468"), ("tsize", "0")),
            5,
            Limits(),
        )
        self.assertEqual(
            oack,
            OptionAck((("WindowSize", "8"), ("TIMEOUT", "3"), ("BlkSize", "1468"), ("tsize", "5"))),
        )

    def test_clamping(self) -> None:
        """blksize above 65464 or the limit, and windowsize above the limit,
        are answered with the largest allowed value (RFC 2348, RFC 7440)."""
        settings, oack = negotiate((("blksize", "99999"), ("windowsize", "65535")), 0, Limits())
        self.assertEqual((settings.blksize, settings.windowsize), (65464, 64))
        self.assertEqual(oack, OptionAck((("blksize", "65464"), ("windowsize", "64"))))
        settings, oack = negotiate((("blksize", "4000"),), 0, Limits(max_blksize=1468))
        self.assertEqual(settings.blksize, 1468)
        self.assertEqual(oack, OptionAck((("blksize", "1468"),)))

    def test_unusable_values_and_unknown_options_left_out(self) -> None:
        """blksize under 8, timeout 0 or over 255, windowsize 0, values that
        are not plain decimals, and unknown options are left out of the OACK."""
        for options in [
            (("blksize", "7"),),
            (("timeout", "0"),),
            (("timeout", "256"),),
            (("windowsize", "0"),),
            (("blksize", "+512"),),
            (("blksize", " 512"),),
            (("tsize", "x"),),
            (("utimeout", "1"),),
            (("blksize", "\xb2"),),
            (("multicast", ""),),
        ]:
            settings, oack = negotiate(options, 10, Limits())
            self.assertIsNone(oack, options)
            self.assertEqual(settings, Settings(512, 1, 1.0, 5), options)

    def test_timeout_option(self) -> None:
        """timeout N (RFC 2349) sets the retransmission interval to N seconds."""
        settings, oack = negotiate((("timeout", "4"),), 1, Limits())
        self.assertEqual(settings.timeout, 4.0)
        self.assertEqual(oack, OptionAck((("timeout", "4"),)))

    def test_long_timeout_declined(self) -> None:
        """A timeout over max_timeout (5 s by default) is left out of the OACK,
        not lowered (RFC 2349: the answer must match the request), and the
        server keeps its own 1 s; the other options are answered as usual.
        With max_timeout 255 the same request is accepted as asked."""
        asked = (("blksize", "1432"), ("tsize", "0"), ("timeout", "255"))
        settings, oack = negotiate(asked, 70, Limits())
        self.assertEqual(settings.timeout, 1.0)
        self.assertEqual(oack, OptionAck((("blksize", "1432"), ("tsize", "70"))))
        for value, accepted in (("5", True), ("6", False)):
            settings, oack = negotiate((("timeout", value),), 1, Limits())
            self.assertEqual(oack is not None, accepted, value)
            self.assertEqual(settings.timeout, float(value) if accepted else 1.0, value)
        settings, oack = negotiate(asked, 70, Limits(max_timeout=255))
        self.assertEqual(settings.timeout, 255.0)
        self.assertIn(("timeout", "255"), oack.options if oack else ())

    def test_settings_carry_first_ack_timeout(self) -> None:
        """The first-ACK bound comes from the limits into every transfer's settings."""
        settings, _ = negotiate((), 1, Limits(first_ack_timeout=2.5))
        self.assertEqual(settings.first_ack_timeout, 2.5)

    def test_limits_checked(self) -> None:
        """Limits out of range are refused: max_timeout outside 1..255, a
        first-ACK bound that is not positive, a per-client share of 0 or over
        the total."""
        for bad in (
            {"max_timeout": 0},
            {"max_timeout": 256},
            {"first_ack_timeout": 0},
            {"max_per_client": 0},
            {"max_transfers": 10, "max_per_client": 11},
        ):
            self.assertRaises(ValueError, Limits, **bad)

    def test_repeated_option_first_wins(self) -> None:
        """A repeated option counts once, with its first value."""
        settings, oack = negotiate((("blksize", "1024"), ("BLKSIZE", "2048")), 1, Limits())
        self.assertEqual(settings.blksize, 1024)
        self.assertEqual(oack, OptionAck((("blksize", "1024"),)))


class NetasciiTests(unittest.TestCase):
    def test_conversion(self) -> None:
        """LF becomes CR LF, a lone CR becomes CR NUL, CR LF becomes CR NUL CR LF."""
        self.assertEqual(to_netascii(b"a\nb\rc\r\nd"), b"a\r\nb\r\x00c\r\x00\r\nd")
        self.assertEqual(to_netascii(b""), b"")


def blocks_of(packets: list) -> list[int]:
    return [p.block for p in packets if isinstance(p, Data)]


class SlowSource(BytesSource):
    """A source whose bytes from ``loaded`` on are not read yet."""

    def __init__(self, data: bytes, loaded: int) -> None:
        super().__init__(data)
        self.loaded = loaded
        self.released = 0

    def read(self, offset: int, length: int) -> bytes | None:
        if offset + min(length, len(self.data) - offset) > self.loaded:
            return None
        return super().read(offset, length)

    def release(self, offset: int) -> None:
        self.released = offset


class TransferTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()

    def machine(
        self,
        size: int,
        blksize: int = 512,
        windowsize: int = 1,
        oack: OptionAck | None = None,
        retries: int = 3,
        timeout: float = 1.0,
        first_ack_timeout: float = 6.0,
    ) -> tuple[ReadTransfer, bytes]:
        data = bytes(i % 251 for i in range(size))
        settings = Settings(
            blksize=blksize,
            windowsize=windowsize,
            timeout=timeout,
            retries=retries,
            first_ack_timeout=first_ack_timeout,
        )
        return ReadTransfer(BytesSource(data), settings, oack), data

    def test_lock_step_whole_file(self) -> None:
        """Window 1: one DATA per ACK; the last block is short; the ACK of the
        last block completes the transfer; the bytes sent are the file."""
        machine, data = self.machine(1300)
        sent = machine.start(self.clock.seconds())
        self.assertEqual(sent, [Data(1, data[:512])])
        got = [sent[0].data]
        for block in (1, 2):
            sent = machine.receive(Ack(block), self.clock.seconds())
            self.assertEqual(blocks_of(sent), [block + 1])
            got.append(sent[0].data)
        self.assertEqual(len(got[-1]), 1300 - 1024)
        self.assertFalse(machine.finished)
        self.assertEqual(machine.receive(Ack(3), self.clock.seconds()), [])
        self.assertEqual(machine.outcome, COMPLETE)
        self.assertIsNone(machine.deadline)
        self.assertEqual(b"".join(got), data)

    def test_exact_multiple_ends_with_empty_block(self) -> None:
        """A file of exactly n blocks ends with an empty DATA n+1; an empty
        file is one empty DATA 1."""
        machine, _ = self.machine(1024)
        machine.start(0)
        machine.receive(Ack(1), 0)
        self.assertEqual(machine.receive(Ack(2), 0), [Data(3, b"")])
        machine.receive(Ack(3), 0)
        self.assertEqual(machine.outcome, COMPLETE)
        empty, _ = self.machine(0)
        self.assertEqual(empty.start(0), [Data(1, b"")])
        empty.receive(Ack(1), 0)
        self.assertTrue(empty.finished)

    def test_lost_data_retransmitted_at_deadline(self) -> None:
        """A lost DATA: nothing happens before the deadline; at the deadline
        (timeout after the send, by the clock) the same block goes again."""
        machine, data = self.machine(2000)
        machine.start(self.clock.seconds())
        machine.receive(Ack(1), self.clock.seconds())  # DATA 2 sent... and lost
        self.clock.advance(0.5)
        self.assertEqual(machine.expire(self.clock.seconds()), [])
        self.clock.advance(0.5)
        self.assertEqual(machine.deadline, 1.0)
        self.assertEqual(machine.expire(self.clock.seconds()), [Data(2, data[512:1024])])
        self.assertEqual(machine.deadline, 2.0)
        self.assertEqual(machine.retransmissions, 1)

    def test_duplicate_ack_ignored_no_sorcerers_apprentice(self) -> None:
        """A duplicate ACK (the client got a retransmitted block twice) sends
        nothing: each block goes out once per ACK, never doubling."""
        machine, _ = self.machine(3000)
        machine.start(0)
        self.assertEqual(blocks_of(machine.receive(Ack(1), 0)), [2])
        self.assertEqual(machine.receive(Ack(1), 0), [])
        self.assertEqual(blocks_of(machine.receive(Ack(2), 0)), [3])
        self.assertEqual(machine.receive(Ack(2), 0), [])

    def test_stale_and_future_acks_ignored(self) -> None:
        """ACKs for blocks not sent yet, or long acknowledged, change nothing."""
        machine, _ = self.machine(5000)
        machine.start(0)
        machine.receive(Ack(1), 0)
        self.assertEqual(machine.receive(Ack(7), 0), [])
        self.assertEqual(machine.receive(Ack(0), 0), [])
        self.assertEqual((machine.acked, machine.sent), (1, 2))

    def test_timeout_gives_up_after_retries(self) -> None:
        """Without an answer, the block is resent ``retries`` times, one
        timeout apart; at the next deadline the transfer ends as timed out
        with an ERROR (the first-ACK bound set out of the way here)."""
        machine, _ = self.machine(100, retries=3, timeout=2.0, first_ack_timeout=60.0)
        machine.start(self.clock.seconds())
        for _ in range(3):
            self.clock.advance(2.0)
            self.assertEqual(blocks_of(machine.expire(self.clock.seconds())), [1])
        self.clock.advance(2.0)
        self.assertEqual(
            machine.expire(self.clock.seconds()), [Error(ErrorCode.NOT_DEFINED, "timed out")]
        )
        self.assertEqual(machine.outcome, TIMED_OUT)
        self.assertEqual(machine.receive(Ack(1), self.clock.seconds()), [])

    def test_progress_resets_retries(self) -> None:
        """Each ACK that makes progress gives the next block the full number of retries."""
        machine, _ = self.machine(3000, retries=1)
        machine.start(0)
        self.assertEqual(blocks_of(machine.expire(1.0)), [1])
        blocks = machine.receive(Ack(1), 1.5)
        self.assertEqual(blocks_of(blocks), [2])
        self.assertEqual(blocks_of(machine.expire(2.5)), [2])
        self.assertFalse(machine.finished)
        machine.expire(3.5)
        self.assertEqual(machine.outcome, TIMED_OUT)

    def test_window_of_blocks(self) -> None:
        """Window 4 (RFC 7440): four DATA at once; the ACK of the window's last
        block opens the next window; the final window is cut at the last block."""
        machine, data = self.machine(512 * 9 + 10, windowsize=4)
        self.assertEqual(blocks_of(machine.start(0)), [1, 2, 3, 4])
        self.assertEqual(blocks_of(machine.receive(Ack(4), 0)), [5, 6, 7, 8])
        last = machine.receive(Ack(8), 0)
        self.assertEqual(blocks_of(last), [9, 10])
        self.assertEqual(last[-1].data, data[512 * 9 :])
        machine.receive(Ack(10), 0)
        self.assertEqual(machine.outcome, COMPLETE)

    def test_window_gap_resends_from_ack(self) -> None:
        """Block 3 of a window of 4 is lost: the client ACKs 2 (its last
        block in order), and the next window starts at 3 at once."""
        machine, _ = self.machine(512 * 20, windowsize=4)
        machine.start(0)
        self.assertEqual(blocks_of(machine.receive(Ack(2), 0)), [3, 4, 5, 6])

    def test_window_lost_entirely_retransmitted(self) -> None:
        """A whole window lost: at the deadline the whole window goes again."""
        machine, _ = self.machine(512 * 20, windowsize=4)
        machine.start(0)
        machine.receive(Ack(4), 0)
        self.assertEqual(blocks_of(machine.expire(1.0)), [5, 6, 7, 8])

    def test_window_duplicate_ack_ignored(self) -> None:
        """In a window, an ACK of the block already acknowledged sends nothing."""
        machine, _ = self.machine(512 * 20, windowsize=4)
        machine.start(0)
        machine.receive(Ack(4), 0)
        self.assertEqual(machine.receive(Ack(4), 0), [])

    def test_oack_handshake(self) -> None:
        """With options: the OACK first; DATA only after ACK 0; the OACK is
        retransmitted at the deadline; ACKs other than 0 are ignored meanwhile."""
        oack = OptionAck((("blksize", "1432"), ("tsize", "3000")))
        machine, data = self.machine(3000, blksize=1432, oack=oack)
        self.assertEqual(machine.start(0), [oack])
        self.assertEqual(machine.receive(Ack(1), 0.2), [])
        self.assertEqual(machine.expire(1.0), [oack])
        self.assertEqual(machine.receive(Ack(0), 1.1), [Data(1, data[:1432])])

    def test_oack_refused_by_client(self) -> None:
        """The client answers the OACK with ERROR 8 (it only wanted tsize): the
        transfer ends quietly."""
        machine, _ = self.machine(10, oack=OptionAck((("tsize", "10"),)))
        machine.start(0)
        self.assertEqual(machine.receive(Error(ErrorCode.OPTION_REFUSED, "tsize query"), 0), [])
        self.assertTrue(machine.finished)
        self.assertIn("peer error 8", machine.outcome or "")

    def test_illegal_packet_ends_transfer(self) -> None:
        """A DATA or a request on the transfer port: ERROR 4 and the end."""
        machine, _ = self.machine(10)
        machine.start(0)
        self.assertEqual(
            machine.receive(ReadRequest("x", "octet"), 0),
            [Error(ErrorCode.ILLEGAL_OPERATION, "illegal TFTP operation")],
        )
        self.assertTrue(machine.finished)

    def test_block_number_rollover(self) -> None:
        """Past block 65535 the wire number rolls over to 0 and the ACK of the
        rolled-over number is understood (blksize 8: 70,000 blocks)."""
        machine, data = self.machine(8 * 70000, blksize=8, windowsize=16)
        got = []
        sent = machine.start(0)
        while not machine.finished:
            got.extend(p.data for p in sent)
            self.assertTrue(sent)
            sent = machine.receive(Ack(sent[-1].block), 0)
        self.assertEqual(machine.outcome, COMPLETE)
        self.assertEqual(b"".join(got), data)
        self.assertEqual(machine.blocks, 70001)

    def test_abort(self) -> None:
        """abort() ends the transfer with the ERROR it is given, once."""
        machine, _ = self.machine(10)
        machine.start(0)
        self.assertEqual(machine.abort(0, "read error"), [Error(0, "read error")])
        self.assertEqual(machine.abort(0, "again"), [])

    def test_unanswered_ends_at_first_ack_timeout(self) -> None:
        """A client that negotiated timeout 5 and never answers: the OACK at
        0, again at 5, and at 6 (first_ack_timeout) the transfer ends as
        never acknowledged, with an ERROR, instead of after 5 retries (30 s)."""
        oack = OptionAck((("timeout", "5"),))
        machine, _ = self.machine(3000, oack=oack, timeout=5.0, retries=5)
        self.assertEqual(machine.start(self.clock.seconds()), [oack])
        self.assertEqual(machine.deadline, 5.0)
        self.clock.advance(5)
        self.assertEqual(machine.expire(self.clock.seconds()), [oack])
        self.assertEqual(machine.deadline, 6.0)
        self.clock.advance(1)
        self.assertEqual(
            machine.expire(self.clock.seconds()), [Error(ErrorCode.NOT_DEFINED, "timed out")]
        )
        self.assertEqual(machine.outcome, UNANSWERED)
        self.assertFalse(machine.answered)
        self.assertIsNone(machine.deadline)

    def test_unanswered_without_oack(self) -> None:
        """Without options: DATA 1 at 0, 1 and 2 (timeout 1 s), and the end
        at 2.5 (first_ack_timeout 2.5), before the retries run out. ACK 0,
        which acknowledges nothing here, does not count as an answer."""
        machine, _ = self.machine(3000, retries=5, first_ack_timeout=2.5)
        self.assertEqual(blocks_of(machine.start(0)), [1])
        self.assertEqual(machine.receive(Ack(0), 0.5), [])
        self.assertFalse(machine.answered)
        self.assertEqual(blocks_of(machine.expire(1.0)), [1])
        self.assertEqual(blocks_of(machine.expire(2.0)), [1])
        self.assertEqual(machine.deadline, 2.5)
        self.assertEqual(machine.expire(2.5), [Error(ErrorCode.NOT_DEFINED, "timed out")])
        self.assertEqual(machine.outcome, UNANSWERED)

    def test_answered_transfer_not_bound_by_first_ack_timeout(self) -> None:
        """Once ACK 0 has come, a slow client that acknowledges every 4.9 s
        (timeout 5) goes on well past first_ack_timeout and completes."""
        oack = OptionAck((("timeout", "5"),))
        machine, _ = self.machine(512 * 4, oack=oack, timeout=5.0, first_ack_timeout=6.0)
        machine.start(0)
        now = 4.9
        sent = machine.receive(Ack(0), now)
        self.assertTrue(machine.answered)
        while not machine.finished:
            now += 4.9
            self.assertEqual(machine.expire(now), [])
            sent = machine.receive(Ack(sent[-1].block), now)
        self.assertEqual(machine.outcome, COMPLETE)
        self.assertGreater(now, 20)

    def test_first_ack_clock_starts_with_first_packet(self) -> None:
        """A transfer whose first block is not loaded yet sends nothing and
        has no deadline; the first-ACK bound counts from the first DATA."""
        data = bytes(range(256)) * 4
        source = SlowSource(data, loaded=0)
        machine = ReadTransfer(source, Settings(first_ack_timeout=6.0, retries=10))
        self.assertEqual(machine.start(0), [])
        self.assertIsNone(machine.deadline)
        source.loaded = len(data)
        self.assertEqual(blocks_of(machine.resume(10.0)), [1])
        self.assertEqual(machine.give_up_at, 16.0)
        self.assertEqual(blocks_of(machine.expire(15.0)), [1])
        self.assertFalse(machine.finished)
        machine.expire(16.0)
        self.assertEqual(machine.outcome, UNANSWERED)

    def test_source_not_loaded_yet(self) -> None:
        """While the source cannot give a block the window stops there with no
        deadline (nothing in flight); resume() sends the rest once loaded; the
        acknowledged part is released to the source."""
        data = bytes(range(256)) * 20
        source = SlowSource(data, loaded=1024)
        machine = ReadTransfer(source, Settings(blksize=512, windowsize=4))
        self.assertEqual(blocks_of(machine.start(0)), [1, 2])
        self.assertEqual(machine.receive(Ack(2), 0.1), [])
        self.assertEqual(source.released, 1024)
        self.assertIsNone(machine.deadline)
        self.assertEqual(machine.expire(5.0), [])
        source.loaded = len(data)
        self.assertEqual(blocks_of(machine.resume(5.0)), [3, 4, 5, 6])
        self.assertEqual(machine.deadline, 6.0)


A, B, C = "10.0.0.1", "10.0.0.2", "10.0.0.3"


class AdmissionTests(unittest.TestCase):
    def test_room_until_full_then_oldest_silent_gives_way(self) -> None:
        """Three places: three silent clients get them; a fourth takes the
        place of the oldest silent one; after the second has answered, the
        next newcomer passes it over and evicts the third."""
        table = Admission(3, 3)
        for port in (1, 2, 3):
            self.assertEqual(table.admit((A, port)), Verdict())
        self.assertEqual(table.admit((B, 1)), Verdict(evict=(A, 1)))
        table.answered((A, 2))
        self.assertEqual(table.admit((B, 2)), Verdict(evict=(A, 3)))
        self.assertEqual((len(table), table.silent), (3, 2))
        self.assertNotIn((A, 1), table)
        self.assertIn((A, 2), table)

    def test_busy_when_every_place_has_answered(self) -> None:
        """When every place has answered, a newcomer is refused 'server
        busy' and nobody is evicted; a release makes room again."""
        table = Admission(2, 2)
        for peer in ((A, 1), (B, 1)):
            table.admit(peer)
            table.answered(peer)
        self.assertEqual(table.admit((C, 1)), Verdict(refuse=BUSY))
        self.assertEqual(len(table), 2)
        table.release((A, 1))
        self.assertEqual(table.admit((C, 1)), Verdict())

    def test_per_client_limit_evicts_own_silent_first(self) -> None:
        """An address at its share (2) makes room from its own oldest silent
        place, even when other addresses' silent places are older; with all
        of its places answered it is refused by name, while other addresses
        still get in."""
        table = Admission(10, 2)
        table.admit((B, 1))  # older, silent, another address
        table.admit((A, 1))
        table.admit((A, 2))
        self.assertEqual(table.admit((A, 3)), Verdict(evict=(A, 1)))
        self.assertEqual(table.held_by(A), 2)
        table.answered((A, 2))
        table.answered((A, 3))
        self.assertEqual(table.admit((A, 4)), Verdict(refuse=CLIENT_BUSY))
        self.assertIn((B, 1), table)
        self.assertEqual(table.admit((C, 1)), Verdict())

    def test_readmit_and_release_idempotent(self) -> None:
        """A peer admitted again holds one place, silent again; releasing
        twice, or a stranger, changes nothing; clear() frees everything."""
        table = Admission(4, 4)
        table.admit((A, 1))
        table.answered((A, 1))
        table.admit((A, 1))
        self.assertEqual((len(table), table.silent, table.held_by(A)), (1, 1, 1))
        table.release((A, 1))
        table.release((A, 1))
        table.release((B, 9))
        table.answered((B, 9))
        self.assertEqual((len(table), table.silent, table.held_by(A)), (0, 0, 0))
        table.admit((A, 1))
        table.admit((B, 1))
        table.clear()
        self.assertEqual((len(table), table.silent), (0, 0))
        self.assertEqual(table.admit((C, 1)), Verdict())

    def test_limits_checked(self) -> None:
        """A share of 0, or over the total, is refused."""
        self.assertRaises(ValueError, Admission, 5, 0)
        self.assertRaises(ValueError, Admission, 5, 6)

    @settings(max_examples=300, deadline=None)
    @given(
        st.integers(1, 6),
        st.integers(1, 6),
        st.lists(
            st.tuples(
                st.sampled_from(["admit", "answer", "release"]),
                st.sampled_from([A, B, C]),
                st.integers(1, 4),
            ),
            max_size=60,
        ),
    )
    def test_against_a_model(
        self, total: int, share: int, steps: list[tuple[str, str, int]]
    ) -> None:
        """Any sequence of admissions, answers and releases, checked against
        a plain list model: never more than the total or an address's share;
        an eviction always frees the oldest silent place of the address at
        its share, else the oldest silent place of all; a refusal happens
        only when no silent place was in the way, with the matching message."""
        share = min(share, total)
        table = Admission(total, share)
        model: list[tuple[tuple[str, int], bool]] = []  # (peer, answered), oldest first

        def silent(host: str | None) -> list[tuple[str, int]]:
            return [p for p, answered in model if not answered and (host is None or p[0] == host)]

        for action, host, port in steps:
            peer = (host, port)
            if action == "admit":
                model = [(p, a) for p, a in model if p != peer]
                mine = sum(1 for p, _ in model if p[0] == host)
                verdict = table.admit(peer)
                if mine >= share:
                    candidates, message = silent(host), CLIENT_BUSY
                elif len(model) >= total:
                    candidates, message = silent(None), BUSY
                else:
                    candidates, message = [], ""
                if message and not candidates:
                    self.assertEqual(verdict, Verdict(refuse=message))
                    continue
                self.assertEqual(verdict.evict, candidates[0] if candidates else None)
                model = [(p, a) for p, a in model if p != verdict.evict] + [(peer, False)]
            elif action == "answer":
                table.answered(peer)
                model = [(p, a or p == peer) for p, a in model]
            else:
                table.release(peer)
                model = [(p, a) for p, a in model if p != peer]
            self.assertEqual(len(table), len(model))
            self.assertEqual(table.silent, len(silent(None)))
            self.assertLessEqual(len(table), total)
            for h in (A, B, C):
                self.assertEqual(table.held_by(h), sum(1 for p, _ in model if p[0] == h))
                self.assertLessEqual(table.held_by(h), share)


class LineBudgetTests(unittest.TestCase):
    def test_lines_per_window(self) -> None:
        """Three lines per 10 s: the first three pass, the next two are held
        back and counted; a new window starts at the first line after 10 s;
        drain() gives the count once."""
        budget = LineBudget(lines=3, window=10.0)
        self.assertIsNone(budget.window_end())
        self.assertEqual(
            [budget.take(t) for t in (0, 1, 2, 3, 9.9)], [True, True, True, False, False]
        )
        self.assertEqual(budget.window_end(), 10.0)
        self.assertEqual(budget.drain(), 2)
        self.assertEqual(budget.drain(), 0)
        self.assertTrue(budget.take(10.0))
        self.assertEqual(budget.window_end(), 20.0)

    def test_bad_budget_refused(self) -> None:
        """No lines, or a window that is not positive, is refused."""
        self.assertRaises(ValueError, LineBudget, 0, 1.0)
        self.assertRaises(ValueError, LineBudget, 1, 0.0)


class RequestRateTests(unittest.TestCase):
    def test_burst_then_rate(self) -> None:
        """Rate 2 a second, burst 4: four requests at once pass, the fifth is
        dropped; half a second later one more passes; another address has
        its own bucket; a bucket never fills beyond the burst."""
        rate = RequestRate(2, 4)
        self.assertEqual([rate.allow(A, 0.0) for _ in range(5)], [True] * 4 + [False])
        self.assertFalse(rate.allow(A, 0.4))
        self.assertTrue(rate.allow(A, 0.5))
        self.assertFalse(rate.allow(A, 0.5))
        self.assertTrue(rate.allow(B, 0.5))
        self.assertEqual([rate.allow(A, 100.0) for _ in range(5)], [True] * 4 + [False])

    def test_time_going_back_adds_nothing(self) -> None:
        """A clock that steps back gives no tokens (and takes none)."""
        rate = RequestRate(1, 1)
        self.assertTrue(rate.allow(A, 10.0))
        self.assertFalse(rate.allow(A, 5.0))
        self.assertTrue(rate.allow(A, 6.0))

    def test_hosts_remembered_are_bounded(self) -> None:
        """At most max_hosts addresses are remembered; the least recently
        heard is forgotten first and starts again with a full bucket."""
        rate = RequestRate(1, 1, max_hosts=2)
        self.assertTrue(rate.allow(A, 0.0))
        self.assertTrue(rate.allow(B, 0.0))
        self.assertFalse(rate.allow(A, 0.0))  # A is now the most recent
        self.assertTrue(rate.allow(C, 0.0))  # B forgotten
        self.assertEqual(len(rate), 2)
        self.assertFalse(rate.allow(A, 0.0))
        self.assertTrue(rate.allow(B, 0.0))

    def test_bad_rates_refused(self) -> None:
        """A rate that is not positive, a burst under 1 or no room is refused;
        Limits refuses a request_rate under 1 and bursts twice its rate."""
        for args in ((0, 1), (1, 0.5), (1, 1, 0)):
            self.assertRaises(ValueError, RequestRate, *args)
        self.assertRaises(ValueError, Limits, request_rate=0.5)
        self.assertEqual(Limits(request_rate=7).request_burst, 14)
