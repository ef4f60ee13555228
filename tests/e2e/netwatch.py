"""Run inside a test namespace on the boot network's bridge: sends IPv6 router
advertisements with router lifetime 0 every 0.5 s (so iPXE stops waiting for
IPv6 configuration at once instead of after about 13 s) and prints one JSON
line per DHCP message and TFTP read request seen on the interface, in either
direction. The end-to-end test reads those lines as a record of the wire
that is independent of luna2d's own log.

Usage: ``python -m tests.e2e.netwatch IFACE`` (as root, in the namespace).
Runs until killed. One AF_PACKET socket does both the sending and the
watching; nothing here knows luna2d."""

from __future__ import annotations

import json
import select
import signal
import socket
import struct
import sys
import time
from typing import Any

ETH_P_ALL = 0x0003
RA_INTERVAL = 0.5
DHCP_TYPES = {
    1: "DISCOVER",
    2: "OFFER",
    3: "REQUEST",
    4: "DECLINE",
    5: "ACK",
    6: "NAK",
    7: "RELEASE",
    8: "INFORM",
}


def interface_mac(name: str) -> bytes:
    """The interface's MAC address (from sysfs)."""
    with open(f"/sys/class/net/{name}/address", encoding="ascii") as handle:
        return bytes.fromhex(handle.read().strip().replace(":", ""))


def router_advertisement(mac: bytes) -> bytes:
    """An Ethernet frame: ICMPv6 router advertisement from the link-local
    address derived from ``mac`` to all nodes, hop limit 255, router lifetime
    0 (not a default router), with the source link-layer address option."""
    from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6NDOptSrcLLAddr, IPv6
    from scapy.layers.l2 import Ether

    text = ":".join(f"{b:02x}" for b in mac)
    eui = bytearray(mac[:3] + b"\xff\xfe" + mac[3:])
    eui[0] ^= 0x02
    link_local = "fe80::" + ":".join(f"{eui[i]:02x}{eui[i + 1]:02x}" for i in range(0, 8, 2))
    frame = (
        Ether(src=text, dst="33:33:00:00:00:01")
        / IPv6(src=link_local, dst="ff02::1", hlim=255)
        / ICMPv6ND_RA(routerlifetime=0, reachabletime=0, retranstimer=0)
        / ICMPv6NDOptSrcLLAddr(lladdr=text)
    )
    return bytes(frame)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.split(b"\x00", 1)[0].decode("latin-1")
    return str(value)


def describe_dhcp(payload: bytes) -> dict[str, Any] | None:
    """The fields of a DHCP message the test checks, or None if it is not one."""
    from scapy.layers.dhcp import BOOTP, DHCP

    try:
        bootp = BOOTP(payload)
    except Exception:  # noqa: BLE001 (anything undecodable is simply not reported)
        return None
    record: dict[str, Any] = {
        "kind": "dhcp",
        "op": bootp.op,
        "xid": bootp.xid,
        "mac": ":".join(f"{b:02x}" for b in bytes(bootp.chaddr)[:6]),
        "ciaddr": bootp.ciaddr,
        "yiaddr": bootp.yiaddr,
        "siaddr": bootp.siaddr,
        "file": _text(bootp.file),
    }
    if DHCP in bootp:
        for option in bootp[DHCP].options:
            if not isinstance(option, tuple) or len(option) < 2:
                continue
            name, value = option[0], option[1]
            if name == "message-type":
                record["type"] = DHCP_TYPES.get(value, str(value))
            elif name == "vendor_class_id":
                record["vendor_class"] = _text(value)
            elif name == "user_class":
                record["user_class"] = _text(value)
            elif name == "server_id":
                record["server_id"] = str(value)
            elif name == "requested_addr":
                record["requested"] = str(value)
            elif name == "boot-file-name":
                record["boot_file_option"] = _text(value)
    return record


def describe(frame: bytes) -> dict[str, Any] | None:
    """A DHCP message or a TFTP read request in an Ethernet frame, else None
    (a cheap look at the headers first: most frames are neither)."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    header = (frame[14] & 0x0F) * 4
    udp = 14 + header
    source_port, dest_port = struct.unpack("!HH", frame[udp : udp + 4])
    payload = frame[udp + 8 :]
    source, dest = socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34])
    if dest_port in (67, 68, 4011) or (source_port == 4011 and dest_port == 4011):
        record = describe_dhcp(payload)
    elif dest_port == 69 and payload[:2] == b"\x00\x01":
        fields = payload[2:].split(b"\x00")
        record = {
            "kind": "tftp-rrq",
            "name": fields[0].decode("latin-1"),
            "options": {
                fields[i].decode("latin-1").lower(): fields[i + 1].decode("latin-1")
                for i in range(2, len(fields) - 1, 2)
                if fields[i]
            },
        }
    else:
        return None
    if record is not None:
        record.update({"src": f"{source}:{source_port}", "dst": f"{dest}:{dest_port}"})
    return record


def main(argv: list[str]) -> int:
    interface = argv[1]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((interface, ETH_P_ALL))
    advertisement = router_advertisement(interface_mac(interface))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"kind": "ready", "interface": interface}), flush=True)
    next_ra = 0.0
    while True:
        now = time.monotonic()
        if now >= next_ra:
            try:
                sock.send(advertisement)
            except OSError as exc:  # the bridge has no carrier until the VM's tap is up
                if exc.errno not in (100, 105):  # ENETDOWN, ENOBUFS
                    raise
            next_ra = now + RA_INTERVAL
        readable, _, _ = select.select([sock], [], [], max(0.0, next_ra - time.monotonic()))
        if not readable:
            continue
        frame = sock.recv(65535)
        record = describe(frame)
        if record is not None:
            record["t"] = round(time.time(), 3)
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
