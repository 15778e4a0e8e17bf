"""Uncertain inputs: priors in the scenario language, their draws, and per-run worlds.

Specifications: every family draws from the distribution scipy.stats defines for it; a key's
draw depends on (seed, draw, key) only; the per-run world equals the world compiled from the
scenario with the drawn values written in; results are bit-identical for any executor; and a
scenario without priors runs exactly as before priors existed (records pinned from then).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from sim.inputs import Prior, parse_prior, problem, sample
from sim.model import compile_scenario
from sim.model.patch import unsupported
from sim.montecarlo import run, simulate_chunk
from sim.scenario import ScenarioError, dump_scenario, load_scenario, parse_scenario
from sim.scenario.loading import _set_dotted
from sim.scenario.models import Scenario

REPO = Path(__file__).resolve().parents[1]
#: The baseline as it was before it had priors: these tests add the priors they need.
BASELINE = REPO / "tests" / "data" / "pinned" / "baseline.yaml"


def baseline(*overrides: str) -> Scenario:
    return load_scenario(BASELINE, overrides=list(overrides))


# --- the language -----------------------------------------------------------------------


@pytest.mark.parametrize("raw, family, support", [
    ({"uniform": [0.1, 0.4]}, "uniform", (0.1, 0.4)),
    ({"triangular": [180, 540, 900]}, "triangular", (180, 900)),
    ({"beta": [6, 4]}, "beta", (0, 1)),
    ({"beta": [2, 2], "low": 0.2, "high": 0.6}, "beta", (0.2, 0.6)),
    ({"normal": [0.5, 0.1], "low": 0.0, "high": 1.0}, "normal", (0, 1)),
])
def test_each_numeric_family_parses_with_its_support(raw, family, support):
    prior = parse_prior(raw)
    assert prior.family == family and prior.support() == pytest.approx(support)


@pytest.mark.parametrize("raw, words", [
    ({"uniform": [0.4, 0.1]}, "below"),
    ({"uniform": [0.1]}, "2 numbers"),
    ({"triangular": [0, 2, 1]}, "mode"),
    ({"beta": [0, 1]}, "positive"),
    ({"normal": [0.5, 0], "low": 0, "high": 1}, "sd"),
    ({"lognormal": [-1, 0.5]}, "positive"),
    ({"choice": [1, 2], "weights": [0.5, 0.4]}, "sum"),
    ({"choice": [1, 2], "weights": [0.5]}, "one per value"),
    ({"uniform": [0, 1], "mean": 3}, "unknown key"),
    ({"uniform": [0, 1], "low": 0}, "no low or high"),
])
def test_malformed_priors_say_what_is_wrong(raw, words):
    with pytest.raises(ValueError, match=words):
        parse_prior(raw)


def test_a_prior_written_in_a_file_is_taken_with_its_line(tmp_path):
    text = BASELINE.read_text().replace(
        "cancel_prob: 0.15", "cancel_prob: {uniform: [0.05, 0.30]}", 1)
    assert text != BASELINE.read_text()
    (tmp_path / "b.yaml").write_text(text)
    s = load_scenario(tmp_path / "b.yaml")
    (key,) = s.priors
    assert key.endswith(".cancel_prob") and s.priors[key].family == "uniform"
    # the point value stands in the scenario: the median
    track = key.split(".")[1]
    assert s.tracks[track].cancel_prob == pytest.approx(0.175)


def test_priors_in_extends_and_set_and_their_round_trip(tmp_path):
    (tmp_path / "base.yaml").write_text(BASELINE.read_text())
    (tmp_path / "v.yaml").write_text(
        "extends: base.yaml\nname: v\nclimate:\n  equilibrium: {beta: [5, 5], low: 0.3, high: 0.7}\n")
    s = load_scenario(tmp_path / "v.yaml",
                      overrides=["tracks.summit.cancel_prob={uniform: [0.1, 0.4]}"])
    assert set(s.priors) == {"climate.equilibrium", "tracks.summit.cancel_prob"}
    again = parse_scenario(dump_scenario(s))
    assert again == s and again.priors == s.priors
    assert Scenario.model_validate_json(s.model_dump_json()) == s


@pytest.mark.parametrize("override, words", [
    ("tracks.summit.cancel_prob={uniform: [0.1, 1.2]}", "can draw 1.2: 1.2 is above 1.0"),
    ("sides.united_states.topics.flights.reservation={uniform: [0.0, 0.9]}", "reservation"),
    ("tracks.summit.max_postponements={uniform: [0, 3]}", "whole numbers"),
    ("horizon_days={choice: [100, 200]}", "not allowed here"),
    ("sides.russia.topics.flights.tactic={choice: [boulware, fast]}", "'fast'"),
    ("tracks.summit.cancel_prob={gamma: [1, 2]}", "neither a value nor a prior"),
    ("climate.equilibrium={normal: [0.5, 0.3]}", "can draw"),  # untruncated: reaches below 0
])
def test_a_prior_whose_support_breaks_a_rule_is_an_error(override, words):
    with pytest.raises(ScenarioError) as info:
        baseline(override)
    assert words in str(info.value)
    assert all(p.file == "--set" for p in info.value.problems)


def test_priors_that_let_the_ideals_cross_are_refused():
    with pytest.raises(ScenarioError, match="ideals cross"):
        baseline("sides.russia.topics.flights.ideal={uniform: [0.1, 1.0]}")


def test_a_reservation_prior_that_can_cross_the_opening_is_refused():
    # Russia wants high flights values, opens at its ideal 1.0 unless an opening is given
    with pytest.raises(ScenarioError, match="opening"):
        baseline("sides.russia.topics.flights.opening={uniform: [0.3, 1.0]}",
                 "sides.russia.topics.flights.reservation={uniform: [0.2, 0.6]}")


def test_the_problem_description_names_families_and_bounds():
    s = baseline("tracks.summit.cancel_prob={uniform: [0.1, 0.4]}",
                 "sides.russia.topics.flights.tactic={choice: [boulware, linear]}")
    desc = problem(s.priors)
    assert desc["num_vars"] == 2
    assert desc["bounds"][desc["names"].index("tracks.summit.cancel_prob")] == [0.1, 0.4]
    assert desc["families"] == [s.priors[k].family for k in desc["names"]]


# --- draws ----------------------------------------------------------------------------


@pytest.mark.parametrize("raw, frozen", [
    ({"uniform": [0.1, 0.4]}, stats.uniform(0.1, 0.3)),
    ({"triangular": [180, 540, 900]}, stats.triang(0.5, loc=180, scale=720)),
    ({"beta": [6, 4], "low": 0.2, "high": 0.8}, stats.beta(6, 4, loc=0.2, scale=0.6)),
    ({"normal": [0.3, 0.2], "low": 0.0, "high": 1.0}, stats.truncnorm(-1.5, 3.5, 0.3, 0.2)),
    ({"lognormal": [540, 0.4]}, stats.lognorm(s=0.4, scale=540)),
])
def test_draws_follow_the_family(raw, frozen):
    x = sample({"k": parse_prior(raw)}, seed=11, draws=range(4000))["k"]
    assert stats.kstest(x, frozen.cdf).pvalue > 1e-3


def test_choice_draws_have_their_weights():
    prior = parse_prior({"choice": ["boulware", "linear", "conceder"], "weights": [0.6, 0.3, 0.1]})
    x = sample({"k": prior}, seed=3, draws=range(6000))["k"]
    counts = [x.count(v) for v in prior.values]
    assert stats.chisquare(counts, [3600, 1800, 600]).pvalue > 1e-3


def test_a_keys_draw_depends_on_seed_draw_and_key_only():
    a = {"x": Prior(family="uniform", params=(0, 1))}
    b = {"y": Prior(family="uniform", params=(5, 9)), **a}
    xa, xb = sample(a, 7, range(50))["x"], sample(b, 7, range(50))["x"]
    assert np.array_equal(xa, xb)  # adding a prior moves no other draw
    assert not np.array_equal(xa, sample(a, 8, range(50))["x"])
    assert np.array_equal(sample(a, 7, [3])["x"], xa[3:4])  # a draw on its own is the same


def test_point_values_are_medians_and_modes():
    assert parse_prior({"triangular": [0, 0, 1]}).point() == pytest.approx(1 - 0.5 ** 0.5)
    assert parse_prior({"lognormal": [540, 0.4]}).point() == pytest.approx(540)
    assert parse_prior({"choice": ["a", "b"], "weights": [0.3, 0.7]}).point() == "b"


# --- per-run worlds ----------------------------------------------------------------------

#: One prior on a key of every kind the patcher handles, in the baseline.
EVERY_KIND = {
    "sides.russia.topics.flights.reservation": "{uniform: [0.35, 0.45]}",
    "sides.united_states.topics.flights.salience": "{uniform: [0.1, 0.3]}",
    "sides.united_states.topics.flights.patience_days": "{triangular: [180, 540, 900]}",
    "sides.russia.topics.flights.tactic": "{choice: [boulware, linear, conceder]}",
    "sides.united_states.topics.start.concession": "{lognormal: [1, 0.3]}",
    "sides.russia.topics.property.initial_concession": "{uniform: [0.0, 0.2]}",
    "sides.russia.discount": "{uniform: [0.8, 0.95]}",
    "tracks.summit.cancel_prob": "{uniform: [0.05, 0.3]}",
    "tracks.summit.cadence_days": "{uniform: [90, 200]}",
    "tracks.summit.max_postponements": "{choice: [0, 1, 2, 3]}",
    "tracks.summit.protocol": "{choice: [concession, rubinstein]}",
    "tracks.irritants.linkage": "{choice: [true, false]}",
    "venues.istanbul.security": "{beta: [4, 2]}",
    "venues.budapest.neutrality": "{uniform: [0.2, 0.8]}",
    "venues.istanbul.acceptability.united_states": "{uniform: [0.5, 1.0]}",
    "shocks.sanctions.rate_per_year": "{uniform: [1, 6]}",
    "shocks.sanctions.half_life_days": "{uniform: [30, 120]}",
    "climate.reversion_half_life_days": "{lognormal: [90, 0.3]}",
    "climate.concession_sensitivity": "{uniform: [0.2, 0.6]}",
    "bargaining.noise": "{uniform: [0.0, 0.06]}",
    "topics.start.deadline.interim.value": "{uniform: [0.4, 0.6]}",
}


def _existing(scenario: Scenario, keys: dict[str, str]) -> dict[str, str]:
    data = scenario.model_dump(mode="json")
    out = {}
    for key, value in keys.items():
        node = data
        try:
            for part in key.split(".")[:-1]:
                node = node[part]
        except (KeyError, TypeError):
            continue
        if isinstance(node, dict):
            out[key] = value
    return out


@pytest.fixture(scope="module")
def uncertain():
    plain = baseline()
    keys = _existing(plain, EVERY_KIND)
    assert len(keys) >= 15, sorted(set(EVERY_KIND) - set(keys))
    return baseline(*(f"{k}={v}" for k, v in keys.items()))


def test_every_kind_of_key_may_carry_a_prior(uncertain):
    for key in uncertain.priors:
        assert unsupported(key) is None, key


@pytest.mark.parametrize("writer", ["compiled", "python"])
@pytest.mark.parametrize("which", ["every kind of key", "the shipped baseline"])
def test_the_per_run_world_is_the_world_compiled_with_the_drawn_values(uncertain, which,
                                                                       writer, monkeypatch):
    """Whichever way the values are written (the compiled model's own writers, or from
    Python as with the model's Python sources), each run's world is the world compiled
    from the scenario with that run's values in it."""
    import sim.model
    import sim.model.patch
    from sim.inputs import RunInputs

    if writer == "compiled" and not sim.model.COMPILED:
        pytest.skip("needs the compiled model")
    monkeypatch.setattr(sim.model.patch, "COMPILED", writer == "compiled")
    if which == "the shipped baseline":
        uncertain = load_scenario(REPO / "scenarios" / "baseline.yaml")
        assert uncertain.priors
    world = compile_scenario(uncertain)
    inputs = RunInputs(uncertain, world)
    values = inputs.draws(uncertain.seed, 0, 25)
    for r, patched in enumerate(inputs.worlds(values, 25)):
        data = uncertain.model_dump(mode="json")
        data.pop("priors")
        for key in inputs.keys:
            v = values[key][r]
            _set_dotted(data, key, v.item() if isinstance(v, np.generic) else v)
        expected = compile_scenario(Scenario.model_validate(data))
        # the venue specs are not rebuilt: a run reads only their labels (their numbers live
        # in the tracks' venue fields, which are compared)
        expected = dataclasses.replace(expected, venues=patched.venues)
        assert repr(patched) == repr(expected), f"run {r}"  # repr: nan != nan under ==


def test_results_with_priors_are_bit_identical_for_any_executor(uncertain):
    local = run(uncertain, runs=240, workers=1, chunk_size=50)
    pool = run(uncertain, runs=240, workers=2, executor="process", chunk_size=37)
    assert local.outcomes.equals(pool.outcomes)
    assert list(local.inputs.columns) == list(uncertain.priors)
    assert local.inputs["tracks.summit.cancel_prob"].between(0.05, 0.3).all()


def test_inputs_do_not_move_the_event_streams():
    """A prior on a key the run never reads leaves every outcome as it was."""
    plain = run(baseline(), runs=200, workers=1)
    dead = run(baseline("sides.russia.capability={uniform: [0.5, 2.0]}"), runs=200, workers=1)
    events = [c for c in plain.outcomes.columns]
    assert dead.outcomes[events].equals(plain.outcomes)
    assert "input.sides.russia.capability" in dead.outcomes.columns


def test_point_mode_runs_the_point_values():
    s = baseline("tracks.summit.cancel_prob={uniform: [0.1, 0.4]}")
    point = run(s, runs=200, workers=1, inputs="point")
    fixed = run(baseline("tracks.summit.cancel_prob=0.25"), runs=200, workers=1)
    assert point.outcomes.equals(fixed.outcomes)
    assert point.metadata["inputs"] == "point" and point.inputs.empty


def test_replications_share_each_input_draw():
    s = baseline("tracks.summit.cancel_prob={uniform: [0.1, 0.4]}")
    r = run(s, runs=120, workers=1, replications=4)
    x = r.inputs["tracks.summit.cancel_prob"].to_numpy()
    assert np.all(x.reshape(30, 4) == x[::4, None])  # runs 4d..4d+3 play draw d
    assert len(np.unique(x)) == 30
    assert r.metadata["replications"] == 4
    single = run(s, runs=30, workers=1)  # draw d is run d's draw without replications
    assert np.array_equal(single.inputs["tracks.summit.cancel_prob"].to_numpy(), x[::4])


def _digest(columns: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for k in sorted(columns):
        digest.update(k.encode())
        digest.update(np.ascontiguousarray(columns[k]).tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("name", ["baseline", "budapest_summit", "hindcast_2025",
                                  "sanctions_escalation", "start_mutual_adherence",
                                  "venue_security"])
def test_scenarios_without_priors_run_as_before_priors_existed(name):
    """tests/data/pinned/ holds the shipped scenarios as they were before priors, and
    records_before_priors.json a digest of 300 runs of each made by the code of then (commit
    179cec2) with one change applied: the concession horizon of a topic without a deadline
    or patience is 730 days, no longer the scenario's horizon (a horizon only truncates).
    Only hindcast_2025 (horizon 285 days) ran differently for it."""
    data = REPO / "tests" / "data"
    pinned = json.loads((data / "records_before_priors.json").read_text())[name]
    s = load_scenario(data / "pinned" / f"{name}.yaml")
    assert not s.priors
    columns = simulate_chunk(compile_scenario(s), pinned["seed"], 0, pinned["runs"])
    assert _digest(columns) == pinned["sha256"]


def test_a_swept_key_is_fixed_at_each_point_and_other_priors_stay_uncertain():
    from sim.sweep import scenarios_for, sweep

    s = baseline("tracks.summit.cancel_prob={uniform: [0.1, 0.4]}",
                 "climate.equilibrium={uniform: [0.4, 0.6]}")
    variants = scenarios_for(s, [{"tracks.summit.cancel_prob": 0.3}])
    assert set(variants[0].priors) == {"climate.equilibrium"}
    assert variants[0].tracks["summit"].cancel_prob == 0.3
    table = sweep(s, {"tracks.summit.cancel_prob": [0.1, 0.3]}, runs=60, workers=1)
    assert len(table) == 2 and (table["runs"] == 60).all()


def test_compare_pairs_runs_of_scenarios_with_priors():
    from sim.compare import compare

    a = run(baseline("climate.equilibrium={uniform: [0.4, 0.6]}"), runs=150, workers=1)
    b = run(baseline("climate.equilibrium={uniform: [0.4, 0.6]}",
                     "tracks.summit.cancel_prob=0.5"), runs=150, workers=1)
    assert compare(a, b).paired[b.name if b.name != a.name else f"{b.name} (2)"]
    # the same priors draw the same inputs in both: common random numbers
    assert a.inputs.equals(b.inputs)


@pytest.mark.slow
def test_the_report_shows_the_top_unknowns_and_first_box_of_each_headline_outcome(tmp_path):
    from sim.report import render_report

    pinned = REPO / "tests" / "data" / "pinned" / "baseline.yaml"  # no priors of its own
    s = load_scenario(pinned, overrides=["climate.concession_sensitivity={uniform: [0.2, 0.8]}",
                                         "tracks.summit.cancel_prob={uniform: [0.05, 0.3]}"])
    page = render_report([run(s, runs=600, workers=1)])
    section = page[page.index("What drives the outcomes"):]
    assert "climate.concession_sensitivity" in section and "coverage" in section
    assert section.count("<tr>") >= 3
    plain = render_report([run(load_scenario(pinned), runs=100, workers=1)])
    assert "What drives the outcomes" not in plain
    few = render_report([run(s, runs=150, workers=1)])
    assert "Not ranked: 150 runs are too few" in few and "coverage" not in few


def test_draws_in_one_pass_are_the_numbers_of_each_prior_alone():
    """A chunk's draws are made for all keys at once (one hash pass, one scipy.stats call per
    family with the parameters broadcast); each key's values must be exactly those of its
    own uniforms through its own frozen distribution, for every family and form, and for
    the shipped baseline's priors."""
    from sim.inputs import _splitmix, input_words, key_hash

    def own_uniforms(words, key):  # the stream's definition, key by key
        z = _splitmix(_splitmix(words[:, 0] ^ key_hash(key)) ^ words[:, 1])
        return ((z >> np.uint64(12)).astype(np.float64) + 0.5) * (1.0 / 4503599627370496.0)

    forms = [{"uniform": [0.1, 0.4]}, {"uniform": [-3, 7]}, {"triangular": [0, 0.2, 1]},
             {"triangular": [10, 40, 45]}, {"beta": [2, 5]}, {"beta": [0.5, 0.5]},
             {"beta": [3, 3], "low": 0.2, "high": 0.9}, {"normal": [0.5, 0.1], "low": 0, "high": 1},
             {"normal": [100, 40], "low": 30, "high": 500}, {"normal": [0, 1], "low": -1, "high": 3},
             {"lognormal": [120, 0.4]}, {"lognormal": [2, 1.5]},
             {"choice": [1, 2, 3], "weights": [0.2, 0.5, 0.3]},
             {"choice": ["boulware", "linear", "conceder"]}]
    priors = {f"k{i}": parse_prior(raw) for i, raw in enumerate(forms)}
    priors.update(load_scenario(REPO / "scenarios" / "baseline.yaml").priors)
    assert len(priors) > 100
    words = input_words(11, list(range(3000)))
    together = sample(priors, 11, list(range(3000)), words=words)
    assert list(together) == list(priors)
    for key, prior in priors.items():
        alone = prior.ppf(own_uniforms(words, key))
        if prior.categorical:
            assert together[key] == alone, key
        else:
            assert np.array_equal(together[key], alone), key
