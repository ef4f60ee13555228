"""A DHCP client that sends what a hostile or careless machine would, for
the DHCP integration tests: run inside the test's client namespace
(``python -m tests.dhcp.rawclient ...``), it sends COUNT DHCP requests from
made-up MACs through a plain UDP socket bound to the interface, listens
for the replies to its own transaction ids for a while after the last one,
and prints one JSON line: how many it sent and the replies by type.

Kinds: ``discover`` (a DISCOVER per MAC) and ``request`` (an INIT-REBOOT
REQUEST per MAC: requested address, no server identifier, no ciaddr,
cycling through ``--addresses``)."""

from __future__ import annotations

import argparse
import json
import random
import select
import socket
import time

from luna2d.protocols.dhcp import codec
from luna2d.protocols.dhcp.codec import Message

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
NAMES = {codec.OFFER: "offer", codec.ACK: "ack", codec.NAK: "nak"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interface", required=True)
    parser.add_argument("--kind", choices=("discover", "request"), required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--addresses", default="", help="comma-separated, for --kind request")
    parser.add_argument("--listen", type=float, default=2.0, help="seconds after the last send")
    args = parser.parse_args()
    addresses = [a for a in args.addresses.split(",") if a]

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, args.interface.encode())
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(("0.0.0.0", 68))

    rng = random.Random()
    xids: set[int] = set()
    replies: dict[str, int] = {}
    acked: list[str] = []

    def drain(timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([sock], [], [], max(left, 0))
            if not ready:
                if left <= 0:
                    return
                continue
            data = sock.recv(4096)
            try:
                reply = codec.decode(data)
            except codec.DecodeError:
                continue
            if reply.op != codec.BOOTREPLY or reply.xid not in xids:
                continue
            name = NAMES.get(reply.message_type or 0, "other")
            replies[name] = replies.get(name, 0) + 1
            if name == "ack":
                acked.append(reply.yiaddr)

    for number in range(args.count):
        xid = rng.getrandbits(32)
        xids.add(xid)
        mac = bytes([0x06]) + rng.randbytes(5)
        options: tuple[tuple[int, bytes], ...]
        if args.kind == "discover":
            options = ((codec.MESSAGE_TYPE, bytes([codec.DISCOVER])),)
        else:
            wanted = addresses[number % len(addresses)]
            options = (
                (codec.MESSAGE_TYPE, bytes([codec.REQUEST])),
                (codec.REQUESTED_ADDRESS, codec.addresses(wanted)),
            )
        message = Message(
            op=codec.BOOTREQUEST, xid=xid, chaddr=mac, flags=codec.BROADCAST_FLAG, options=options
        )
        sock.sendto(message.encode(min_size=300), ("255.255.255.255", 67))
        if number % 64 == 63:
            drain(0)  # keep the receive queue short during a long flood
    drain(args.listen)
    print(json.dumps({"sent": args.count, "replies": replies, "acked": acked}))


if __name__ == "__main__":
    main()
