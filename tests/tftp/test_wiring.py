"""How TFTP is configured and started: the ini's ``[TFTP]`` section (ENABLED,
PORT, ROOT, IPXE) read by ``luna2d.config``, and the real daemon
(``twistd luna2d``) with TFTP enabled serving a fresh install: ROOT created
beside the ini, the iPXE binary from Debian's ``ipxe`` package fetched with
curl, a file put in ROOT served, a clean stop; and a taken port refused at
start-up with a message naming the key."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import task
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from luna2d import config
from luna2d.errors import ConfigError
from luna2d.protocols.tftp.codec import Error, OptionAck, Packet, ReadRequest, decode
from tests.integration.test_daemon import (
    TWISTD,
    Daemon,
    DaemonCase,
    assert_clean_exit,
    ini_text,
    make_folder,
    the_reactor,
    twistd_args,
)

CURL = shutil.which("curl") or "/usr/bin/curl"
IPXE_PACKAGE = Path("/usr/lib/ipxe")


def free_udp_port() -> int:
    """A UDP port on this host that nobody is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]


def with_tftp(ini: str, section: str) -> str:
    return ini.replace("[TFTP]\nENABLED = no\n", section)


async def tftp_daemon(case: DaemonCase, root: str, extra: str = "") -> tuple[Daemon, int]:
    """A started daemon serving TFTP from ``root`` on a free UDP port, with
    ``extra`` lines in its [TFTP] section. Returns it and the port."""
    udp = free_udp_port()
    daemon = Daemon(case)
    section = f"[TFTP]\nENABLED = yes\nPORT = {udp}\nROOT = {root}\n{extra}"
    daemon.ini.write_text(with_tftp(daemon.ini.read_text(), section))
    await daemon.start()
    return daemon, udp


def tftp_limits(cfg: config.Config) -> tuple[int, int, int, int, int]:
    """MAX_TRANSFERS, MAX_PER_CLIENT, MAX_TIMEOUT, FIRST_ACK_TIMEOUT and
    REQUEST_RATE as loaded."""
    tftp = cfg.tftp
    assert isinstance(tftp, config.TFTPConfig)
    return (
        tftp.max_transfers,
        tftp.max_per_client,
        tftp.max_timeout,
        tftp.first_ack_timeout,
        tftp.request_rate,
    )


