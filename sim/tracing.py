"""One run's trace rendered as a dated timeline a person can follow."""

from __future__ import annotations

import math

from .model import CATEGORIES, Outcome
from .scenario import Scenario


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
