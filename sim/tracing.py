"""One run's trace rendered as a dated timeline a person can follow."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .errors import InputError
from .model import CATEGORIES, Outcome
from .scenario import Scenario

#: Every kind of trace event the model writes (the ``kind`` of ``note()`` in
#: sim/model/world.py; tests/test_tracing.py checks the two agree), in timeline order of a
#: meeting's life, then bargaining, shocks and deadlines.
TRACE_KINDS = (
    "not ready", "planned", "veto", "postponed", "held", "cancelled", "derailed", "leak",
    "stall", "talks", "agreement", "shock", "interim", "default",
)


def check_kinds(kinds: Iterable[str]) -> set[str] | None:
    """Return ``kinds`` as a set (None if empty), or raise InputError naming unknown ones."""
    chosen = set(kinds)
    unknown = sorted(chosen.difference(TRACE_KINDS))
    if unknown:
        noun = "kind" if len(unknown) == 1 else "kinds"
        listed = ", ".join(repr(k) for k in unknown)
        raise InputError(f"--kind {listed}: unknown event {noun}; the kinds are "
                         + ", ".join(repr(k) for k in TRACE_KINDS))
    return chosen or None


def render_trace(
    scenario: Scenario, outcome: Outcome, *, seed: int, run: int, kinds: set[str] | None = None
) -> str:
    """Return the run's timeline, then each topic's result and each track's counts."""
    lines = [
        f"Scenario '{scenario.name}', seed {seed}, run {run}: "
        f"{scenario.start} to {scenario.end} ({scenario.horizon_days} days)",
        "",
    ]
    width = max((len(e.source) for e in outcome.trace or ()), default=6)
    for event in outcome.trace or ():
        if kinds is None or event.kind in kinds:
            lines.append(f"{event.date}  {event.source:<{width}}  {event.kind:<10}  {event.text}")
    lines += ["", "Outcome by topic:"]
    for name, topic in scenario.topics.items():
        category = CATEGORIES[outcome[f"{name}.outcome"]]
        day, value = outcome[f"{name}.day"], outcome[f"{name}.value"]
        detail = ""
        if not math.isnan(day):
            date = scenario.start.fromordinal(scenario.start.toordinal() + int(day))
            detail = f" on {date}, value {value:.2f}"
        lines.append(f"  {topic.label:<40} {category}{detail}")
    lines += ["", "Meetings by track (planned / held / cancelled / postponed / derailed / vetoes):"]
    for name, track in scenario.tracks.items():
        counts = " / ".join(
            str(outcome[f"{name}.{c}"])
            for c in ("planned", "held", "cancelled", "postponed", "derailed", "vetoes")
        )
        lines.append(f"  {track.label:<40} {counts}")
    lines.append(
        f"\nTension: ended at {outcome['tension_end']:.2f}, peaked at {outcome['tension_peak']:.2f}; "
        f"summits held: {outcome['summits_held']}"
    )
    return "\n".join(lines)
