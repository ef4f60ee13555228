# -*- test-case-name: tests.ipmi.test_session,tests.ipmi.test_simulator -*-
"""One RMCP+ session with one BMC, as a state machine with no I/O.

The owner feeds it decoded packets and the time, and calls ``tick`` when the
deadline it asked for has come; every call returns an :class:`Output`: the
datagrams to send, the command's outcome once known, whether the session is
finished, and the next deadline. Nothing here reads a clock, opens a socket
or sleeps, so every path (retries, timeouts, a wrong password, a BMC that
chooses other algorithms) runs in tests with plain numbers for time.

The exchange (IPMI v2.0 section 13): Get Channel Authentication
Capabilities (IPMI 1.5 framing, no session), Open Session, RAKP messages 1-4,
Set Session Privilege Level when the command needs more than User, the
command's own requests, then Close Session. The command's outcome is
reported as soon as it is known; closing happens after."""

from __future__ import annotations

import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from luna2d.ipmi import codec, crypto
from luna2d.ipmi.commands import (
    NETFN_APP,
    PRIV_USER,
    Command,
    CommandFailed,
    Reply,
    Request,
    Steps,
    completion_text,
)

__all__ = [
    "STATUS_CODES",
    "Credentials",
    "Fault",
    "Outcome",
    "Output",
    "Session",
    "Success",
    "seal",
]

CMD_GET_CHANNEL_AUTH_CAPS = 0x38
CMD_SET_SESSION_PRIVILEGE = 0x3B
CMD_CLOSE_SESSION = 0x3C
NAME_ONLY_LOOKUP = 0x10  # RAKP 1 role bit: find the user by name alone
RAKP3_ERROR_STATUS = 0x0F  # tells the BMC to drop the half-open session

STATUS_CODES: dict[int, tuple[str, str]] = {
    0x01: ("error", "insufficient resources to create a session"),
    0x02: ("error", "invalid session ID"),
    0x03: ("unsupported", "invalid payload type"),
    0x04: ("unsupported", "invalid authentication algorithm"),
    0x05: ("unsupported", "invalid integrity algorithm"),
    0x06: ("unsupported", "no matching authentication payload"),
    0x07: ("unsupported", "no matching integrity payload"),
    0x08: ("error", "inactive session ID"),
    0x09: ("unauthorized", "invalid role"),
    0x0A: ("unauthorized", "unauthorized role or privilege level requested"),
    0x0B: ("error", "insufficient resources to create a session at the requested role"),
    0x0C: ("unauthorized", "invalid name length"),
    0x0D: ("unauthorized", "unauthorized name"),
    0x0E: ("unauthorized", "unauthorized GUID"),
    0x0F: ("unauthorized", "invalid integrity check value"),
    0x10: ("unsupported", "invalid confidentiality algorithm"),
    0x11: ("unsupported", "no cipher suite match with proposed security algorithms"),
    0x12: ("error", "illegal or unrecognized parameter"),
}


def _status(code: int) -> tuple[str, str]:
    kind, text = STATUS_CODES.get(code, ("error", "unknown status"))
    return kind, f"RMCP+ status 0x{code:02x} ({text})"


@dataclass(frozen=True)
class Credentials:
    """A BMC user. ``kg`` is the BMC key for two-key logins (rarely set)."""

    username: bytes
    password: bytes
    kg: bytes | None = None

    def __repr__(self) -> str:  # passwords never reach a log
        return f"Credentials(username={self.username!r})"


@dataclass(frozen=True)
class Success:
    """The command finished; ``value`` is its result."""

    value: Any


