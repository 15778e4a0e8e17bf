"""A horizon only truncates: every event before day D is the same whatever the horizon (>= D).

Property-based over the shipped scenarios, horizons and runs: the trace of a run simulated to
a shorter horizon is exactly the start of the same run simulated further, and so are the
topic results settled before the shorter horizon.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.model import simulate
from sim.model.compiled import AGREEMENT, DEFAULT, DEFAULT_PATIENCE
from sim.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
NAMES = sorted(p.stem for p in (REPO / "scenarios").glob("*.yaml"))
SCENARIOS = {name: load_scenario(REPO / "scenarios" / f"{name}.yaml") for name in NAMES}


def events_before(outcome, day: float) -> list[tuple]:
    return [(e.day, e.source, e.kind, e.text) for e in outcome.trace if e.day < day]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), short=st.integers(20, 700), extra=st.integers(1, 900),
       run=st.integers(0, 10_000))
def test_a_longer_horizon_changes_nothing_before_the_shorter_one(name, short, extra, run):
    base = SCENARIOS[name]
    a = simulate(base.model_copy(update={"horizon_days": short}), run=run, trace=True)
    b = simulate(base.model_copy(update={"horizon_days": short + extra}), run=run, trace=True)
    assert events_before(a, short) == events_before(b, short)
    for topic in base.topics:
        # agreed or defaulted within the short horizon: final, so the same in the longer run
        # (an interim arrangement is not final: an agreement may replace it later)
        if a[f"{topic}.outcome"] in (AGREEMENT, DEFAULT):
            assert (b[f"{topic}.outcome"], b[f"{topic}.day"], b[f"{topic}.value"]) == (
                a[f"{topic}.outcome"], a[f"{topic}.day"], a[f"{topic}.value"])


def test_the_concession_horizon_without_deadline_or_patience_is_fixed():
    from sim.model import compile_scenario

    s = SCENARIOS["hindcast_2025"]
    short, long = (compile_scenario(s.model_copy(update={"horizon_days": h})) for h in (100, 2000))
    for ta, tb in zip(short.topics, long.topics):
        assert ta.patience == tb.patience
    undated = [t for t, topic in s.topics.items() if topic.deadline is None
               and any(s.sides[x].topics[t].patience_days is None for x in s.signatories)]
    assert undated, "the test needs a topic that takes the default"
    index = list(s.topics).index(undated[0])
    assert DEFAULT_PATIENCE in short.topics[index].patience


@pytest.mark.parametrize("name", NAMES)
def test_a_fact_date_inside_the_horizon_sees_the_same_runs_whatever_the_horizon(name):
    base = SCENARIOS[name]
    day = min(200, base.horizon_days)
    for run in range(20):
        a = simulate(base.model_copy(update={"horizon_days": day}), run=run, trace=True)
        b = simulate(base.model_copy(update={"horizon_days": day + 365}), run=run, trace=True)
        assert events_before(a, day) == events_before(b, day)
