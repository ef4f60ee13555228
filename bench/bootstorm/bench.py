"""The luna2d boot storm benchmark (run it through bench/bootstorm/run).

Two network namespaces joined by a veth pair, nothing in the root namespace:

- the server namespace runs the real daemon, ``twistd luna2d``, with
  ``[DHCP] ENABLED`` on its end of the pair (``srv0``, 198.18.0.1/24),
  ``[TFTP] ENABLED`` on port 69 (files from the ``ipxe`` package) and the
  API on port 7050; a route sends the node network (10.201.0.0/20) to the
  client side;
- the client namespace (``cli0``, 198.18.0.2/24) holds the whole node
  network as local addresses (``ip route add local 10.201.0.0/20 dev lo``),
  so each simulated node speaks from its own address, and the relay address
  10.201.15.254 (the node network's gateway) that DHCP goes through.

``storm.py load`` creates the network, osimage, group and the nodes through
the API; ``storm.py storm`` then starts the nodes evenly over ``--spread``
seconds, each doing DHCP (relayed), TFTP of ``undionly.kpxe`` (blksize
1432, tsize, lock-step, as iPXE asks) and ``GET /boot/search/mac/<mac>``.

The daemon runs with the open-files limit a systemd service gets by default
(soft 1024), like packaging/luna2d.service, unless ``--nofile`` says
otherwise. Recorded: the time from the first node's start to the last
node's end, failures and their reasons, per-phase latencies,
retransmissions, the CPU luna2d and the clients used, luna2d's RSS, what
luna2d's log says (TFTP transfers complete and failed, HTTP requests,
tracebacks), luna2d's reactor lag during the load and during the storm
(benchlib's probe), and the machine. Results go to bench/bootstorm/results/
(JSON and markdown, and latest.*).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/, for benchlib

import benchlib
from benchlib import PYTHON, sh

RESULTS = HERE / "results"
SERVER, CLIENT = "198.18.0.1", "198.18.0.2"
LINK = "198.18.0.0/24"
NODE_NET, NODE_PREFIX, GIADDR = "10.201.0.0/20", "10.201", "10.201.15.254"
API_PORT = 7050
PASSWORD = "bootstorm-password"
IPXE_FILE = Path("/usr/lib/ipxe/undionly.kpxe")
GOAL_S = 60.0


def machine() -> dict[str, Any]:
    return {
        **benchlib.machine(
            "luna2d/",
            {"twisted": benchlib.dist_version("Twisted"), "ipxe": benchlib.package_version("ipxe")},
        ),
        "loadavg": os.getloadavg(),
    }


class Namespaces:
    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.server = f"luna2d-storm-{tag}-s"
        self.client = f"luna2d-storm-{tag}-c"

    def up(self) -> None:
        for ns in (self.server, self.client):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh(
            "ip",
            "-n",
            self.server,
            "link",
            "add",
            "srv0",
            "type",
            "veth",
            "peer",
            "name",
            "cli0",
            "netns",
            self.client,
        )
        for ns, ifname, address in ((self.server, "srv0", SERVER), (self.client, "cli0", CLIENT)):
            sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", ifname)
            sh("ip", "-n", ns, "link", "set", ifname, "up")
        sh("ip", "-n", self.server, "route", "add", NODE_NET, "via", CLIENT)
        sh("ip", "-n", self.client, "route", "add", "local", NODE_NET, "dev", "lo")
        # Ephemeral ports: 2,000 nodes each hold a TFTP socket and a TCP connection.
        sh(
            "ip",
            "netns",
            "exec",
            self.client,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_local_port_range=10000 65000",
        )

    def down(self) -> None:
        for ns in (self.server, self.client):
            benchlib.remove_netns(ns)


def ini_text() -> str:
    return benchlib.daemon_ini(
        f"0.0.0.0:{API_PORT}",
        "var",
        PASSWORD,
        DHCP={"ENABLED": "yes", "INTERFACES": "srv0"},
        TFTP={"ENABLED": "yes", "PORT": 69, "ROOT": "var/tftpboot"},
        BOOTSTRAP={"ENABLED": "yes", "CONTROLLER": "controller"},
    )


def storm_cmd(ns: Namespaces, phase: str, args: argparse.Namespace) -> list[str]:
    return [
        "ip",
        "netns",
        "exec",
        ns.client,
        str(PYTHON),
        str(HERE / "storm.py"),
        phase,
        "--server",
        SERVER,
        "--api-port",
        str(API_PORT),
        "--giaddr",
        GIADDR,
        "--node-network",
        NODE_NET,
        "--link-network",
        LINK,
        "--prefix",
        NODE_PREFIX,
        "--nodes",
        str(args.nodes),
        "--spread",
        str(args.spread),
        "--password",
        PASSWORD,
        "--file",
        str(IPXE_FILE),
    ]


def run_storm(ns: Namespaces, phase: str, args: argparse.Namespace) -> dict[str, Any]:
    done = subprocess.run(
        storm_cmd(ns, phase, args), capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"storm.py {phase} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_log(text: str) -> dict[str, Any]:
    tftp = re.findall(
        r"TFTP [0-9.]+:\d+ '([^']*)' ([^:]+): (\d+) of \d+ bytes, .*?(\d+) retransmissions", text
    )
    outcomes: dict[str, int] = {}
    for _, outcome, _, _ in tftp:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    refused: dict[str, int] = {}
    for message in re.findall(r"TFTP [0-9.]+:\d+ '[^']*' refused: (.*)", text):
        refused[message] = refused.get(message, 0) + 1
    return {
        "tftp_transfers": outcomes,
        "tftp_refused": refused,
        "emfile": text.count("EMFILE encountered"),
        "emfile_closed_connections": text.count("EMFILE recovery: Closed socket"),
        "tftp_server_retransmissions": sum(int(r) for *_, r in tftp),
        "http_search_200": len(re.findall(r'"GET /boot/search/mac/\S+ HTTP/1.1" 200', text)),
        "http_other_status": len(re.findall(r'"GET /boot/search/mac/\S+ HTTP/1.1" [^2]\d\d', text)),
        "tracebacks": text.count("Traceback"),
        "errors": len(re.findall(r"#(?:error|critical)\]", text)),
    }


def markdown(result: dict[str, Any]) -> str:
    m, s, load = result["machine"], result["storm"], result["load"]
    per = s["per_node_s"]
    verdict = (
        "met"
        if s["failed"] == 0 and s["time_to_last_s"] is not None and s["time_to_last_s"] < GOAL_S
        else "NOT met"
    )
    lines = [
        f"# Boot storm {result['when']}",
        "",
        (
            f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}, "
            f"Python {m['python']}, Twisted {m['twisted']}, ipxe {m['ipxe']}, commit "
            f"{m['commit']}, "
            f"load average at start {m['loadavg'][0]:.1f}."
        ),
        "",
        (
            f"- Nodes loaded through the API: {load['nodes']} in {load['load_s']} s "
            f"({load['nodes_per_s']}/s)."
        ),
        (
            f"- Storm: {s['nodes']} nodes started over {s['started_over_s']} s; completed "
            f"{s['completed']}, "
            f"failed {s['failed']}; time to the last one {s['time_to_last_s']} s (goal < "
            f"{GOAL_S:.0f} s: {verdict})."
        ),
        (
            f"- Per node, p50 / p95 / max seconds: DHCP {per['dhcp']['p50']} / "
            f"{per['dhcp']['p95']} / "
            f"{per['dhcp']['max']}; TFTP {per['tftp']['p50']} / {per['tftp']['p95']} / "
            f"{per['tftp']['max']}; "
            f"HTTP {per['http']['p50']} / {per['http']['p95']} / {per['http']['max']}; "
            f"whole boot {per['total']['p50']} / {per['total']['p95']} / {per['total']['max']}."
        ),
        (
            f"- Retransmissions: DHCP {s['dhcp_retransmits']} (by "
            f"{s['nodes_with_dhcp_retransmits']} nodes), "
            f"TFTP client {s['tftp_retransmits']}, TFTP server "
            f"{result['log']['tftp_server_retransmissions']}."
        ),
        (
            f"- CPU during the storm: luna2d {result['daemon']['storm_cpu_s']} s, the simulated "
            "nodes "
            f"{s['client_cpu_s']} s; luna2d RSS {result['daemon']['rss_mib_after']} MiB after."
        ),
        (
            f"- luna2d's log: TFTP {result['log']['tftp_transfers']}, refused "
            f"{result['log']['tftp_refused']}, "
            f"out of file descriptors {result['log']['emfile']} times "
            f"({result['log']['emfile_closed_connections']} "
            f"connections closed), {result['log']['http_search_200']} searches "
            f"answered 200 ({result['log']['http_other_status']} other), "
            f"{result['log']['tracebacks']} tracebacks, "
            f"{result['log']['errors']} error lines."
        ),
    ]
    if s["failure_reasons"]:
        lines.append(f"- Failures: {s['failure_reasons']}")
    lag = result.get("reactor_lag")
    if lag:
        lines += [
            "",
            "luna2d's reactor lag per phase:",
            "",
            benchlib.lag_table([(item["phase"], item) for item in lag["phases"]]),
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="luna2d boot storm benchmark")
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument(
        "--spread", type=float, default=10.0, help="seconds over which the nodes start"
    )
    parser.add_argument("--nofile", type=int, default=1024, help="luna2d's soft open-files limit")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (ini, database, log)"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/bootstorm: needs root (network namespaces, UDP 67 and 69)")
    if not IPXE_FILE.exists():
        raise SystemExit(f"{IPXE_FILE} is missing: apt-get install ipxe")
    folder = Path(tempfile.mkdtemp(prefix="luna2d-bootstorm-"))
    (folder / "luna.ini").write_text(ini_text())
    (folder / "cwd").mkdir()
    when = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    result: dict[str, Any] = {
        "when": when,
        "machine": machine(),
        "settings": {"nodes": args.nodes, "spread_s": args.spread, "nofile": args.nofile},
    }
    ns = Namespaces()
    daemon = None
    log_path = folder / "luna2d.log"
    lag = benchlib.LagPhases(folder / "lag.json")
    try:
        ns.up()
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

        ours = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (min(args.nofile, hard), hard)
        )  # inherited by luna2d
        try:
            with open(log_path, "wb") as log:
                command = benchlib.twistd(folder / "luna.ini", lag=lag.file)
                daemon = subprocess.Popen(
                    ["ip", "netns", "exec", ns.server, *command],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=folder / "cwd",
                )
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, ours)
        print(
            f"bootstorm: luna2d pid {daemon.pid}; loading {args.nodes} nodes through the API",
            flush=True,
        )
        benchlib.read_lag(lag.file, timeout=60)  # the daemon is up
        with lag.phase("load through the API"):
            result["load"] = run_storm(ns, "load", args)
        print(
            f"bootstorm: loaded in {result['load']['load_s']} s; storm of {args.nodes} nodes over "
            f"{args.spread} s",
            flush=True,
        )
        time.sleep(1.0)
        cpu_before = benchlib.cpu_seconds(daemon.pid)
        with lag.phase(f"storm: {args.nodes} nodes over {args.spread:g} s"):
            result["storm"] = run_storm(ns, "storm", args)
        result["daemon"] = {
            "storm_cpu_s": round(benchlib.cpu_seconds(daemon.pid) - cpu_before, 2),
            "rss_mib_after": round(benchlib.rss_mb(daemon.pid, float("nan")), 1),
        }
        result["machine"]["loadavg_end"] = os.getloadavg()
    finally:
        benchlib.stop(daemon)
        ns.down()
    result["reactor_lag"] = lag.as_json()
    text = log_path.read_text(errors="replace")
    result["log"] = read_log(text)
    report = markdown(result)
    benchlib.write_results(RESULTS, [f"bootstorm-{when}", "latest"], result, report, indent=1)
    print(report)
    if args.keep:
        print(f"kept {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
