"""The SimPy world: meeting processes, venues, authority, deadlines, climate, determinism."""

from __future__ import annotations

import copy
import datetime as dt
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import (
    BASELINE,
    REPO,
    TOPIC_Y,
    column,
    lines_of,
    pooled,
    records,
    scenario_of,
    talks_demands,
    traces,
)
from scipy import stats

from sim.model import CATEGORIES, TRACK_COUNTERS, compile_scenario, outcome_fields, simulate
from sim.model.streams import Streams
from sim.model.world import _Run, run_world
from sim.scenario import load_scenario

# --- meetings: how many are planned and held ---------------------------------------------


def test_fixed_cadence_plans_one_meeting_per_cadence_from_first_day(minimal):
    s = scenario_of(minimal, tracks__t__cadence_days=7, tracks__t__first_day=3,
                    tracks__t__authority=[])
    out = simulate(s, seed=1, run=0, trace=True)
    planned = lines_of(out.trace, "planned")
    assert [e.day for e in planned] == [3.0 + 7 * k for k in range(52)]  # 3 + 7*51 = 360 < 365
    assert out["t.planned"] == out["t.held"] == 52


def test_first_day_defaults_to_one_cadence(minimal):
    s = scenario_of(minimal, tracks__t__first_day=None, tracks__t__max_meetings=1)
    (trace,) = traces(s, 1)
    assert lines_of(trace, "planned")[0].day == 30.0


def test_max_meetings_caps_the_planned_meetings(minimal):
    out = simulate(scenario_of(minimal, tracks__t__max_meetings=3, tracks__t__authority=[]),
                   seed=1)
    assert out["t.planned"] == 3
    out = simulate(scenario_of(minimal, tracks__t__max_meetings=0), seed=1)
    assert out["t.planned"] == 0 and out.category("x") == "none"


def test_preparation_puts_the_meeting_after_the_proposal(minimal):
    s = scenario_of(minimal, tracks__t__preparation_days=12, tracks__t__max_meetings=2,
                    tracks__t__authority=[])
    (trace,) = traces(s, 1)
    assert [e.day for e in lines_of(trace, "planned")] == [10.0, 52.0]  # next = 22 + 30
    assert [e.day for e in lines_of(trace, "held")] == [22.0, 64.0]
    assert "for 2026-01-23" in lines_of(trace, "planned")[0].text  # day 22


def _cancel_only(minimal, cadence: float, first: float, p: float, **changes):
    """Fixed cadence, no preparation, no venues: only a constant cancellation probability."""
    return scenario_of(minimal, tracks__t__cadence_days=cadence, tracks__t__first_day=first,
                       tracks__t__cancel_prob=p, tracks__t__authority=[], **changes)


def chi_square_p(observed, probabilities) -> float:
    n = sum(observed)
    obs, exp = pooled(observed, [n * q for q in probabilities])
    assert exp.min() >= 5.0 and len(exp) >= 3
    return stats.chisquare(obs, exp).pvalue


def test_held_meetings_are_binomial_in_planned_meetings_with_cancel_probability(minimal):
    days, first, horizon, p, runs = 7.0, 3.0, 365, 0.3, 3000
    n = sum(1 for k in range(1000) if first + k * days < horizon)
    s = _cancel_only(minimal, days, first, p)
    recs = records(s, runs, seed=2024)
    assert all(r["t.planned"] == n for r in recs)
    assert all(r["t.held"] + r["t.cancelled"] == n for r in recs)
    held = np.array([r["t.held"] for r in recs])
    observed = np.bincount(held, minlength=n + 1)
    assert chi_square_p(observed, stats.binom.pmf(np.arange(n + 1), n, 1 - p)) > 0.001
    # the test has power: the same counts are not Binomial(n, 1 - p - 0.05)
    assert chi_square_p(observed, stats.binom.pmf(np.arange(n + 1), n, 1 - p - 0.05)) < 1e-6