class ConfigTests(unittest.TestCase):
    def load(self, section: str) -> config.Config:
        folder = make_folder(self)
        path = folder / "luna.ini"
        path.write_text(with_tftp(ini_text(7050), section))
        return config.load(path)

    def test_defaults(self) -> None:
        """[TFTP] with only ENABLED: port 69, ROOT 'tftpboot' beside the ini,
        the iPXE binaries from /usr/lib/ipxe."""
        cfg = self.load("[TFTP]\nENABLED = yes\n")
        self.assertIsInstance(cfg.tftp, config.TFTPConfig)
        assert isinstance(cfg.tftp, config.TFTPConfig)
        self.assertTrue(cfg.tftp.enabled)
        self.assertEqual(cfg.tftp.port, 69)
        self.assertEqual(cfg.tftp.root, cfg.path.parent / "tftpboot")
        self.assertEqual(cfg.tftp.ipxe, Path("/usr/lib/ipxe"))
        self.assertEqual(
            tftp_limits(cfg),
            (1000, 32, 5, 6, 200),
        )

    def test_limit_keys(self) -> None:
        """MAX_TRANSFERS, MAX_PER_CLIENT, MAX_TIMEOUT, FIRST_ACK_TIMEOUT and
        REQUEST_RATE are read at their bounds; a table smaller than the
        default share brings the default share down to its size."""
        cfg = self.load(
            "[TFTP]\nENABLED = yes\nMAX_TRANSFERS = 65535\nMAX_PER_CLIENT = 65535\n"
            "MAX_TIMEOUT = 255\nFIRST_ACK_TIMEOUT = 60\nREQUEST_RATE = 100000\n"
        )
        self.assertEqual(
            tftp_limits(cfg),
            (65535, 65535, 255, 60, 100000),
        )
        cfg = self.load(
            "[TFTP]\nENABLED = yes\nMAX_TRANSFERS = 1\nMAX_PER_CLIENT = 1\n"
            "MAX_TIMEOUT = 1\nFIRST_ACK_TIMEOUT = 1\nREQUEST_RATE = 1\n"
        )
        self.assertEqual(
            tftp_limits(cfg),
            (1, 1, 1, 1, 1),
        )
        cfg = self.load("[TFTP]\nENABLED = yes\nMAX_TRANSFERS = 10\n")
        self.assertEqual(cfg.tftp.max_per_client, 10)

    def test_all_keys(self) -> None:
        """PORT, ROOT (relative to the ini) and IPXE are read."""
        cfg = self.load("[TFTP]\nENABLED = no\nPORT = 6969\nROOT = boot/tftp\nIPXE = /opt/ipxe\n")
        assert isinstance(cfg.tftp, config.TFTPConfig)
        self.assertFalse(cfg.tftp.enabled)
        self.assertEqual(
            (cfg.tftp.port, cfg.tftp.root, cfg.tftp.ipxe),
            (6969, cfg.path.parent / "boot" / "tftp", Path("/opt/ipxe")),
        )

    def test_bad_values_name_the_key(self) -> None:
        """A port that is not 1-65535, an empty ROOT and an unknown key are
        ConfigErrors naming [TFTP] and the key."""
        for section, key in [
            ("PORT = 0\n", "[TFTP] PORT"),
            ("PORT = 70000\n", "[TFTP] PORT"),
            ("PORT = sixty\n", "[TFTP] PORT"),
            ("ROOT =\n", "[TFTP] ROOT"),
            ("BLKSIZE = 1468\n", "[TFTP] BLKSIZE"),
        ]:
            error = self.assertRaises(ConfigError, self.load, "[TFTP]\nENABLED = yes\n" + section)
            self.assertIn(key, str(error), section)

    def test_bad_limits_name_the_key(self) -> None:
        """Each limit out of its range, or not a whole number, is a
        ConfigError naming [TFTP], the key and the range; a share larger
        than the table names both keys."""
        cases = [
            (
                "MAX_TRANSFERS = 0",
                "[TFTP] MAX_TRANSFERS: '0' is not a whole number from 1 to 65535",
            ),
            ("MAX_TRANSFERS = 65536", "[TFTP] MAX_TRANSFERS"),
            ("MAX_TRANSFERS = many", "[TFTP] MAX_TRANSFERS"),
            ("MAX_PER_CLIENT = 0", "[TFTP] MAX_PER_CLIENT: '0' is not a whole number from 1"),
            ("MAX_PER_CLIENT = -1", "[TFTP] MAX_PER_CLIENT"),
            ("MAX_TIMEOUT = 0", "[TFTP] MAX_TIMEOUT: '0' is not a whole number from 1 to 255"),
            ("MAX_TIMEOUT = 256", "[TFTP] MAX_TIMEOUT"),
            ("MAX_TIMEOUT = 2.5", "[TFTP] MAX_TIMEOUT"),
            (
                "FIRST_ACK_TIMEOUT = 0",
                "[TFTP] FIRST_ACK_TIMEOUT: '0' is not a whole number from 1 to 60",
            ),
            ("FIRST_ACK_TIMEOUT = 61", "[TFTP] FIRST_ACK_TIMEOUT"),
            ("REQUEST_RATE = 0", "[TFTP] REQUEST_RATE: '0' is not a whole number from 1 to 100000"),
            ("REQUEST_RATE = 100001", "[TFTP] REQUEST_RATE"),
            (
                "MAX_TRANSFERS = 10\nMAX_PER_CLIENT = 11",
                "[TFTP] MAX_PER_CLIENT: 11 is more than MAX_TRANSFERS (10)",
            ),
        ]
        for line, message in cases:
            error = self.assertRaises(ConfigError, self.load, f"[TFTP]\nENABLED = yes\n{line}\n")
            self.assertIn(message, str(error), line)


LIMIT_KEYS = {
    "MAX_TRANSFERS": (1, 65535),
    "MAX_PER_CLIENT": (1, 65535),
    "MAX_TIMEOUT": (1, 255),
    "FIRST_ACK_TIMEOUT": (1, 60),
    "REQUEST_RATE": (1, 100000),
}
limit_value = st.one_of(
    st.integers(-5, 200_000).map(str),
    st.sampled_from(["", " 7", "7 ", "1e3", "0x10", "\u0663", "\u00b2", "2.5"]),
    st.text(max_size=6).filter(lambda text: not {"\n", "\r"} & set(text)),
)


