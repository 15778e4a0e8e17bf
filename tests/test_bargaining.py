"""Bargaining: Faratin concession, Rubinstein alternating offers, linkage, influence."""

from __future__ import annotations

import copy
import math
from itertools import pairwise

import pytest
from conftest import TOPIC_Y, lines_of, records, scenario_of, talks_demands, traces

from sim.model import compile_scenario, simulate
from sim.model.bargaining import faratin_alpha, gap, linkage_deal, rubinstein_share
from sim.model.streams import Streams
from sim.model.world import _Run

# --- Faratin concession ------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.2, 1.0, 5.0])
@pytest.mark.parametrize("k", [0.0, 0.1])
def test_faratin_alpha_is_k_plus_rest_times_time_share_to_one_over_beta(beta, k):
    horizon = 200.0
    for i in range(0, 201, 5):
        t = float(i)
        expected = k + (1.0 - k) * (t / horizon) ** (1.0 / beta)
        assert faratin_alpha(t, horizon, beta, k) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    for t in (200.0, 200.5, 1e6):
        assert faratin_alpha(t, horizon, beta, k) == 1.0
    assert faratin_alpha(0.0, horizon, beta, k) == k


def test_boulware_concedes_less_than_linear_which_concedes_less_than_conceder():
    for t in (1.0, 10.0, 50.0, 99.0):
        boulware, linear, conceder = (faratin_alpha(t, 100.0, b) for b in (0.2, 1.0, 5.0))
        assert boulware < linear < conceder
        assert linear == pytest.approx(t / 100.0, rel=1e-12)


def test_faratin_alpha_rises_from_k_to_one():
    for beta in (0.2, 1.0, 5.0):
        values = [faratin_alpha(t, 100.0, beta, 0.1) for t in range(101)]
        assert values[0] == 0.1 and values[-1] == 1.0
        assert all(a < b for a, b in pairwise(values))


def _faratin_scenario(minimal, **changes):
    """a: Boulware with k, patience 300; b: Conceder, patience 200; no zone of agreement."""
    data = copy.deepcopy(minimal)
    data["sides"]["a"]["topics"]["x"] = {"ideal": 1.0, "opening": 0.95, "reservation": 0.6,
                                         "tactic": "boulware", "initial_concession": 0.1,
                                         "patience_days": 300}
    data["sides"]["b"]["topics"]["x"] = {"ideal": 0.0, "opening": 0.05, "reservation": 0.4,
                                         "concession": 2.5, "patience_days": 200}
    data["tracks"]["t"].update(cadence_days=20, first_day=7)
    return scenario_of(data, **changes)


def _expected_demands(t: float, m: float = 1.0) -> tuple[float, float]:
    da = 0.95 + faratin_alpha(m * t, 300.0, 0.2, 0.1) * (0.6 - 0.95)
    db = 0.05 + faratin_alpha(m * t, 200.0, 2.5, 0.0) * (0.4 - 0.05)
    return da, db


def test_demands_at_meetings_follow_opening_plus_alpha_times_the_way_to_reservation(minimal):
    s = _faratin_scenario(minimal)
    (trace,) = traces(s, 1)
    talks = lines_of(trace, "talks")
    assert [e.day for e in talks] == [7.0 + 20 * k for k in range(18)]  # every meeting, no deal
    for e in talks:
        asked, offered = talks_demands(e)
        da, db = _expected_demands(e.day)
        assert asked == pytest.approx(da, abs=0.005 + 1e-9), e
        assert offered == pytest.approx(db, abs=0.005 + 1e-9), e
    # past their patience both stand on their reservation
    assert talks_demands(talks[-1]) == (0.6, 0.4)


def test_world_demand_is_the_faratin_formula_of_the_concession_clock(minimal):
    s = _faratin_scenario(minimal)
    run = _Run(compile_scenario(s), Streams(0, 0), trace=False)
    for t in (0.0, 13.0, 50.0, 150.0, 199.0, 250.0, 299.0):  # in order: the clock runs on
        da, db = _expected_demands(t)
        assert run.clock(t) == pytest.approx(t, rel=1e-12)  # calm: one clock day a day
        assert run.demand(0, 0, t) == pytest.approx(da, rel=1e-12)
        assert run.demand(0, 1, t) == pytest.approx(db, rel=1e-12)
        assert run.demands(0, t, noise=False) == pytest.approx((da, db), rel=1e-12)


