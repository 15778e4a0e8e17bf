"""Scenario discovery (PRIM boxes, tree rules), the importance ranking and the outcome language.

The scenario is built so that the answer is known: topic x is agreed exactly when side b's
sampled reservation reaches side a's fixed one (0.7). Both sides are fully conceded by day
300 (a's patience is 100 days, b's at most 300), after which the meetings on days 310 and 340
put their demands at their reservations: a asks 0.7 and b offers its reservation, so they
agree iff reservation_b >= 0.7 (docs/model.md, section 4: agreed when dh <= dl). Before that
no other agreement is possible: a's demand never falls below 0.7 and b's never rises above its
reservation (both are clamped there), and there is no noise, tension or cancellation.

b's patience and tactic change *when* x is agreed, never *whether*; a's capability is read by
nothing in a run.

The threshold sits at 0.7 of [0.2, 0.8] on purpose: PRIM peels 5% of the box at a time, so
its resolution is 5% of the final box's width; with the box holding a sixth of the range,
that is under 1% of the range, what the tests ask of the box's limit.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import MINIMAL, REPO

from sim.cli import main
from sim.discovery import (
    DEFAULT_THRESHOLD,
    FILES,
    discover,
    evaluate_outcome,
    headline_outcomes,
    importance,
    parse_condition,
)
from sim.errors import InputError
from sim.montecarlo import run
from sim.scenario import validate

RESERVATION = "sides.b.topics.x.reservation"
LOW, HIGH = 0.2, 0.8
THRESHOLD = 0.7  # side a's reservation
AGREED = "x.outcome == 'agreement'"
EARLY = "x.day < 190"
RUNS = 3000


def threshold_scenario():
    data = copy.deepcopy(MINIMAL)
    data["sides"]["a"]["capability"] = {"uniform": [0.5, 2.0]}
    data["sides"]["a"]["topics"]["x"].update(reservation=THRESHOLD, patience_days=100)
    data["sides"]["b"]["topics"]["x"].update(
        reservation={"uniform": [LOW, HIGH]}, patience_days={"uniform": [150, 300]},
        tactic={"choice": ["boulware", "linear", "conceder"]})
    return validate(data)


@pytest.fixture(scope="module")
def results():
    return run(threshold_scenario(), runs=RUNS, seed=7, workers=1)


@pytest.fixture(scope="module")
def folder(results, tmp_path_factory):
    path = tmp_path_factory.mktemp("discovery") / "job"
    results.save(path)
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, ["discover", *args], catch_exceptions=False)


# --- the scenario is what the tests assume --------------------------------------------


def test_agreement_happens_exactly_when_b_reservation_reaches_a_reservation(results):
    agreed = evaluate_outcome(results, AGREED)
    reservation = results.inputs[RESERVATION].to_numpy()
    assert 0.1 < agreed.mean() < 0.25
    assert reservation[~agreed].max() < THRESHOLD <= reservation[agreed].min()
    # a sharp threshold in the data too: the gap around it is far below PRIM's 1% tolerance
    assert reservation[agreed].min() - reservation[~agreed].max() < 0.001


def test_the_other_inputs_change_when_but_not_whether(results):
    agreed = evaluate_outcome(results, AGREED)
    early = evaluate_outcome(results, EARLY)
    assert early.any() and (early & ~agreed).sum() == 0
    x = results.inputs.reset_index(drop=True)
    tactic = x["sides.b.topics.x.tactic"]
    share = pd.Series(early[agreed]).groupby(tactic[agreed].to_numpy()).mean()
    assert share["conceder"] > share["linear"] + 0.1 and share["conceder"] > share["boulware"] + 0.1
    patience = x["sides.b.topics.x.patience_days"]
    assert patience[early].mean() < patience[agreed & ~early].mean() - 30


# --- PRIM -------------------------------------------------------------------------------


def test_first_box_restricts_the_deciding_input_alone_at_its_threshold(results):
    found = discover(results, AGREED, threshold=0.95)
    box = found.prim_boxes[0]
    assert list(box.limits) == [RESERVATION]
    low, high = box.limits[RESERVATION]
    assert abs(low - THRESHOLD) <= 0.01 * (HIGH - LOW)
    assert high == pytest.approx(results.inputs[RESERVATION].max())
    assert box.density >= 0.95
    assert box.coverage >= 0.95
    assert box.runs == round(box.mass * RUNS)


def test_seeking_fewer_boxes_finds_the_same_first_ones(results):
    """The report asks for the first box only (and no tree): the same box as the full
    search's first, since PRIM finds boxes one after another."""
    def key(boxes):  # a box's trajectory is a table: compare what it found
        return [(b.limits, b.coverage, b.density, b.mass, b.runs) for b in boxes]

    rng = np.random.default_rng(5)
    x = rng.random((3000, 3))
    table = pd.DataFrame({"input.a": x[:, 0], "input.b": x[:, 1], "input.c": x[:, 2],
                          "hit": ((x[:, 0] < 0.2) | (x[:, 1] > 0.85)).astype(int)})
    full = discover(table, "hit == 1")
    assert len(full.prim_boxes) >= 2, "two regions: two boxes"
    first = discover(table, "hit == 1", max_boxes=1, tree=False)
    assert key(first.prim_boxes) == key(full.prim_boxes[:1]) and first.tree_rules == []
    assert key(discover(table, "hit == 1", max_boxes=2).prim_boxes) == key(full.prim_boxes[:2])
    assert key(discover(results, AGREED, max_boxes=1).prim_boxes) == key(
        discover(results, AGREED).prim_boxes[:1])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="max_boxes"):
            discover(results, AGREED, max_boxes=bad)