@dataclass(frozen=True)
class Fault:
    """The command did not finish. ``kind``: ``timeout``, ``unauthorized``,
    ``unsupported``, ``unreachable`` or ``error``; ``detail`` says why."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


Outcome = Success | Fault


@dataclass(frozen=True)
class Output:
    """What the owner must do after one call into the session."""

    send: tuple[bytes, ...] = ()
    outcome: Outcome | None = None  # reported once, by the call that learns it
    finished: bool = False  # nothing more to send or wait for
    deadline: float | None = None  # call tick() then, unless input comes first
    dropped: bool = False  # the input was not for this session or not valid


@dataclass
class _Pending:
    """The request the session waits an answer for."""

    stage: str  # what the answer is, for messages: "RAKP message 2", "Get Chassis Status"...
    build: Callable[[], bytes]  # a fresh datagram for each (re)transmission
    deadline: float
    attempts: int = 1
    rq_seq: int = -1
    netfn: int = -1
    cmd: int = -1
    tries: int = 0  # allowed transmissions; 0: the session's default


@dataclass
class _Inbound:
    """Sequence numbers already accepted from the BMC (replay protection)."""

    seen: set[int] = field(default_factory=set)
    order: list[int] = field(default_factory=list)

    def accept(self, sequence: int) -> bool:
        """Whether a BMC sequence number is new (and remember it)."""
        if sequence == 0 or sequence in self.seen:
            return False
        self.seen.add(sequence)
        self.order.append(sequence)
        if len(self.order) > 64:
            self.seen.discard(self.order.pop(0))
        return True


def seal(
    keys: crypto.SessionKeys, session_id: int, sequence: int, message: bytes, iv: bytes
) -> bytes:
    """``message`` as a datagram of an established session, addressed to
    the peer's ``session_id``: encrypted under K2 with ``iv``, then given
    the integrity pad, pad length, next header and its code under K1."""
    payload = keys.encrypt(message, iv)
    packet = codec.Ipmi20Packet(
        codec.PAYLOAD_IPMI, payload, session_id, sequence, encrypted=True, authenticated=True
    )
    pad = codec.integrity_pad(len(packet.header()) + len(payload))
    unsigned = replace(packet, trailer=b"\xff" * pad + bytes((pad, codec.NEXT_HEADER)))
    return replace(
        unsigned, trailer=unsigned.trailer + keys.integrity_code(unsigned.encode()[4:])
    ).encode()


class Session:
    """Runs one command on one BMC over a fresh RMCP+ session."""

    def __init__(
        self,
        credentials: Credentials,
        command: Command,
        *,
        cipher_suite: int = 3,
        timeout: float = 1.0,
        retries: int = 2,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.credentials = credentials
        self.command = command
        self.cipher_suite = cipher_suite
        self.timeout = timeout
        self.tries = retries + 1
        self.random = random
        self.suite: crypto.CipherSuite | None = None
        self.privilege = max(command.privilege, PRIV_USER)
        self.role = NAME_ONLY_LOOKUP | self.privilege
        self.console_id = 0
        while self.console_id == 0:
            self.console_id = int.from_bytes(random(4), "little")
        self.tag = 0
        self.rq_seq = 0
        self.out_sequence = 0
        self.bmc_id = 0
        self.console_random = b""
        self.bmc_random = b""
        self.bmc_guid = b""
        self.keys: crypto.SessionKeys | None = None
        self.inbound = _Inbound()
        self.phase = "new"
        self.pending: _Pending | None = None
        self.steps: Steps | None = None
        self.outcome: Outcome | None = None
        self.answered = False  # the BMC has said anything valid at all
        self.finished = False

    # -- the owner's three calls --------------------------------------------------------------
    def start(self, now: float) -> Output:
        """Begin: the first datagram to send and when to give up on it."""
        if self.phase != "new":
            raise RuntimeError("a session starts once")
        try:
            self.suite = crypto.suite(self.cipher_suite)
        except crypto.UnsupportedCipherSuite as exc:
            return self._fail("unsupported", str(exc))
        if len(self.credentials.username) > codec.MAX_USERNAME:
            return self._fail(
                "error", f"the BMC user name is longer than {codec.MAX_USERNAME} bytes"
            )
        if len(self.credentials.password) > crypto.KEY_LENGTH:
            return self._fail("error", f"the BMC password is longer than {crypto.KEY_LENGTH} bytes")
        self.phase = "capabilities"
        seq = self._next_rq_seq()
        message = codec.IpmiRequest(
            NETFN_APP, CMD_GET_CHANNEL_AUTH_CAPS, bytes((0x8E, self.privilege)), rq_seq=seq
        ).encode()
        datagram = codec.Ipmi15Packet(message).encode()
        return self._expect(
            _Pending(
                "Get Channel Authentication Capabilities",
                lambda: datagram,
                0.0,
                rq_seq=seq,
                netfn=NETFN_APP,
                cmd=CMD_GET_CHANNEL_AUTH_CAPS,
            ),
            now,
        )

    def receive(self, packet: codec.Packet, now: float) -> Output:
        """Take one decoded packet from the BMC's address."""
        if self.finished or self.pending is None:
            return Output(finished=self.finished, dropped=True, deadline=self._deadline())
        handler: Callable[[codec.Packet, float], Output | None] = getattr(self, f"_on_{self.phase}")
        try:
            result = handler(packet, now)
        except (codec.DecodeError, crypto.CryptoError):
            result = None
        if result is None:
            return Output(dropped=True, deadline=self._deadline())
        return result

    def tick(self, now: float) -> Output:
        """The deadline came: retransmit, or give up with a timeout."""
        pending = self.pending
        if self.finished or pending is None or now < pending.deadline:
            return Output(finished=self.finished, deadline=self._deadline())
        tries = pending.tries or self.tries
        if pending.attempts < tries:
            pending.attempts += 1
            pending.deadline = now + self.timeout
            return Output(send=(pending.build(),), deadline=pending.deadline)
        if self.phase == "closing":
            return self._finish()
        waited = (
            f"1 try of {self.timeout:g} s"
            if tries == 1
            else f"{tries} tries, {self.timeout:g} s each"
        )
        if self.answered:
            detail = f"no answer to {pending.stage} ({waited})"
        else:
            detail = f"no answer from the BMC ({waited})"
        return self._fail("timeout", detail)

    # -- helpers ---------------------------------------------------------------------------------
    def _deadline(self) -> float | None:
        return self.pending.deadline if self.pending is not None and not self.finished else None

    def _expect(self, pending: _Pending, now: float, outcome: Outcome | None = None) -> Output:
        pending.deadline = now + self.timeout
        self.pending = pending
        return Output(send=(pending.build(),), outcome=outcome, deadline=pending.deadline)

    def _fail(self, kind: str, detail: str, send: tuple[bytes, ...] = ()) -> Output:
        self.outcome = Fault(kind, detail)
        self.finished = True
        self.pending = None
        self.phase = "done"
        self._close_steps()
        return Output(send=send, outcome=self.outcome, finished=True)

    def _finish(self) -> Output:
        self.finished = True
        self.pending = None
        self.phase = "done"
        return Output(finished=True)

    def _close_steps(self) -> None:
        if self.steps is not None:
            self.steps.close()
            self.steps = None

    def _next_tag(self) -> int:
        self.tag = (self.tag + 1) & 0xFF
        return self.tag

    def _next_rq_seq(self) -> int:
        self.rq_seq = (self.rq_seq + 1) & 0x3F or 1
        return self.rq_seq

    def _expect_setup(self, stage: str, payload_type: int, payload: bytes, now: float) -> Output:
        """Send a session set-up message (Open Session, RAKP) and wait for its answer."""
        datagram = codec.Ipmi20Packet(payload_type, payload).encode()
        return self._expect(_Pending(stage, lambda: datagram, 0.0), now)

    def _setup_reply(self, packet: codec.Packet, payload_type: int, structure: Any) -> Any:
        """The set-up message of ``structure`` in ``packet`` when it answers
        ours (payload type, tag, console session ID), else None. A message
        that answers ours means the BMC is there (``answered``)."""
        if (
            not isinstance(packet, codec.Ipmi20Packet)
            or packet.payload_type != payload_type
            or packet.encrypted
            or packet.authenticated
        ):
            return None
        message = structure.decode(packet.payload)
        # A refusing Open Session Response may stop before the console session ID.
        if message.tag != self.tag or message.console_session_id not in (self.console_id, None):
            return None
        self.answered = True
        return message

    # -- phase: channel authentication capabilities -----------------------------------------------
    def _on_capabilities(self, packet: codec.Packet, now: float) -> Output | None:
        if isinstance(packet, codec.Ipmi15Packet) and packet.session_id == 0:
            message = packet.message
        elif (
            isinstance(packet, codec.Ipmi20Packet)
            and packet.payload_type == codec.PAYLOAD_IPMI
            and packet.session_id == 0
            and not packet.authenticated
            and not packet.encrypted
        ):
            message = packet.payload
        else:
            return None
        response = self._match(codec.IpmiResponse.decode(message))
        if response is None:
            return None
        self.answered = True
        if response.completion_code != 0:
            return self._fail(
                "error",
                "Get Channel Authentication Capabilities: the BMC answered "
                + completion_text(response.completion_code),
            )
        data = response.data
        if len(data) < 4 or not data[1] & 0x80 or not data[3] & 0x02:
            return self._fail("unsupported", "the BMC does not offer IPMI 2.0 / RMCP+ sessions")
        return self._open_session(now)

    def _match(self, response: codec.IpmiResponse) -> codec.IpmiResponse | None:
        pending = self.pending
        if pending is None:
            return None
        if (
            response.rq_seq != pending.rq_seq
            or response.netfn != pending.netfn + 1
            or response.cmd != pending.cmd
        ):
            return None
        return response

    # -- phase: open session ----------------------------------------------------------------------
    def _open_session(self, now: float) -> Output:
        assert self.suite is not None
        self.phase = "open"
        request = codec.OpenSessionRequest(
            self._next_tag(),
            self.console_id,
            self.suite.authentication,
            self.suite.integrity,
            self.suite.confidentiality,
            self.privilege,
        )
        return self._expect_setup(
            "Open Session", codec.PAYLOAD_OPEN_SESSION_REQUEST, request.encode(), now
        )

    def _on_open(self, packet: codec.Packet, now: float) -> Output | None:
        assert self.suite is not None
        response = self._setup_reply(
            packet, codec.PAYLOAD_OPEN_SESSION_RESPONSE, codec.OpenSessionResponse
        )
        if response is None:
            return None
        if response.status != 0:
            kind, text = _status(response.status)
            if kind == "unsupported":
                return self._fail(
                    kind, f"the BMC does not offer cipher suite {self.suite.number}: {text}"
                )
            return self._fail(kind, f"Open Session refused: {text}")
        chosen = (response.authentication, response.integrity, response.confidentiality)
        wanted = (self.suite.authentication, self.suite.integrity, self.suite.confidentiality)
        if chosen != wanted:
            return self._fail(
                "unsupported",
                f"the BMC chose algorithms {chosen}, not those of cipher suite "
                f"{self.suite.number} {wanted}",
            )
        if not response.bmc_session_id:
            return self._fail("error", "Open Session: the BMC gave session ID 0")
        self.bmc_id = response.bmc_session_id
        return self._rakp1(now)

    # -- phase: RAKP 1/2 --------------------------------------------------------------------------
    def _rakp1(self, now: float) -> Output:
        self.phase = "rakp2"
        self.console_random = self.random(16)
        message = codec.Rakp1(
            self._next_tag(), self.bmc_id, self.console_random, self.role, self.credentials.username
        )
        return self._expect_setup("RAKP message 1", codec.PAYLOAD_RAKP1, message.encode(), now)

    def _on_rakp2(self, packet: codec.Packet, now: float) -> Output | None:
        assert self.suite is not None
        message = self._setup_reply(packet, codec.PAYLOAD_RAKP2, codec.Rakp2)
        if message is None:
            return None
        if message.status != 0:
            kind, text = _status(message.status)
            return self._fail(kind, f"RAKP message 2: {text}")
        if not message.bmc_random:
            return self._fail("error", "RAKP message 2 without the BMC's random number")
        kuid = crypto.user_key(self.credentials.password)
        expected = crypto.rakp2_code(
            self.suite,
            kuid,
            self.console_id,
            self.bmc_id,
            self.console_random,
            message.bmc_random,
            message.bmc_guid,
            self.role,
            self.credentials.username,
        )
        if not hmac.compare_digest(expected, message.auth_code):
            refusal = codec.Rakp3(self._next_tag(), RAKP3_ERROR_STATUS, self.bmc_id).encode()
            datagram = codec.Ipmi20Packet(codec.PAYLOAD_RAKP3, refusal).encode()
            return self._fail(
                "unauthorized",
                "wrong password: the BMC's RAKP 2 key exchange code does not match "
                "the password (or the BMC does not know the user)",
                (datagram,),
            )
        self.bmc_random = message.bmc_random
        self.bmc_guid = message.bmc_guid
        self.keys = crypto.derive_keys(
            self.suite,
            self.credentials.kg or kuid,
            self.console_random,
            self.bmc_random,
            self.role,
            self.credentials.username,
        )
        code = crypto.rakp3_code(
            self.suite, kuid, self.bmc_random, self.console_id, self.role, self.credentials.username
        )
        self.phase = "rakp4"
        rakp3 = codec.Rakp3(self._next_tag(), 0, self.bmc_id, code).encode()
        return self._expect_setup("RAKP message 3", codec.PAYLOAD_RAKP3, rakp3, now)

    # -- phase: RAKP 3/4 --------------------------------------------------------------------------
    def _on_rakp4(self, packet: codec.Packet, now: float) -> Output | None:
        assert self.suite is not None and self.keys is not None
        message = self._setup_reply(packet, codec.PAYLOAD_RAKP4, codec.Rakp4)
        if message is None:
            return None
        if message.status != 0:
            kind, text = _status(message.status)
            if message.status == 0x0F:
                return self._fail(
                    "unauthorized", f"wrong password: the BMC rejected our RAKP 3 code ({text})"
                )
            return self._fail(kind, f"RAKP message 4: {text}")
        expected = crypto.rakp4_code(
            self.suite, self.keys.sik, self.console_random, self.bmc_id, self.bmc_guid
        )
        if not hmac.compare_digest(expected, message.integrity_check):
            return self._fail(
                "error", "RAKP message 4: the integrity check value does not match the session keys"
            )
        self.phase = "active"
        if self.privilege > PRIV_USER:
            request = Request(
                NETFN_APP,
                CMD_SET_SESSION_PRIVILEGE,
                bytes((self.privilege,)),
                "Set Session Privilege Level",
            )
            return self._send_request(request, now, phase="privilege")
        return self._start_command(now)

    # -- in-session requests ----------------------------------------------------------------------
    def _seal(self, message: bytes) -> bytes:
        keys = self.keys
        assert keys is not None
        self.out_sequence = (self.out_sequence + 1) & 0xFFFFFFFF or 1
        return seal(keys, self.bmc_id, self.out_sequence, message, self.random(crypto.AES_BLOCK))

    def _send_request(
        self,
        request: Request,
        now: float,
        phase: str,
        tries: int = 0,
        outcome: Outcome | None = None,
    ) -> Output:
        self.phase = phase
        seq = self._next_rq_seq()
        message = codec.IpmiRequest(request.netfn, request.cmd, request.data, rq_seq=seq).encode()
        pending = _Pending(
            request.name or f"netfn 0x{request.netfn:02x} cmd 0x{request.cmd:02x}",
            lambda: self._seal(message),
            0.0,
            rq_seq=seq,
            netfn=request.netfn,
            cmd=request.cmd,
            tries=tries,
        )
        return self._expect(pending, now, outcome)

    def _open(self, packet: codec.Packet) -> codec.IpmiResponse | None:
        """The response inside an in-session packet, or None when the packet
        is not for us or fails its integrity check."""
        keys = self.keys
        if (
            keys is None
            or not isinstance(packet, codec.Ipmi20Packet)
            or packet.payload_type != codec.PAYLOAD_IPMI
            or packet.session_id != self.console_id
            or not packet.authenticated
            or not packet.encrypted
        ):
            return None
        length = keys.suite.integrity_length
        _, _, code = codec.split_trailer(packet.trailer, length)
        if not keys.verify(packet.signed_bytes(length), code):
            return None
        if not self.inbound.accept(packet.sequence):
            return None
        return self._match(codec.IpmiResponse.decode(keys.decrypt(packet.payload)))

    def _on_privilege(self, packet: codec.Packet, now: float) -> Output | None:
        response = self._open(packet)
        if response is None:
            return None
        if response.completion_code != 0:
            kind = "unauthorized" if response.completion_code in (0x80, 0x81, 0xD4) else "error"
            return self._close_after(
                Fault(
                    kind,
                    "Set Session Privilege Level: the BMC answered "
                    + completion_text(response.completion_code),
                ),
                now,
            )
        return self._start_command(now)

    def _start_command(self, now: float) -> Output:
        self.steps = self.command.steps()
        return self._advance(lambda steps: next(steps), now)

    def _on_command(self, packet: codec.Packet, now: float) -> Output | None:
        response = self._open(packet)
        if response is None:
            return None
        reply = Reply(response.completion_code, response.data)
        return self._advance(lambda steps: steps.send(reply), now)

    def _advance(self, step: Callable[[Steps], Request], now: float) -> Output:
        steps = self.steps
        assert steps is not None
        try:
            request = step(steps)
        except StopIteration as stop:
            self.steps = None
            return self._close_after(Success(stop.value), now)
        except CommandFailed as exc:
            self.steps = None
            return self._close_after(Fault(exc.kind, exc.detail), now)
        except Exception as exc:  # noqa: BLE001 - a command bug must not take the client down
            self.steps = None
            return self._close_after(Fault("error", f"{self.command.name}: {exc!r}"), now)
        return self._send_request(request, now, phase="command")

    # -- closing ----------------------------------------------------------------------------------
    def _close_after(self, outcome: Outcome, now: float) -> Output:
        """Report the outcome now and close the session (one try)."""
        self.outcome = outcome
        request = Request(
            NETFN_APP, CMD_CLOSE_SESSION, struct.pack("<I", self.bmc_id), "Close Session"
        )
        return self._send_request(request, now, phase="closing", tries=1, outcome=outcome)

    def _on_closing(self, packet: codec.Packet, now: float) -> Output | None:
        if self._open(packet) is None:
            return None
        return self._finish()
