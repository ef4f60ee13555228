"""The luna2d API benchmark (run it through bench/api/run).

Starts the real daemon (twistd luna2d) on 127.0.0.1 and a free port in a
temporary directory, loads a cluster through the HTTP API (a /16
provisioning network, a /16 BMC network, 50 groups with interfaces and
10,000 nodes, each node taking an address on both networks), then measures
with wrk (1 thread, 32 connections):

  1. GET  /config/node/<random node>             throughput, p50, p99
  2. POST /config/node/<random node> (comment)   throughput, p50, p99
  3. GET  /config/node (every node)              median time, size
  4. GET  /config/network/<prov>/_nextfreeip     throughput, p50, p99 (32
     clients and 1 client), and right after a write (the daemon reuses an
     answer until the next write, so this is the cost of the address scan)
  5. the daemon's VmRSS after the load and after the runs
  6. the reactor's lag during the load and each run: the daemon runs under
     a reactor-lag probe (a 10 ms timer; how late it fires is how long a
     callback held the event loop), see benchlib.run_with_lag_probe; the
     goal is no callback over 50 ms

Every measurement runs --repeat times (rounds interleaved); the best run is
reported and every run is kept in the JSON. Before each run the runner
waits (--quiet-wait) for other work on the machine to settle, and each run
records the daemon's CPU time per request and how much CPU the rest of the
machine used meanwhile ("other cores"), so that noisy numbers show.

Results: bench/results/api-<time>.{json,md} and api-latest.{json,md};
``bench/api/run --markdown bench/results/api-latest.json`` prints the table
again (for docs/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/, for benchlib

import benchlib
from benchlib import REPO, RESULTS

LUA = HERE / "bench.lua"

PASSWORD = "bench-password"
PROV, BMC = "prov", "bmcnet"

# Goals (from the project's issue) and the reference: the Flask-based luna2
# daemon, 4 gunicorn workers, 1,000 nodes, measured on this machine kind.
GOALS = {
    "get_rps": 1500,
    "p99_ms": 50,
    "list_s": 1.0,
    "nextfreeip_ms": 20,
    "rss_mb": 200,
    "lag_ms": 50,
}
REFERENCE = {
    "get_rps": 876,
    "get_p50_ms": 36,
    "get_p99_ms": 49,
    "list_s": 0.82,
    "nextfreeip_rps": 86,
    "nextfreeip_p50_ms": 322,
    "rss_mb": 440,
}


# -- the machine ---------------------------------------------------------------------------


def machine() -> dict:
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return benchlib.machine(
        "luna2d/",
        {
            "twisted": benchlib.dist_version("Twisted"),
            "klein": benchlib.dist_version("klein"),
            "wrk": (wrk.stdout or wrk.stderr).split("[")[0].strip() or "wrk",
        },
    )


def wait_quiet(pid: int, limit: float, patience: float) -> float:
    """Wait (up to ``patience`` seconds) until the rest of the machine uses
    less than ``limit`` cores over one second; returns the last reading."""
    deadline = time.monotonic() + patience
    while True:
        busy0, daemon0, t0 = benchlib.busy_seconds(), benchlib.cpu_seconds(pid), time.monotonic()
        time.sleep(1)
        other = (benchlib.busy_seconds() - busy0 - (benchlib.cpu_seconds(pid) - daemon0)) / (
            time.monotonic() - t0
        )
        if other < limit or time.monotonic() >= deadline:
            return round(max(0.0, other), 2)


class Meter:
    """Wall time, daemon CPU, our own and our children's CPU, what the
    rest of the machine used meanwhile, and the daemon's reactor lag (when
    ``lag`` names its lag file), around one measurement."""

    def __init__(self, pid: int, lag: Path | None = None) -> None:
        self.pid = pid
        self.lag_file = lag
        self.lag: dict | None = None

    def __enter__(self) -> Self:
        self.load1 = os.getloadavg()[0]
        self.t0 = time.monotonic()
        self.busy0 = benchlib.busy_seconds()
        self.daemon0 = benchlib.cpu_seconds(self.pid)
        self.self0 = self._ours()
        self.lag0 = benchlib.read_lag(self.lag_file) if self.lag_file else None
        return self

    @staticmethod
    def _ours() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def __exit__(self, *exc: object) -> None:
        self.wall = time.monotonic() - self.t0
        busy = benchlib.busy_seconds() - self.busy0
        self.daemon_cpu = benchlib.cpu_seconds(self.pid) - self.daemon0
        ours = self._ours() - self.self0
        self.other = max(0.0, busy - self.daemon_cpu - ours) / self.wall if self.wall else 0.0
        if self.lag_file is not None and self.lag0 is not None:
            self.lag = benchlib.lag_phase(self.lag_file, self.lag0)

    def record(self) -> dict:
        out = {
            "wall_s": round(self.wall, 3),
            "daemon_cores": round(self.daemon_cpu / self.wall, 2),
            "other_cores": round(self.other, 2),
            "load1_before": round(self.load1, 2),
        }
        if self.lag is not None:
            out["reactor_lag"] = self.lag
        return out


# -- the daemon --------------------------------------------------------------------------------


class Daemon:
    def __init__(self, folder: Path, cpu: int | None) -> None:
        self.folder = folder
        self.port = benchlib.free_port()
        self.ini = folder / "luna2d.ini"
        self.ini.write_text(
            benchlib.daemon_ini(
                f"127.0.0.1:{self.port}",
                folder,
                PASSWORD,
                api={"EXPIRY": "12h"},
                DHCP={"ENABLED": "no"},
                TFTP={"ENABLED": "no"},
                DNS={"ENABLED": "no"},
                BOOTSTRAP={"ENABLED": "no", "CONTROLLER": "controller"},
            )
        )
        self.log = folder / "daemon.log"
        self.lag = folder / "lag.json"
        # As packaging/luna2d.service runs it: the log (one line per request)
        # goes to stdout, here a pipe that a thread copies into daemon.log.
        command = benchlib.twistd(self.ini, lag=self.lag)
        if cpu is not None:
            command = ["taskset", "-c", str(cpu)] + command
        self.proc = subprocess.Popen(
            command,
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.proc.pid  # taskset execs twistd: the same process
        self.copier = threading.Thread(target=self._copy_log, daemon=True)
        self.copier.start()

    def _copy_log(self) -> None:
        with open(self.log, "wb") as out:
            while True:
                chunk = self.proc.stdout.read1(1 << 16)
                if not chunk:
                    return
                out.write(chunk)

    def wait_ready(self, timeout: float = 60) -> None:
        benchlib.wait_ready(self.port, self.proc, self.log, timeout)

    def stop(self) -> None:
        benchlib.stop(self.proc)
        self.copier.join(5)


# -- a small HTTP client -------------------------------------------------------------------------


class Client:
    """One keep-alive connection per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.token = ""
        self.local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return conn

    def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        headers = {"x-access-tokens": self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def must(
        self, method: str, path: str, body: object = None, ok: tuple = (200, 201, 204)
    ) -> bytes:
        status, data = self.request(method, path, body)
        if status not in ok:
            raise SystemExit(f"{method} {path}: {status} {data[:300]!r}")
        return data

    def login(self) -> None:
        data = self.must("POST", "/token", {"username": benchlib.USER, "password": PASSWORD})
        self.token = json.loads(data)["token"]


# -- loading the cluster ------------------------------------------------------------------------

PARTSCRIPT = """\
parted /dev/sda -s 'mklabel gpt'
parted /dev/sda -s 'mkpart efi fat32 1 512m' set 1 esp on
parted /dev/sda -s 'mkpart root ext4 512m 100%'
mkfs.fat -F32 /dev/sda1 && mkfs.ext4 -F /dev/sda2
mount /dev/sda2 /sysroot && mkdir -p /sysroot/boot/efi && mount /dev/sda1 /sysroot/boot/efi
"""
POSTSCRIPT = "echo 'tmpfs /tmp tmpfs defaults 0 0' >> /sysroot/etc/fstab\n"


def node_name(number: int) -> str:
    return f"node{number:05d}"


def wrap(kind: str, name: str, body: dict) -> dict:
    return {"config": {kind: {name: body}}}


def load(client: Client, nodes: int, groups: int, concurrency: int) -> dict:
    """The networks, an OS image, a BMC setup, the groups, then the nodes."""
    client.must(
        "POST",
        f"/config/network/{PROV}",
        wrap(
            "network",
            PROV,
            {
                "network": "10.20.0.0/16",
                "gateway": "10.20.255.254",
                "nameserver_ip": "10.20.255.254",
                "dhcp": True,
                "dhcp_range_begin": "10.20.255.1",
                "dhcp_range_end": "10.20.255.200",
                "comment": "provisioning network",
            },
        ),
    )
    client.must(
        "POST",
        f"/config/network/{BMC}",
        wrap(
            "network",
            BMC,
            {"network": "10.21.0.0/16", "gateway": "10.21.255.254", "comment": "BMC network"},
        ),
    )
    client.must(
        "POST",
        "/config/osimage/compute",
        wrap(
            "osimage",
            "compute",
            {
                "path": "/trinity/images/compute",
                "distribution": "redhat",
                "kernelversion": "5.14.0-427",
                "grab_exclude": ["/proc/*", "/sys/*", "/dev/*"],
                "grab_filesystems": ["/", "/boot"],
            },
        ),
    )
    client.must(
        "POST",
        "/config/bmcsetup/compute",
        wrap("bmcsetup", "compute", {"username": "luna", "password": "bmc-secret", "userid": 3}),
    )
    for number in range(1, groups + 1):
        name = f"group{number:02d}"
        client.must(
            "POST",
            f"/config/group/{name}",
            wrap(
                "group",
                name,
                {
                    "osimage": "compute",
                    "bmcsetup": True,
                    "bmcsetupname": "compute",
                    "domain": "cluster",
                    "partscript": PARTSCRIPT,
                    "postscript": POSTSCRIPT,
                    "comment": f"benchmark group {number}",
                    "interfaces": [
                        {"interface": "BOOTIF", "network": PROV},
                        {"interface": "BMC", "network": BMC},
                    ],
                },
            ),
        )
    per_group = -(-nodes // groups)

    def create(number: int) -> None:
        name = node_name(number)
        mac = f"02:00:00:{number >> 16 & 255:02x}:{number >> 8 & 255:02x}:{number & 255:02x}"
        client.must(
            "POST",
            f"/config/node/{name}",
            wrap(
                "node",
                name,
                {
                    "group": f"group{(number - 1) // per_group + 1:02d}",
                    "interfaces": [{"interface": "BOOTIF", "macaddress": mac}],
                },
            ),
            ok=(201,),
        )

    started = time.monotonic()
    done = 0
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in pool.map(create, range(1, nodes + 1)):
            done += 1
            if done % 1000 == 0:
                rate = done / (time.monotonic() - started)
                print(f"  {done:>6} nodes loaded ({rate:.0f}/s)", flush=True)
    return {
        "nodes": nodes,
        "groups": groups,
        "concurrency": concurrency,
        "seconds": round(time.monotonic() - started, 1),
    }


def verify(client: Client, nodes: int) -> None:
    """The load did what the benchmark needs: addresses on both networks."""
    for number in (1, nodes):
        view = json.loads(client.must("GET", f"/config/node/{node_name(number)}"))["config"]["node"]
        ifaces = view[node_name(number)]["interfaces"]
        if len(ifaces) != 2 or not all(i["ipaddress"] for i in ifaces):
            raise SystemExit(f"node {node_name(number)} has not got both addresses: {ifaces}")
    taken = json.loads(client.must("GET", f"/config/network/{PROV}/_list"))
    count = len(taken["config"]["network"][PROV]["taken"])
    if count != nodes:
        raise SystemExit(f"network {PROV} holds {count} addresses, expected {nodes}")


# -- measuring ----------------------------------------------------------------------------------


def run_wrk(
    daemon: Daemon,
    token: str,
    mode: str,
    arg: str,
    connections: int,
    duration: int,
    cpu: int | None,
) -> dict:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{daemon.port}",
        "--",
        mode,
        token,
        arg,
    ]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu)] + command
    with Meter(daemon.pid, daemon.lag) as meter:
        out = subprocess.run(command, capture_output=True, text=True, check=False)
    line = next((l for l in out.stdout.splitlines() if l.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    raw = json.loads(line[len("WRKJSON ") :])
    seconds = raw["duration_us"] / 1e6
    lat = {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()}
    errors = sum(raw["errors"].values())
    return {
        "rps": round(raw["requests"] / seconds, 1),
        "requests": raw["requests"],
        "cpu_us_per_request": round(meter.daemon_cpu / max(1, raw["requests"]) * 1e6),
        "p50_ms": lat["p50"],
        "p90_ms": lat["p90"],
        "p99_ms": lat["p99"],
        "max_ms": lat["max"],
        "mean_ms": lat["mean"],
        "errors": errors,
        "error_detail": raw["errors"],
        "bytes_per_response": round(raw["bytes"] / max(1, raw["requests"])),
        "connections": connections,
        **meter.record(),
    }


def run_list(daemon: Daemon, client: Client, times: int) -> dict:
    durations = []
    size = 0
    with Meter(daemon.pid, daemon.lag) as meter:
        for _ in range(times):
            started = time.monotonic()
            data = client.must("GET", "/config/node")
            durations.append(time.monotonic() - started)
            size = len(data)
    count = len(json.loads(data)["config"]["node"])
    return {
        "median_s": round(statistics.median(durations), 3),
        "min_s": round(min(durations), 3),
        "max_s": round(max(durations), 3),
        "requests": times,
        "bytes": size,
        "nodes": count,
        **meter.record(),
    }


def run_after_write(daemon: Daemon, client: Client, nodes: int, times: int) -> dict:
    """_nextfreeip right after a write, one client: the daemon cannot reuse
    an earlier answer, so this is the cost of the scan itself."""
    durations = []
    path = f"/config/network/{PROV}/_nextfreeip"
    with Meter(daemon.pid, daemon.lag) as meter:
        for number in range(times):
            name = node_name(1 + number * 7919 % nodes)
            client.must(
                "POST",
                f"/config/node/{name}",
                wrap("node", name, {"comment": f"after write {number}"}),
            )
            started = time.monotonic()
            client.must("GET", path)
            durations.append(time.monotonic() - started)
    return {
        "p50_ms": round(statistics.median(durations) * 1000, 2),
        "p99_ms": round(benchlib.percentile(durations, 0.99) * 1000, 2),
        "max_ms": round(max(durations) * 1000, 2),
        "requests": times,
        **meter.record(),
    }


RENUMBER_TO = "10.22.0.0/16"


def run_renumber(daemon: Daemon, client: Client, nodes: int) -> dict:
    """Renumber the provisioning /16 (every node's BOOTIF address, the
    gateway, nameserver and DHCP range keep their host offset) to
    RENUMBER_TO and back, each one POST; checks node 1's address moved."""
    out = {}
    for target, label in (
        (RENUMBER_TO, "renumber /16 there"),
        ("10.20.0.0/16", "renumber /16 back"),
    ):
        with Meter(daemon.pid, daemon.lag) as meter:
            started = time.monotonic()
            client.must(
                "POST", f"/config/network/{PROV}", wrap("network", PROV, {"network": target})
            )
            wall = time.monotonic() - started
        node = json.loads(client.must("GET", f"/config/node/{node_name(1)}"))["config"]["node"]
        address = next(
            i["ipaddress"] for i in node[node_name(1)]["interfaces"] if i["interface"] == "BOOTIF"
        )
        prefix = target.split(".0.0/")[0] + "."
        if not address.startswith(prefix):
            raise SystemExit(f"renumbering to {target}: {node_name(1)} still has {address}")
        out[label] = {"seconds": round(wall, 3), "nodes": nodes, **meter.record()}
    return out


def big_body(name: str, mib: float) -> bytes:
    """A node update of at least ``mib`` MiB of JSON: a comment, and the
    node's ``tags`` as a client may send back from a GET (shown, never
    stored: the daemon parses all of it and ignores it), here with many
    small members, so the parse walks a large object member by member."""
    count = int(mib * (1 << 20) / 70) + 1
    tags = {f"t{i:07d}": {"rack": str(i % 40), "comment": "x" * 30} for i in range(count)}
    data = json.dumps(wrap("node", name, {"comment": "large body", "tags": tags})).encode()
    if len(data) < mib * (1 << 20):
        raise AssertionError(f"the large body is only {len(data)} bytes")
    return data


def run_big_body(daemon: Daemon, client: Client, mib: float) -> dict:
    """One POST /config/node/<node 1> with a ``mib`` MiB body; the update
    must be taken (204) and the tags left as they were."""
    name = node_name(1)
    data = big_body(name, mib)
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=300)
    with Meter(daemon.pid, daemon.lag) as meter:
        started = time.monotonic()
        conn.request(
            "POST",
            f"/config/node/{name}",
            body=data,
            headers={"x-access-tokens": client.token, "content-type": "application/json"},
        )
        response = conn.getresponse()
        answer = response.read()
        wall = time.monotonic() - started
    conn.close()
    if response.status not in (200, 204):
        raise SystemExit(f"the {len(data)}-byte body: {response.status} {answer[:300]!r}")
    node = json.loads(client.must("GET", f"/config/node/{name}"))["config"]["node"][name]
    if node.get("comment") != "large body" or len(node.get("tags") or {}) > 100:
        raise SystemExit(f"the large body was not taken as an update: {str(node)[:300]}")
    return {
        "seconds": round(wall, 3),
        "bytes": len(data),
        "status": response.status,
        **meter.record(),
    }


def lag_phases(loaded: dict, runs: dict[str, list], writes: dict) -> list[tuple[str, dict | None]]:
    """The load, every run and every large write, named, with their lag."""
    phases: list[tuple[str, dict | None]] = [("load", loaded.get("reactor_lag"))]
    for name, items in runs.items():
        phases += [
            (f"{name} {number}", item.get("reactor_lag"))
            for number, item in enumerate(items, start=1)
        ]
    phases += [(name, item.get("reactor_lag")) for name, item in writes.items()]
    return phases


def best(runs: list[dict], key: str, lower: bool = False) -> dict:
    return (min if lower else max)(runs, key=lambda r: r[key])


# -- reporting -------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def table(results: dict) -> str:
    m = results["best"]
    g, r = GOALS, REFERENCE
    get, post, nfi, nfi1, lst = (
        m["get"],
        m["post"],
        m["nextfreeip"],
        m.get("nextfreeip_c1"),
        m["list"],
    )
    nodes = results["load"]["nodes"]
    rows = [
        (
            "Load: nodes created through the API",
            (
                f"{nodes:,} nodes, {results['load']['groups']} groups "
                f"in {results['load']['seconds']} s ({nodes / results['load']['seconds']:.0f}/s, "
                f"{results['load']['concurrency']} clients)"
            ),
            "",
            "",
            "",
        ),
        (
            "GET /config/node/<n>: throughput",
            f"{get['rps']:,.0f}/s",
            f">= {g['get_rps']:,}/s",
            f"{r['get_rps']}/s",
            verdict(get["rps"] >= g["get_rps"]),
        ),
        (
            "GET /config/node/<n>: p50 / p99",
            f"{get['p50_ms']} / {get['p99_ms']} ms",
            f"p99 < {g['p99_ms']} ms",
            f"{r['get_p50_ms']} / {r['get_p99_ms']} ms",
            verdict(get["p99_ms"] < g["p99_ms"]),
        ),
        (
            "GET /config/node/<n>: daemon CPU per request",
            (
                f"{get['cpu_us_per_request']} µs "
                f"(= {1e6 / max(1, get['cpu_us_per_request']):,.0f}/s per busy core)"
            ),
            "",
            "",
            "",
        ),
        ("POST /config/node/<n> (comment): throughput", f"{post['rps']:,.0f}/s", "", "", ""),
        (
            "POST /config/node/<n>: p50 / p99",
            f"{post['p50_ms']} / {post['p99_ms']} ms",
            f"(GET goal: p99 < {g['p99_ms']} ms)",
            "",
            "within" if post["p99_ms"] < g["p99_ms"] else "over",
        ),
        (
            f"GET /config/node (all {lst['nodes']:,}): median of {lst['requests']}",
            f"{lst['median_s']} s ({lst['bytes'] / 1e6:.1f} MB)",
            f"< {g['list_s']} s",
            f"{r['list_s']} s (1,000 nodes)",
            verdict(lst["median_s"] < g["list_s"]),
        ),
        (
            "GET .../_nextfreeip: throughput",
            f"{nfi['rps']:,.0f}/s",
            "",
            f"{r['nextfreeip_rps']}/s",
            "",
        ),
        (
            f"GET .../_nextfreeip: p50 / p99 ({nfi['connections']} clients)",
            f"{nfi['p50_ms']} / {nfi['p99_ms']} ms",
            f"p50 < {g['nextfreeip_ms']} ms",
            f"p50 {r['nextfreeip_p50_ms']} ms",
            verdict(nfi["p50_ms"] < g["nextfreeip_ms"]),
        ),
    ]
    if nfi1:
        rows.append(
            (
                "GET .../_nextfreeip: p50 / p99 (1 client)",
                f"{nfi1['p50_ms']} / {nfi1['p99_ms']} ms",
                f"< {g['nextfreeip_ms']} ms",
                "",
                verdict(nfi1["p99_ms"] < g["nextfreeip_ms"]),
            )
        )
    nfiw = m.get("nextfreeip_after_write")
    if nfiw:
        rows.append(
            (
                (
                    "GET .../_nextfreeip right after a write: p50 / p99 (1 client, "
                    f"{nfiw['requests']}x)"
                ),
                f"{nfiw['p50_ms']} / {nfiw['p99_ms']} ms",
                f"< {g['nextfreeip_ms']} ms",
                "",
                verdict(nfiw["p99_ms"] < g["nextfreeip_ms"]),
            )
        )
    for name, item in results.get("writes", {}).items():
        size = (
            f", {item['bytes'] / (1 << 20):.1f} MiB"
            if "bytes" in item
            else f", {item['nodes']:,} nodes"
        )
        rows.append((f"{name}: time (one request{size})", f"{item['seconds']} s", "", "", ""))
    lag = results.get("reactor_lag")
    if lag:
        rows.append(
            (
                "Reactor lag, load and every run: max (where) / worst p99",
                (
                    f"{lag['max_ms']} ms ({lag['where']}) / {lag['p99_ms_worst']} ms; "
                    f"{lag['over_limit']} of {lag['ticks']:,} ticks over {lag['limit_ms']:g} ms"
                ),
                f"max < {g['lag_ms']} ms",
                "",
                verdict(lag["max_ms"] < g["lag_ms"]),
            )
        )
        for name, item in results.get("writes", {}).items():
            one = item.get("reactor_lag")
            if one and one.get("max_ms") is not None:
                rows.append(
                    (
                        f"Reactor lag, {name}",
                        benchlib.lag_text(one),
                        f"max < {g['lag_ms']} ms",
                        "",
                        verdict(one["max_ms"] < g["lag_ms"]),
                    )
                )
    rows += [
        (
            "Daemon RSS after the load",
            f"{results['rss_mb']['after_load']:.0f} MB",
            f"< {g['rss_mb']} MB",
            f"{r['rss_mb']} MB (1,000 nodes)",
            verdict(results["rss_mb"]["after_load"] < g["rss_mb"]),
        ),
        (
            "Daemon RSS after the runs",
            f"{results['rss_mb']['after_runs']:.0f} MB",
            f"< {g['rss_mb']} MB",
            "",
            verdict(results["rss_mb"]["after_runs"] < g["rss_mb"]),
        ),
    ]
    if results.get("writes"):
        rows.append(
            (
                "Daemon RSS after the large writes",
                f"{results['rss_mb']['after_writes']:.0f} MB",
                "",
                "",
                "",
            )
        )
    lines = [
        "| Measurement | luna2d | Goal | Reference (luna2, Flask) | |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    lines.append("")
    lines.append(
        f"Best of {results['repeat']} runs each (highest throughput; shortest list time); wrk: 1 "
        "thread, "
        f"{get['connections']} connections, {results['duration_s']} s per run; daemon "
        + (
            f"pinned to CPU {results['pin']['daemon']}, wrk and the runner to CPU "
            f"{results['pin']['wrk']}"
            if results["pin"]
            else "not pinned"
        )
        + "; the daemon logs to stdout (a pipe), as packaging/luna2d.service runs it. "
        "Other work on the machine during the reported runs, in cores: "
        f"GET {get['other_cores']:.2f}, POST {post['other_cores']:.2f}, list "
        f"{lst['other_cores']:.2f}, "
        f"_nextfreeip {nfi['other_cores']:.2f} (the daemon got {get['daemon_cores']:.2f} cores "
        "during the GET run)."
    )
    phases = lag_phases(results["load"], results["runs"], results.get("writes", {}))
    if any(lag for _, lag in phases):
        lines += [
            "",
            "The daemon's reactor lag per phase (a 10 ms timer's lateness):",
            "",
            benchlib.lag_table(phases),
        ]
    return "\n".join(lines)


def machine_md(info: dict) -> str:
    return (
        f"{info['nproc']} CPUs ({info['cpu']}), {info['memory_gib']} GiB memory, Linux "
        f"{info['kernel']}, "
        f"Python {info['python']}, Twisted {info['twisted']}, Klein {info['klein']}, "
        f"{info['wrk']}; "
        f"luna2d at {info['commit']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument(
        "--load-clients", type=int, default=8, help="concurrent clients while loading"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of every measurement (best reported)"
    )
    parser.add_argument(
        "--list-requests", type=int, default=5, help="sequential full-list requests per run"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        metavar="SECONDS",
        help="before each run, wait up to this long for other work on the machine to settle",
    )
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.25,
        metavar="CORES",
        help="'settled' means other work uses less than this many cores",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin the daemon and wrk to CPUs"
    )
    parser.add_argument(
        "--no-renumber",
        action="store_true",
        help="leave out renumbering the provisioning /16 there and back",
    )
    parser.add_argument(
        "--body-mib",
        type=float,
        default=34,
        metavar="MIB",
        help="size of the one large node update (default 34; 0 leaves it out)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (database, log)"
    )
    parser.add_argument(
        "--profile",
        metavar="SECONDS",
        type=int,
        default=0,
        help="after the runs, record a py-spy profile of GET, POST and list traffic "
        "into bench/results/ (needs py-spy in the venv)",
    )
    parser.add_argument(
        "--markdown",
        metavar="RESULTS.json",
        help="only print the machine line and the markdown table of a saved result "
        "(e.g. bench/results/api-latest.json) and exit",
    )
    args = parser.parse_args()
    if args.markdown:
        saved = json.loads(Path(args.markdown).read_text())
        print(
            f"Machine: {machine_md(saved['machine'])}, measured {saved['date']}\n\n{table(saved)}"
        )
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (bench/api/run installs it)")
    cpus = sorted(os.sched_getaffinity(0))
    pin = None if args.no_pin or len(cpus) < 2 else {"daemon": cpus[-1], "wrk": cpus[0]}

    if pin:
        os.sched_setaffinity(
            0, {pin["wrk"]}
        )  # the runner and its children stay off the daemon's CPU
    info = machine()
    print(f"machine: {machine_md(info)}", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="luna2d-bench-"))
    daemon = Daemon(folder, pin["daemon"] if pin else None)
    try:
        daemon.wait_ready()
        print(f"daemon pid {daemon.pid} on 127.0.0.1:{daemon.port} in {folder}", flush=True)
        client = Client(daemon.port)
        client.login()
        print(
            f"loading {args.nodes:,} nodes in {args.groups} groups with {args.load_clients} "
            "clients...",
            flush=True,
        )
        with Meter(daemon.pid, daemon.lag) as load_meter:
            loaded = load(client, args.nodes, args.groups, args.load_clients)
        loaded["reactor_lag"] = load_meter.lag
        print(f"  reactor lag while loading: {benchlib.lag_text(load_meter.lag)}", flush=True)
        verify(client, args.nodes)
        rss_load = benchlib.rss_mb(daemon.pid)
        print(f"loaded in {loaded['seconds']} s; daemon RSS {rss_load:.0f} MB", flush=True)
        nextfreeip = f"/config/network/{PROV}/_nextfreeip"
        wrk_cpu = pin["wrk"] if pin else None
        c = args.connections
        # Warm up (first requests pay for imports and caches).
        run_wrk(daemon, client.token, "get", str(args.nodes), c, 2, wrk_cpu)
        runs: dict[str, list] = {
            "get": [],
            "post": [],
            "list": [],
            "nextfreeip": [],
            "nextfreeip_c1": [],
            "nextfreeip_after_write": [],
        }
        for round_ in range(1, args.repeat + 1):
            print(f"round {round_}/{args.repeat}", flush=True)
            steps = [
                (
                    "get",
                    lambda: run_wrk(
                        daemon, client.token, "get", str(args.nodes), c, args.duration, wrk_cpu
                    ),
                ),
                (
                    "post",
                    lambda: run_wrk(
                        daemon, client.token, "post", str(args.nodes), c, args.duration, wrk_cpu
                    ),
                ),
                ("list", lambda: run_list(daemon, client, args.list_requests)),
                (
                    "nextfreeip",
                    lambda: run_wrk(
                        daemon, client.token, "path", nextfreeip, c, args.duration, wrk_cpu
                    ),
                ),
                (
                    "nextfreeip_c1",
                    lambda: run_wrk(
                        daemon,
                        client.token,
                        "path",
                        nextfreeip,
                        1,
                        max(3, args.duration // 2),
                        wrk_cpu,
                    ),
                ),
                (
                    "nextfreeip_after_write",
                    lambda: run_after_write(daemon, client, args.nodes, 100),
                ),
            ]
            for name, step in steps:
                quiet = (
                    wait_quiet(daemon.pid, args.quiet_below, args.quiet_wait)
                    if args.quiet_wait
                    else None
                )
                result = step()
                result["other_cores_before"] = quiet
                runs[name].append(result)
                shown = {
                    k: result[k]
                    for k in (
                        "rps",
                        "p50_ms",
                        "p99_ms",
                        "median_s",
                        "bytes",
                        "errors",
                        "cpu_us_per_request",
                        "daemon_cores",
                        "other_cores",
                    )
                    if k in result
                }
                print(
                    f"  {name:<14} {shown} lag {benchlib.lag_text(result.get('reactor_lag'))}",
                    flush=True,
                )
        rss_runs = benchlib.rss_mb(daemon.pid)
        writes: dict[str, dict] = {}
        if not args.no_renumber:
            print(
                f"renumbering {PROV} (10.20.0.0/16, {args.nodes:,} nodes) to {RENUMBER_TO} and "
                "back...",
                flush=True,
            )
            writes.update(run_renumber(daemon, client, args.nodes))
        if args.body_mib > 0:
            print(f"one {args.body_mib:g} MiB node update...", flush=True)
            writes[f"{args.body_mib:g} MiB body"] = run_big_body(daemon, client, args.body_mib)
        for name, item in writes.items():
            print(
                f"  {name:<20} {item['seconds']} s, lag "
                f"{benchlib.lag_text(item.get('reactor_lag'))}",
                flush=True,
            )
        rss_writes = benchlib.rss_mb(daemon.pid)
        if args.profile:
            profile(daemon, client, args, wrk_cpu)
    finally:
        daemon.stop()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    for name, items in runs.items():
        bad = [r for r in items if r.get("errors")]
        if bad:
            print(f"warning: {name} had errors: {bad[0]['error_detail']}", file=sys.stderr)
    results = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": info,
        "repeat": args.repeat,
        "duration_s": args.duration,
        "pin": pin,
        "load": loaded,
        "rss_mb": {
            "after_load": round(rss_load, 1),
            "after_runs": round(rss_runs, 1),
            "after_writes": round(rss_writes, 1),
        },
        "writes": writes,
        "best": {
            "get": best(runs["get"], "rps"),
            "post": best(runs["post"], "rps"),
            "list": best(runs["list"], "median_s", lower=True),
            "nextfreeip": best(runs["nextfreeip"], "rps"),
            "nextfreeip_c1": best(runs["nextfreeip_c1"], "p50_ms", lower=True),
            "nextfreeip_after_write": best(runs["nextfreeip_after_write"], "p50_ms", lower=True),
        },
        "reactor_lag": benchlib.worst_lag(lag_phases(loaded, runs, writes)),
        "runs": runs,
        "goals": GOALS,
        "reference": REFERENCE,
    }
    markdown = table(results)
    when = benchlib.stamp()
    doc = (
        f"# luna2d API benchmark, {results['date']}\n\nMachine: {machine_md(info)}\n\n{markdown}\n"
    )
    benchlib.write_results(RESULTS, [f"api-{when}", "api-latest"], results, doc)
    print()
    print(f"Machine: {machine_md(info)}")
    print()
    print(markdown)
    print()
    print(f"written to {RESULTS}/api-{when}.json and .md (and api-latest.*)")


def profile(daemon: Daemon, client: Client, args: argparse.Namespace, wrk_cpu: int | None) -> None:
    spy = REPO / ".venv" / "bin" / "py-spy"
    if not spy.exists():
        print(
            "no py-spy in the venv (.venv/bin/pip install py-spy); skipping the profile",
            file=sys.stderr,
        )
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    for mode in ("get", "post", "list", "nextfreeip"):
        out = RESULTS / f"profile-{mode}.txt"
        recorder = subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(daemon.pid),
                "--duration",
                str(args.profile),
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        if mode == "list":
            deadline = time.monotonic() + args.profile
            while time.monotonic() < deadline:
                client.must("GET", "/config/node")
        elif mode == "nextfreeip":
            run_wrk(
                daemon,
                client.token,
                "path",
                f"/config/network/{PROV}/_nextfreeip",
                args.connections,
                args.profile,
                wrk_cpu,
            )
        else:
            run_wrk(
                daemon, client.token, mode, str(args.nodes), args.connections, args.profile, wrk_cpu
            )
        recorder.wait()
        print(f"profile of {mode} traffic: {out}", flush=True)


if __name__ == "__main__":
    main()
