"""The luna2d TFTP flood benchmark: can a real client still fetch a file
while the server is flooded with requests that are never acknowledged?

Run it with the project's venv: ``.venv/bin/python bench/tftp/flood.py``
(``--help`` for the options). It starts the real daemon (``twistd luna2d``,
``[TFTP]`` with its default limits) on free loopback ports, a 70 KB file
(the size of ``undionly.kpxe``) in its ROOT, then for each ``--rates``
value:

1. a flooder process sends that many RRQs a second for ``--seconds``, each
   asking ``timeout=255``, round-robin from 2,000 UDP sockets on
   ``--addresses`` loopback addresses (127.0.9.x; 250 by default, each then
   under the per-address request rate; 1 shows that rate acting) that stay
   open and never answer; two
   requests alternate per socket, so each new one supersedes the last from
   that port (a new transfer each time, as from a new port);
2. meanwhile curl fetches the file again and again (``--tftp-blksize
   1432``, as iPXE asks), each with a 10 s limit: how many succeed, and how
   long they take (median, worst);
3. the daemon's CPU over the flood, and, from its log, how many transfers
   were evicted and how many ended never acknowledged;
4. the daemon's reactor lag during the flood (benchlib's probe, as in
   bench/tftp/bench.py, whose daemon this is).

Results go to bench/results/tftp-flood-<time>.json and .md and to
tftp-flood-latest.json / .md."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/, for benchlib
sys.path.insert(0, str(HERE))  # bench/tftp/, for bench (its daemon)

import benchlib
from benchlib import RESULTS

from bench import Luna2d

SOCKETS = 2000
CURL = shutil.which("curl") or "/usr/bin/curl"


def rrq(blksize: int) -> bytes:
    """An RRQ for f.bin asking timeout=255 (wire bytes, built by hand: the
    flooder does not need luna2d's codec)."""
    fields = [
        b"f.bin",
        b"octet",
        b"blksize",
        str(blksize).encode(),
        b"tsize",
        b"0",
        b"timeout",
        b"255",
    ]
    return b"\x00\x01" + b"".join(field + b"\x00" for field in fields)


def flooder(port: int, rate: int, seconds: float, addresses: int) -> None:
    """Send ``rate`` RRQs a second for ``seconds`` from silent sockets, then
    keep the sockets open 8 s more (a closed port would draw ICMP errors
    that end the transfers early). Prints how many were sent."""
    socks = []
    for i in range(SOCKETS):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind((f"127.0.9.{1 + i % addresses}", 0))
        socks.append(sock)
    wires = (rrq(1432), rrq(1428))
    target = ("127.0.0.1", port)
    sent = 0
    start = time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        due = int((now - start) * rate)
        while sent < due:
            sock = socks[sent % len(socks)]
            try:
                sock.sendto(wires[(sent // len(socks)) % 2], target)
            except BlockingIOError:
                pass
            sent += 1
        time.sleep(0.001)
    print(json.dumps({"sent": sent, "seconds": round(time.monotonic() - start, 3)}), flush=True)
    time.sleep(8)


def fetch(port: int, out: Path) -> tuple[bool, float]:
    """One curl fetch of f.bin: (intact, seconds)."""
    out.unlink(missing_ok=True)
    start = time.monotonic()
    done = subprocess.run(
        [
            CURL,
            "-sS",
            "--max-time",
            "10",
            "--tftp-blksize",
            "1432",
            "-o",
            str(out),
            f"tftp://127.0.0.1:{port}/f.bin",
        ],
        capture_output=True,
        check=False,
    )
    return (
        done.returncode == 0 and out.exists() and out.stat().st_size == 70_000,
        time.monotonic() - start,
    )


def counters(luna: Luna2d) -> dict[str, int]:
    """The TFTP counters, from /monitor/service/tftp."""

    def call(method: str, path: str, body: dict[str, str] | None, token: str = "") -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{luna.api}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"content-type": "application/json", "x-access-tokens": token},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    token = call("POST", "/token", {"username": benchlib.USER, "password": "bench-password"})
    text = call("GET", "/monitor/service/tftp", None, token["token"])["monitor"]["service"]["tftp"]
    # "...; completed 3, evicted 5, ..." : the counters after the semicolon.
    pairs = [item.rsplit(" ", 1) for item in text.split("; ", 1)[-1].split(", ")]
    return {name: int(value) for name, value in pairs if value.isdigit()}


def one_rate(luna: Luna2d, rate: int, seconds: float, addresses: int, out: Path) -> dict[str, Any]:
    log_before = luna.log_path.read_text(errors="replace")
    before = counters(luna)
    cpu0 = luna.cpu()
    phase = f"{rate} RRQs/s from {addresses} addresses"
    with luna.lag.phase(phase):
        flood = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--flooder",
                str(luna.port),
                str(rate),
                str(seconds),
                str(addresses),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)  # the table fills
        fetches: list[tuple[bool, float]] = []
        end = time.monotonic() + seconds - 1.0
        while time.monotonic() < end:
            fetches.append(fetch(luna.port, out))
    cpu = luna.cpu() - cpu0
    assert flood.stdout is not None
    sent = json.loads(flood.stdout.readline() or "{}")
    flood.wait()
    time.sleep(8.0)  # the last silent transfers end
    log = luna.log_path.read_text(errors="replace")[len(log_before) :]
    after = counters(luna)
    times = [wall for ok, wall in fetches if ok]
    return {
        "rate_asked": rate,
        "addresses": addresses,
        "sent": sent.get("sent"),
        "flood_s": sent.get("seconds"),
        "fetches": len(fetches),
        "fetched": len(times),
        "fetch_median_s": round(statistics.median(times), 3) if times else None,
        "fetch_worst_s": round(max(times), 3) if times else None,
        "luna2d_cpu_s": round(cpu, 2),
        "requests": after.get("requests", 0) - before.get("requests", 0),
        "rate_limited": after.get("rate_limited", 0) - before.get("rate_limited", 0),
        "evicted": after.get("evicted", 0) - before.get("evicted", 0),
        "never_acknowledged": after.get("unanswered", 0) - before.get("unanswered", 0),
        "log_lines": log.count("\n"),
        "tracebacks": log.count("Traceback"),
        "reactor_lag": luna.lag.get(phase),
    }


def lag_cell(lag: dict[str, Any] | None) -> str:
    if not lag or lag.get("max_ms") is None:
        return "-"
    return f"{lag['max_ms']}, {lag['p99_ms']} ms ({lag['over_limit']} of {lag['ticks']:,})"


def table(result: dict[str, Any]) -> str:
    lines = [
        (
            "| RRQs/s asked | addresses | sent | read by luna2d | rate-limited | curl fetches ok "
            "| fetch median, worst (s) | luna2d CPU s | evicted | ended unanswered "
            "| log lines | luna2d reactor lag: max, p99 (ticks > 50 ms) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for item in result["rates"]:
        lines.append(
            f"| {item['rate_asked']} | {item['addresses']} | {item['sent']} in "
            f"{item['flood_s']} s | {item['requests']} | {item['rate_limited']} | "
            f"{item['fetched']} of {item['fetches']} | "
            f"{item['fetch_median_s']}, {item['fetch_worst_s']} | "
            f"{item['luna2d_cpu_s']} | {item['evicted']} | "
            f"{item['never_acknowledged']} | {item['log_lines']} | "
            f"{lag_cell(item.get('reactor_lag'))} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--flooder":
        flooder(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rates",
        default="1000,3000,10000",
        help="RRQs a second, comma-separated (default 1000,3000,10000)",
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each flood (6)")
    parser.add_argument(
        "--addresses",
        default="250",
        help="flooding addresses, comma-separated runs (default 250; 1..250)",
    )
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]
    spreads = [int(count) for count in args.addresses.split(",")]
    if not all(1 <= count <= 250 for count in spreads):
        raise SystemExit("--addresses: from 1 to 250")

    folder = Path(tempfile.mkdtemp(prefix="luna2d-bench-tftp-flood-"))
    root, out = folder / "root", folder / "out.bin"
    root.mkdir()
    (root / "f.bin").write_bytes(os.urandom(70_000))
    luna = Luna2d(folder, root)
    try:
        luna.wait_ready()
        if not fetch(luna.port, out)[0]:
            raise SystemExit("luna2d: the warm-up fetch failed")
        result: dict[str, Any] = {
            "machine": benchlib.machine(
                "luna2d/protocols/tftp", {"curl": benchlib.first_line([CURL, "--version"])}
            ),
            "when": dt.datetime.now(dt.UTC).isoformat(),
            "load1_before": round(os.getloadavg()[0], 2),
            "rates": [],
        }
        for addresses in spreads:
            for rate in rates:
                print(f"flooding at {rate} RRQs/s from {addresses} addresses...", file=sys.stderr)
                result["rates"].append(one_rate(luna, rate, args.seconds, addresses, out))
    finally:
        luna.stop()
        shutil.rmtree(folder, ignore_errors=True)
    result["load1_after"] = round(os.getloadavg()[0], 2)
    text = table(result)
    header = (
        f"# TFTP flood benchmark {result['when']}\n\nMachine: "
        f"{json.dumps(result['machine'])}\n\nLoad average before "
        f"{result['load1_before']}, after {result['load1_after']}\n\n"
    )
    benchlib.write_results(
        RESULTS,
        [f"tftp-flood-{benchlib.stamp()}", "tftp-flood-latest"],
        result,
        header + text + "\n",
    )
    print(header + text)


if __name__ == "__main__":
    main()