def test_first_held_meeting_index_is_geometric_in_the_cancel_probability(minimal):
    # a summit track records the day of its first held meeting; meeting k is on 5 + 10 (k-1)
    days, first, horizon, p, runs = 10.0, 5.0, 365, 0.6, 4000
    n = sum(1 for k in range(1000) if first + k * days < horizon)
    s = _cancel_only(minimal, days, first, p, tracks__t__kind="summit")
    day = column(s, "first_summit_day", runs, seed=77)
    assert np.isnan(day).sum() == 0  # p^n = 1e-8: every run holds a meeting
    k = np.rint((day - first) / days).astype(int) + 1
    assert np.allclose(first + (k - 1) * days, day)
    observed = np.bincount(k, minlength=n + 2)[1:]  # k = 1..n, then 'never' (n+1) is empty

    def law(q):
        return [q ** (j - 1) * (1 - q) for j in range(1, n + 1)] + [q**n]

    assert chi_square_p(observed, law(p)) > 0.001
    assert chi_square_p(observed, law(p - 0.05)) < 1e-6  # power against a nearby law


def test_exponential_cadence_gaps_are_exponential_with_mean_cadence_days(minimal):
    # one gap per run (first to second proposal), far from the horizon: no censoring
    cadence, runs = 30.0, 4000
    s = scenario_of(minimal, tracks__t__cadence="exponential", tracks__t__cadence_days=cadence,
                    tracks__t__first_day=5, tracks__t__max_meetings=2, tracks__t__authority=[],
                    horizon_days=3650)
    gaps = []
    for trace in traces(s, runs, seed=5):
        first, second = (e.day for e in lines_of(trace, "planned"))
        assert first == 5.0
        gaps.append(second - first)
    gaps = np.array(gaps)
    se = cadence / math.sqrt(runs)  # the sd of an exponential is its mean
    assert abs(gaps.mean() - cadence) < 4.5 * se
    assert stats.kstest(gaps, "expon", args=(0, cadence)).pvalue > 0.001
    assert abs(gaps.mean() - 0.9 * cadence) > 4.5 * se  # the tolerance can tell 10% apart


def test_cancelled_and_postponed_meetings_are_counted(minimal):
    # every meeting is postponed until max_postponements is used up, then cancelled
    s = scenario_of(minimal, tracks__t__postpone_prob=1.0, tracks__t__postpone_days=5,
                    tracks__t__max_postponements=2, tracks__t__max_meetings=1)
    out = simulate(s, seed=1, trace=True)
    assert (out["t.planned"], out["t.held"], out["t.postponed"], out["t.cancelled"]) == (1, 0, 2, 1)
    assert [e.day for e in lines_of(out.trace, "postponed")] == [10.0, 15.0]
    assert lines_of(out.trace, "cancelled")[0].day == 20.0


# --- venues ---------------------------------------------------------------------------


def _venues(minimal, xville: dict, **changes):
    data = copy.deepcopy(minimal)
    data["venues"] = {"xville": {"label": "Xville", "acceptability": xville},
                      "ytown": {"label": "Ytown"}}
    data["tracks"]["t"].update(venues=["xville", "ytown"], cadence_days=10, authority=[],
                               veto_delay_days=0)
    return scenario_of(data, **changes)


def _venue_lines(all_traces, label):
    return [e for tr in all_traces for e in tr
            if e.kind in ("planned", "held") and f" in {label}" in e.text]


@pytest.mark.parametrize("vetoer", ["a", "b"])
def test_venue_vetoed_by_one_side_is_never_chosen(minimal, vetoer):
    all_traces = traces(_venues(minimal, {vetoer: 0.0}), 100)
    assert _venue_lines(all_traces, "Xville") == []
    held_in_y = [e for e in _venue_lines(all_traces, "Ytown") if e.kind == "held"]
    assert len(held_in_y) == 100 * 36  # every meeting moves to the other venue
    label = {"a": "Alpha", "b": "Beta"}[vetoer]
    rejections = [e for tr in all_traces for e in lines_of(tr, "veto")]
    assert rejections and all(e.text == f"Talks: {label} rejects Xville" for e in rejections)


