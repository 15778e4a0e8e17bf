"""Shared helpers of the benchmark scripts: arguments, repeat statistics, output, results.

Every script takes ``--repeat N`` and prints, for each figure, the median of the repeats with
their min and max; ``--json PATH`` also writes the figures and target verdicts as JSON (used by
``run_all.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "scenarios" / "baseline.yaml"


def parser(description: str, repeat: int = 5) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--repeat", type=int, default=repeat,
                   help=f"times to repeat the measurement (default {repeat})")
    p.add_argument("--json", type=Path, default=None, metavar="PATH",
                   help="also write the figures as JSON to PATH")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="wait up to SECONDS for other processes to leave the CPUs idle "
                        "before each measurement (default 0)")
    p.add_argument("--retries", type=int, default=2, metavar="N",
                   help="run a repeat again, up to N times, when other processes took more "
                        f"than {THRESHOLD} CPUs during it (default 2)")
    return p


THRESHOLD = 0.25  # CPUs of other load above which a measurement counts as disturbed


def _machine_busy_seconds() -> float:
    """Return the CPU-seconds the whole machine has spent busy since boot (all CPUs)."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """Return the CPU-seconds of this process and of its children that have been waited for."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def busy_cpus(interval: float = 0.5) -> float:
    """Return how many CPUs' worth of time other processes used over ``interval`` seconds."""
    try:
        m0, o0, t0 = _machine_busy_seconds(), _own_seconds(), time.perf_counter()
        time.sleep(interval)
        m1, o1, t1 = _machine_busy_seconds(), _own_seconds(), time.perf_counter()
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, (m1 - m0) - (o1 - o0)) / (t1 - t0)


class Contention:
    """Measures other processes' CPU use during a measurement and retries disturbed ones.

    The machine's busy time (``/proc/stat``) minus this process's and its reaped children's
    CPU time, over the wall time: the CPUs that other processes took meanwhile. The children
    a measurement starts must be waited for inside it (pools shut down, subprocesses reaped).
    """

    def __init__(self, wait_idle: float, retries: int):
        self.wait_idle = wait_idle
        self.retries = retries
        self.before: list[float] = []
        self.during: list[float] = []
        self.retried = 0

    def _settle(self) -> float:
        deadline = time.monotonic() + self.wait_idle
        busy = busy_cpus()
        while busy > THRESHOLD and time.monotonic() < deadline:
            time.sleep(2.0)
            busy = busy_cpus()
        return busy

    def measure(self, fn: Callable[[], Any]) -> Any:
        """Return ``fn()``, run again (up to ``retries`` times) while others disturbed it."""
        for attempt in range(self.retries + 1):
            before = self._settle()
            m0, o0, t0 = _machine_busy_seconds(), _own_seconds(), time.perf_counter()
            result = fn()
            m1, o1, t1 = _machine_busy_seconds(), _own_seconds(), time.perf_counter()
            during = max(0.0, (m1 - m0) - (o1 - o0)) / max(t1 - t0, 1e-9)
            if during <= THRESHOLD or attempt == self.retries:
                self.before.append(before)
                self.during.append(during)
                return result
            self.retried += 1
        raise AssertionError("unreachable")

    def report(self, r: Report) -> None:
        if not self.during:
            return
        worst = max(self.during)
        r.figure("other_cpus_during", "other processes' load during (CPUs)", self.during, "",
                 "{:.2f}")
        if self.retried:
            r.info("retried", "repeats run again because others were busy", self.retried)
        if worst > THRESHOLD:
            r.note(f"other processes took up to {worst:.2f} CPUs during a measurement, even "
                   f"after {self.retries} retries: figures from the busiest repeats are "
                   "pessimistic (use --wait-idle / --retries, or a quiet machine)")


def check_repeat(repeat: int) -> None:
    if repeat < 1:
        sys.exit("--repeat must be at least 1")


class Report:
    """Collects figures (each a list of repeats) and targets; prints them as it goes."""

    def __init__(self, name: str, repeat: int):
        self.name = name
        self.repeat = repeat
        self.figures: dict[str, dict[str, Any]] = {}
        self.targets: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def figure(self, key: str, label: str, values: Sequence[float], unit: str = "",
               fmt: str = "{:.3g}") -> float:
        """Print ``label: median (min .. max of N)`` and return the median."""
        values = list(values)
        med = statistics.median(values)
        lo, hi = min(values), max(values)
        u = f" {unit}" if unit else ""
        spread = (f"  (median of {len(values)}; min {fmt.format(lo)}, max {fmt.format(hi)})"
                  if len(values) > 1 else "  (1 repeat)")
        print(f"  {label:<44} {fmt.format(med)}{u}{spread}")
        self.figures[key] = {"label": label, "median": med, "min": lo, "max": hi,
                             "unit": unit, "values": values}
        return med

    def info(self, key: str, label: str, value: Any, unit: str = "") -> None:
        """Print and keep a single value that does not vary between repeats."""
        u = f" {unit}" if unit else ""
        print(f"  {label:<44} {value}{u}")
        self.figures[key] = {"label": label, "value": value, "unit": unit}

    def target(self, what: str, value: float, op: str, limit: float, unit: str = "") -> bool:
        ok = value <= limit if op == "<=" else value < limit if op == "<" else value >= limit
        u = f" {unit}" if unit else ""
        verdict = "MET" if ok else "MISSED"
        print(f"  target: {what} {op} {limit:g}{u}: {verdict} ({value:.3g}{u})")
        self.targets.append({"what": what, "op": op, "limit": limit, "value": value,
                             "unit": unit, "met": ok})
        return ok

    def note(self, text: str) -> None:
        print(f"  note: {text}")
        self.notes.append(text)

    def write(self, path: Path | None) -> None:
        if path is None:
            return
        data = {"benchmark": self.name, "repeat": self.repeat, "figures": self.figures,
                "targets": self.targets, "notes": self.notes, "machine": machine()}
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def header(title: str) -> None:
    m = machine()
    print(f"== {title}")
    print(f"   {m['date']} | commit {m['commit']} | nproc {m['nproc']}")
    print(f"   python {m['python']} | {m['platform']}")


def git_commit() -> str:
    """Return the checked-out commit of the repository, with '+dirty' for local changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "sim"], cwd=REPO,
                               check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty (sim/)" if dirty else "")


def machine() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": git_commit(),
        "python": sys.version.replace("\n", " "),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }


def display_path(path: Path) -> str:
    """Return ``path`` relative to the repository when it is inside it."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def sim_command() -> list[str]:
    """Return the command that starts the ``sim`` CLI of this interpreter's environment."""
    here = Path(sys.executable).parent
    found = shutil.which("sim", path=str(here))
    if found:
        return [found]
    return [sys.executable, "-m", "sim"]


def timed_run(scenario: Any, runs: int, workers: int, executor: str) -> tuple[float, Any]:
    """Return the wall time of one whole ``sim.montecarlo.run`` call (executor start-up and
    shutdown included) and its results; the garbage of earlier calls is collected first."""
    import gc

    from sim.montecarlo import run

    gc.collect()
    t0 = time.perf_counter()
    results = run(scenario, runs=runs, workers=workers, executor=executor, progress=False)
    return time.perf_counter() - t0, results
