"""The luna2d power-control benchmark (run it through bench/ipmi/run).

Power status of 1,000 BMCs, 100 of them dead, on one machine:

* a fleet of simulated BMCs on loopback addresses (127.X.0.0/16, port 623):
  ``--sims`` OpenIPMI ``ipmi_sim`` processes, and for the rest of the live
  BMCs the lightweight simulator (tests/ipmi/fakebmc.py, whose answers
  tests.ipmi.test_fakebmc checks against ipmi_sim's; this script checks one
  of each with ipmitool again before measuring); the dead addresses have
  nothing listening;
* the real daemon (``twistd luna2d``) in a temporary folder, loaded through
  its HTTP API with a BMC network and 1,000 nodes whose ``BMC`` interfaces
  point at the fleet;
* measured: ``POST /control/action/power/_status`` over ``node[0001-1000]``
  and ``/control/status`` polled until the request has finished
  (``--repeat`` times), against the existing luna2 daemon's way: one
  ``ipmitool -I lanplus -C3 ... chassis power status`` process per BMC, 10 at
  a time, each killed after 10 s (luna2's runcommand timeout);
* the daemon's reactor lag (benchlib's probe) while loading and during
  each run.

Goals (the project's issue): all 1,000 answered in under 10 s, dead ones
included, and at least 20 times faster than the ipmitool fan-out.
Results go to bench/ipmi/results/ (JSON and markdown)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/, for benchlib

import benchlib
from benchlib import PYTHON, REPO

sys.path.insert(0, str(REPO))

from tests.ipmi.support import CHASSIS_SCRIPT, EMU, SEL_EVENTS, lan_conf

RESULTS = HERE / "results"

ADMIN, ADMIN_PASSWORD = benchlib.USER, "bench-password"
BMC_USER, BMC_PASSWORD = "luna", "bmc-bench-pw"
GOAL_SECONDS = 10.0
GOAL_FACTOR = 20.0


def log(text: str) -> None:
    """A timestamped progress line."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def free_prefix() -> int:
    """An X for 127.X.0.0/16 where nothing listens on UDP 623 (sampled)."""
    for _ in range(100):
        x = random.randint(100, 250)
        try:
            for host in (f"127.{x}.0.1", f"127.{x}.1.1", f"127.{x}.3.200"):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    probe.bind((host, 623))
        except OSError:
            continue
        return x
    raise SystemExit("no free 127.X.0.0/16 for the fleet")