def test_venue_not_vetoed_is_chosen_about_as_often_as_the_other(minimal):
    all_traces = traces(_venues(minimal, {}), 100)
    held = [e for tr in all_traces for e in lines_of(tr, "held")]
    in_x = sum(" in Xville" in e.text for e in held)
    n = len(held)
    assert n == 3600
    assert abs(in_x / n - 0.5) < 4.5 * math.sqrt(0.25 / n)


def test_proposers_prefer_neutral_venues(minimal):
    # weight 0.5 + 0.5 neutrality: a neutral venue is proposed twice as often as a partisan one
    s = _venues(minimal, {}, venues__xville__neutrality=1.0, venues__ytown__neutrality=0.0)
    held = [e for tr in traces(s, 100) for e in lines_of(tr, "held")]
    n = len(held)
    share = sum(" in Xville" in e.text for e in held) / n
    assert abs(share - 2 / 3) < 4.5 * math.sqrt(2 / 9 / n)


def test_each_veto_delays_the_meeting(minimal):
    # a proposes on day 10, Xville or Ytown at even odds; b rejects Xville, costing 14 days
    s = _venues(minimal, {"b": 0.0}, tracks__t__veto_delay_days=14, tracks__t__max_meetings=1)
    vetoed = 0
    for trace, rec in zip(traces(s, 100), records(s, 100)):
        (planned,) = lines_of(trace, "planned")
        (held,) = lines_of(trace, "held")
        assert planned.day == 10.0 and "in Ytown" in held.text
        assert held.day == 10.0 + 14 * rec["t.vetoes"]
        vetoed += rec["t.vetoes"]
    assert 0 < vetoed < 100


def test_no_venue_acceptable_to_both_cancels_the_meeting(minimal):
    s = _venues(minimal, {"b": 0.0}, tracks__t__venues=["xville"])
    out = simulate(s, seed=1)
    assert out["t.planned"] == out["t.cancelled"] == 36
    assert out["t.held"] == 0


# --- authority and prerequisites ------------------------------------------------------


def _two_topics_on_one_track(minimal, authority: list[str]):
    """Topics x and y, alike and both on one track, whose demands cross within two months."""
    data = copy.deepcopy(minimal)
    data["topics"]["y"] = copy.deepcopy(TOPIC_Y)
    for side in ("a", "b"):
        positions = data["sides"][side]["topics"]
        positions["x"].update(tactic="conceder", patience_days=60)
        positions["y"] = copy.deepcopy(positions["x"])
    data["tracks"]["t"].update(authority=authority)
    return scenario_of(data, bargaining__noise=0.03)


def test_topic_outside_a_tracks_authority_is_never_settled_by_it(minimal):
    recs = records(_two_topics_on_one_track(minimal, ["y"]), 100)
    assert all(r["x.outcome"] == 0 for r in recs)
    assert all(r["y.outcome"] == 1 and r["y.day"] <= 70 for r in recs)


def test_topic_inside_a_tracks_authority_is_settled_by_it(minimal):
    recs = records(_two_topics_on_one_track(minimal, ["x", "y"]), 100)
    assert all(CATEGORIES[r["x.outcome"]] == "agreement" for r in recs)
    assert all(0.3 <= r["x.value"] <= 0.7 for r in recs)  # inside both reservations