class ConfigFuzzTests(unittest.TestCase):
    @settings(max_examples=200, deadline=None)
    @given(st.dictionaries(st.sampled_from(sorted(LIMIT_KEYS)), limit_value, max_size=5))
    def test_any_limit_values(self, values: dict[str, str]) -> None:
        """Any text for the [TFTP] limits: either a Config whose limits are
        whole numbers in their ranges (the share within the table, and what
        was written when it is a plain number), or a ConfigError naming
        [TFTP] and one of the keys; never another exception."""
        folder = Path(tempfile.mkdtemp(prefix="luna2d-tftp-ini-"))
        self.addCleanup(shutil.rmtree, folder, True)
        path = folder / "luna.ini"
        lines = "".join(f"{key} = {value}\n" for key, value in values.items())
        path.write_text(with_tftp(ini_text(7050), "[TFTP]\nENABLED = yes\n" + lines))
        try:
            cfg = config.load(path)
        except ConfigError as error:
            self.assertTrue(any(f"[TFTP] {key}" in str(error) for key in values), str(error))
            return
        tftp = cfg.tftp
        for key, (low, high) in LIMIT_KEYS.items():
            number = getattr(tftp, key.lower())
            self.assertTrue(low <= number <= high, (key, number))
            if key in values:
                self.assertEqual(str(number), values[key].strip().strip("'\""), key)
        self.assertLessEqual(tftp.max_per_client, tftp.max_transfers)


