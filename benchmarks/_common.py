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
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
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
                        "before each measurement (default 0: just report how busy they are)")
    return p


def busy_cpus(interval: float = 0.5) -> float:
    """Return how many CPUs' worth of time the whole machine used over ``interval`` seconds."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return sum(values[:8]) - idle, sum(values[:8])

    try:
        busy0, total0 = sample()
        time.sleep(interval)
        busy1, total1 = sample()
    except OSError:
        return float("nan")
    ncpu = os.cpu_count() or 1
    return ncpu * (busy1 - busy0) / max(total1 - total0, 1)


def settle(wait: float, threshold: float = 0.25) -> float:
    """Wait up to ``wait`` seconds for the machine to be idle; return the CPUs busy before."""
    deadline = time.monotonic() + wait
    busy = busy_cpus()
    while busy > threshold and time.monotonic() < deadline:
        time.sleep(2.0)
        busy = busy_cpus()
    return busy


class BusyWatch:
    """Notes how busy the machine was (in CPUs) just before each measurement."""

    def __init__(self, wait: float):
        self.wait = wait
        self.samples: list[float] = []

    def before(self) -> None:
        self.samples.append(settle(self.wait))

    def report(self, r: Report, threshold: float = 0.25) -> None:
        worst = max(self.samples) if self.samples else 0.0
        r.info("busy_before", "other load before measurements (max, CPUs)", f"{worst:.2f}")
        if worst > threshold:
            r.note(f"the machine was busy ({worst:.2f} CPUs) before a measurement: "
                   "other processes share the cores, so the figures are pessimistic")


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
    print(f"   python {m['python']} | nproc {m['nproc']} | {m['platform']}")


def machine() -> dict[str, Any]:
    return {
        "python": sys.version.replace("\n", " "),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }


def sim_command() -> list[str]:
    """Return the command that starts the ``sim`` CLI of this interpreter's environment."""
    here = Path(sys.executable).parent
    found = shutil.which("sim", path=str(here))
    if found:
        return [found]
    return [sys.executable, "-m", "sim"]