def test_tension_slows_the_concession_clock(minimal):
    # constant tension 0.5 (no relief, no strain) with sensitivity 0.4: the clock runs at 0.8
    s = _faratin_scenario(minimal, climate__initial_tension=0.5, climate__equilibrium=0.5,
                          climate__concession_sensitivity=0.4)
    (trace,) = traces(s, 1)
    talks = lines_of(trace, "talks")
    assert len(talks) == 18
    for e in talks:
        da, db = _expected_demands(e.day, m=0.8)
        assert talks_demands(e) == pytest.approx((da, db), abs=0.005 + 1e-9), e
    # and the tension really made a difference somewhere
    assert any(abs(talks_demands(e)[1] - _expected_demands(e.day)[1]) > 0.02 for e in talks)


def test_tension_never_takes_a_concession_back(minimal):
    # big shocks make tension jump up and down; without noise, each side's demand still
    # moves only towards its reservation from one meeting to the next
    storm = {"label": "Storm", "rate_per_year": 12, "tension": 0.6, "half_life_days": 20}
    s = _faratin_scenario(minimal, climate__concession_sensitivity=1.0, shocks={"s": storm},
                          tracks__t__cadence_days=5)
    moved = 0
    for trace in traces(s, 30):
        demands = [talks_demands(e) for e in lines_of(trace, "talks")]
        for (a0, b0), (a1, b1) in pairwise(demands):
            assert a1 <= a0 and b1 >= b0
        moved += demands[-1] != demands[0]
        assert lines_of(trace, "shock")
    assert moved == 30


def test_noise_is_normal_and_centred_on_the_faratin_demand(minimal):
    # b's demand at day 7 is 4.7 noise sds from the clipping bound 0: clipping is negligible
    s = _faratin_scenario(minimal, bargaining__noise=0.03)
    world = compile_scenario(s)
    _, db = _expected_demands(7.0)
    n = 4000
    offered = [_Run(world, Streams(3, r), trace=False).demands(0, 7.0, noise=True)[1]
               for r in range(n)]
    mean = sum(offered) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in offered) / (n - 1))
    assert abs(mean - db) < 4.5 * 0.03 / math.sqrt(n)
    # the sample sd of a normal has relative standard error 1 / sqrt(2 (n - 1))
    assert abs(sd / 0.03 - 1.0) < 4.5 / math.sqrt(2 * (n - 1))


# --- Rubinstein ----------------------------------------------------------------------


def test_rubinstein_share_is_one_minus_d2_over_one_minus_d1_d2():
    assert rubinstein_share(0.9, 0.9) == pytest.approx(10 / 19, rel=1e-12)
    assert rubinstein_share(0.9, 0.8) == pytest.approx(5 / 7, rel=1e-12)
    assert rubinstein_share(0.8, 0.9) == pytest.approx(1 / 2.8, rel=1e-12)
    # the more patient the responder, the less the proposer gets
    assert rubinstein_share(0.9, 0.95) < rubinstein_share(0.9, 0.9)


def _rubinstein(minimal, da: float, db: float, a_high: bool = True, **changes):
    data = copy.deepcopy(minimal)
    data["bargaining"]["protocol"] = "rubinstein"
    hi, lo = {"ideal": 1.0, "reservation": 0.0}, {"ideal": 0.0, "reservation": 1.0}
    data["sides"]["a"].update(discount=da, topics={"x": hi if a_high else lo})
    data["sides"]["b"].update(discount=db, topics={"x": lo if a_high else hi})
    return scenario_of(data, **changes)


@pytest.mark.parametrize(("da", "db", "share"), [(0.9, 0.9, 10 / 19), (0.9, 0.8, 5 / 7)])
def test_rubinstein_track_settles_at_first_meeting_on_first_proposers_share(minimal, da, db,
                                                                             share):
    s = _rubinstein(minimal, da, db)
    assert compile_scenario(s).topics[0].high == 0  # a wants high values and proposes first
    out = simulate(s, seed=1, run=0, trace=True)
    assert out.category("x") == "agreement"
    assert out["x.day"] == 10.0  # the first meeting
    assert out["x.value"] == pytest.approx(share, rel=1e-12)
    assert any("Alpha proposes first" in e.text for e in out.trace)


