"""Shared helpers for the compare, report, plots, sweep and scenario tests.

Not a conftest: test modules import what they need from here. Monte Carlo jobs are cached
per process (``lru_cache``), so modules that use the same job share one run. Cached
:class:`~sim.results.Results` are shared objects: tests must not modify them (e.g. set
``.name``); call :func:`fresh_run` for a private copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

from sim.montecarlo import run
from sim.results import Results
from sim.scenario import Scenario, load_scenario

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"
#: The baseline with fixed numbers (as before its beliefs became priors), for tests that need them.
BASELINE = REPO / "tests" / "data" / "pinned" / "baseline.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: The override that forbids every leaders' summit in the baseline.
NO_SUMMITS = {"tracks.summit.max_meetings": 0}


def scenario(name: str = "baseline", **overrides: Any) -> Scenario:
    """Return ``scenarios/<name>.yaml`` with dotted ``overrides`` (``__`` stands for ``.``)."""
    return load_scenario(SCENARIOS / f"{name}.yaml",
                         overrides={k.replace("__", "."): v for k, v in overrides.items()})


@cache
def _cached(name: str, runs: int, seed: int | None, overrides: tuple[tuple[str, Any], ...]) -> Results:
    s = load_scenario(SCENARIOS / f"{name}.yaml", overrides=dict(overrides))
    return run(s, runs=runs, seed=seed, workers=1)


def cached_run(name: str = "baseline", runs: int = 300, seed: int | None = None,
               overrides: dict[str, Any] | None = None) -> Results:
    """Return the (shared, read-only) results of ``runs`` runs of a shipped scenario."""
    return _cached(name, runs, seed, tuple(sorted((overrides or {}).items())))


def fresh_run(name: str = "baseline", runs: int = 300, seed: int | None = None,
              overrides: dict[str, Any] | None = None, **kwargs: Any) -> Results:
    """Return new results (not cached), e.g. to rename them or save them to a folder."""
    s = load_scenario(SCENARIOS / f"{name}.yaml", overrides=overrides)
    return run(s, runs=runs, seed=seed, workers=1, **kwargs)


def sim_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m sim *args``; stdout and stderr are pipes (not a terminal)."""
    env = dict(os.environ, COLUMNS="160", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "sim", *args], check=False, cwd=cwd or REPO,
                          env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def assert_clean_error(proc: subprocess.CompletedProcess) -> None:
    """Bad input: exit code 2, a message on stderr, and no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert proc.stderr.strip(), "an error says what is wrong"