def test_track_with_unmet_prerequisite_plans_no_meeting(minimal):
    # reservations 0.8 (a) and 0.2 (b): the gap never falls below 0.6, convergence <= 0.4
    apart = {"sides__a__topics__x__reservation": 0.8, "sides__b__topics__x__reservation": 0.2,
             "sides__a__topics__x__patience_days": 365,  # full concession within the year
             "sides__b__topics__x__patience_days": 365}
    s = scenario_of(minimal, tracks__t__requires={"convergence": 0.41, "topics": ["x"]}, **apart)
    out = simulate(s, seed=1, trace=True)
    assert out["t.planned"] == 0
    assert len(lines_of(out.trace, "not ready")) == 12  # checked once a cadence
    s = scenario_of(minimal, tracks__t__requires={"convergence": 0.35, "topics": ["x"]}, **apart)
    out = simulate(s, seed=1, trace=True)
    assert 0 < out["t.planned"] < 12  # planned once positions are close enough
    assert lines_of(out.trace, "not ready")


# --- deadlines ----------------------------------------------------------------------------

DEADLINE = "2026-04-11"  # day 100 of a scenario starting 2026-01-01


def _meetings(n: int) -> dict:
    """Return changes that make track t meet on days 20, 70, 120, ... n times."""
    return {"tracks__t__first_day": 20, "tracks__t__cadence_days": 50, "tracks__t__max_meetings": n}


def _deadline(minimal, deadline: dict | None, **changes):
    data = copy.deepcopy(minimal)
    if deadline is not None:
        data["topics"]["x"]["deadline"] = {"date": DEADLINE, **deadline}
    return scenario_of(data, **changes)


def test_deadline_day_is_counted_from_the_start(minimal):
    s = _deadline(minimal, {"default": 0.25})
    assert compile_scenario(s).topics[0].deadline == 100.0
    # only a topic with an interim has an interim_day field
    assert "x.interim_day" not in outcome_fields(s)
    s = _deadline(minimal, {"default": 0.25, "interim": {"label": "i", "value": 0.5}})
    assert "x.interim_day" in outcome_fields(s)


def test_nothing_is_settled_after_a_deadline_default(minimal):
    # demands cross only near day 286 (linear, patience 400); meetings go on after day 100
    slow = {"sides__a__topics__x__patience_days": 400, "sides__b__topics__x__patience_days": 400,
            "tracks__t__first_day": 5, "tracks__t__cadence_days": 10, "bargaining__noise": 0.03}
    recs = records(_deadline(minimal, {"default": 0.25}, **slow), 200)
    assert all(r["x.outcome"] == 3 and r["x.day"] == 100.0 and r["x.value"] == 0.25
               for r in recs)
    assert all(r["t.held"] == 36 for r in recs)
    # control: without the deadline the same demands do cross, after day 100
    recs = records(_deadline(minimal, None, **slow), 200)
    assert all(r["x.outcome"] == 1 and 100.0 < r["x.day"] < 365 for r in recs)


def test_interim_bracketed_by_the_demands_at_the_deadline_is_taken(minimal):
    # meetings on days 20 and 70 leave a gap; at day 100 both stand on their reservations
    # (0.3 asked by a, 0.7 offered by b), which bracket 0.5
    meet = _meetings(2)
    s = _deadline(minimal, {"default": 0.0, "interim": {"label": "stopgap", "value": 0.5}}, **meet)
    out = simulate(s, seed=1, trace=True)
    assert out["t.held"] == 2
    assert (out["x.outcome"], out["x.day"], out["x.value"]) == (2, 100.0, 0.5)
    assert out["x.interim_day"] == 100.0
    assert "stopgap taken" in lines_of(out.trace, "interim")[0].text


def test_interim_outside_the_demands_at_the_deadline_is_refused(minimal):
    meet = _meetings(2)
    s = _deadline(minimal, {"default": 0.0, "interim": {"label": "stopgap", "value": 0.8}}, **meet)
    out = simulate(s, seed=1, trace=True)
    assert (out["x.outcome"], out["x.day"], out["x.value"]) == (3, 100.0, 0.0)
    assert math.isnan(out["x.interim_day"])
    assert "stopgap refused" in lines_of(out.trace, "default")[0].text


