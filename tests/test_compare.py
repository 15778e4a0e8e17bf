"""``sim.compare``: differences between jobs with 95% intervals and the right tests.

Jobs that share seed and run count are paired run by run (common random numbers): McNemar
for proportions, Wilcoxon signed-rank for counts. Otherwise Fisher and Mann-Whitney. The
expected p-values here are recomputed by hand from the outcome columns with scipy.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
from helpers_results import (
    BASELINE,
    NO_SUMMITS,
    PNG_MAGIC,
    assert_clean_error,
    cached_run,
    fresh_run,
    sim_cli,
)
from scipy import stats

from sim.compare import (
    Comparison,
    Difference,
    _counts,
    _proportions,
    compare,
    is_paired,
    render_comparison,
    scenario_differences,
)
from sim.errors import InputError
from sim.model.compiled import AGREEMENT, DEFAULT
from sim.montecarlo import run
from sim.outputs import MARKER
from sim.results import Results
from sim.scenario import load_scenario

RUNS = 400
OTHER_SEED = 7
TENSE = {"climate.initial_tension": 0.7}


@pytest.fixture(scope="module")
def base():
    return cached_run("baseline", RUNS)


@pytest.fixture(scope="module")
def no_summits():
    return cached_run("baseline", RUNS, overrides=NO_SUMMITS)


@pytest.fixture(scope="module")
def tense():
    """The baseline with a tenser start, same seed and runs: paired with ``base``."""
    return cached_run("baseline", RUNS, overrides=TENSE)


@pytest.fixture(scope="module")
def tense_other_seed():
    """The same variant with another seed: independent of ``base``."""
    return cached_run("baseline", RUNS, seed=OTHER_SEED, overrides=TENSE)


@pytest.fixture(scope="module")
def paired_comparison(base, tense):
    return compare(base, tense)


@pytest.fixture(scope="module")
def independent_comparison(base, tense_other_seed):
    return compare(base, tense_other_seed)


def rows_of(comparison: Comparison, kind: str | None = None) -> list[Difference]:
    return [d for _, d in comparison.rows if kind is None or d.kind == kind]


# --- A1: a job against itself ---------------------------------------------------------------


def test_a_job_against_a_rerun_of_itself_differs_by_exactly_zero(base):
    again = fresh_run("baseline", RUNS)  # same seed and runs: the same random numbers
    comparison = compare(base, again)
    assert list(comparison.paired.values()) == [True]
    assert rows_of(comparison), "every headline metric is compared"
    for d in rows_of(comparison, "probability") + rows_of(comparison, "mean"):
        assert d.paired, d.metric
        assert d.difference == 0.0, d.metric
        assert d.a == d.b, d.metric
        assert d.low <= 0.0 <= d.high, d.metric
        assert d.p_value == 1.0, d.metric
        assert not d.significant, d.metric
    for d in rows_of(comparison, "distribution"):
        # agreed values: identical samples, so no difference and a p-value of 1 (or nothing
        # to test when fewer than two runs agreed)
        if d.n_a >= 2:
            assert d.difference == 0.0 and d.p_value == 1.0, d.metric
            assert d.low <= 0.0 <= d.high
        else:
            assert math.isnan(d.p_value)


def test_every_headline_metric_has_a_row(base, tense):
    comparison = compare(base, tense)
    metrics = {d.metric for d in rows_of(comparison)}
    for topic in base.scenario.topics:
        assert f"{topic}.p_agreement" in metrics
        assert f"{topic}.value" in metrics
    assert {"start.p_default", "start.p_agreement_before_deadline",
            "start.p_interim_taken"} <= metrics
    assert "ukraine.p_default" not in metrics  # no deadline, no default
    assert "ukraine.p_agreement_before_deadline" not in metrics
    for track in base.scenario.tracks:
        assert {f"{track}.held", f"{track}.cancelled"} <= metrics
    assert {"summits.p_any", "summits_held", "meetings.cancelled", "tension_end"} <= metrics
    assert "start.p_agreement_by_2026-02-05" in metrics  # the START deadline is a milestone


# --- A2: forbidding summits -------------------------------------------------------------------


def test_forbidding_summits_removes_them_significantly(base, no_summits):
    comparison = compare(base, no_summits)
    assert comparison.paired == {comparison.names[1]: True}
    p_any = comparison.get("summits.p_any")
    assert p_any.a > 0.5 and p_any.b == 0.0
    assert p_any.difference == pytest.approx(-p_any.a)
    assert p_any.high < 0.0, "the interval excludes 0"
    assert p_any.test == "McNemar exact" and p_any.p_value < 0.001
    held = comparison.get("summits_held")
    assert held.difference < 0.0 and held.high < 0.0
    assert held.test == "Wilcoxon signed-rank" and held.p_value < 0.001
    assert held.significant


def test_estimates_agree_with_the_jobs_own_summaries(base, tense):
    """The a and b of each row are the same estimates the summaries report."""
    comparison = compare(base, tense)
    for res, side in ((base, "a"), (tense, "b")):
        summary = res.summary()
        for metric in ("start.p_agreement", "start.p_default", "flights.p_agreement",
                       "summits.p_any", "embassy.p_agreement_by_2026-02-05",
                       "prisoners.p_agreement_by_2026-12-31"):
            assert getattr(comparison.get(metric), side) == pytest.approx(
                summary[metric].estimate, abs=1e-12), metric
        for metric, summary_metric in (("summits_held", "summits_held.mean"),
                                       ("tension_end", "tension_end.mean"),
                                       ("calls.held", "calls.held.mean"),
                                       ("irritants.cancelled", "irritants.cancelled.mean")):
            assert getattr(comparison.get(metric), side) == pytest.approx(
                summary[summary_metric].estimate, rel=1e-12), metric


# --- A3: pairing narrows intervals -----------------------------------------------------------

CORRELATED = {  # metric -> how to get its per-run outcome column
    "flights.p_agreement": lambda r: r.column("flights.outcome") == AGREEMENT,
    "embassy.p_agreement": lambda r: r.column("embassy.outcome") == AGREEMENT,
    "cooperation.p_agreement": lambda r: r.column("cooperation.outcome") == AGREEMENT,
    "summits.p_any": lambda r: r.column("summits_held") > 0,
    "summits_held": lambda r: r.column("summits_held").astype(float),
    "tension_end": lambda r: r.column("tension_end"),
    "calls.held": lambda r: r.column("calls.held").astype(float),
    "irritants.held": lambda r: r.column("irritants.held").astype(float),
}


def width(d: Difference) -> float:
    return d.high - d.low


@pytest.mark.parametrize("metric", sorted(CORRELATED))
def test_paired_intervals_are_narrower_than_unpaired_on_the_same_runs(base, tense,
                                                                     paired_comparison, metric):
    xa, xb = CORRELATED[metric](base), CORRELATED[metric](tense)
    rho = np.corrcoef(xa.astype(float), xb.astype(float))[0, 1]
    assert rho > 0.3, "common random numbers couple the two jobs run by run"
    if xa.dtype == bool:
        paired = _proportions(metric, metric, xa, xb, paired=True)
        unpaired = _proportions(metric, metric, xa, xb, paired=False)
    else:
        paired = _counts(metric, metric, xa, xb, paired=True)
        unpaired = _counts(metric, metric, xa, xb, paired=False)
    assert paired.difference == unpaired.difference
    assert width(paired) < width(unpaired)
    row = paired_comparison.get(metric)
    assert (row.difference, row.low, row.high, row.p_value) == (
        paired.difference, paired.low, paired.high, paired.p_value)


@pytest.mark.parametrize("metric", sorted(CORRELATED))
def test_paired_intervals_are_narrower_than_with_an_independent_seed(paired_comparison,
                                                                     independent_comparison,
                                                                     metric):
    paired = paired_comparison.get(metric)
    independent = independent_comparison.get(metric)
    assert paired.paired and not independent.paired
    assert width(paired) < width(independent)


def test_paired_interval_is_the_normal_interval_of_the_run_by_run_differences(base, tense):
    xa = base.column("start.outcome") == DEFAULT
    xb = tense.column("start.outcome") == DEFAULT
    d = xb.astype(float) - xa.astype(float)
    half = stats.norm.ppf(0.975) * d.std(ddof=1) / math.sqrt(len(d))
    row = compare(base, tense).get("start.p_default")
    assert row.difference == pytest.approx(d.mean(), abs=1e-12)
    assert (row.low, row.high) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-12)


def test_unpaired_interval_is_the_wald_interval_of_two_independent_proportions(base,
                                                                             tense_other_seed):
    xa = base.column("flights.outcome") == AGREEMENT
    xb = tense_other_seed.column("flights.outcome") == AGREEMENT
    pa, pb = xa.mean(), xb.mean()
    se = math.sqrt(pa * (1 - pa) / len(xa) + pb * (1 - pb) / len(xb))
    row = compare(base, tense_other_seed).get("flights.p_agreement")
    z = stats.norm.ppf(0.975)
    assert (row.low, row.high) == pytest.approx((pb - pa - z * se, pb - pa + z * se), abs=1e-12)


# --- A4: what decides pairing, and how the report says it -----------------------------------


def test_different_seeds_are_independent_samples(base, tense_other_seed):
    assert not is_paired(base, tense_other_seed)
    comparison = compare(base, tense_other_seed)
    assert list(comparison.paired.values()) == [False]
    for d in rows_of(comparison, "probability"):
        assert not d.paired and d.test == "Fisher exact", d.metric
    for d in rows_of(comparison, "mean"):
        assert not d.paired and d.test == "Mann-Whitney U", d.metric
    text = render_comparison(comparison, width=250)
    assert "independent samples" in text
    assert "common random numbers" not in text


def test_same_seed_and_runs_are_paired_by_common_random_numbers(base, tense):
    assert is_paired(base, tense)
    comparison = compare(base, tense)
    for d in rows_of(comparison, "probability"):
        assert d.paired and d.test == "McNemar exact", d.metric
    for d in rows_of(comparison, "mean"):
        assert d.paired and d.test == "Wilcoxon signed-rank", d.metric
    for d in rows_of(comparison, "distribution"):
        assert not d.paired and d.test == "Kolmogorov-Smirnov"  # agreeing runs differ
    text = render_comparison(comparison, width=250)
    assert "common random numbers" in text
    assert "independent samples" not in text


def test_same_seed_but_different_run_counts_is_not_paired(base):
    shorter = cached_run("baseline", RUNS // 2)
    assert not is_paired(base, shorter)
    comparison = compare(base, shorter)
    assert not any(d.paired for d in rows_of(comparison))
    assert comparison.get("summits.p_any").n_b == RUNS // 2


def test_render_comparison_hides_dated_and_per_track_rows_unless_asked(base, tense):
    comparison = compare(base, tense)
    short = render_comparison(comparison, width=250)  # one line per row: labels unbroken
    full = render_comparison(comparison, all_metrics=True, width=250)
    assert "P(agreement by 2026-02-05)" not in short
    assert "P(agreement by 2026-02-05)" in full
    assert "Leaders' phone calls: meetings held per run" not in short
    assert "Leaders' phone calls: meetings held per run" in full
    assert "Meetings cancelled per run (all tracks)" in short
    assert "Differences from baseline" in short
    # each kind of metric has one test within a pair of jobs: named once, under the table
    assert "tests: McNemar exact (probabilities)" in short
    assert "Wilcoxon signed-rank (means per run)" in short
    assert "Kolmogorov-Smirnov (agreed values)" in short


# --- A5: the tests are the textbook ones -----------------------------------------------------


@pytest.mark.parametrize("metric,column,code", [
    ("start.p_default", "start.outcome", DEFAULT),
    ("flights.p_agreement", "flights.outcome", AGREEMENT),
    ("cooperation.p_agreement", "cooperation.outcome", AGREEMENT),
])
def test_mcnemar_p_value_is_the_exact_binomial_test_on_discordant_pairs(base, tense, metric,
                                                                        column, code):
    xa, xb = base.column(column) == code, tense.column(column) == code
    only_b, only_a = int(np.sum(xb & ~xa)), int(np.sum(xa & ~xb))
    assert only_a + only_b > 0
    expected = stats.binomtest(only_b, only_a + only_b, 0.5).pvalue
    row = compare(base, tense).get(metric)
    assert row.test == "McNemar exact"
    assert row.p_value == pytest.approx(expected, rel=1e-12)


def test_mcnemar_for_summits_counts_runs_that_lost_their_summit(base, no_summits):
    had = base.column("summits_held") > 0
    assert not np.any(no_summits.column("summits_held"))
    expected = stats.binomtest(0, int(had.sum()), 0.5).pvalue  # every discordant pair: a only
    assert compare(base, no_summits).get("summits.p_any").p_value == pytest.approx(expected,
                                                                                 rel=1e-12)


@pytest.mark.parametrize("metric,column,code", [
    ("start.p_default", "start.outcome", DEFAULT),
    ("flights.p_agreement", "flights.outcome", AGREEMENT),
    ("embassy.p_agreement", "embassy.outcome", AGREEMENT),
])
def test_fisher_p_value_is_fishers_exact_test_on_the_two_by_two_table(base, tense_other_seed,
                                                                      metric, column, code):
    xa, xb = base.column(column) == code, tense_other_seed.column(column) == code
    ka, kb, na, nb = int(xa.sum()), int(xb.sum()), len(xa), len(xb)
    expected = stats.fisher_exact([[ka, na - ka], [kb, nb - kb]]).pvalue
    row = compare(base, tense_other_seed).get(metric)
    assert row.test == "Fisher exact"
    assert row.p_value == pytest.approx(expected, rel=1e-12)


def test_count_tests_are_wilcoxon_when_paired_and_mann_whitney_when_not(base, tense,
                                                                       tense_other_seed):
    xa = base.column("calls.held").astype(float)
    xb = tense.column("calls.held").astype(float)
    xc = tense_other_seed.column("calls.held").astype(float)
    assert compare(base, tense).get("calls.held").p_value == pytest.approx(
        stats.wilcoxon(xb - xa).pvalue, rel=1e-12)
    assert compare(base, tense_other_seed).get("calls.held").p_value == pytest.approx(
        stats.mannwhitneyu(xa, xc).pvalue, rel=1e-12)


def test_agreed_values_are_compared_by_kolmogorov_smirnov(base, tense):
    agreed_a = base.column("start.outcome") == AGREEMENT
    agreed_b = tense.column("start.outcome") == AGREEMENT
    va, vb = base.column("start.value")[agreed_a], tense.column("start.value")[agreed_b]
    row = compare(base, tense).get("start.value")
    assert (row.n_a, row.n_b) == (len(va), len(vb))
    assert row.difference == pytest.approx(vb.mean() - va.mean(), abs=1e-12)
    assert row.p_value == pytest.approx(stats.ks_2samp(va, vb).pvalue, rel=1e-12)


# --- A6: what differs between the scenarios ---------------------------------------------------


def test_scenario_differences_list_exactly_the_changed_key(base, no_summits):
    assert scenario_differences(base, no_summits) == [("tracks.summit.max_meetings", None, 0)]


def test_scenario_differences_of_identical_scenarios_are_empty(base):
    assert scenario_differences(base, fresh_run("baseline", RUNS)) == []


def test_scenario_differences_list_added_keys_as_absent(base):
    budapest = cached_run("budapest_summit", 50)
    diffs = {key: (a, b) for key, a, b in scenario_differences(base, budapest)}
    assert diffs["name"] == ("baseline", "budapest_summit")
    assert diffs["tracks.budapest.kind"] == ("(absent)", "summit")
    key = "venues.budapest.acceptability.russia"  # Budapest agreed in that scenario
    assert diffs[key] == (base.scenario.venues["budapest"].acceptability["russia"], 1.0)
    assert "tracks.summit.kind" not in diffs  # unchanged keys are not listed


# --- the comparison object --------------------------------------------------------------------


def test_table_and_dict_hold_one_record_per_row(base, tense):
    comparison = compare(base, tense)
    table = comparison.table()
    assert len(table) == len(comparison.rows)
    assert {"scenario", "metric", "a", "b", "difference", "low", "high", "test", "p_value",
            "paired"} <= set(table.columns)
    data = comparison.to_dict()
    text = json.dumps(data, allow_nan=False)  # no NaN in the JSON: missing values are null
    back = json.loads(text)
    assert back["reference"] == "baseline" and back["compared"] == comparison.names[1:]
    assert back["paired"] == {comparison.names[1]: True}
    assert back["confidence"] == 0.95
    assert len(back["differences"]) == len(comparison.rows)
    sanctions = next(r for r in back["differences"] if r["metric"] == "sanctions.value")
    assert sanctions["difference"] is None  # no agreements on sanctions: nothing to compare


def test_metric_filter_keeps_matching_rows_only(base, tense):
    comparison = compare(base, tense, metrics=["start.", "summits"])
    metrics = {d.metric for d in rows_of(comparison)}
    assert metrics and all("start." in m or "summits" in m for m in metrics)
    with pytest.raises(InputError):
        compare(base, tense, metrics=["no_such_metric"])


def test_compare_needs_two_jobs_with_the_same_topics(base):
    with pytest.raises(InputError):
        compare(base)
    extra = {
        "topics.arctic": {"label": "Arctic", "scale": {"low": "no", "high": "yes"}},
        "sides.russia.topics.arctic": {"ideal": 1.0, "reservation": 0.4},
        "sides.united_states.topics.arctic": {"ideal": 0.0, "reservation": 0.6},
    }
    other = run(load_scenario(BASELINE, overrides=extra), runs=20, workers=1)
    with pytest.raises(InputError, match="arctic"):
        compare(base, other)


def test_several_jobs_are_each_compared_with_the_first(base, tense, no_summits):
    no_summits_renamed, tense_renamed = copy.copy(no_summits), copy.copy(tense)
    no_summits_renamed.name, tense_renamed.name = "no_summits", "tense"
    comparison = compare(base, tense_renamed, no_summits_renamed)
    assert comparison.names == ["baseline", "tense", "no_summits"]
    assert comparison.get("summits.p_any", "no_summits").b == 0.0
    assert comparison.get("summits.p_any", "tense") == compare(base, tense).get("summits.p_any")


def test_jobs_with_the_same_name_are_told_apart_or_refused(base, tense, tense_other_seed):
    assert base.name == tense.name == tense_other_seed.name == "baseline"
    try:
        comparison = compare(base, tense, tense_other_seed)
    except InputError:
        return  # refusing is fine: the command line renames such jobs after their folders
    assert len(set(comparison.names)) == 3
    assert sorted(comparison.paired.values()) == [False, True]
    lines = comparison.describe_pairing()
    assert any("common random numbers" in line for line in lines)
    assert any("independent samples" in line for line in lines)


# --- D: the command ---------------------------------------------------------------------------------

FIGURES = ("agreement_curves", "outcome_categories", "agreed_values", "meetings",
           "forest_probabilities", "forest_means")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two results folders of the scenario "baseline": as run, and without summits."""
    root = tmp_path_factory.mktemp("compare")
    fresh_run("baseline", 200, out=root / "base")
    fresh_run("baseline", 200, overrides=NO_SUMMITS, out=root / "no_summits")
    return root


