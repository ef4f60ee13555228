"""The DHCP codec against scapy as an independent oracle: messages scapy
builds decode to the right fields, messages luna2d encodes parse in scapy
to the same values, byte for byte where both write the same layout. Also
option overload (52), RFC 3396 long and split options, unknown options,
padding, size limits and every kind of malformed input."""

from __future__ import annotations

from typing import Any

from scapy.layers.dhcp import BOOTP, DHCP
from twisted.trial import unittest

from luna2d.protocols.dhcp import codec
from luna2d.protocols.dhcp.codec import DecodeError, EncodeError, Message

MAC = bytes.fromhex("020000aabbcc")


def scapy_discover(**fields: Any) -> bytes:
    options = fields.pop("options", [("message-type", "discover"), "end"])
    packet = BOOTP(op=1, xid=0xDEADBEEF, chaddr=MAC + bytes(10), **fields) / DHCP(options=options)
    return bytes(packet)


class DecodeScapyTests(unittest.TestCase):
    def test_discover_fields(self) -> None:
        """A DISCOVER built by scapy decodes to its header fields, MAC,
        broadcast flag and options, in order."""
        data = scapy_discover(
            flags=0x8000,
            secs=7,
            options=[
                ("message-type", "discover"),
                ("hostname", b"client1"),
                ("param_req_list", [1, 3, 6, 15]),
                ("vendor_class_id", b"PXEClient:Arch:00000:UNDI:002001"),
                "end",
            ],
        )
        message = codec.decode(data)
        self.assertEqual(message.op, codec.BOOTREQUEST)
        self.assertEqual(message.xid, 0xDEADBEEF)
        self.assertEqual(message.secs, 7)
        self.assertTrue(message.broadcast)
        self.assertEqual(message.mac, "02:00:00:aa:bb:cc")
        self.assertEqual(message.message_type, codec.DISCOVER)
        self.assertEqual([code for code, _ in message.options], [53, 12, 55, 60])
        self.assertEqual(message.option(codec.HOSTNAME), b"client1")
        self.assertEqual(message.option(codec.PARAMETER_REQUEST_LIST), bytes([1, 3, 6, 15]))
        self.assertEqual(message.option(codec.VENDOR_CLASS), b"PXEClient:Arch:00000:UNDI:002001")
        self.assertIsNone(message.option(codec.CLIENT_ID))

    def test_addresses(self) -> None:
        """ciaddr, yiaddr, siaddr and giaddr come back as dotted quads."""
        data = scapy_discover(
            ciaddr="10.0.0.1", yiaddr="10.0.0.2", siaddr="10.0.0.3", giaddr="10.0.0.4"
        )
        message = codec.decode(data)
        self.assertEqual(
            (message.ciaddr, message.yiaddr, message.siaddr, message.giaddr),
            ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"),
        )

    def test_reencode_byte_exact(self) -> None:
        """Re-encoding a decoded scapy message gives scapy's bytes exactly."""
        data = scapy_discover(
            sname=b"srv",
            file=b"pxelinux.0",
            options=[
                ("message-type", "request"),
                ("requested_addr", "10.1.2.3"),
                ("server_id", "10.1.2.254"),
                ("client_id", b"\x01" + MAC),
                (224, b"\x00\x01\x02private"),
                "end",
            ],
        )
        message = codec.decode(data)
        self.assertEqual(message.sname, b"srv")
        self.assertEqual(message.file, b"pxelinux.0")
        self.assertEqual(message.encode(), data)

    def test_unknown_options_kept(self) -> None:
        """Options luna2d has no name for (here 224 and 251) survive decode
        and encode with their raw bytes and order."""
        data = scapy_discover(
            options=[("message-type", "inform"), (251, b"\xff\x00"), (224, b""), "end"]
        )
        message = codec.decode(data)
        self.assertEqual(message.options, ((53, b"\x08"), (251, b"\xff\x00"), (224, b"")))
        self.assertEqual(codec.decode(message.encode()), message)

    def test_overload_both_fields(self) -> None:
        """With option 52 = 3 the file field's options, then sname's, join
        the options field's, in that order (RFC 2131 section 4.1)."""
        file_options = bytes([12, 4]) + b"host" + bytes([200, 2]) + b"ab" + bytes([255])
        sname_options = bytes([200, 2]) + b"cd" + bytes([15, 3]) + b"dom" + bytes([255])
        data = scapy_discover(
            file=file_options,
            sname=sname_options,
            options=[
                ("message-type", "discover"),
                ("dhcp-option-overload", 3),
                (200, b"xy"),
                "end",
            ],
        )
        message = codec.decode(data)
        self.assertEqual(
            message.options, ((53, b"\x01"), (200, b"xyabcd"), (12, b"host"), (15, b"dom"))
        )
        self.assertEqual(message.file, b"")
        self.assertEqual(message.sname, b"")

    def test_overload_file_only(self) -> None:
        """With option 52 = 1 only the file field holds options; sname stays a name."""
        data = scapy_discover(
            file=bytes([66, 3]) + b"tft" + bytes([255]),
            sname=b"server-name",
            options=[("message-type", "discover"), ("dhcp-option-overload", 1), "end"],
        )
        message = codec.decode(data)
        self.assertEqual(message.option(codec.TFTP_SERVER_NAME), b"tft")
        self.assertEqual(message.sname, b"server-name")

    def test_long_option_concatenated(self) -> None:
        """RFC 3396: three instances of option 200 (255 + 255 + 90 octets)
        are one 600-octet value, and luna2d writes it back the same way."""
        parts = [b"a" * 255, b"b" * 255, b"c" * 90]
        data = scapy_discover(
            options=[("message-type", "discover")] + [(200, p) for p in parts] + ["end"]
        )
        message = codec.decode(data)
        self.assertEqual(message.option(200), b"".join(parts))
        self.assertEqual(message.encode(), data)

    def test_pad_and_missing_end(self) -> None:
        """Pad options are skipped and a field without an end option is taken as ended."""
        raw = bytes(scapy_discover(options=[("message-type", "discover"), "end"]))
        without_end = raw[: codec.OPTIONS_OFFSET] + b"\x00\x00" + bytes([53, 1, 3]) + b"\x00"
        message = codec.decode(without_end)
        self.assertEqual(message.options, ((53, b"\x03"),))


