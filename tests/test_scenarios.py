"""The shipped scenarios: each validates and runs, each variant moves its headline metric the
way its header comment says, the hindcast checks the record, and the reference forecast is
the weighted mean of positions.

Variants are compared with the baseline under common random numbers (same seed and runs),
so the tests are paired: McNemar for proportions, Wilcoxon signed-rank for counts.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers_results import (
    REPO,
    SCENARIOS,
    assert_clean_error,
    cached_run,
    fresh_run,
    scenario,
    sim_cli,
)
from scipy import stats

from sim.compare import compare
from sim.facts import load_facts
from sim.reference import reference_forecast
from sim.results import Results
from sim.scenario import load_scenario

RUNS = 2000  # with priors the variants' effects are smaller: enough runs to see them
ALPHA = 0.01
FILES = sorted(SCENARIOS.glob("*.yaml"))
FACTS = SCENARIOS / "facts" / "hindcast_2025.yaml"


def header(path) -> str:
    """The leading comment block of a scenario file, as one line of text."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines)


# --- every file ------------------------------------------------------------------------------------


def test_the_shipped_scenarios_are_the_expected_ones():
    assert [f.stem for f in FILES] == ["baseline", "budapest_summit", "hindcast_2025",
                                       "sanctions_escalation", "start_mutual_adherence",
                                       "venue_security"]


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_scenario_validates_and_runs(path):
    s = load_scenario(path)
    assert s.name == path.stem
    assert header(path), "every scenario says what question it answers"
    res = cached_run(path.stem, RUNS)
    assert res.runs == RUNS and res.seed == s.seed
    cats = res.tally.categories
    assert np.all(cats.sum(axis=1) == RUNS), "every run ends each topic in one category"
    summary = res.summary()
    for row in summary.rows:
        if row.kind == "probability":
            assert 0.0 <= row.estimate <= 1.0, row.metric
            assert row.low <= row.estimate <= row.high, row.metric
    assert set(summary.reference) == set(s.topics)


# --- variants against the baseline ------------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline():
    return cached_run("baseline", RUNS)


def paired(variant: str, baseline):
    res = cached_run(variant, RUNS)
    assert res.seed == baseline.seed and res.runs == baseline.runs  # common random numbers
    comparison = compare(baseline, res)
    assert list(comparison.paired.values()) == [True]
    return res, comparison


def claims(variant: str, *phrases: str) -> None:
    """The header's "Expected direction (tested)" sentence says what the test checks."""
    text = header(SCENARIOS / f"{variant}.yaml")
    assert "Expected direction (tested)" in text
    for phrase in phrases:
        assert phrase in text, phrase


def test_sanctions_escalation_raises_tension_and_lowers_flights(baseline):
    claims("sanctions_escalation", "higher tension at the horizon",
           "lower P(agreement) on direct flights")
    _, comparison = paired("sanctions_escalation", baseline)
    tension = comparison.get("tension_end")
    assert tension.difference > 0 and tension.low > 0 and tension.p_value < ALPHA
    assert tension.test == "Wilcoxon signed-rank"
    flights = comparison.get("flights.p_agreement")
    assert flights.difference < 0 and flights.high < 0 and flights.p_value < ALPHA
    assert flights.test == "McNemar exact"


def test_budapest_summit_holds_more_summits_and_the_adherence_is_taken_more(baseline):
    claims("budapest_summit", "more summits held",
           "a higher chance that the one-year mutual adherence is taken")
    res, comparison = paired("budapest_summit", baseline)
    summits = comparison.get("summits_held")
    assert summits.difference > 0 and summits.p_value < ALPHA
    # P(interim taken) is in the summary, not in the comparison: test it from the runs
    taken_a = ~np.isnan(baseline.column("start.interim_day"))
    taken_b = ~np.isnan(res.column("start.interim_day"))
    assert taken_a.mean() == baseline.summary()["start.p_interim_taken"].estimate
    assert taken_b.mean() == res.summary()["start.p_interim_taken"].estimate
    only_b, only_a = int(np.sum(taken_b & ~taken_a)), int(np.sum(taken_a & ~taken_b))
    assert only_b > only_a
    assert stats.binomtest(only_b, only_a + only_b, 0.5).pvalue < ALPHA


