"""The negotiation world: one run of a compiled scenario under named random streams."""

from __future__ import annotations

from ..scenario.models import Scenario
from .compiled import CATEGORIES, TRACK_COUNTERS, World, compile_scenario, outcome_fields
from .streams import STREAM_NAMES, Streams
from .world import Outcome, TraceEvent, run_world

__all__ = [
    "CATEGORIES",
    "STREAM_NAMES",
    "TRACK_COUNTERS",
    "Outcome",
    "Streams",
    "TraceEvent",
    "World",
    "compile_scenario",
    "outcome_fields",
    "simulate",
]


def simulate(
    scenario: Scenario | World, *, seed: int | None = None, run: int = 0, trace: bool = False
) -> Outcome:
    """Return the outcome record of run ``run`` of ``scenario``, with its trace if asked.

    ``seed`` defaults to the scenario's own. The same scenario, seed and run index always
    give the same record and trace.
    """
    if isinstance(scenario, World):
        world = scenario
        if seed is None:
            raise TypeError("simulate() needs a seed when given a compiled World")
    else:
        world = compile_scenario(scenario)
        seed = scenario.seed if seed is None else seed
    record, events = run_world(world, seed, run, trace)
    return Outcome(dict(zip(world.fields, record)), events)