def test_rubinstein_first_proposer_on_the_low_side_leaves_the_high_side_the_rest(minimal):
    s = _rubinstein(minimal, 0.9, 0.8, a_high=False)
    out = simulate(s, seed=1, run=0)
    assert out["x.value"] == pytest.approx(1.0 - 5 / 7, rel=1e-12)


def test_rubinstein_split_is_of_the_zone_between_reservations(minimal):
    data = copy.deepcopy(minimal)
    data["bargaining"]["protocol"] = "rubinstein"
    # a (high) accepts down to 0.3, b (low) up to 0.7: surplus 0.4 starting at 0.3
    out = simulate(scenario_of(data), seed=1, run=0)
    assert out["x.value"] == pytest.approx(0.3 + 10 / 19 * 0.4, rel=1e-12)


def test_rubinstein_without_a_zone_of_agreement_settles_nothing(minimal):
    data = copy.deepcopy(minimal)
    data["bargaining"]["protocol"] = "rubinstein"
    data["sides"]["a"]["topics"]["x"]["reservation"] = 0.8
    data["sides"]["b"]["topics"]["x"]["reservation"] = 0.2
    assert simulate(scenario_of(data), seed=1, run=0).category("x") == "none"


def test_track_protocol_overrides_the_scenario_protocol(minimal):
    s = scenario_of(minimal, tracks__t__protocol="rubinstein")
    out = simulate(s, seed=1, run=0)
    assert (out["x.day"], out["x.value"]) == (10.0, pytest.approx(0.3 + 10 / 19 * 0.4))


def test_proposer_alternates_per_track_starting_with_the_first_signatory(minimal):
    # half the meetings are cancelled, so the first held one is proposed by either side;
    # meeting k (day 10 k) is proposed by a for odd k, by b for even k
    s = _rubinstein(minimal, 0.9, 0.8, tracks__t__cadence_days=10, tracks__t__cancel_prob=0.5)
    by_parity = {0: set(), 1: set()}
    for rec in records(s, 200):
        k = round(rec["x.day"] / 10)
        by_parity[k % 2].add(round(rec["x.value"], 12))
    assert by_parity[1] == {round(5 / 7, 12)}  # a proposes with d = (0.9, 0.8)
    assert by_parity[0] == {round(1 - (1 - 0.9) / (1 - 0.72), 12)}  # b proposes, b's share


# --- demand crossing and linkage (pure) -------------------------------------------------


def test_gap_is_zero_once_demands_cross():
    assert gap(0.7, 0.4) == pytest.approx(0.3)
    assert gap(0.4, 0.4) == 0.0 and gap(0.3, 0.5) == 0.0


def test_linkage_deal_gives_each_side_the_topic_it_cares_more_about():
    # A cares about p, B about q: A gets p, B gets q
    assert linkage_deal(0.3, 0.3, 0.9, 0.1, 0.1, 0.9) == "a_gets_p"
    assert linkage_deal(0.3, 0.3, 0.1, 0.9, 0.9, 0.1) == "a_gets_q"
    # both care most about the same topic: nobody will trade it away
    assert linkage_deal(0.3, 0.3, 0.9, 0.1, 0.9, 0.1) is None
    # equal saliences: nobody is strictly better off
    assert linkage_deal(0.3, 0.3, 0.5, 0.5, 0.5, 0.5) is None
    # a closed gap leaves nothing to trade
    assert linkage_deal(0.0, 0.3, 0.9, 0.1, 0.1, 0.9) is None


# --- linkage in the world ---------------------------------------------------------------


def _linkage_scenario(minimal, linkage: bool):
    """Two topics whose gaps stay open all year; a cares about x, b about y."""
    data = copy.deepcopy(minimal)
    data["topics"]["y"] = copy.deepcopy(TOPIC_Y)
    slow = {"tactic": "boulware", "patience_days": 36500}
    data["sides"]["a"]["topics"] = {
        "x": {"ideal": 0.6, "reservation": 0.2, "salience": 0.9, **slow},
        "y": {"ideal": 0.6, "reservation": 0.1, "salience": 0.1, **slow},
    }
    data["sides"]["b"]["topics"] = {
        "x": {"ideal": 0.2, "reservation": 0.7, "salience": 0.1, **slow},
        "y": {"ideal": 0.2, "reservation": 0.7, "salience": 0.9, **slow},
    }
    data["tracks"]["t"].update(authority=["x", "y"], linkage=linkage)
    return scenario_of(data)