def test_start_mutual_adherence_lowers_the_lapse_and_raises_agreement(baseline):
    claims("start_mutual_adherence", "P(START lapse) down", "P(START agreement) up")
    _, comparison = paired("start_mutual_adherence", baseline)
    lapse = comparison.get("start.p_default")
    assert lapse.difference < 0 and lapse.high < 0 and lapse.p_value < ALPHA
    agreement = comparison.get("start.p_agreement")
    assert agreement.difference > 0 and agreement.low > 0 and agreement.p_value < ALPHA


def test_venue_security_brings_vetoes_and_fewer_irritant_rounds(baseline):
    claims("venue_security", "more venue vetoes", "fewer meetings held on the irritants track")
    res, comparison = paired("venue_security", baseline)
    vetoes_a = baseline.column("irritants.vetoes").astype(float)
    vetoes_b = res.column("irritants.vetoes").astype(float)
    assert vetoes_b.mean() > vetoes_a.mean()
    assert stats.wilcoxon(vetoes_b - vetoes_a).pvalue < ALPHA
    held = comparison.get("irritants.held")
    assert held.difference < 0 and held.high < 0 and held.p_value < ALPHA


# --- the hindcast -------------------------------------------------------------------------------------
# The facts file's format, the evaluation at dates and the scores are tested in
# tests/test_facts.py and tests/test_scoring.py; here the shipped record and the command.


@pytest.fixture(scope="module")
def facts():
    return load_facts(FACTS)


def test_the_record_has_fourteen_dated_facts(facts):
    assert len(facts) == 14 and not facts.questions
    assert sum(not f.yes_no for f in facts) == 8
    assert all(f.source for f in facts), "every fact says where it comes from"