def test_discovery_tables_and_dict_have_the_documented_form(results):
    found = discover(results, AGREED, threshold=0.95)
    data = found.to_dict()
    assert set(data) == {"outcome", "base_rate", "boxes", "tree"}
    assert data["outcome"] == AGREED
    assert data["base_rate"] == pytest.approx(evaluate_outcome(results, AGREED).mean())
    first = data["boxes"][0]
    assert set(first) == {"limits", "coverage", "density", "mass", "runs"}
    assert list(first["limits"]) == [RESERVATION] and len(first["limits"][RESERVATION]) == 2
    json.dumps(data)  # plain JSON types only
    boxes = found.boxes
    assert list(boxes.columns[:5]) == ["box", "coverage", "density", "mass", "runs"]
    assert boxes.loc[0, "density"] == pytest.approx(found.prim_boxes[0].density)
    limits = found.limits
    assert limits.loc[0, "input"] == RESERVATION and limits.loc[0, "qp"] < 1e-6


def test_the_default_threshold_is_used_when_none_is_given(results):
    assert discover(results, AGREED).threshold == DEFAULT_THRESHOLD == 0.8


def test_a_categorical_restriction_is_a_set_of_allowed_values():
    rng = np.random.default_rng(3)
    table = pd.DataFrame({"input.k": rng.random(2000),
                          "input.c": rng.choice(np.array(["a", "b", "c"], dtype=object), 2000)})
    agreed = (table["input.k"] > 0.5) & (table["input.c"] != "c")
    table["t.outcome"] = pd.Categorical(np.where(agreed, "agreement", "none"))
    found = discover(table, "t.outcome == 'agreement'", threshold=0.95)
    box = found.prim_boxes[0]
    assert box.limits["c"] == ("a", "b") and abs(box.limits["k"][0] - 0.5) < 0.03
    assert found.to_dict()["boxes"][0]["limits"]["c"] == ["a", "b"]
    assert found.limits.set_index("input").loc["c", "values"] == ["a", "b"]
    assert "c in {a, b}" in found.tree_rules[0].text


def test_an_outcome_in_no_run_has_no_boxes(results):
    found = discover(results, "x.day < 0")
    assert found.base_rate == 0 and found.prim_boxes == [] and found.tree_rules == []


def test_a_threshold_outside_zero_to_one_is_refused(results):
    for bad in (0, 1.5, -0.1):
        with pytest.raises(InputError, match="threshold"):
            discover(results, AGREED, threshold=bad)


def test_results_without_priors_are_refused():
    plain = run(validate(copy.deepcopy(MINIMAL)), runs=20, seed=1, workers=1)
    with pytest.raises(InputError, match="no uncertain inputs"):
        discover(plain, AGREED)


# --- the classification tree -----------------------------------------------------------


def test_the_tree_finds_the_same_threshold(results):
    rules = discover(results, AGREED).tree_rules
    best = rules[0]
    assert list(best.limits) == [RESERVATION]
    assert abs(best.limits[RESERVATION][0] - THRESHOLD) <= 0.01 * (HIGH - LOW)
    assert best.density == 1.0 and best.coverage == 1.0
    assert best.text.startswith(f"{RESERVATION} > 0.7")


# --- which unknowns matter -------------------------------------------------------------


def test_the_deciding_input_ranks_first_with_a_clear_interval(results):
    table = importance(results, {"agreed": AGREED})
    assert table.loc[0, "input"] == RESERVATION and table.loc[0, "rank"] == 1
    assert table.loc[0, "low"] > table.loc[1:, "high"].max()


def test_an_input_that_does_nothing_ranks_last(results):
    table = importance(results, {"early": EARLY})
    assert list(table["rank"]) == [1, 2, 3, 4]
    assert table["input"].iloc[-1] == "sides.a.capability"
    assert table["score"].iloc[-1] < table["score"].iloc[-2]


def test_default_importance_ranks_the_headline_outcomes_that_vary(results):
    assert headline_outcomes(results) == {"x.p_agreement": AGREED,
                                          "summits.p_any": "summits_held >= 1"}
    table = importance(results)  # no summit track: summits.p_any holds in no run, left out
    assert set(table["outcome"]) == {"x.p_agreement"}
    kinds = dict(zip(table["input"], table["kind"]))
    assert kinds["sides.b.topics.x.tactic"] == "choice (ordinal codes)"
    assert kinds[RESERVATION] == "number"
    assert "ordinal codes" in table.attrs["method"] and "bootstrap" in table.attrs["method"]