class Fleet:
    """The simulated BMCs: ipmi_sim processes, fake BMC processes, dead addresses."""

    def __init__(self, folder: Path, count: int, dead: int, sims: int, fake_processes: int) -> None:
        self.folder = folder
        self.x = free_prefix()
        self.hosts = [f"127.{self.x}.{i // 250}.{i % 250 + 1}" for i in range(count)]
        rng = random.Random(623)
        self.dead = set(rng.sample(range(count), dead))
        live = [i for i in range(count) if i not in self.dead]
        self.sim_index = set(live[:sims])
        self.fake_index = set(live[sims:])
        self.fake_processes = fake_processes
        self.processes: list[subprocess.Popen] = []

    def kind(self, index: int) -> str:
        """What BMC ``index`` is: 'dead', 'ipmi_sim' or 'fake'."""
        return "dead" if index in self.dead else "ipmi_sim" if index in self.sim_index else "fake"

    def start(self) -> None:
        """Start the processes."""
        for index in sorted(self.sim_index):
            host = self.hosts[index]
            where = self.folder / f"sim-{index:04d}"
            (where / "state").mkdir(parents=True)
            script = where / "chassis"
            script.write_text(CHASSIS_SCRIPT)
            script.chmod(0o755)
            (where / "power").write_text("1\n" if index % 2 else "0\n")
            (where / "lan.conf").write_text(
                lan_conf("bmc", host, 623, script, [(BMC_USER, BMC_PASSWORD)])
            )
            (where / "sim.emu").write_text(
                EMU.format(sel="\n".join(f"sel_add 0x20 {e}" for e in SEL_EVENTS))
            )
            self.processes.append(
                subprocess.Popen(
                    ["ipmi_sim", "-c", "lan.conf", "-f", "sim.emu", "-s", "state", "-n"],
                    cwd=where,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        fakes = sorted(self.fake_index)
        for part in range(self.fake_processes):
            share = fakes[part :: self.fake_processes]
            listing = self.folder / f"fake-{part}.txt"
            listing.write_text("".join(f"{self.hosts[i]}:623\n" for i in share))
            process = subprocess.Popen(
                [
                    str(PYTHON),
                    "-m",
                    "tests.ipmi.fakebmc",
                    str(listing),
                    "--user",
                    BMC_USER,
                    "--password",
                    BMC_PASSWORD,
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            self.processes.append(process)
            line = process.stdout.readline() if process.stdout else ""
            if line.strip() != "ready":
                raise SystemExit(f"the fake BMC fleet did not start: {line}")
        time.sleep(1.0)  # ipmi_sim reads its files and binds

    def stop(self) -> None:
        """Stop the processes."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
        for process in self.processes:
            process.wait()


class Daemon:
    """twistd luna2d in a folder of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "daemon"
        self.folder.mkdir()
        self.port = benchlib.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.folder / "luna.ini").write_text(
            benchlib.daemon_ini(
                f"127.0.0.1:{self.port}",
                "var",
                ADMIN_PASSWORD,
                api={"EXPIRY": "4h"},
                DHCP={"ENABLED": "no"},
                TFTP={"ENABLED": "no"},
                DNS={"ENABLED": "no"},
                BOOTSTRAP={"ENABLED": "yes", "CONTROLLER": "controller"},
            )
        )
        self.process: subprocess.Popen | None = None
        self.token = ""
        # The daemon runs under benchlib's reactor-lag probe, read per phase.
        self.lag = benchlib.LagPhases(self.folder / "lag.json")

    def start(self) -> None:
        """Spawn twistd, wait for /version, take an admin token."""
        log = self.folder / "twistd.log"
        self.process = subprocess.Popen(
            benchlib.twistd(self.folder / "luna.ini", log, lag=self.lag.file), cwd=self.folder
        )
        benchlib.wait_ready(self.port, self.process, log, 30)
        _, body = self.call(
            "POST", "/token", {"username": ADMIN, "password": ADMIN_PASSWORD}, token=False
        )
        self.token = body["token"]

    def stop(self) -> None:
        """SIGTERM the daemon (SIGKILL after 15 s)."""
        benchlib.stop(self.process)

    def call(
        self, method: str, path: str, body: Any = None, token: bool = True, timeout: float = 120
    ) -> tuple[int, Any]:
        """(status, parsed JSON) of one request to the daemon."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if token:
            request.add_header("x-access-tokens", self.token)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                content = response.read()
                return response.status, json.loads(content) if content else None
        except urllib.error.HTTPError as exc:
            content = exc.read()
            return exc.code, json.loads(content) if content else None

    def rss_mb(self) -> float:
        """The daemon's resident memory in MB."""
        assert self.process is not None
        return benchlib.rss_mb(self.process.pid)


def load(daemon: Daemon, fleet: Fleet) -> None:
    """The BMC network, the credentials and one node per BMC, through the API."""

    def check(result: tuple[int, Any], what: str) -> None:
        if result[0] not in (200, 201, 204):
            raise SystemExit(f"{what}: {result}")

    check(
        daemon.call(
            "POST",
            "/config/network/bmcnet",
            {"config": {"network": {"bmcnet": {"network": f"127.{fleet.x}.0.0/16"}}}},
        ),
        "network",
    )
    check(
        daemon.call(
            "POST",
            "/config/bmcsetup/compute",
            {"config": {"bmcsetup": {"compute": {"username": BMC_USER, "password": BMC_PASSWORD}}}},
        ),
        "bmcsetup",
    )
    for index, host in enumerate(fleet.hosts):
        name = f"node{index + 1:04d}"
        body = {
            "config": {
                "node": {
                    name: {
                        "group": "compute",
                        "interfaces": [
                            {"interface": "BMC", "network": "bmcnet", "ipaddress": host}
                        ],
                    }
                }
            }
        }
        check(daemon.call("POST", f"/config/node/{name}", body), name)


def verify_fleet(fleet: Fleet) -> dict[str, str]:
    """ipmitool against one BMC of each kind, both powered off (an ipmi_sim
    at an even index; every fake BMC starts off): the simulators answer alike."""
    seen = {}
    for kind in ("ipmi_sim", "fake"):
        index = next(
            (i for i in range(len(fleet.hosts)) if fleet.kind(i) == kind and i % 2 == 0), None
        )
        if index is None:
            raise SystemExit(
                f"no powered-off {kind} BMC to check the simulators with: raise --bmcs or --sims"
            )
        output = subprocess.run(
            [
                "ipmitool",
                "-I",
                "lanplus",
                "-C",
                "3",
                "-H",
                fleet.hosts[index],
                "-U",
                BMC_USER,
                "-E",
                "chassis",
                "power",
                "status",
            ],
            check=False,
            env=dict(os.environ, IPMI_PASSWORD=BMC_PASSWORD),
            capture_output=True,
            text=True,
            timeout=30,
        )
        seen[kind] = output.stdout.strip() or output.stderr.strip()
    if seen["ipmi_sim"] != seen["fake"]:
        raise SystemExit(f"the simulators disagree: {seen}")
    return seen


def luna2d_run(daemon: Daemon, fleet: Fleet) -> dict[str, Any]:
    """One timed power _status over every node, summarised: the POST, then
    /control/status polled every 0.1 s until the request has finished (the
    time is to the look that says finished)."""
    body = {"control": {"power": {"status": {"hostlist": f"node[0001-{len(fleet.hosts):04d}]"}}}}
    started = time.monotonic()
    code, answer = daemon.call("POST", "/control/action/power/_status", body)
    if code != 200:
        raise SystemExit(f"control API answered {code}: {answer}")
    looks = [answer]
    while not looks[-1]["progress"]["finished"]:
        time.sleep(0.1)
        code, answer = daemon.call("GET", f"/control/status/{looks[0]['request_id']}")
        if code != 200:
            raise SystemExit(f"control status answered {code}: {answer}")
        looks.append(answer)
    elapsed = time.monotonic() - started
    groups: dict[str, int] = {}
    failed: dict[str, str] = {}
    for look in looks:
        for key, nodes in look["control"]["power"].items():
            groups[key] = groups.get(key, 0) + len(nodes)
        failed.update(look["control"]["failed"])
    if failed:
        groups["failed"] = len(failed)
    reasons = sorted({reason.split(" (")[0] for reason in failed.values()})
    expected_dead = {f"node{i + 1:04d}" for i in fleet.dead}
    return {
        "seconds": round(elapsed, 3),
        "groups": groups,
        "failure_reasons": reasons,
        "failed_are_the_dead": set(failed) == expected_dead,
    }


async def ipmitool_fanout(fleet: Fleet, width: int, kill_after: float) -> dict[str, Any]:
    """One ipmitool per BMC, ``width`` at a time, each killed after ``kill_after`` s."""
    semaphore = asyncio.Semaphore(width)
    outcomes: dict[str, int] = {"on": 0, "off": 0, "failed": 0, "killed": 0}
    env = dict(os.environ, IPMI_PASSWORD=BMC_PASSWORD)

    async def one(host: str) -> None:
        async with semaphore:
            process = await asyncio.create_subprocess_exec(
                "ipmitool",
                "-I",
                "lanplus",
                "-C3",
                "-U",
                BMC_USER,
                "-E",
                "-H",
                host,
                "chassis",
                "power",
                "status",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env=env,
            )
            try:
                out, _ = await asyncio.wait_for(process.communicate(), kill_after)
            except TimeoutError:
                process.kill()
                await process.wait()
                outcomes["killed"] += 1
                outcomes["failed"] += 1
                return
            text = out.decode().strip()
            if process.returncode == 0 and text.endswith(" on"):
                outcomes["on"] += 1
            elif process.returncode == 0 and text.endswith(" off"):
                outcomes["off"] += 1
            else:
                outcomes["failed"] += 1

    started = time.monotonic()
    await asyncio.gather(*(one(host) for host in fleet.hosts))
    return {
        "seconds": round(time.monotonic() - started, 3),
        "outcomes": outcomes,
        "width": width,
        "kill_after_s": kill_after,
    }


def main(argv: list[str]) -> None:
    """Run the benchmark and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bmcs", type=int, default=1000)
    parser.add_argument("--dead", type=int, default=100)
    parser.add_argument("--sims", type=int, default=50, help="how many BMCs are ipmi_sim processes")
    parser.add_argument("--fake-processes", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--width", type=int, default=10, help="ipmitool processes at a time")
    parser.add_argument(
        "--kill-after", type=float, default=10.0, help="seconds before an ipmitool is killed"
    )
    parser.add_argument("--skip-ipmitool", action="store_true")
    args = parser.parse_args(argv)
    for tool in ("ipmi_sim", "ipmitool"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: scripts/setup-env --test installs it")

    folder = Path(tempfile.mkdtemp(prefix="luna2d-bench-ipmi-"))
    fleet = Fleet(folder, args.bmcs, args.dead, args.sims, args.fake_processes)
    daemon = Daemon(folder)
    result: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": benchlib.machine_brief(),
        "fleet": {
            "bmcs": args.bmcs,
            "dead": args.dead,
            "ipmi_sim": len(fleet.sim_index),
            "fake": len(fleet.fake_index),
            "network": f"127.{fleet.x}.0.0/16",
        },
    }
    try:
        log(f"starting {len(fleet.sim_index)} ipmi_sim and {len(fleet.fake_index)} simulated BMCs")
        fleet.start()
        result["fleet"]["check"] = verify_fleet(fleet)
        log(f"fleet answers alike: {result['fleet']['check']}")
        daemon.start()
        started = time.monotonic()
        with daemon.lag.phase(f"load {args.bmcs} nodes through the API"):
            load(daemon, fleet)
        result["load_seconds"] = round(time.monotonic() - started, 1)
        log(f"loaded {args.bmcs} nodes in {result['load_seconds']} s")
        runs = []
        for number in range(args.repeat):
            with daemon.lag.phase(f"power status of {args.bmcs} BMCs, run {number + 1}"):
                run = luna2d_run(daemon, fleet)
            run["reactor_lag"] = daemon.lag.get(
                f"power status of {args.bmcs} BMCs, run {number + 1}"
            )
            runs.append(run)
            log(
                f"luna2d run {number + 1}: {run['seconds']} s {run['groups']} "
                f"{run['failure_reasons']}"
            )
        result["reactor_lag"] = daemon.lag.as_json()
        result["luna2d"] = {
            "runs": runs,
            "median_seconds": statistics.median(r["seconds"] for r in runs),
            "rss_mb": round(daemon.rss_mb(), 1),
        }
        if not args.skip_ipmitool:
            log(f"ipmitool fan-out, {args.width} at a time, killed after {args.kill_after:g} s")
            result["ipmitool"] = asyncio.run(ipmitool_fanout(fleet, args.width, args.kill_after))
            log(f"ipmitool: {result['ipmitool']}")
            result["speedup"] = round(
                result["ipmitool"]["seconds"] / result["luna2d"]["median_seconds"], 1
            )
        result["goals"] = {
            "under_10_s": result["luna2d"]["median_seconds"] < GOAL_SECONDS,
            "all_answered": all(sum(r["groups"].values()) == args.bmcs for r in runs),
            "dead_fail_alone": all(r["failed_are_the_dead"] for r in runs),
        }
        if "speedup" in result:  # not judged with --skip-ipmitool
            result["goals"]["20x_faster"] = result["speedup"] >= GOAL_FACTOR
    finally:
        daemon.stop()
        fleet.stop()
        shutil.rmtree(folder, ignore_errors=True)
    benchlib.write_results(RESULTS, [f"ipmi-{benchlib.stamp()}"], result, None)
    benchlib.write_results(RESULTS, ["ipmi-latest"], result, markdown(result))
    print(markdown(result))


def markdown(result: dict[str, Any]) -> str:
    """The results as a markdown summary."""
    fleet, luna = result["fleet"], result["luna2d"]
    lines = [
        f"# Power status of {fleet['bmcs']} BMCs ({result['when']})",
        "",
        (
            f"Fleet: {fleet['ipmi_sim']} ipmi_sim, {fleet['fake']} simulated, {fleet['dead']} dead "
            f"({fleet['network']}); {result['machine']['cpus']} CPUs, Python "
            f"{result['machine']['python']}."
        ),
        "",
        "| | seconds | answers |",
        "|---|---|---|",
    ]
    for number, run in enumerate(luna["runs"], start=1):
        lines.append(f"| luna2d control API, run {number} | {run['seconds']} | {run['groups']} |")
    if "ipmitool" in result:
        tool = result["ipmitool"]
        lines.append(
            f"| ipmitool, {tool.get('width', 10)} at a time | {tool['seconds']} | "
            f"{tool['outcomes']} |"
        )
        lines += ["", f"Speed-up (ipmitool / luna2d median): {result['speedup']}x."]
    lag = result.get("reactor_lag")
    if lag:
        lines += [
            "",
            "luna2d's reactor lag per phase:",
            "",
            benchlib.lag_table([(item["phase"], item) for item in lag["phases"]]),
        ]
    lines += [
        "",
        f"luna2d daemon RSS after the runs: {luna['rss_mb']} MB.",
        "",
        "Goals: " + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in result["goals"].items()),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