@pytest.mark.slow
def test_sim_compare_writes_the_table_and_plots_and_refuses_to_overwrite(folders):
    out = folders / "cmp"
    args = ("compare", str(folders / "base"), str(folders / "no_summits"), "--out", str(out))
    proc = sim_cli(*args)
    assert proc.returncode == 0, proc.stderr
    # both folders hold the scenario "baseline": the jobs are named after their folders
    assert "no_summits vs base: paired by run" in proc.stdout
    assert "common random numbers" in proc.stdout
    assert "P(at least one summit held)" in proc.stdout
    expected = {"comparison.json", "comparison.csv", *(f"{f}.png" for f in FIGURES)}
    # and the marker that says sim wrote the folder (sim.outputs)
    assert {p.name for p in out.iterdir()} == expected | {MARKER}
    for name in expected:
        assert str(out / name) in proc.stdout
    for figure in FIGURES:
        assert (out / f"{figure}.png").read_bytes()[:8] == PNG_MAGIC, figure

    data = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert data["reference"] == "base" and data["compared"] == ["no_summits"]
    assert data["paired"] == {"no_summits": True}
    a, b = Results.load(folders / "base"), Results.load(folders / "no_summits")
    a.name, b.name = "base", "no_summits"
    assert data == json.loads(json.dumps(compare(a, b).to_dict()))  # the library's comparison
    table = pd.read_csv(out / "comparison.csv")
    assert len(table) == len(data["differences"])
    p_any = table[table["metric"] == "summits.p_any"].iloc[0]
    assert p_any["b"] == 0.0 and p_any["high"] < 0 and p_any["test"] == "McNemar exact"

    # an existing comparison is kept unless --force
    before = (out / "comparison.json").read_bytes()
    again = sim_cli(*args)
    assert_clean_error(again)
    assert "--force" in again.stderr
    assert (out / "comparison.json").read_bytes() == before

    forced = sim_cli(*args, "--force", "--metric", "summits", "-q")
    assert forced.returncode == 0, forced.stderr
    assert "Differences from" not in forced.stdout  # quiet: the paths only
    metrics = set(pd.read_csv(out / "comparison.csv")["metric"])
    assert metrics == {"summits.p_any", "summits_held"}


def test_sim_compare_of_a_folder_without_results_is_a_clean_error(folders, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = sim_cli("compare", str(folders / "base"), str(tmp_path / "empty"),
                   "--out", str(tmp_path / "cmp"))
    assert_clean_error(proc)
    assert "not a finished results folder" in proc.stderr
    assert not (tmp_path / "cmp").exists()


def test_sim_compare_needs_two_folders(folders, tmp_path):
    proc = sim_cli("compare", str(folders / "base"), "--out", str(tmp_path / "cmp"))
    assert_clean_error(proc)
    assert "at least two" in proc.stderr
    assert_clean_error(sim_cli("compare"))
    assert not (tmp_path / "cmp").exists()