class DaemonTests(DaemonCase):
    timeout = 120

    async def test_fresh_install_serves_ipxe(self) -> None:
        """twistd luna2d with [TFTP] ENABLED on a free port and no ROOT made
        beforehand: ROOT appears beside the ini; curl gets undionly.kpxe
        (from the ipxe package, as iPXE asks: blksize 1432) identical to the
        package's; a file put into ROOT is served; /monitor/service/tftp says it
        listens and counts both transfers; each transfer has its line in the
        daemon's log; SIGTERM stops it cleanly."""
        daemon, udp = await tftp_daemon(self, "var/tftpboot")
        root = daemon.folder / "var" / "tftpboot"
        self.assertTrue(root.is_dir())
        out = daemon.folder / "got"
        expected = (IPXE_PACKAGE / "undionly.kpxe").read_bytes()
        text, code = await self.curl(
            "--tftp-blksize", "1432", "-o", str(out), f"tftp://127.0.0.1:{udp}/undionly.kpxe"
        )
        self.assertEqual(code, 0, text)
        self.assertEqual(out.read_bytes(), expected)
        (root / "pxelinux.cfg").mkdir()
        (root / "pxelinux.cfg" / "default").write_bytes(b"DEFAULT luna\n")
        text, code = await self.curl("-o", str(out), f"tftp://127.0.0.1:{udp}/pxelinux.cfg/default")
        self.assertEqual(code, 0, text)
        self.assertEqual(out.read_bytes(), b"DEFAULT luna\n")
        token = await daemon.token()
        code, body = await daemon.call("GET", "/monitor/service/tftp", token=token)
        self.assertEqual(code, 200, body)
        health = body["monitor"]["service"]["tftp"]
        self.assertIn(f"TFTP listening on UDP {udp}", health)
        self.assertIn("completed 2", health)
        reason = await daemon.stop()
        output = daemon.output()
        assert_clean_exit(self, reason, output)
        # luna2d's request log: one line per transfer, and per refusal.
        size = len(expected)
        self.assertIn(
            f"'undionly.kpxe' complete: {size} of {size} bytes, blksize 1432, windowsize 1", output
        )
        self.assertIn("'pxelinux.cfg/default' complete: 13 of 13 bytes", output)

    async def test_limits_from_the_ini_reach_the_server(self) -> None:
        """twistd luna2d with MAX_TRANSFERS 4, MAX_PER_CLIENT 2, MAX_TIMEOUT 3
        and FIRST_ACK_TIMEOUT 2: silent requests (timeout 3) from sockets
        a1, a2, a3 on one address, b1, b2 on a second, and c1 (timeout 4) on
        a third. a1 gives way to a3 (the address's share), a2 to c1 (the
        table), both with ERROR 0 'server busy'; the others get an OACK that
        echoes timeout 3, or leaves 4 out, and end with 'timed out' 2 s
        after it, not 3 s or later."""
        daemon, udp = await tftp_daemon(
            self,
            "tftpboot",
            "MAX_TRANSFERS = 4\nMAX_PER_CLIENT = 2\nMAX_TIMEOUT = 3\nFIRST_ACK_TIMEOUT = 2\n",
        )
        (daemon.folder / "tftpboot" / "f.bin").write_bytes(b"x" * 3000)
        reactor = the_reactor()
        names = ["a1", "a2", "a3", "b1", "b2", "c1"]
        hosts = {"a": "127.0.4.1", "b": "127.0.4.2", "c": "127.0.4.3"}
        socks: dict[str, socket.socket] = {}
        for name in names:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.addCleanup(sock.close)
            sock.bind((hosts[name[0]], 0))
            sock.setblocking(False)
            socks[name] = sock
        sent_at: dict[str, float] = {}
        for name in names:
            options = (("tsize", "0"), ("timeout", "4")) if name == "c1" else (("timeout", "3"),)
            sent_at[name] = reactor.seconds()
            socks[name].sendto(ReadRequest("f.bin", "octet", options).encode(), ("127.0.0.1", udp))
            await task.deferLater(reactor, 0.05, lambda: None)  # in this order
        got: dict[str, list[tuple[float, Packet]]] = {name: [] for name in names}
        while reactor.seconds() - sent_at["c1"] < 3.5:
            for name, sock in socks.items():
                try:
                    got[name].append((reactor.seconds() - sent_at[name], decode(sock.recv(65536))))
                except BlockingIOError:
                    pass
            await task.deferLater(reactor, 0.02, lambda: None)
        busy, timed_out = Error(0, "server busy, try again"), Error(0, "timed out")
        for name in ("a1", "a2"):
            self.assertEqual(got[name][-1][1], busy, name)
        echoed = OptionAck((("timeout", "3"),))
        for name in ("a3", "b1", "b2"):
            self.assertEqual([packet for _, packet in got[name]], [echoed, timed_out], name)
        # timeout 4 declined: the server's own 1 s, so the OACK goes twice.
        declined = OptionAck((("tsize", "3000"),))
        self.assertEqual([packet for _, packet in got["c1"]], [declined, declined, timed_out])
        for name in ("a3", "b1", "b2", "c1"):
            ended = got[name][-1][0]
            # Not before FIRST_ACK_TIMEOUT; and before 3 s, when timeout 3
            # would have sent the OACK again.
            self.assertTrue(1.8 < ended < 2.9, f"{name} ended {ended:.2f} s after its request")
        await daemon.stop()

    async def test_request_rate_from_the_ini(self) -> None:
        """REQUEST_RATE 1 (bursts of 2): three requests at once from three
        ports of one address get two OACKs and one silence; the counters of
        /monitor/service/tftp say one request was rate-limited."""
        daemon, udp = await tftp_daemon(self, "tftpboot", "REQUEST_RATE = 1\n")
        (daemon.folder / "tftpboot" / "f.bin").write_bytes(b"x" * 3000)
        reactor = the_reactor()
        socks = []
        for _ in range(3):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.addCleanup(sock.close)
            sock.bind(("127.0.4.9", 0))
            sock.setblocking(False)
            socks.append(sock)
        request = ReadRequest("f.bin", "octet", (("tsize", "0"),)).encode()
        for sock in socks:
            sock.sendto(request, ("127.0.0.1", udp))
        await task.deferLater(reactor, 0.5, lambda: None)
        first: list[Packet | None] = []
        for sock in socks:
            try:
                first.append(decode(sock.recv(65536)))
            except BlockingIOError:
                first.append(None)
        self.assertEqual(first, [OptionAck((("tsize", "3000"),))] * 2 + [None])
        token = await daemon.token()
        code, body = await daemon.call("GET", "/monitor/service/tftp", token=token)
        self.assertEqual(code, 200, body)
        self.assertIn("rate_limited 1", body["monitor"]["service"]["tftp"])
        await daemon.stop()

    async def test_taken_port_refused_at_start(self) -> None:
        """A TFTP port already bound: the daemon exits non-zero, naming
        [TFTP] PORT and the port, without a traceback."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("0.0.0.0", 0))
            udp = taken.getsockname()[1]
            daemon = Daemon(self)
            daemon.ini.write_text(
                with_tftp(daemon.ini.read_text(), f"[TFTP]\nENABLED = yes\nPORT = {udp}\n")
            )
            out, err, code = await getProcessOutputAndValue(
                TWISTD,
                twistd_args(daemon.ini),
                env=dict(os.environ),
                path=str(daemon.cwd),
                reactor=daemon.reactor,
            )
        text = (out + err).decode("utf-8", "replace")
        self.assertNotEqual(code, 0, text)
        self.assertIn("[TFTP] PORT", text)
        self.assertIn(str(udp), text)
        self.assertNotIn("Traceback", text)

    async def curl(self, *args: str) -> tuple[str, int]:
        out, err, code = await getProcessOutputAndValue(
            CURL, ["-sS", *args], env=dict(os.environ), reactor=the_reactor()
        )
        return (out + err).decode("utf-8", "replace"), code
