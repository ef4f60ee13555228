# -*- test-case-name: tests.test_benchlib -*-
"""What the luna2d benchmarks under bench/ share.

Every bench/<x>/bench.py (and bench/bootstorm/storm.py) puts bench/ on
``sys.path`` and imports this module: the machine a run was taken on, /proc
readings of one process and of the whole machine, a ``luna2d.ini`` for a
daemon in a temporary folder, the daemon's command line (under a reactor-lag
probe), the probe's figures per phase, waiting for its API and stopping it,
network namespaces, percentiles and the results files.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"  # api, dhcp and tftp; ipmi and bootstorm keep results/ of their own
PYTHON = REPO / ".venv" / "bin" / "python"
TWISTD = REPO / ".venv" / "bin" / "twistd"
CLK_TCK = os.sysconf("SC_CLK_TCK")
USER = "luna"
SECRET_KEY = "luna2d-benchmark-secret-key-0123456789"


def sh(
    *argv: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command to its end, its output captured as text."""
    return subprocess.run(argv, check=check, capture_output=True, text=True, input=stdin)


# -- the machine ---------------------------------------------------------------------------


def first_line(command: list[str]) -> str:
    """The first line a command prints (stdout, else stderr), or 'unknown'."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return ((done.stdout or done.stderr).strip().splitlines() or ["unknown"])[0]


def package_version(name: str) -> str:
    """The installed version of a Debian package."""
    return first_line(["dpkg-query", "-W", "-f=${Version}", name])


def dist_version(name: str) -> str:
    """The installed version of a Python distribution in the venv."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def commit(watch: str) -> str:
    """The short commit of the repository, marked when ``watch`` (a path in
    it) has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", watch],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        head, dirty = "", ""
    return (head or "unknown") + (f" ({watch} modified)" if dirty else "")


def machine(watch: str = "luna2d/", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """CPUs, CPU model, memory, kernel and Python, then ``extra`` (versions
    of the tools a benchmark uses), then the commit (see ``commit``)."""
    model = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        **(extra or {}),
        "commit": commit(watch),
    }


def machine_brief() -> dict[str, Any]:
    """CPUs, kernel and Python only (the DHCP and IPMI results' ``machine``)."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


# -- /proc readings ----------------------------------------------------------------------------


def cpu_seconds(pid: int, children: bool = False) -> float:
    """CPU seconds (user + system) ``pid`` used; with ``children``, those
    of the children it has waited for too."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11 : 15 if children else 13]) / CLK_TCK


def rss_mb(pid: int, default: float = 0.0) -> float:
    """The resident memory of ``pid`` in MiB (VmRSS), ``default`` if it has none."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return default


def busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy since boot (idle and
    iowait left out; guest time is already inside user time)."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


# -- the daemon --------------------------------------------------------------------------------


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 (TCP, or UDP with ``socket.SOCK_DGRAM``)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daemon_ini(
    endpoint: str,
    var: str | Path,
    password: str,
    api: dict[str, str] | None = None,
    **sections: dict[str, object],
) -> str:
    """A luna2d.ini: the API on ``endpoint`` for user ``luna``, the database,
    files and key under ``var`` (relative paths are taken from the ini's
    folder), ``api`` more [API] keys, then each of ``sections`` in order,
    e.g. ``DHCP={"ENABLED": "no"}``."""
    parts: dict[str, dict[str, object]] = {
        "API": {
            "USERNAME": USER,
            "PASSWORD": password,
            "SECRET_KEY": SECRET_KEY,
            **(api or {}),
            "ENDPOINT": endpoint,
        },
        "DATABASE": {"DRIVER": "SQLite3", "DATABASE": f"{var}/luna.db"},
        "FILES": {
            "IMAGE_FILES": f"{var}/files",
            "IMAGE_DIRECTORY": f"{var}/images",
            "KEYFILE": f"{var}/luna.key",
        },
        **sections,
    }
    return "\n".join(
        f"[{name}]\n" + "".join(f"{key} = {value}\n" for key, value in keys.items())
        for name, keys in parts.items()
    )


def twistd(
    ini: Path, logfile: str | Path = "-", lag: Path | None = None, udp_read: int | None = None
) -> list[str]:
    """The daemon's command line, as packaging/luna2d.service runs it (the
    log to stdout unless ``logfile`` names a file). With ``lag``, the same
    twistd runs inside this module under a reactor-lag probe that keeps a
    snapshot in that file (see ``run_with_lag_probe``); the process is still
    the daemon itself, so its pid, CPU and memory readings are the daemon's.
    ``udp_read`` (with ``lag`` only), an experiment: the bytes Twisted's UDP
    ports read in one reactor callback (``udp.Port.maxThroughput``, 256 KiB
    by default), to show how much of a stall that read loop makes."""
    if lag is None:
        return [
            str(TWISTD),
            "-n",
            "--pidfile=",
            "--reactor=asyncio",
            f"--logfile={logfile}",
            "luna2d",
            "--config",
            str(ini),
        ]
    return [
        str(PYTHON),
        str(Path(__file__).resolve()),
        "lag-probe",
        str(lag),
        *(["--udp-read", str(udp_read)] if udp_read else []),
        "--",
        "-n",
        "--pidfile=",
        f"--logfile={logfile}",
        "luna2d",
        "--config",
        str(ini),
    ]


# -- the reactor-lag probe ------------------------------------------------------------------

LAG_WRITE_EVERY = 0.1  # seconds between snapshots written to the lag file


class CpuLag:
    """Beside the probe, on a loaded machine: how much of the reactor
    thread's own CPU time (``time.thread_time``) went by while a 10 ms
    timer waited, beyond those 10 ms, recorded into a LagProbe's histogram
    (``self.figures``; the probe is fed, not started). A callback that
    holds the reactor shows here as in the wall-clock probe; a reactor
    thread that waits for a CPU other processes hold (or for the GIL
    another thread of the daemon holds) shows only in the wall-clock one.
    ``cpu`` reads the thread's CPU seconds (a fake one in tests)."""

    def __init__(
        self, clock: Any, interval: float = 0.01, cpu: Callable[[], float] = time.thread_time
    ) -> None:
        from luna2d.lag import LagProbe

        self.clock = clock
        self.interval = interval
        self.cpu = cpu
        self.figures = LagProbe(clock, interval)
        self._cpu = 0.0

    def start(self) -> None:
        self._cpu = self.cpu()
        self.clock.callLater(self.interval, self._tick)

    def _tick(self) -> None:
        used = self.cpu() - self._cpu
        self.figures.record(max(0.0, used - self.interval) * 1000)
        self.start()


def run_with_lag_probe(lag: Path, twistd_args: list[str], udp_read: int | None = None) -> None:
    """Run twistd (``twistd_args``, without --reactor) on the asyncio reactor
    with a luna2d.lag.LagProbe ticking every 10 ms from the moment the
    reactor runs, and a CpuLag beside it; every LAG_WRITE_EVERY seconds,
    and at shutdown, the probe's cumulative snapshot (the CpuLag's under
    ``"cpu"``) replaces ``lag`` (written whole, then renamed). Read it with
    ``read_lag``; ``lag_phase`` and ``LagPhases`` give a phase's figures."""
    from twisted.internet import asyncioreactor

    asyncioreactor.install()  # type: ignore[no-untyped-call]
    from twisted.internet import reactor, task, udp
    from twisted.scripts.twistd import run

    if udp_read:
        udp.Port.maxThroughput = udp_read

    from luna2d.lag import LagProbe

    probe = LagProbe(reactor)
    cpu = CpuLag(reactor)
    partial = lag.with_name(lag.name + ".part")

    def write() -> None:
        partial.write_text(json.dumps({**probe.snapshot(), "cpu": cpu.figures.snapshot()}))
        os.replace(partial, lag)

    writer = task.LoopingCall(write)

    def begin() -> None:
        probe.start()
        cpu.start()
        writer.start(LAG_WRITE_EVERY)

    reactor.callWhenRunning(begin)
    reactor.addSystemEventTrigger("before", "shutdown", write)  # type: ignore[arg-type]
    sys.argv = ["twistd", *twistd_args]
    run()  # type: ignore[no-untyped-call]


def read_lag(lag: Path, timeout: float = 10) -> dict[str, Any]:
    """The latest snapshot in a lag file (waiting for the first one)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            snapshot: dict[str, Any] = json.loads(lag.read_text())
            return snapshot
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise SystemExit(f"no reactor-lag snapshot in {lag} after {timeout:g} s") from None
            time.sleep(0.05)


def lag_phase(lag: Path, before: dict[str, Any]) -> dict[str, Any]:
    """The probe's figures since ``before`` (a ``read_lag`` result), read
    once the daemon has written a snapshot that covers the phase's end."""
    time.sleep(2.5 * LAG_WRITE_EVERY)
    return phase_figures(before, read_lag(lag))


def phase_figures(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The figures between two snapshots of the lag file: the wall-clock
    probe's (``luna2d.lag.between``), and the CpuLag's under ``"cpu"``
    when both snapshots have one."""
    from luna2d.lag import between

    figures = between(before, after)
    if "cpu" in before and "cpu" in after:
        figures["cpu"] = between(before["cpu"], after["cpu"])
    return figures


def lag_text(lag: dict[str, Any] | None) -> str:
    """One phase's lag figures as a short line."""
    if not lag or lag.get("max_ms") is None:
        return "(not measured)"
    text = (
        f"max {lag['max_ms']} ms, p99 {lag['p99_ms']} ms, {lag['over_limit']} of "
        f"{lag['ticks']} ticks over {lag['limit_ms']:g} ms"
    )
    cpu = lag.get("cpu")
    if cpu and cpu.get("max_ms") is not None:
        text += f" (reactor-thread CPU: max {cpu['max_ms']} ms, {cpu['over_limit']} over)"
    return text


def worst_lag(phases: list[tuple[str, dict[str, Any] | None]]) -> dict[str, Any]:
    """The largest lag of named phases, where it was, the worst p99 and
    the ticks over the limit in all of them; {} when none was measured."""
    measured = [(name, lag) for name, lag in phases if lag and lag.get("max_ms") is not None]
    if not measured:
        return {}
    name, lag = max(measured, key=lambda item: item[1]["max_ms"])
    worst = {
        "max_ms": lag["max_ms"],
        "where": name,
        "p99_ms_worst": max(item["p99_ms"] for _, item in measured),
        "over_limit": sum(item["over_limit"] for _, item in measured),
        "ticks": sum(item["ticks"] for _, item in measured),
        "limit_ms": lag["limit_ms"],
    }
    cpus = [
        (name, item["cpu"])
        for name, item in measured
        if item.get("cpu") and item["cpu"].get("max_ms") is not None
    ]
    if cpus:
        name, cpu = max(cpus, key=lambda item: item[1]["max_ms"])
        worst["cpu"] = {
            "max_ms": cpu["max_ms"],
            "where": name,
            "over_limit": sum(item["over_limit"] for _, item in cpus),
        }
    return worst


def lag_table(phases: list[tuple[str, dict[str, Any] | None]]) -> str:
    """A markdown table of the lag of named phases, one row each."""
    lines = [
        "| phase | ticks | max | p99 | ticks over the limit | reactor-thread CPU: max, over |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, lag in phases:
        if not lag or lag.get("max_ms") is None:
            lines.append(f"| {name} | 0 | - | - | - | - |")
            continue
        cpu = lag.get("cpu") or {}
        own = f"{cpu['max_ms']} ms, {cpu['over_limit']}" if cpu.get("max_ms") is not None else "-"
        lines.append(
            f"| {name} | {lag['ticks']:,} | {lag['max_ms']} ms | {lag['p99_ms']} ms | "
            f"{lag['over_limit']} (> {lag['limit_ms']:g} ms) | {own} |"
        )
    return "\n".join(lines)


class LagPhases:
    """The reactor lag of a daemon started with ``twistd(..., lag=FILE)``,
    phase by phase: ``with phases.phase("storm"): ...`` records the probe's
    figures between the start and the end of the block under that name
    (``between`` of two snapshots, so the daemon keeps one cumulative
    probe). ``phases.phases`` keeps them in order; ``worst()`` and
    ``table()`` summarise them. With ``lag`` None nothing is measured."""

    def __init__(self, lag: Path | None) -> None:
        self.file = lag
        self.phases: list[tuple[str, dict[str, Any] | None]] = []

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        before = read_lag(self.file) if self.file is not None else None
        yield
        if self.file is not None and before is not None:
            figures = lag_phase(self.file, before)
            self.phases.append((name, figures))
            print(f"  reactor lag, {name}: {lag_text(figures)}", flush=True)

    def get(self, name: str) -> dict[str, Any] | None:
        """The figures of the last phase called ``name``."""
        return next((lag for phase, lag in reversed(self.phases) if phase == name), None)

    def worst(self) -> dict[str, Any]:
        return worst_lag(self.phases)

    def table(self) -> str:
        return lag_table(self.phases)

    def as_json(self) -> dict[str, Any]:
        """Every phase and the worst of them, for a results file."""
        return {
            "phases": [{"phase": name, **(lag or {})} for name, lag in self.phases],
            "worst": self.worst(),
        }


def log_tail(log: Path | None, lines: int = 30) -> str:
    """The last lines of a log file."""
    if log is None:
        return "(no log)"
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(
    port: int,
    proc: subprocess.Popen[Any] | None = None,
    log: Path | None = None,
    timeout: float = 60,
) -> None:
    """Wait until the daemon answers ``GET /version`` on 127.0.0.1:``port``;
    SystemExit (with the end of ``log``) if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"luna2d exited with {proc.returncode}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"luna2d did not answer GET /version within {timeout:g} s:\n{log_tail(log)}")


def stop(proc: subprocess.Popen[Any] | None, grace: float = 15) -> None:
    """SIGTERM ``proc``, SIGKILL after ``grace`` seconds, and reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def remove_netns(ns: str) -> None:
    """Kill whatever runs in network namespace ``ns``, then delete it."""
    for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    sh("ip", "netns", "del", ns, check=False)


# -- numbers and results -------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile (0.5, 0.99, ...) of ``values``: the sample
    at rank ``share * (n - 1)``, rounded; NaN when there is none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def stamp() -> str:
    """Local time as the results files name it."""
    return time.strftime("%Y%m%d-%H%M%S")


def write_results(
    folder: Path, stems: list[str], result: dict[str, Any], markdown: str | None, indent: int = 2
) -> None:
    """``<stem>.json`` (and ``<stem>.md`` when there is ``markdown``) in
    ``folder`` for each stem."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=indent) + "\n"
    for name in stems:
        (folder / f"{name}.json").write_text(text)
        if markdown is not None:
            (folder / f"{name}.md").write_text(markdown)


if __name__ == "__main__":
    # bench/benchlib.py lag-probe LAGFILE [--udp-read BYTES] -- TWISTD-ARGS...
    argv = sys.argv[1:]
    usage = "usage: benchlib.py lag-probe LAGFILE [--udp-read BYTES] -- TWISTD-ARGS..."
    if len(argv) < 3 or argv[0] != "lag-probe" or "--" not in argv:
        raise SystemExit(usage)
    head, rest = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    if len(head) == 2:
        run_with_lag_probe(Path(head[1]), rest)
    elif len(head) == 4 and head[2] == "--udp-read" and head[3].isdigit():
        run_with_lag_probe(Path(head[1]), rest, int(head[3]))
    else:
        raise SystemExit(usage)