def test_linkage_settles_two_stuck_topics_as_a_package(minimal):
    out = simulate(_linkage_scenario(minimal, linkage=True), seed=1, run=0, trace=True)
    assert out.category("x") == out.category("y") == "agreement"
    assert out["x.day"] == out["y.day"] == 10.0
    # each side gets its demand where it cares more: a's 0.6 on x, b's 0.2 on y
    assert out["x.value"] == pytest.approx(0.6, abs=1e-3)
    assert out["y.value"] == pytest.approx(0.2, abs=1e-3)
    agreements = lines_of(out.trace, "agreement")
    assert len(agreements) == 2
    assert all("package with" in e.text for e in agreements)


def test_without_linkage_the_same_topics_stay_open(minimal):
    out = simulate(_linkage_scenario(minimal, linkage=False), seed=1, run=0, trace=True)
    assert out.category("x") == out.category("y") == "none"
    assert len(lines_of(out.trace, "talks")) == 2 * out["t.held"] > 0


def test_linkage_needs_the_loser_to_accept_the_winners_demand(minimal):
    # b would accept at most 0.5 on x, so a's demand of 0.6 cannot be the package price
    s = _linkage_scenario(minimal, linkage=True)
    data = copy.deepcopy(s.model_dump())
    data["sides"]["b"]["topics"]["x"]["reservation"] = 0.5
    out = simulate(scenario_of(data), seed=1, run=0)
    assert out.category("x") == out.category("y") == "none"


# --- third-party influence --------------------------------------------------------------


def test_influencer_pulls_a_signatorys_demand_toward_its_ideal(minimal):
    plain = _Run(compile_scenario(scenario_of(minimal)), Streams(0, 0), trace=False)
    data = copy.deepcopy(minimal)
    data["sides"]["c"] = {"label": "Gamma", "role": "influencer",
                          "topics": {"x": {"ideal": 0.0, "influence": {"a": 0.25}}}}
    pulled = _Run(compile_scenario(scenario_of(data)), Streams(0, 0), trace=False)
    for t in (0.0, 100.0, 200.0):
        d = plain.demand(0, 0, t)
        assert pulled.demand(0, 0, t) == pytest.approx(d + 0.25 * (0.0 - d), rel=1e-12)
        assert pulled.demand(0, 1, t) == plain.demand(0, 1, t)  # b is not pulled


def test_influence_pulls_the_agreement_toward_the_influencer(minimal):
    data = copy.deepcopy(minimal)
    data["sides"]["a"]["topics"]["x"]["reservation"] = 0.1
    for side in ("a", "b"):  # concede fully within the year (the default horizon is 730 days)
        data["sides"][side]["topics"]["x"]["patience_days"] = 365
    base = simulate(scenario_of(data), seed=1, run=0)
    data["sides"]["c"] = {"label": "Gamma", "role": "influencer",
                          "topics": {"x": {"ideal": 0.0, "influence": {"a": 0.3}}}}
    pulled = simulate(scenario_of(data), seed=1, run=0)
    assert base.category("x") == pulled.category("x") == "agreement"
    assert pulled["x.value"] < base["x.value"]
    assert pulled["x.day"] <= base["x.day"]


def test_several_influencers_pull_toward_their_weighted_mean_ideal(minimal):
    data = copy.deepcopy(minimal)
    data["sides"]["c"] = {"label": "C", "role": "influencer",
                          "topics": {"x": {"ideal": 0.0, "influence": {"b": 0.2}}}}
    data["sides"]["e"] = {"label": "E", "role": "influencer",
                          "topics": {"x": {"ideal": 1.0, "influence": {"b": 0.6}}}}
    topic = compile_scenario(scenario_of(data)).topics[0]
    assert topic.pull == (0.0, pytest.approx(0.8))
    assert topic.pull_target[1] == pytest.approx(0.75)  # (0.2*0 + 0.6*1) / 0.8