class EncodeScapyTests(unittest.TestCase):
    def offer(self, **extra: object) -> Message:
        return Message(
            op=codec.BOOTREPLY,
            xid=77,
            chaddr=MAC,
            flags=0x8000,
            yiaddr="10.141.0.5",
            siaddr="10.141.255.254",
            file=b"undionly.kpxe",
            options=(
                (codec.MESSAGE_TYPE, bytes([codec.OFFER])),
                (codec.SERVER_ID, codec.addresses("10.141.255.254")),
                (codec.LEASE_TIME, codec.u32(3600)),
                (codec.SUBNET_MASK, codec.addresses("255.255.0.0")),
                (codec.ROUTER, codec.addresses("10.141.255.254")),
                (codec.DNS_SERVERS, codec.addresses("10.141.255.254", "10.141.255.253")),
                (codec.DOMAIN_NAME, b"cluster"),
                (codec.HOSTNAME, b"node001"),
            ),
            **extra,  # type: ignore[arg-type]
        )

    def test_scapy_reads_offer(self) -> None:
        """An OFFER luna2d encodes parses in scapy to the same fields and option values."""
        packet = BOOTP(self.offer().encode())
        self.assertEqual((packet.op, packet.xid, packet.flags), (2, 77, 0x8000))
        self.assertEqual(packet.yiaddr, "10.141.0.5")
        self.assertEqual(packet.siaddr, "10.141.255.254")
        self.assertEqual(packet.chaddr[:6], MAC)
        self.assertEqual(packet.file.rstrip(b"\x00"), b"undionly.kpxe")
        options = dict(o for o in packet[DHCP].options if isinstance(o, tuple) and len(o) == 2)
        self.assertEqual(options["message-type"], 2)
        self.assertEqual(options["server_id"], "10.141.255.254")
        self.assertEqual(options["lease_time"], 3600)
        self.assertEqual(options["subnet_mask"], "255.255.0.0")
        self.assertEqual(options["router"], "10.141.255.254")
        self.assertEqual(options["domain"], b"cluster")
        self.assertEqual(options["hostname"], b"node001")
        servers = next(
            o for o in packet[DHCP].options if isinstance(o, tuple) and o[0] == "name_server"
        )
        self.assertEqual(list(servers[1:]), ["10.141.255.254", "10.141.255.253"])

    def test_golden_bytes(self) -> None:
        """The same OFFER built field by field in scapy is byte-identical to luna2d's."""
        reference = BOOTP(
            op=2,
            xid=77,
            flags=0x8000,
            yiaddr="10.141.0.5",
            siaddr="10.141.255.254",
            chaddr=MAC + bytes(10),
            file=b"undionly.kpxe",
        ) / DHCP(
            options=[
                ("message-type", "offer"),
                ("server_id", "10.141.255.254"),
                ("lease_time", 3600),
                ("subnet_mask", "255.255.0.0"),
                ("router", "10.141.255.254"),
                ("name_server", "10.141.255.254", "10.141.255.253"),
                ("domain", b"cluster"),
                ("hostname", b"node001"),
                "end",
            ]
        )
        self.assertEqual(self.offer().encode(), bytes(reference))

    def test_min_size_padding(self) -> None:
        """min_size pads with zeros after the end option; the message decodes the same."""
        data = self.offer().encode(min_size=300)
        self.assertEqual(len(data), 300)
        self.assertEqual(codec.decode(data), self.offer())
        self.assertEqual(data[: len(self.offer().encode())], self.offer().encode())

    def test_overload_when_too_big(self) -> None:
        """Options beyond max_size spill into file then sname with option 52,
        which scapy reads; decoding gives the original options back."""
        big = Message(
            op=2,
            xid=1,
            chaddr=MAC,
            options=((53, b"\x05"), (200, b"x" * 250), (201, b"y" * 100), (202, b"z" * 40)),
        )
        data = big.encode(max_size=548)
        self.assertLessEqual(len(data), 548)
        packet = BOOTP(data)
        self.assertIn(("dhcp-option-overload", 3), packet[DHCP].options)
        self.assertEqual(packet.file[:2], bytes([201, 100]))
        self.assertEqual(packet.sname[:2], bytes([202, 40]))
        self.assertEqual(codec.decode(data), big)

    def test_overload_keeps_used_fields(self) -> None:
        """A message with a boot file never overloads its file field; when the
        rest does not fit either, encoding raises EncodeError."""
        big = Message(
            op=2,
            xid=1,
            chaddr=MAC,
            file=b"ipxe.efi",
            options=((53, b"\x05"), (200, b"x" * 250), (201, b"y" * 60)),
        )
        data = big.encode(max_size=548)
        packet = BOOTP(data)
        self.assertEqual(packet.file.rstrip(b"\x00"), b"ipxe.efi")
        self.assertIn(("dhcp-option-overload", 2), packet[DHCP].options)
        self.assertEqual(codec.decode(data), big)
        with self.assertRaises(EncodeError):
            Message(
                op=2,
                xid=1,
                chaddr=MAC,
                file=b"f",
                sname=b"s",
                options=((200, b"x" * 250), (201, b"y" * 250)),
            ).encode(max_size=548)

    def test_long_value_split(self) -> None:
        """A 700-octet value is written as instances of 255, 255 and 190 octets."""
        data = Message(
            op=2, xid=1, chaddr=MAC, options=((43, bytes(range(256)) * 2 + b"q" * 188),)
        ).encode()
        body = data[codec.OPTIONS_OFFSET :]
        self.assertEqual((body[0], body[1]), (43, 255))
        self.assertEqual((body[257], body[258]), (43, 255))
        self.assertEqual((body[514], body[515]), (43, 190))
        self.assertEqual(body[516 + 190], 255)


