"""The benches' reactor-lag figures (bench/benchlib.py) on a Clock: the
reactor thread's own CPU beside the wall-clock probe, a phase's figures
from two snapshots of the lag file, and their summaries."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from twisted.internet.task import Clock
from twisted.trial import unittest

from luna2d.lag import LagProbe

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import benchlib  # type: ignore[import-not-found]  # bench/ is not a package: on sys.path


class FakeCpu:
    """The reactor thread's CPU seconds, moved by hand."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


class Daemon:
    """A wall-clock probe and a CpuLag on one Clock, as the lag-probe
    wrapper runs them, and a snapshot as it writes one."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.cpu = FakeCpu()
        self.probe = LagProbe(self.clock)
        self.cpu_lag = benchlib.CpuLag(self.clock, cpu=self.cpu)
        self.probe.start()
        self.cpu_lag.start()

    def compute(self, seconds: float) -> None:
        """One callback computes ``seconds``: CPU and wall time move on."""
        self.cpu.seconds += seconds
        self.clock.advance(seconds)

    def starve(self, seconds: float) -> None:
        """The thread waits ``seconds`` for a CPU: wall time moves, CPU not."""
        self.clock.advance(seconds)

    def idle(self, ticks: int = 10) -> None:
        for _ in range(ticks):
            self.clock.advance(0.01)

    def snapshot(self) -> dict[str, Any]:
        return {**self.probe.snapshot(), "cpu": self.cpu_lag.figures.snapshot()}


class CpuLagTests(unittest.TestCase):
    def test_a_callback_that_computes_shows_in_both(self) -> None:
        """80 ms of computing in one callback: both figures near 70 ms
        (80 ms less the 10 ms the timer was asked to wait)."""
        daemon = Daemon()
        daemon.compute(0.08)
        self.assertAlmostEqual(daemon.probe.max_ms, 70.0, places=3)
        self.assertAlmostEqual(daemon.cpu_lag.figures.max_ms, 70.0, places=3)
        self.assertEqual(daemon.cpu_lag.figures.over_limit, 1)

    def test_waiting_for_a_cpu_shows_in_the_wall_figure_only(self) -> None:
        """80 ms without a CPU: the wall probe reads 70 ms, the CPU one 0."""
        daemon = Daemon()
        daemon.starve(0.08)
        self.assertAlmostEqual(daemon.probe.max_ms, 70.0, places=3)
        self.assertEqual(daemon.cpu_lag.figures.max_ms, 0.0)
        self.assertEqual(daemon.cpu_lag.figures.over_limit, 0)

    def test_short_callbacks_are_not_counted(self) -> None:
        """CPU used within the 10 ms interval is no lateness."""
        daemon = Daemon()
        for _ in range(20):
            daemon.compute(0.004)
            daemon.clock.advance(0.006)
        self.assertEqual(daemon.cpu_lag.figures.max_ms, 0.0)
        # 20 ticks due; the Clock's float sum of the steps may leave the last for later
        self.assertGreaterEqual(daemon.cpu_lag.figures.ticks, 19)


class PhaseTests(unittest.TestCase):
    def test_phase_figures_cover_only_the_phase(self) -> None:
        """A stall before the phase is not the phase's; the one inside it
        is, in both figures."""
        daemon = Daemon()
        daemon.compute(0.2)  # before the phase
        daemon.idle()
        before = daemon.snapshot()
        daemon.idle()
        daemon.compute(0.06)
        daemon.starve(0.1)
        daemon.idle()
        figures = benchlib.phase_figures(before, daemon.snapshot())
        self.assertEqual(figures["max_ms"], 90.0)
        self.assertEqual(figures["over_limit"], 1)  # 90 ms; the 50 ms tick is not over
        self.assertEqual(figures["cpu"]["max_ms"], 50.0)
        self.assertEqual(figures["cpu"]["over_limit"], 0)  # 50 ms is not over 50 ms

    def test_snapshot_without_cpu(self) -> None:
        """A lag file of a probe without CpuLag gives the wall figures only."""
        daemon = Daemon()
        before = daemon.probe.snapshot()
        daemon.compute(0.07)
        figures = benchlib.phase_figures(before, daemon.probe.snapshot())
        self.assertEqual(figures["max_ms"], 60.0)
        self.assertNotIn("cpu", figures)

    def test_worst_and_table(self) -> None:
        """The worst phase is named, CPU and wall each on their own; a phase
        not measured shows as such."""
        daemon = Daemon()
        phases: list[tuple[str, dict[str, Any] | None]] = []
        for name, action, seconds in (("list", daemon.compute, 0.3), ("storm", daemon.starve, 0.5)):
            before = daemon.snapshot()
            action(seconds)
            daemon.idle()
            phases.append((name, benchlib.phase_figures(before, daemon.snapshot())))
        phases.append(("skipped", None))
        worst = benchlib.worst_lag(phases)
        self.assertEqual((worst["where"], worst["max_ms"]), ("storm", 490.0))
        self.assertEqual((worst["cpu"]["where"], worst["cpu"]["max_ms"]), ("list", 290.0))
        self.assertEqual(worst["over_limit"], 2)
        table = benchlib.lag_table(phases).splitlines()
        self.assertEqual(len(table), 5)
        self.assertIn("| list | ", table[2])
        self.assertIn("290.0 ms, 1 |", table[2])
        self.assertEqual(table[4], "| skipped | 0 | - | - | - | - |")
        self.assertIn("reactor-thread CPU: max 290.0 ms, 1 over", benchlib.lag_text(phases[0][1]))

    def test_no_lag_file_measures_nothing(self) -> None:
        """LagPhases without a file runs the phase and records nothing."""
        phases = benchlib.LagPhases(None)
        ran = []
        with phases.phase("load"):
            ran.append(True)
        self.assertEqual(ran, [True])
        self.assertEqual(phases.phases, [])
        self.assertEqual(phases.as_json(), {"phases": [], "worst": {}})