@pytest.mark.slow
def test_sim_hindcast_runs_and_checks_the_record(tmp_path, facts):
    from sim.hindcast import folder_job, scorecard

    out = tmp_path / "hc"
    proc = sim_cli("hindcast", "--runs", str(RUNS), "-w", "1", "--out", str(out), cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "of 14 facts fall inside the central 90%" in proc.stdout
    assert "skill" in proc.stdout
    report = json.loads((out / "score.json").read_text(encoding="utf-8"))
    assert report["runs"] == RUNS and len(report["facts"]) == 14
    assert report["seed"] == load_scenario(SCENARIOS / "hindcast_2025.yaml").seed
    checks = report["facts"]
    assert [c["label"] for c in checks] == [f.label for f in facts]
    inside = report["coverage"]["inside_central_90"]
    assert inside == sum(c["inside_central_90"] for c in checks)
    assert f"{inside} of 14 facts" in proc.stdout
    for c, fact in zip(checks, facts):
        assert c["source"] == fact.source and c["observed"] == fact.observed
        assert c["kind"] == ("yes/no" if fact.yes_no else "count")
        assert 0.0 <= c["p_observed"] <= 1.0 and isinstance(c["inside_central_90"], bool)
        names = {"brier", "log"} if fact.yes_no else {"rps", "log"}
        assert set(c["scores"]) == names and set(c["reference_scores"]) == names
        if fact.yes_no:
            p_yes = c["forecast"]["p_yes"]
            assert c["p_observed"] == pytest.approx(p_yes if fact.observed else 1 - p_yes)
        else:
            pmf = c["forecast"]["pmf"]
            assert c["p_observed"] == pytest.approx(pmf[fact.observed] if fact.observed < len(pmf) else 0)
            assert 0.0 <= c["pit"] <= 1.0
    for name in ("score.json", "reliability.png", "pit.png"):
        assert (out / name).is_file()
    # the folder is an ordinary results folder: scoring it again gives the same scores
    res = Results.load(out)
    again = scorecard(res.scenario, facts, workers=1, **folder_job(res))
    assert [s.p for s in again.scored] == [c["p_observed"] for c in checks]
    assert [s.scores for s in again.scored] == [c["scores"] for c in checks]


def test_sim_hindcast_with_a_bad_facts_file_is_a_clean_error(tmp_path):
    bad = tmp_path / "facts.yaml"
    bad.write_text("facts:\n  - {label: x, kind: guessed, topic: start}\n", encoding="utf-8")
    proc = sim_cli("hindcast", "--facts", str(bad), "--runs", "10", "--out",
                   str(tmp_path / "hc"), cwd=REPO)
    assert_clean_error(proc)
    assert "kind" in proc.stderr
    assert not (tmp_path / "hc").exists(), "the facts are read before anything runs"


# --- the reference forecast ---------------------------------------------------------------------------


def test_reference_forecast_is_the_capability_and_salience_weighted_mean_of_ideals():
    s = scenario("baseline")
    # the inputs written out below, as the baseline has them
    positions = {(side, topic): (s.sides[side].capability, p.salience, p.ideal)
                 for side in s.sides for topic, p in s.sides[side].topics.items()}
    assert positions[("russia", "ukraine")] == (1.0, 1.0, 0.9)
    assert positions[("united_states", "ukraine")] == (1.0, 0.8, 0.35)
    assert positions[("ukraine", "ukraine")] == (0.4, 1.0, 0.1)
    assert positions[("eu", "ukraine")] == (0.5, 0.8, 0.2)
    assert positions[("eu", "sanctions")] == (0.5, 0.8, 0.0)
    ref = reference_forecast(s)
    # Ukraine: Russia (capability 1, salience 1, ideal 0.9), US (1, 0.8, 0.35),
    # Ukraine (0.4, 1, 0.1), EU (0.5, 0.8, 0.2)
    ukraine = (1 * 1 * 0.9 + 1 * 0.8 * 0.35 + 0.4 * 1 * 0.1 + 0.5 * 0.8 * 0.2) / (
        1 * 1 + 1 * 0.8 + 0.4 * 1 + 0.5 * 0.8)
    assert ref["ukraine"] == pytest.approx(ukraine) == pytest.approx(0.5)
    # sanctions: Russia (1, 0.9, 1.0), US (1, 0.6, 0.1), EU (0.5, 0.8, 0.0)
    assert ref["sanctions"] == pytest.approx((0.9 * 1.0 + 0.6 * 0.1 + 0.4 * 0.0) / (0.9 + 0.6 + 0.4))
    # START: the signatories only, Russia (1, 0.7, 0.7) and the US (1, 0.5, 0.3)
    assert ref["start"] == pytest.approx((0.7 * 0.7 + 0.5 * 0.3) / (0.7 + 0.5))


def test_reference_forecast_follows_an_influencers_capability():
    ref = reference_forecast(scenario("baseline", sides__ukraine__capability=2.0))
    assert ref["ukraine"] == pytest.approx((0.9 + 0.28 + 2.0 * 0.1 + 0.08) / (1 + 0.8 + 2.0 + 0.4))
    assert ref["sanctions"] == pytest.approx(reference_forecast(scenario("baseline"))["sanctions"])


def test_reference_forecast_is_in_the_summary_and_summary_json(tmp_path):
    res = fresh_run("baseline", 40, out=tmp_path / "job")
    expected = reference_forecast(res.scenario)
    assert res.summary().reference == expected
    saved = json.loads((tmp_path / "job" / "summary.json").read_text(encoding="utf-8"))
    assert saved["reference_forecast"].keys() == expected.keys()
    for topic, value in expected.items():
        assert saved["reference_forecast"][topic] == pytest.approx(value)
        assert not math.isnan(value)
