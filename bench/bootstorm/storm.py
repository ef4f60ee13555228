"""The boot storm's simulated nodes: one asyncio program, run inside the
client namespace by bench/bootstorm/bench.py.

``load``: waits for the API, takes a token and creates the network, osimage,
group and N nodes through the API (POST /config/..., a few requests in
flight at a time), each node with a MAC and a fixed address.

``storm``: N simulated nodes, started evenly over ``--spread`` seconds, each
doing what a BIOS PXE ROM and iPXE do against luna2d:

1. DHCP through a relay (giaddr set, as perfdhcp and real routed boot
   networks do): DISCOVER, OFFER, REQUEST, ACK, with the ROM's vendor class
   ``PXEClient:Arch:00000:UNDI:002001``, option 93 = 0 and its parameter
   list; retransmitted after 4, 8 and 16 s as PXE 2.1 prescribes. The ACK
   must give the node's own address and ``undionly.kpxe``.
2. TFTP of that file from the next-server, from the node's own address:
   ``blksize 1432`` and ``tsize`` as iPXE asks, lock-step (no windowsize);
   the last ACK is sent again after 2 s without data, 6 times at most.
   The file must match the ``ipxe`` package's by size and sha256.
3. ``GET /boot/search/mac/<mac>`` over HTTP/1.1 from the node's address; it
   must answer 200 with that node's script.

Prints one JSON document: per-node timings and failures, and a summary."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import ipaddress
import json
import os
import random
import resource
import socket
import statistics
import struct
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/, for benchlib

from benchlib import percentile

MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6
PXE_VENDOR = b"PXEClient:Arch:00000:UNDI:002001"
PXE_PARAMS = bytes(
    [
        1,
        2,
        3,
        5,
        6,
        11,
        12,
        13,
        15,
        16,
        17,
        18,
        43,
        54,
        60,
        67,
        128,
        129,
        130,
        131,
        132,
        133,
        134,
        135,
    ]
)
DHCP_TIMEOUTS = (4.0, 8.0, 16.0)  # PXE 2.1: 4, 8, 16 (, 32) s
TFTP_BLKSIZE = 1432
TFTP_TIMEOUT, TFTP_TRIES = 2.0, 6
HTTP_TIMEOUT = 30.0


def mac_of(number: int) -> str:
    return f"02:42:0a:c9:{number >> 8 & 0xFF:02x}:{number & 0xFF:02x}"


def name_of(number: int) -> str:
    return f"sn{number:05d}"


def address_of(prefix: str, number: int) -> str:
    """Node addresses: <prefix>.0.1 ... <prefix>.7.250 for 2,000 nodes."""
    return f"{prefix}.{number // 250}.{number % 250 + 1}"


# -- HTTP ---------------------------------------------------------------------------------------


def dechunk(body: bytes) -> bytes:
    out, rest = bytearray(), body
    while rest:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2 :]
    return bytes(out)


async def http(
    method: str,
    host: str,
    port: int,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    local: str | None = None,
    agent: str = "luna2d-bootstorm",
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on its own connection (from ``local`` if given): (status, body)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, local_addr=(local, 0) if local else None), HTTP_TIMEOUT
    )
    try:
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {host}:{port}",
            f"User-Agent: {agent}",
            "Connection: close",
        ]
        for key, value in (headers or {}).items():
            lines.append(f"{key}: {value}")
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        raw = await asyncio.wait_for(reader.read(), HTTP_TIMEOUT)
    finally:
        writer.close()
    if not raw:
        raise ConnectionError("closed without an answer")
    head, _, content = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    if any(
        h.lower().startswith("transfer-encoding:") and "chunked" in h.lower() for h in header_lines
    ):
        content = dechunk(content)
    return status, content


# -- DHCP ---------------------------------------------------------------------------------------


def dhcp_request(
    kind: int,
    xid: int,
    mac: bytes,
    giaddr: str,
    secs: int,
    extra: tuple[tuple[int, bytes], ...] = (),
) -> bytes:
    """A relayed BOOTREQUEST as a PXE ROM sends it (hops 1, giaddr set)."""
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1,
        1,
        6,
        1,
        xid,
        secs,
        0,
        bytes(4),
        bytes(4),
        bytes(4),
        socket.inet_aton(giaddr),
        mac.ljust(16, b"\x00"),
        b"",
        b"",
    )
    options = [
        (53, bytes([kind])),
        (57, struct.pack("!H", 1464)),
        (93, b"\x00\x00"),
        (94, b"\x01\x02\x01"),
        (60, PXE_VENDOR),
        (55, PXE_PARAMS),
        (97, b"\x00" + hashlib.md5(mac).digest()),
        *extra,
    ]
    encoded = b"".join(bytes([code, len(value)]) + value for code, value in options)
    return header + MAGIC + encoded + b"\xff"


def parse_options(data: bytes) -> dict[int, bytes]:
    options: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0:
            i += 1
            continue
        if code == 255 or i + 1 >= len(data):
            break
        length = data[i + 1]
        options[code] = options.get(code, b"") + data[i + 2 : i + 2 + length]
        i += 2 + length
    return options


@dataclass
class Reply:
    kind: int
    yiaddr: str
    siaddr: str
    server_id: str
    file: str


def parse_reply(data: bytes) -> tuple[int, Reply] | None:
    """(xid, the fields used) of a BOOTREPLY, or None if it is not one."""
    if len(data) < 240 or data[0] != 2 or data[236:240] != MAGIC:
        return None
    xid = struct.unpack("!I", data[4:8])[0]
    options = parse_options(data[240:])
    overload = options.get(52, b"\x00")[0]
    file_field, sname = data[108:236], data[44:108]
    if overload & 1:
        options = {**parse_options(file_field), **options}
    if overload & 2:
        options = {**parse_options(sname), **options}
    kind = options.get(53, b"\x00")[0]
    boot = options.get(67) or (b"" if overload & 1 else file_field)
    server_id = socket.inet_ntoa(options[54]) if len(options.get(54, b"")) == 4 else ""
    return xid, Reply(
        kind,
        socket.inet_ntoa(data[16:20]),
        socket.inet_ntoa(data[20:24]),
        server_id,
        boot.split(b"\x00", 1)[0].decode("latin-1"),
    )


class Relay(asyncio.DatagramProtocol):
    """The relay agent's socket (giaddr:67): sends for every node, hands
    each reply to the node waiting for its xid."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.waiting: dict[int, asyncio.Queue] = {}
        self.stray = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        parsed = parse_reply(data)
        if parsed is None or parsed[0] not in self.waiting:
            self.stray += 1
            return
        self.waiting[parsed[0]].put_nowait(parsed[1])