def test_interim_that_runs_out_without_agreement_becomes_default_at_its_end(minimal):
    meet = _meetings(2)
    interim = {"label": "stopgap", "value": 0.5, "duration_days": 50}
    out = simulate(_deadline(minimal, {"default": 0.1, "interim": interim}, **meet),
                   seed=1, trace=True)
    assert (out["x.outcome"], out["x.day"], out["x.value"]) == (3, 150.0, 0.1)
    assert out["x.interim_day"] == 100.0
    assert "runs out" in lines_of(out.trace, "default")[0].text


def test_agreement_after_an_interim_replaces_it(minimal):
    # meetings on 20, 70, 120: the interim is taken on day 100, agreement follows on day 120
    meet = _meetings(3)
    s = _deadline(minimal, {"default": 0.0, "interim": {"label": "stopgap", "value": 0.5}}, **meet)
    out = simulate(s, seed=1, trace=True)
    assert (out["x.outcome"], out["x.day"], out["x.interim_day"]) == (1, 120.0, 100.0)
    assert [e.kind for e in out.trace if e.kind in ("interim", "agreement")] == [
        "interim", "agreement"]


def test_deadline_beyond_the_horizon_never_fires_but_sets_the_concession_horizon(minimal):
    # 2027-06-01 is day 516: a linear side has conceded 10/516 of its way by day 10
    s = _deadline(minimal, {"default": 0.0}, topics__x__deadline__date="2027-06-01")
    assert compile_scenario(s).topics[0].patience == (516.0, 516.0)
    (trace,) = traces(s, 1)
    asked, offered = talks_demands(lines_of(trace, "talks")[0])
    assert asked == pytest.approx(1.0 - 0.7 * 10 / 516, abs=0.005 + 1e-9)
    assert offered == pytest.approx(0.7 * 10 / 516, abs=0.005 + 1e-9)
    assert not lines_of(trace, "default")


def test_deadline_on_the_last_day_of_the_horizon_still_applies(minimal):
    s = _deadline(minimal, {"default": 0.0}, topics__x__deadline__date="2026-12-31",
                  tracks__t__authority=[])
    out = simulate(s, seed=1)
    assert (out.category("x"), out["x.day"]) == ("default", 364.0)


# --- determinism ----------------------------------------------------------------------


def _same(a: dict, b: dict) -> bool:
    """Records equal field by field, NaN equal to NaN."""
    return a.keys() == b.keys() and all(
        (isinstance(a[k], float) and math.isnan(a[k]) and isinstance(b[k], float)
         and math.isnan(b[k])) or a[k] == b[k]
        for k in a)


@pytest.fixture(scope="module")
def baseline():
    return load_scenario(BASELINE)


def test_same_scenario_seed_and_run_give_the_same_trace_and_record(baseline):
    one = simulate(baseline, seed=11, run=2, trace=True)
    two = simulate(load_scenario(BASELINE), seed=11, run=2, trace=True)
    assert len(one.trace) > 20
    assert one.trace == two.trace
    assert _same(one.values, two.values)
    # a compiled world gives the same, and so does a run without tracing
    world = compile_scenario(baseline)
    assert _same(simulate(world, seed=11, run=2).values, one.values)
    record, _ = run_world(world, 11, 2)
    assert _same(dict(zip(world.fields, record)), one.values)


def test_different_run_index_or_seed_gives_a_different_trace(baseline):
    base = simulate(baseline, seed=11, run=2, trace=True).trace
    assert simulate(baseline, seed=11, run=3, trace=True).trace != base
    assert simulate(baseline, seed=12, run=2, trace=True).trace != base


def test_simulate_defaults_to_the_scenarios_seed(baseline):
    assert _same(simulate(baseline, run=1).values,
                 simulate(baseline, seed=baseline.seed, run=1).values)
    with pytest.raises(TypeError):
        simulate(compile_scenario(baseline), run=1)