def test_importance_is_reproducible(results):
    a = importance(results, [AGREED])
    b = importance(results, [AGREED])
    pd.testing.assert_frame_equal(a, b)


# --- the outcome language --------------------------------------------------------------


@pytest.fixture
def frame():
    return pd.DataFrame({
        "start.outcome": pd.Categorical(["agreement", "none", "agreement", "default"],
                                        categories=["none", "agreement", "interim", "default"]),
        "start.day": [100.0, math.nan, 400.0, math.nan],
        "summits_held": np.array([0, 1, 2, 0], dtype=np.int32),
        "input.sides.a.tactic": ["linear", "boulware", "linear", "conceder"],
    })


def holds(text: str, frame: pd.DataFrame) -> list[bool]:
    return parse_condition(text, frame.columns).evaluate(frame).tolist()


@pytest.mark.parametrize(("text", "expected"), [
    ("start.outcome == 'agreement'", [True, False, True, False]),
    ("start.outcome != 'agreement'", [False, True, False, True]),
    ("start.day < 365", [True, False, False, False]),
    ("start.day != 100", [False, False, True, False]),  # a missing day compares as false
    ("not start.day < 365", [False, True, True, True]),
    ("summits_held >= 1 and start.outcome == 'agreement'", [False, False, True, False]),
    ("summits_held >= 1 or start.day <= 100", [True, True, True, False]),
    ("(summits_held == 0 or summits_held == 2) and not start.outcome == 'default'",
     [True, False, True, False]),
    ("0 < summits_held < 2", [False, True, False, False]),
    ("start.day > -1.5", [True, False, True, False]),
    ("input.sides.a.tactic == 'linear'", [True, False, True, False]),
    ("365 > start.day", [True, False, False, False]),
])
def test_conditions_evaluate_run_by_run(frame, text, expected):
    assert holds(text, frame) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("start.outcom == 'agreement'", "did you mean start.outcome"),
    ("start.outcome == 'agreed'", "never 'agreed'"),
    ("start.outcome < 'b'", "== or != only"),
    ("start.day == 'x'", "cannot be compared"),
    ("summits_held", "not a condition"),
    ("start.day <", "not a valid expression"),
    ("start.outcome in ['agreement']", "'in' is not allowed"),
    ("start.day + 1 > 2", "arithmetic is not allowed"),
    ("True", "not allowed"),
    ("", "empty"),
])
def test_bad_conditions_say_what_is_wrong(frame, text, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_condition(text, frame.columns).evaluate(frame)


# --- the command -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("__import__('os').system('x')", "calls are not allowed"),
    ("start.outcome.__class__", "double underscore"),
    ("x.outcome.__class__ == 1", "double underscore"),
    ("x.outcome.lower() == 'agreement'", "calls are not allowed"),
    ("(lambda: 1)()", "calls are not allowed"),
    ("(lambda: 1) == 1", "lambda is not allowed"),
    ("x[0]", "indexing is not allowed"),
    ("x.outcome[0] == 'a'", "indexing is not allowed"),
    ("x.outcom == 'agreement'", "did you mean x.outcome"),
])
def test_code_in_the_outcome_is_refused_with_exit_2(folder, tmp_path, text, message):
    result = invoke(str(folder), "--outcome", text, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_discover_prints_the_boxes_and_writes_its_files(folder):
    result = invoke(str(folder), "--outcome", AGREED, "--threshold", "0.95")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Base rate: 0.1" in out and "default 0.8" in out and "at least 0.95" in out
    assert "Box 1: coverage" in out and RESERVATION in out and "of 0.2" in out
    assert "Classification tree" in out and f"{RESERVATION} > 0.7" in out
    assert "Which unknowns matter" in out and "ordinal codes" in out
    for name in FILES:
        assert (folder / name).is_file() and str(folder / name) in out
    data = json.loads((folder / "discovery.json").read_text())
    assert data["outcome"] == AGREED and list(data["boxes"][0]["limits"]) == [RESERVATION]
    marker = json.loads((folder / ".sim-output").read_text())
    assert set(FILES) <= set(marker["written"])  # so that --force may replace them
    again = invoke(str(folder), "--outcome", AGREED, "--quiet")  # its own files: replaced
    assert again.exit_code == 0 and again.output.split() == [str(folder / n) for n in FILES]


def test_discover_keeps_a_file_it_did_not_write(folder, tmp_path):
    (tmp_path / "discovery.json").write_text('{"mine": true}\n')
    result = invoke(str(folder), "--outcome", AGREED, "--out", str(tmp_path))
    assert result.exit_code == 2 and "not written by sim discover" in result.output
    assert (tmp_path / "discovery.json").read_text() == '{"mine": true}\n'
    assert not (tmp_path / "discovery_trajectory.png").exists()


def test_the_analysis_libraries_are_imported_only_when_used():
    code = ("import sys, sim.cli, sim.discovery; "
            "print(sorted(m for m in ('ema_workbench', 'sklearn', 'SALib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