class MessageTests(unittest.TestCase):
    def test_round_trip(self) -> None:
        """decode(encode(m)) == m for a message with every field set."""
        message = Message(
            op=1,
            xid=0xFFFFFFFF,
            chaddr=bytes(range(16)),
            htype=6,
            hlen=16,
            hops=3,
            secs=65535,
            flags=0x8000,
            ciaddr="1.2.3.4",
            yiaddr="5.6.7.8",
            siaddr="9.10.11.12",
            giaddr="13.14.15.16",
            sname=b"s" * 64,
            file=b"f" * 128,
            options=((53, b"\x03"), (1, b""), (254, b"\x00" * 300)),
        )
        self.assertEqual(codec.decode(message.encode()), message)

    def test_short_chaddr_padded(self) -> None:
        """A 6-octet chaddr is stored padded to the 16-octet field."""
        self.assertEqual(Message(op=1, xid=1, chaddr=MAC).chaddr, MAC + bytes(10))

    def test_invalid_construction(self) -> None:
        """Option 52, pad, end and non-bytes values are refused; so are
        oversized fields and addresses that are not IPv4."""
        for options in (((52, b"\x01"),), ((0, b""),), ((255, b""),), ((12, "text"),)):
            with self.assertRaises(ValueError):
                Message(op=1, xid=1, options=options)  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            Message(op=1, xid=1, chaddr=bytes(17))
        with self.assertRaises(ValueError):
            Message(op=1, xid=1, file=bytes(129))
        with self.assertRaises(ValueError):
            Message(op=1, xid=1, ciaddr="10.0.0.256").encode()

    def test_message_type_of_bootp(self) -> None:
        """A message without option 53 (plain BOOTP) or with a bad one has no type."""
        self.assertIsNone(Message(op=1, xid=1).message_type)
        self.assertIsNone(Message(op=1, xid=1, options=((53, b"\x01\x02"),)).message_type)