def test_shocks_do_not_shift_when_meetings_change(baseline):
    # named streams: the shock stream of a run is the same whatever the tracks draw
    data = baseline.model_dump()
    for track in data["tracks"].values():
        track["cancel_prob"] = 0.9
    changed = compile_scenario(scenario_of(data))
    world = compile_scenario(baseline)
    always_land = [f"shocks.{n}" for n, s in baseline.shocks.items() if s.max_tension >= 1.0]
    for run in range(20):
        a = dict(zip(world.fields, run_world(world, 3, run)[0]))
        b = dict(zip(changed.fields, run_world(changed, 3, run)[0]))
        assert [a[f] for f in always_land] == [b[f] for f in always_land]


def test_record_fields_are_stable_and_typed(baseline):
    out = simulate(baseline, run=0)
    assert tuple(out.values) == outcome_fields(baseline)
    for t in baseline.topics:
        assert out[f"{t}.outcome"] in range(4)
        if out[f"{t}.outcome"]:
            assert 0.0 <= out[f"{t}.value"] <= 1.0 and 0 <= out[f"{t}.day"] < 730
    for tr in baseline.tracks:
        c = [out[f"{tr}.{k}"] for k in TRACK_COUNTERS]
        assert all(isinstance(v, int) and v >= 0 for v in c)
        assert c[1] + c[2] + c[4] <= c[0]  # held + cancelled + derailed <= planned
    assert 0.0 <= out["tension_end"] <= out["tension_peak"] <= 1.0


def test_trace_dates_match_days(baseline):
    out = simulate(baseline, run=4, trace=True)
    for e in out.trace:
        assert e.date == baseline.start + dt.timedelta(days=int(e.day))
    assert [e.day for e in out.trace] == sorted(e.day for e in out.trace)


# --- climate feedback -------------------------------------------------------------------


def test_shocks_raise_tension_by_rate_times_jump_over_decay(minimal):
    # shot noise: E[level] = eq + (rate/day) * jump / decay * (1 - exp(-decay t)) (Campbell)
    data = copy.deepcopy(minimal)
    data["climate"].update(initial_tension=0.2, equilibrium=0.2)
    data["tracks"]["t"]["max_meetings"] = 0
    calm = column(scenario_of(data), "tension_end", 5)
    assert np.all(calm == 0.2)
    data["shocks"] = {"s": {"label": "Storm", "rate_per_year": 6, "tension": 0.1,
                            "half_life_days": 60}}
    runs = 2000
    tense = column(scenario_of(data), "tension_end", runs, seed=9)
    decay = math.log(2) / 60
    expected = 0.2 + 6 / 365 * 0.1 / decay * (1 - math.exp(-decay * 365))
    assert abs(tense.mean() - expected) < 4.5 * tense.std(ddof=1) / math.sqrt(runs)
    assert tense.mean() > 0.2 + 4.5 * tense.std(ddof=1) / math.sqrt(runs)


def test_held_meetings_lower_tension_by_their_decayed_relief(minimal):
    data = copy.deepcopy(minimal)
    data["climate"].update(initial_tension=0.5, equilibrium=0.5, meeting_relief=0.02,
                           reversion_half_life_days=90)
    data["tracks"]["t"]["authority"] = []
    rate = math.log(2) / 90
    days = [10 + 30 * k for k in range(12)]
    for scale in (1.0, 3.0):
        out = simulate(scenario_of(data, tracks__t__relief_scale=scale), seed=1)
        relief = 0.02 * scale * sum(math.exp(-rate * (365 - d)) for d in days)
        assert out["tension_end"] == pytest.approx(0.5 - relief, rel=1e-12)
    none = simulate(scenario_of(data, tracks__t__max_meetings=0), seed=1)
    assert none["tension_end"] == 0.5


