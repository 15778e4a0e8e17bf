"""Shared helpers: a minimal valid scenario to modify, fast batch runs, chi-square pooling."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.model import compile_scenario
from sim.model.world import TraceEvent, run_world
from sim.scenario import Scenario, validate

REPO = Path(__file__).resolve().parents[1]
#: The baseline as it was before its beliefs became priors: tests of the model and the engine
#: use its fixed numbers (tests/test_inputs.py and test_scenarios.py run the shipped one).
BASELINE = REPO / "tests" / "data" / "pinned" / "baseline.yaml"

#: The smallest valid scenario: two signatories a and b, topic x (a wants high, b low, with a
#: zone of agreement between 0.3 and 0.7), one fixed-cadence track t with authority over x.
#: Calm climate (tension 0, no feedback), no venues, no shocks, no noise.
MINIMAL: dict[str, Any] = {
    "name": "mini",
    "start": "2026-01-01",
    "horizon_days": 365,
    "topics": {
        "x": {"label": "Topic X", "scale": {"low": "nothing", "high": "everything"}},
    },
    "sides": {
        "a": {"label": "Alpha", "topics": {"x": {"ideal": 1.0, "reservation": 0.3}}},
        "b": {"label": "Beta", "topics": {"x": {"ideal": 0.0, "reservation": 0.7}}},
    },
    "climate": {
        "initial_tension": 0.0,
        "equilibrium": 0.0,
        "meeting_relief": 0.0,
        "agreement_relief": 0.0,
        "cancellation_strain": 0.0,
        "concession_sensitivity": 0.0,
        "cancel_sensitivity": 0.0,
        "venue_sensitivity": 0.0,
    },
    "tracks": {
        "t": {
            "label": "Talks",
            "kind": "envoys",
            "cadence": "fixed",
            "cadence_days": 30,
            "first_day": 10,
            "authority": ["x"],
        },
    },
    "bargaining": {"noise": 0.0},
}

#: A second topic y for tests that need two: a wants high, b wants low.
TOPIC_Y = {"label": "Topic Y", "scale": {"low": "none", "high": "all"}}

#: The same minimal scenario written as YAML, one key per line so problems have clear lines.
MINIMAL_YAML = """\
name: mini
start: 2026-01-01
horizon_days: 365
topics:
  x:
    label: Topic X
    scale:
      low: nothing
      high: everything
sides:
  a:
    label: Alpha
    topics:
      x:
        ideal: 1.0
        reservation: 0.3
  b:
    label: Beta
    topics:
      x:
        ideal: 0.0
        reservation: 0.7
climate:
  initial_tension: 0.0
  equilibrium: 0.0
tracks:
  t:
    label: Talks
    kind: envoys
    cadence_days: 30
    authority: [x]
"""


@pytest.fixture
def minimal() -> dict[str, Any]:
    """A fresh deep copy of :data:`MINIMAL` that a test may modify freely."""
    return copy.deepcopy(MINIMAL)


@pytest.fixture
def minimal_yaml() -> str:
    return MINIMAL_YAML


def set_path(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Set ``data[a][b][c] = value`` for ``dotted == "a.b.c"``, creating mappings; return data."""
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return data


def scenario_of(data: dict[str, Any], **changes: Any) -> Scenario:
    """Validate a deep copy of ``data`` with dotted ``changes`` (``__`` stands for ``.``)."""
    data = copy.deepcopy(data)
    for key, value in changes.items():
        set_path(data, key.replace("__", "."), value)
    return validate(data)


def records(scenario: Scenario, runs: int, seed: int = 12345) -> list[dict[str, Any]]:
    """Return the outcome records of runs ``0 .. runs-1`` as dicts keyed by field."""
    world = compile_scenario(scenario)
    return [dict(zip(world.fields, run_world(world, seed, r)[0], strict=True)) for r in range(runs)]


def column(scenario: Scenario, field: str, runs: int, seed: int = 12345) -> np.ndarray:
    """Return one outcome field over ``runs`` runs as an array."""
    world = compile_scenario(scenario)
    k = world.fields.index(field)
    return np.array([run_world(world, seed, r)[0][k] for r in range(runs)], dtype=float)


def traces(scenario: Scenario, runs: int, seed: int = 12345) -> list[list[TraceEvent]]:
    """Return the traces of runs ``0 .. runs-1``."""
    world = compile_scenario(scenario)
    return [run_world(world, seed, r, trace=True)[1] for r in range(runs)]


def pooled(observed: Iterable[float], expected: Iterable[float], minimum: float = 5.0):
    """Pool adjacent bins, in order, until each pooled bin expects at least ``minimum``.

    A short last pool is merged into the one before it. Returns (observed, expected) arrays.
    """
    obs_out: list[float] = []
    exp_out: list[float] = []
    o_acc = e_acc = 0.0
    for o, e in zip(observed, expected, strict=True):
        o_acc += o
        e_acc += e
        if e_acc >= minimum:
            obs_out.append(o_acc)
            exp_out.append(e_acc)
            o_acc = e_acc = 0.0
    if e_acc > 0.0 or o_acc > 0.0:
        if exp_out:
            obs_out[-1] += o_acc
            exp_out[-1] += e_acc
        else:
            obs_out.append(o_acc)
            exp_out.append(e_acc)
    return np.array(obs_out), np.array(exp_out)


_TALKS = re.compile(r"asks (-?\d+\.\d+), .* offers (-?\d+\.\d+); gap")


def talks_demands(event: TraceEvent) -> tuple[float, float]:
    """Return (high side's demand, low side's demand) printed in a "talks" trace line."""
    m = _TALKS.search(event.text)
    assert m, f"not a talks line: {event.text!r}"
    return float(m.group(1)), float(m.group(2))


def lines_of(
    trace: list[TraceEvent], kind: str, where: Callable[[TraceEvent], bool] = lambda e: True
) -> list[TraceEvent]:
    """Return the trace lines of one kind (and matching ``where``)."""
    return [e for e in trace if e.kind == kind and where(e)]


def ctrl_c_after_parts(proc, outcomes: Path, parts: int, timeout: float = 120) -> None:
    """Wait until the job ``proc`` (started in a session of its own) has written ``parts``
    Parquet parts into ``outcomes``, then send SIGINT to its whole process group, as Ctrl-C
    in a terminal does."""
    import os
    import signal
    import time

    deadline = time.monotonic() + timeout
    while len(list(outcomes.glob("part-*.parquet"))) < parts:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