class DecodeErrorTests(unittest.TestCase):
    def valid(self) -> bytes:
        return scapy_discover(options=[("message-type", "discover"), ("hostname", b"abc"), "end"])

    def test_malformed(self) -> None:
        """Each malformation raises DecodeError and nothing else."""
        valid = self.valid()
        cases = {
            "empty": b"",
            "short": valid[:239],
            "bad op": bytes([3]) + valid[1:],
            "hlen 17": valid[:2] + bytes([17]) + valid[3:],
            "no cookie": valid[:236] + b"\x00\x00\x00\x00" + valid[240:],
            "no length": valid[:240] + bytes([53]),
            "past end": valid[:240] + bytes([53, 5, 1]),
            "bad overload": valid[:240] + bytes([52, 1, 4, 255]),
            "long overload": valid[:240] + bytes([52, 2, 1, 1, 255]),
            "overload twice": valid[:240] + bytes([52, 1, 1, 52, 1, 1, 255]),
            "bad file options": valid[:108]
            + bytes([12, 200])
            + valid[110:240]
            + bytes([52, 1, 1, 255]),
        }
        for name, data in cases.items():
            with self.assertRaises(DecodeError, msg=name):
                codec.decode(data)

    def test_not_bytes(self) -> None:
        """Something that is not bytes is a DecodeError too."""
        with self.assertRaises(DecodeError):
            codec.decode("a string")  # type: ignore[arg-type]


class OptionValueTests(unittest.TestCase):
    def test_addresses(self) -> None:
        """Address lists read back; malformed lengths read as absent."""
        self.assertEqual(
            codec.read_addresses(codec.addresses("1.2.3.4", "5.6.7.8")), ("1.2.3.4", "5.6.7.8")
        )
        self.assertEqual(codec.read_addresses(b"\x01\x02\x03"), ())
        self.assertEqual(codec.read_address(codec.addresses("1.2.3.4")), "1.2.3.4")
        self.assertIsNone(codec.read_address(b"\x01\x02"))

    def test_numbers(self) -> None:
        """16- and 32-bit values and 16-bit lists; wrong lengths read as absent."""
        self.assertEqual(codec.read_u32(codec.u32(86400)), 86400)
        self.assertIsNone(codec.read_u32(b"\x00"))
        self.assertEqual(codec.read_u16(b"\x05\xdc"), 1500)
        self.assertEqual(codec.read_u16_list(b"\x00\x00\x00\x07"), (0, 7))
        self.assertEqual(codec.read_u16_list(b"\x00"), ())

    def test_user_classes(self) -> None:
        """Option 77 as RFC 3004 length-prefixed classes and as iPXE's bare string."""
        self.assertIn(b"iPXE", codec.user_classes(b"iPXE"))
        self.assertIn(b"iPXE", codec.user_classes(b"\x04iPXE\x03abc"))
        self.assertIn(b"abc", codec.user_classes(b"\x04iPXE\x03abc"))
        self.assertEqual(codec.user_classes(None), ())