# -- TFTP ---------------------------------------------------------------------------------------


class TFTPFailure(Exception):
    pass


class TFTPGet(asyncio.DatagramProtocol):
    """One lock-step read of ``name`` with blksize and tsize, iPXE style."""

    def __init__(self, name: str, server: tuple[str, int]) -> None:
        self.name = name
        self.server = server
        self.peer: tuple[str, int] | None = None
        self.data = bytearray()
        self.expected = 1
        self.blksize = 512
        self.tsize: int | None = None
        self.last: bytes = b""
        self.tries = 0
        self.retransmits = 0
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.timer: asyncio.TimerHandle | None = None
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.send(
            b"\x00\x01"
            + self.name.encode()
            + b"\x00octet\x00blksize\x00"
            + str(TFTP_BLKSIZE).encode()
            + b"\x00tsize\x000\x00",
            self.server,
        )

    def send(self, packet: bytes, dest: tuple[str, int]) -> None:
        self.last = packet
        self.transport.sendto(packet, dest)
        self.arm()

    def arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(TFTP_TIMEOUT, self.expired)

    def expired(self) -> None:
        if self.done.done():
            return
        self.tries += 1
        if self.tries >= TFTP_TRIES:
            self.finish(TFTPFailure(f"timed out at block {self.expected} after {self.tries} tries"))
            return
        self.retransmits += 1
        self.transport.sendto(self.last, self.peer or self.server)
        self.arm()

    def finish(self, error: Exception | None = None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.done.done():
            if error is None:
                self.done.set_result(bytes(self.data))
            else:
                self.done.set_exception(error)

    def datagram_received(self, packet: bytes, addr: Any) -> None:
        if self.done.done() or len(packet) < 4:
            return
        if self.peer is None:
            self.peer = addr
        elif addr != self.peer:
            self.transport.sendto(b"\x00\x05\x00\x05unknown transfer ID\x00", addr)
            return
        opcode, number = struct.unpack("!HH", packet[:4])
        if opcode == 6:  # OACK
            fields = packet[2:].split(b"\x00")
            options = {
                fields[i].decode().lower(): fields[i + 1].decode()
                for i in range(0, len(fields) - 1, 2)
            }
            self.blksize = int(options.get("blksize", 512))
            self.tsize = int(options["tsize"]) if "tsize" in options else None
            self.tries = 0
            self.send(b"\x00\x04\x00\x00", self.peer)
        elif opcode == 3:  # DATA
            if number == self.expected & 0xFFFF:
                self.data += packet[4:]
                self.expected += 1
                self.tries = 0
                ack = b"\x00\x04" + struct.pack("!H", number)
                if len(packet) - 4 < self.blksize:
                    self.transport.sendto(ack, self.peer)
                    self.finish()
                else:
                    self.send(ack, self.peer)
            # An earlier block again: our ACK was lost; the timer resends it.
        elif opcode == 5:
            message = packet[4:].split(b"\x00", 1)[0].decode("latin-1")
            self.finish(TFTPFailure(f"ERROR {number}: {message}"))


async def tftp_get(local: str, server: str, name: str) -> tuple[bytes, int, int | None]:
    """(the file, retransmissions, tsize announced)."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: TFTPGet(name, (server, 69)), local_addr=(local, 0)
    )
    try:
        data = await proto.done
    finally:
        transport.close()
    return data, proto.retransmits, proto.tsize


# -- one node -----------------------------------------------------------------------------------


@dataclass
class Node:
    number: int
    name: str
    mac: str
    address: str
    start: float = 0.0
    dhcp: float = 0.0
    tftp: float = 0.0
    http: float = 0.0
    dhcp_retransmits: int = 0
    tftp_retransmits: int = 0
    error: str = ""
    phase: str = ""


@dataclass
class Storm:
    args: argparse.Namespace
    relay: Relay
    file_size: int
    file_sha256: str
    nodes: list[Node] = field(default_factory=list)

    async def exchange(
        self,
        node: Node,
        kind: int,
        xid: int,
        mac: bytes,
        started: float,
        extra: tuple[tuple[int, bytes], ...],
        want: int,
    ) -> Reply:
        queue: asyncio.Queue = asyncio.Queue()
        self.relay.waiting[xid] = queue
        try:
            for attempt, timeout in enumerate(DHCP_TIMEOUTS):
                if attempt:
                    node.dhcp_retransmits += 1
                secs = min(65535, int(time.monotonic() - started))
                self.relay.transport.sendto(
                    dhcp_request(kind, xid, mac, self.args.giaddr, secs, extra),
                    (self.args.server, 67),
                )
                deadline = time.monotonic() + timeout
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        reply: Reply = await asyncio.wait_for(queue.get(), left)
                    except TimeoutError:
                        break
                    if reply.kind == want:
                        return reply
                    if reply.kind == NAK:
                        raise RuntimeError("NAK")
            raise RuntimeError(
                f"no {'OFFER' if want == OFFER else 'ACK'} after {len(DHCP_TIMEOUTS)} tries"
            )
        finally:
            del self.relay.waiting[xid]

    async def run_node(self, node: Node, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        node.start = time.monotonic()
        mac = bytes.fromhex(node.mac.replace(":", ""))
        try:
            node.phase = "dhcp"
            xid = random.getrandbits(32)
            while xid in self.relay.waiting:
                xid = random.getrandbits(32)
            offer = await self.exchange(node, DISCOVER, xid, mac, node.start, (), OFFER)
            ack = await self.exchange(
                node,
                REQUEST,
                xid,
                mac,
                node.start,
                ((50, socket.inet_aton(offer.yiaddr)), (54, socket.inet_aton(offer.server_id))),
                ACK,
            )
            if (ack.yiaddr, ack.file) != (node.address, "undionly.kpxe"):
                raise RuntimeError(f"ACK gave {ack.yiaddr} {ack.file!r}")
            node.dhcp = time.monotonic()
            node.phase = "tftp"
            data, node.tftp_retransmits, tsize = await tftp_get(node.address, ack.siaddr, ack.file)
            if len(data) != self.file_size or hashlib.sha256(data).hexdigest() != self.file_sha256:
                raise RuntimeError(
                    f"TFTP gave {len(data)} bytes (tsize {tsize}), not the ipxe package's file"
                )
            node.tftp = time.monotonic()
            node.phase = "http"
            status, body = await http(
                "GET",
                ack.siaddr,
                self.args.api_port,
                f"/boot/search/mac/{node.mac}",
                local=node.address,
                agent="iPXE/1.0.0 (luna2d bootstorm)",
            )
            if status != 200 or f"luna.node={node.name} ".encode() not in body:
                raise RuntimeError(f"HTTP {status}: {body[:120]!r}")
            node.http = time.monotonic()
            node.phase = "done"
        except Exception as exc:  # noqa: BLE001 (every failure is recorded, none stops the storm)
            node.error = f"{node.phase}: {type(exc).__name__}: {exc}"


# -- phases -------------------------------------------------------------------------------------


async def wait_api(args: argparse.Namespace) -> float:
    started = time.monotonic()
    while True:
        try:
            status, _ = await http("GET", args.server, args.api_port, "/version")
            if status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() - started > 60:
            raise SystemExit("the API did not answer /version within 60 s")
        await asyncio.sleep(0.1)


async def load(args: argparse.Namespace) -> dict[str, Any]:
    """The cluster's boot objects and N nodes, all through the API."""
    waited = await wait_api(args)
    status, body = await http(
        "POST",
        args.server,
        args.api_port,
        "/token",
        json.dumps({"username": args.user, "password": args.password}).encode(),
    )
    if status != 201:
        raise SystemExit(f"POST /token: {status} {body!r}")
    headers = {"x-access-tokens": json.loads(body)["token"]}

    async def post(kind: str, name: str, fields: dict) -> None:
        payload = json.dumps({"config": {kind: {name: fields}}}).encode()
        for attempt in range(3):
            status, answer = await http(
                "POST", args.server, args.api_port, f"/config/{kind}/{name}", payload, headers
            )
            if status in (201, 204):
                return
        raise SystemExit(f"POST /config/{kind}/{name}: {status} {answer[:200]!r}")

    net = ipaddress.ip_network(args.node_network)
    await post("network", "bootlink", {"network": args.link_network, "dhcp": False})
    await post("network", "storm", {"network": str(net), "gateway": args.giaddr, "dhcp": False})
    await post(
        "osimage", "storm", {"kernelfile": "vmlinuz-storm", "initrdfile": "initrd-storm.img"}
    )
    await post(
        "group",
        "storm",
        {"osimage": "storm", "interfaces": [{"interface": "BOOTIF", "network": "storm"}]},
    )
    started = time.monotonic()
    numbers = iter(range(args.nodes))

    async def worker() -> None:
        for number in numbers:
            await post(
                "node",
                name_of(number),
                {
                    "group": "storm",
                    "interfaces": [
                        {
                            "interface": "BOOTIF",
                            "ipaddress": address_of(args.prefix, number),
                            "macaddress": mac_of(number),
                        }
                    ],
                },
            )

    await asyncio.gather(*(worker() for _ in range(args.load_concurrency)))
    seconds = time.monotonic() - started
    return {
        "api_wait_s": round(waited, 2),
        "nodes": args.nodes,
        "load_s": round(seconds, 2),
        "nodes_per_s": round(args.nodes / seconds, 1),
    }


async def storm(args: argparse.Namespace, data: bytes) -> dict[str, Any]:
    """N nodes started evenly over the spread, all awaited; ``data`` is the
    file TFTP must deliver."""
    loop = asyncio.get_running_loop()
    transport, relay = await loop.create_datagram_endpoint(Relay, local_addr=(args.giaddr, 67))
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    run = Storm(args, relay, len(data), hashlib.sha256(data).hexdigest())
    run.nodes = [
        Node(n, name_of(n), mac_of(n), address_of(args.prefix, n)) for n in range(args.nodes)
    ]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic() + 0.5
    step = args.spread / max(1, args.nodes - 1) if args.nodes > 1 else 0.0
    await asyncio.gather(*(run.run_node(node, t0 + node.number * step) for node in run.nodes))
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    transport.close()
    nodes = run.nodes
    done = [n for n in nodes if not n.error]
    failed = [n for n in nodes if n.error]
    first_start = min(n.start for n in nodes)
    ends = [n.http for n in done]
    reasons: dict[str, int] = {}
    for node in failed:
        reasons[node.error] = reasons.get(node.error, 0) + 1

    def phase(values: list[float]) -> dict[str, float]:
        return {
            "p50": round(percentile(values, 0.5), 3),
            "p95": round(percentile(values, 0.95), 3),
            "max": round(max(values), 3) if values else float("nan"),
            "mean": round(statistics.fmean(values), 3) if values else float("nan"),
        }

    return {
        "nodes": len(nodes),
        "completed": len(done),
        "failed": len(failed),
        "failure_reasons": reasons,
        "started_over_s": round(max(n.start for n in nodes) - first_start, 3),
        "time_to_last_s": round(max(ends) - first_start, 3) if ends else None,
        "per_node_s": {
            "dhcp": phase([n.dhcp - n.start for n in done]),
            "tftp": phase([n.tftp - n.dhcp for n in done]),
            "http": phase([n.http - n.tftp for n in done]),
            "total": phase([n.http - n.start for n in done]),
        },
        "dhcp_retransmits": sum(n.dhcp_retransmits for n in nodes),
        "nodes_with_dhcp_retransmits": sum(1 for n in nodes if n.dhcp_retransmits),
        "tftp_retransmits": sum(n.tftp_retransmits for n in nodes),
        "stray_dhcp_replies": relay.stray,
        "client_cpu_s": round(
            (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime),
            2,
        ),
        "file": {"name": os.path.basename(args.file), "size": len(data)},
        "completions_per_second": completions(nodes, first_start),
        "failed_nodes": [asdict(n) for n in failed[:20]],
    }


def completions(nodes: list[Node], first_start: float) -> list[int]:
    """How many nodes finished in each second after the first start."""
    ends = [n.http - first_start for n in nodes if not n.error]
    if not ends:
        return []
    counts = [0] * (int(max(ends)) + 1)
    for end in ends:
        counts[int(end)] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=("load", "storm"))
    parser.add_argument("--server", required=True, help="luna2d's address (DHCP, TFTP and HTTP)")
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--giaddr", required=True, help="the relay address, inside --node-network")
    parser.add_argument("--node-network", required=True)
    parser.add_argument("--link-network", required=True)
    parser.add_argument(
        "--prefix", required=True, help="the first two octets of the node addresses"
    )
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--spread", type=float, default=10.0)
    parser.add_argument("--file", default="/usr/lib/ipxe/undionly.kpxe")
    parser.add_argument("--user", default="luna")
    parser.add_argument("--password", required=True)
    parser.add_argument("--load-concurrency", type=int, default=8)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(args.file, "rb") as handle:
        data = handle.read()
    result = asyncio.run(load(args) if args.phase == "load" else storm(args, data))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
