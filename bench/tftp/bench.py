"""The luna2d TFTP benchmark (run it through bench/tftp/run).

Starts, in one temporary directory holding a 1 MiB and a 30 MiB file of
random bytes:

- the real daemon (``twistd luna2d``) with ``[TFTP] ENABLED`` on a free UDP
  port on loopback, that directory as its ROOT;
- tftpd-hpa as the reference, standalone on another loopback port:
  ``in.tftpd -L -s DIR -a 127.0.0.1:PORT`` (no systemd).

Then, with atftp as the client for both (blksize 1468, tsize, and
windowsize 1 or 16; tftpd-hpa does not implement RFC 7440, leaves the
option out of its OACK and so runs lock-step either way):

1. the transfer rate of each file with each window size from each server,
   ``--repeat`` times (the 1 MiB file four times as often: its transfers
   last milliseconds, so the client's own start-up and the machine's other
   load weigh more), the rounds interleaved between the servers; the median
   and best wall time of the client process are reported, and every copy is
   checked by sha256. The goal is judged on the best runs, the least
   disturbed by whatever else the machine is doing; medians are shown too;
2. ``--concurrent`` (200) transfers of the 1 MiB file started at once from
   each server: how many complete intact, and the time to the last one;
3. luna2d's reactor lag (benchlib's probe) during 1 and during 2.

Each measurement also records the CPU luna2d used (tftpd-hpa forks a
process per transfer, whose CPU its parent does not show), and luna2d's own
log is read back for its per-transfer lines (completed, failed,
retransmissions). Results go to bench/results/tftp-<time>.json and
.md and to tftp-latest.json / .md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/, for benchlib

import benchlib
from benchlib import RESULTS

BLKSIZE = 1468
FILES = {"1MiB": 1 << 20, "30MiB": 30 << 20}
WINDOWS = (1, 16)
SMALL_ROUNDS = 4  # rounds of the 1 MiB transfers per round of the 30 MiB ones


def machine() -> dict:
    return benchlib.machine(
        "luna2d/protocols/tftp",
        {
            "atftp": benchlib.package_version("atftp"),
            "tftpd-hpa": benchlib.package_version("tftpd-hpa"),
        },
    )


# -- the servers ---------------------------------------------------------------------------


class Server:
    name = ""
    port = 0
    proc: subprocess.Popen

    def cpu(self) -> float:
        """CPU of the server and of the children it has waited for."""
        return benchlib.cpu_seconds(self.proc.pid, children=True)

    def stop(self) -> None:
        benchlib.stop(self.proc)


class Luna2d(Server):
    name = "luna2d"

    def __init__(self, folder: Path, root: Path, tftp: dict[str, object] | None = None) -> None:
        self.api = benchlib.free_port(socket.SOCK_STREAM)
        self.port = benchlib.free_port(socket.SOCK_DGRAM)
        ini = folder / "luna2d.ini"
        ini.write_text(
            benchlib.daemon_ini(
                f"127.0.0.1:{self.api}",
                folder / "luna2d",
                "bench-password",
                TFTP={"ENABLED": "yes", "PORT": self.port, "ROOT": root, **(tftp or {})},
                BOOTSTRAP={"ENABLED": "no"},
            )
        )
        self.log_path = folder / "luna2d.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - open while the daemon runs
        # The daemon runs under benchlib's reactor-lag probe; self.lag reads it per phase.
        self.lag = benchlib.LagPhases(folder / "lag.json")
        self.proc = subprocess.Popen(
            benchlib.twistd(ini, lag=self.lag.file),
            cwd=folder,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        benchlib.wait_ready(self.api, self.proc, self.log_path, timeout)

    def stop(self) -> None:
        super().stop()
        self.log.close()


class TftpdHpa(Server):
    name = "tftpd-hpa"

    def __init__(self, root: Path) -> None:
        self.port = benchlib.free_port(socket.SOCK_DGRAM)
        binary = shutil.which("in.tftpd") or "/usr/sbin/in.tftpd"
        self.proc = subprocess.Popen(
            [binary, "-L", "-s", str(root), "-a", f"127.0.0.1:{self.port}"], start_new_session=True
        )


# -- the measurements ----------------------------------------------------------------------


def atftp_command(port: int, remote: str, local: Path, window: int) -> list[str]:
    return [
        "atftp",
        "--option",
        f"blksize {BLKSIZE}",
        "--option",
        f"windowsize {window}",
        "--option",
        "tsize enable",
        "-g",
        "-r",
        remote,
        "-l",
        str(local),
        "127.0.0.1",
        str(port),
    ]


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            sha.update(block)
    return sha.hexdigest()


def one_transfer(server: Server, name: str, window: int, out: Path, expected: str) -> dict:
    local = out / f"{server.name}-{name}-w{window}"
    cpu0, t0 = server.cpu(), time.monotonic()
    done = subprocess.run(
        atftp_command(server.port, name, local, window),
        capture_output=True,
        check=False,
        timeout=300,
    )
    wall = time.monotonic() - t0
    cpu = server.cpu() - cpu0
    intact = done.returncode == 0 and local.exists() and digest(local) == expected
    local.unlink(missing_ok=True)
    return {"wall_s": round(wall, 4), "server_cpu_s": round(cpu, 3), "ok": intact}


def rates(
    servers: list[Server], root: Path, out: Path, expected: dict[str, str], repeat: int
) -> dict:
    runs: dict[str, list[dict]] = {}
    for round_ in range(SMALL_ROUNDS * repeat):
        for name in FILES:
            if name != "1MiB" and round_ % SMALL_ROUNDS:
                continue  # the short transfers are noisier: they get more rounds
            for window in WINDOWS:
                for server in servers:
                    key = f"{server.name} {name} w{window}"
                    runs.setdefault(key, []).append(
                        one_transfer(server, name, window, out, expected[name])
                    )
    summary = {}
    for key, items in runs.items():
        name = key.split()[1]
        walls = [r["wall_s"] for r in items if r["ok"]]
        median = statistics.median(walls) if walls else None
        summary[key] = {
            "runs": items,
            "ok": sum(r["ok"] for r in items),
            "median_s": median,
            "best_s": min(walls) if walls else None,
            "median_mb_s": round(FILES[name] / 1e6 / median, 1) if median else None,
            "best_mb_s": round(FILES[name] / 1e6 / min(walls), 1) if walls else None,
            "server_cpu_s_median": statistics.median(r["server_cpu_s"] for r in items),
        }
    return summary


def concurrent(server: Server, count: int, out: Path, expected: str, window: int) -> dict:
    folder = out / f"concurrent-{server.name}"
    folder.mkdir()
    cpu0, t0 = server.cpu(), time.monotonic()
    procs = [
        subprocess.Popen(
            atftp_command(server.port, "1MiB", folder / f"{i}", window),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(count)
    ]
    ends: list[float] = []
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=600))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
        ends.append(time.monotonic())
    wall = max(ends) - t0
    cpu = server.cpu() - cpu0
    intact = sum(
        1
        for i, code in enumerate(codes)
        if code == 0 and (folder / f"{i}").exists() and digest(folder / f"{i}") == expected
    )
    shutil.rmtree(folder)
    return {
        "transfers": count,
        "complete": intact,
        "wall_s": round(wall, 2),
        "server_cpu_s": round(cpu, 2),
        "window": window,
        "aggregate_mb_s": round(intact * FILES["1MiB"] / 1e6 / wall, 1),
    }


# -- the report ----------------------------------------------------------------------------


def table(result: dict) -> str:
    lines = [
        (
            "| file | window | luna2d MB/s (median, best) | tftpd-hpa MB/s (median, best) | "
            "luna2d / tftpd-hpa (best) | luna2d CPU s per transfer |"
        ),
        "|---|---|---|---|---|---|",
    ]
    rate = result["rates"]
    for name in FILES:
        for window in WINDOWS:
            ours, ref = rate[f"luna2d {name} w{window}"], rate[f"tftpd-hpa {name} w{window}"]
            ratio = (
                f"{ours['best_mb_s'] / ref['best_mb_s']:.2f}"
                if ours["best_mb_s"] and ref["best_mb_s"]
                else "n/a"
            )
            lines.append(
                f"| {name} | {window} | {ours['median_mb_s']}, {ours['best_mb_s']} | "
                f"{ref['median_mb_s']}, {ref['best_mb_s']} | {ratio} | "
                f"{ours['server_cpu_s_median']} |"
            )
    lines += [
        "",
        (
            "| server | concurrent transfers (1 MiB, window) | complete intact | time to last | "
            "aggregate MB/s | luna2d CPU s |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for server, item in result["concurrent"].items():
        cpu = item["server_cpu_s"] if server == "luna2d" else "-"
        lines.append(
            f"| {server} | {item['transfers']} (w{item['window']}) | {item['complete']} | "
            f"{item['wall_s']} s | {item['aggregate_mb_s']} | {cpu} |"
        )
    logged = result["luna2d_log"]
    lines += [
        "",
        (
            f"luna2d's log: {logged['transfers_complete']} transfers complete, "
            f"{logged['transfers_failed']} failed, {logged['retransmissions']} retransmissions, "
            f"{logged['tracebacks']} tracebacks."
        ),
    ]
    lag = result.get("reactor_lag")
    if lag:
        phases = [(item["phase"], item) for item in lag["phases"]]
        lines += ["", "luna2d's reactor lag per phase:", "", benchlib.lag_table(phases)]
    lines += [
        "",
        (
            "Goal (luna2d with windowsize 16 at least as fast as tftpd-hpa with either window, "
            "best "
            "runs, every file; all "
            f"concurrent transfers complete): **{'met' if result['goal_met'] else 'NOT met'}**"
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="rounds of the 30 MiB measurements (default 5; the 1 MiB ones get four times as many)",
    )
    parser.add_argument(
        "--concurrent", type=int, default=200, help="simultaneous transfers (default 200)"
    )
    parser.add_argument(
        "--concurrent-window", type=int, default=16, help="their windowsize (default 16)"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="luna2d-bench-tftp-"))
    folder.chmod(0o755)  # tftpd-hpa drops privileges before reading
    root, out = folder / "root", folder / "out"
    root.mkdir(mode=0o755)
    out.mkdir()
    expected = {}
    for name, size in FILES.items():
        data = os.urandom(size)
        (root / name).write_bytes(data)
        (root / name).chmod(0o644)
        expected[name] = hashlib.sha256(data).hexdigest()

    servers: list[Server] = []
    try:
        # Every concurrent client runs on 127.0.0.1: one address, so its
        # share of the table must hold them all (a node has one address each).
        luna = Luna2d(
            folder,
            root,
            {
                "MAX_PER_CLIENT": max(32, args.concurrent),
                "MAX_TRANSFERS": max(1000, args.concurrent),
                "REQUEST_RATE": max(200, args.concurrent),
            },
        )
        servers.append(luna)
        hpa = TftpdHpa(root)
        servers.append(hpa)
        luna.wait_ready()
        time.sleep(0.5)
        for server in (
            servers
        ):  # one warm-up transfer each (luna2d fills its cache, tftpd-hpa the page cache)
            if not one_transfer(server, "1MiB", 16, out, expected["1MiB"])["ok"]:
                raise SystemExit(f"{server.name}: the warm-up transfer failed")
        print(
            f"luna2d on UDP {luna.port}, tftpd-hpa on UDP {hpa.port}; measuring...", file=sys.stderr
        )
        result: dict[str, Any] = {
            "machine": machine(),
            "when": dt.datetime.now(dt.UTC).isoformat(),
            "client": f"atftp, blksize {BLKSIZE}, tsize",
            "repeat": args.repeat,
            "load1_before": round(os.getloadavg()[0], 2),
        }
        # luna2d idles while tftpd-hpa serves, so the lag of the interleaved
        # rounds is that of luna2d's own transfers (and of idle time).
        with luna.lag.phase("single transfers (every file and window, all rounds)"):
            result["rates"] = rates(servers, root, out, expected, args.repeat)
        result["concurrent"] = {}
        for server in servers:
            phase = f"{args.concurrent} concurrent transfers of 1 MiB (w{args.concurrent_window})"
            with luna.lag.phase(phase) if server is luna else contextlib.nullcontext():
                result["concurrent"][server.name] = concurrent(
                    server, args.concurrent, out, expected["1MiB"], args.concurrent_window
                )
        result["reactor_lag"] = luna.lag.as_json()
    finally:
        for server in servers:
            server.stop()
        log_text = (
            (folder / "luna2d.log").read_text(errors="replace")
            if (folder / "luna2d.log").exists()
            else ""
        )
        shutil.rmtree(folder, ignore_errors=True)

    rate = result["rates"]
    result["goal_met"] = all(
        rate[f"luna2d {name} w16"]["best_mb_s"] is not None
        and rate[f"luna2d {name} w16"]["best_mb_s"]
        >= max(rate[f"tftpd-hpa {name} w{w}"]["best_mb_s"] or 0 for w in WINDOWS)
        for name in FILES
    ) and all(item["complete"] == item["transfers"] for item in result["concurrent"].values())
    result["load1_after"] = round(os.getloadavg()[0], 2)
    result["luna2d_log"] = {
        "tracebacks": log_text.count("Traceback"),
        "transfers_complete": log_text.count("' complete: "),
        "transfers_failed": sum(
            1
            for line in log_text.splitlines()
            if " TFTP " in line and " bytes, blksize " in line and "' complete: " not in line
        ),
        "retransmissions": sum(
            int(line.rsplit(", ", 1)[1].split()[0])
            for line in log_text.splitlines()
            if line.endswith(" retransmissions") and " TFTP " in line
        ),
    }

    text = table(result)
    header = (
        f"# TFTP benchmark {result['when']}\n\nMachine: {json.dumps(result['machine'])}\n\n"
        f"Client: {result['client']}; {args.repeat} rounds; load average before "
        f"{result['load1_before']}, after {result['load1_after']}\n\n"
    )
    benchlib.write_results(
        RESULTS, [f"tftp-{benchlib.stamp()}", "tftp-latest"], result, header + text + "\n"
    )
    print(header + text)


if __name__ == "__main__":
    main()