def test_concession_clock_integrates_calm_over_time(minimal):
    # tension falls from 1 towards 0 with a 30-day half-life; at sensitivity 1 the clock runs
    # at m(t) = 1 - exp(-r t), so by day T it reads T - (1 - exp(-r T)) / r
    s = scenario_of(minimal, climate__initial_tension=1.0, climate__equilibrium=0.0,
                    climate__reversion_half_life_days=30, climate__concession_sensitivity=1.0)
    run = _Run(compile_scenario(s), Streams(0, 0), trace=False)
    r, h, horizon = math.log(2) / 30, 5.0, 300.0
    for t in np.arange(0.0, horizon + h, h):
        run.clock(float(t))
    exact = horizon - (1 - math.exp(-r * horizon)) / r
    # read every h days, the clock may err by at most the trapezoid bound T h^2 max|m''| / 12
    assert abs(run.clock(horizon) - exact) <= horizon * h**2 * r**2 / 12


def test_agreement_relieves_tension(minimal):
    data = copy.deepcopy(minimal)
    for side in ("a", "b"):  # concede fully within the year (the default horizon is 730 days)
        data["sides"][side]["topics"]["x"]["patience_days"] = 365
    data["climate"].update(initial_tension=0.5, equilibrium=0.5)
    without = simulate(scenario_of(data), seed=1)
    data["climate"]["agreement_relief"] = 0.1
    relieved = simulate(scenario_of(data), seed=1)
    assert without.category("x") == relieved.category("x") == "agreement"
    assert relieved["tension_end"] < without["tension_end"] == 0.5


def test_cancel_sensitivity_cancels_more_meetings_at_high_tension(minimal):
    # constant tension T: each meeting is cancelled with probability 0.1 + 0.5 T
    runs, n = 2000, 12
    held = {}
    for tension in (0.1, 0.8):
        s = _cancel_only(minimal, 30, 10, 0.1, climate__cancel_sensitivity=0.5,
                         climate__initial_tension=tension, climate__equilibrium=tension)
        held[tension] = column(s, "t.held", runs, seed=31)
        q = 1 - (0.1 + 0.5 * tension)
        se = math.sqrt(n * q * (1 - q) / runs)
        assert abs(held[tension].mean() - n * q) < 4.5 * se
    assert held[0.8].mean() < held[0.1].mean() - 3.0


def test_shock_derails_meetings_in_its_window(minimal):
    s = scenario_of(minimal, tracks__t__cadence_days=1, tracks__t__first_day=0.5,
                    tracks__t__authority=[],
                    shocks={"s": {"label": "Storm", "rate_per_year": 12, "tension": 0.0,
                                  "derail_prob": 1.0, "derail_window_days": 5}})
    out = simulate(s, seed=1, trace=True)
    assert out["shocks.s"] > 0 and out["t.derailed"] > 0
    shocks = [e.day for e in lines_of(out.trace, "shock", lambda e: e.source == "s")]
    for e in lines_of(out.trace, "derailed"):
        assert any(0 <= e.day - d <= 5 for d in shocks)
    for e in lines_of(out.trace, "held"):
        assert not any(0 <= e.day - d <= 5 for d in shocks)


def test_shock_above_its_max_tension_does_not_land(minimal):
    s = scenario_of(minimal, climate__initial_tension=0.9, climate__equilibrium=0.9,
                    shocks={"s": {"label": "Relief", "rate_per_year": 24, "tension": -0.01,
                                  "max_tension": 0.5}})
    out = simulate(s, seed=1, trace=True)
    assert out["shocks.s"] == 0
    assert lines_of(out.trace, "shock") and all(
        "window missed" in e.text for e in lines_of(out.trace, "shock"))


# --- what the model module imports ---------------------------------------------------


def test_model_imports_neither_scipy_nor_matplotlib():
    code = ("import sys; import sim.model; from sim.model import simulate; "
            "bad = [m for m in ('scipy', 'matplotlib') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
