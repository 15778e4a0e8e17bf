"""``sim.uncertainty``: the variance of each headline estimate split into the part due to the
unknowns (between input draws) and the part due to events (within a draw), checked against a
closed form (beta-binomial meetings), and shown in the summary, the plots and the report.

Tolerances come from Monte Carlo error: the spread of the estimators over repeated synthetic
experiments, or a bound on their standard deviation; none is widened to pass.
"""

from __future__ import annotations

import copy
import json
import math
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from helpers_results import PNG_MAGIC, cached_run
from matplotlib.collections import PathCollection
from scipy import stats

from sim.model.compiled import AGREEMENT, NONE
from sim.plots import plot_input_spread, save_default_plots
from sim.report import render_report
from sim.results import Results
from sim.summary import render_summary
from sim.tally import Tally
from sim.uncertainty import (
    NO_REPLICATIONS,
    clustered_se,
    draw_estimates,
    split,
    uncertainty_table,
)

# the closed form: n meetings, each held unless cancelled with probability p ~ Beta(a, b)
N_MEETINGS, A, B = 6, 2.0, 5.0
#: Var(E[held | p]) = n^2 Var(p) and E[Var(held | p)] = n E[p (1 - p)]
BETWEEN = N_MEETINGS**2 * A * B / ((A + B) ** 2 * (A + B + 1))
WITHIN = N_MEETINGS * A * B / ((A + B) * (A + B + 1))
DRAWS, REPS, EXPERIMENTS = 400, 8, 40
Z = 4.5  # standard errors allowed: a false alarm about once in 150,000 checks


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def beta_binomial(seed: int, draws: int = DRAWS, reps: int = REPS,
                  a: float = A, b: float = B) -> np.ndarray:
    """Return meetings held per run, in run order: draw d's runs are d*reps .. d*reps+reps-1."""
    rng = np.random.default_rng(seed)
    cancel = rng.beta(a, b, draws)
    return rng.binomial(N_MEETINGS, 1 - np.repeat(cancel, reps))


@pytest.fixture(scope="module")
def experiments():
    """The split of EXPERIMENTS independent synthetic jobs (seeds 0, 1, ...)."""
    return [split(beta_binomial(seed), REPS) for seed in range(EXPERIMENTS)]


def mean_and_se(values) -> tuple[float, float]:
    x = np.asarray(values, float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x)))


# --- the closed form -----------------------------------------------------------------------------


@pytest.mark.parametrize("field, exact", [("var_unknowns", BETWEEN), ("var_events", WITHIN),
                                          ("share_unknowns", BETWEEN / (BETWEEN + WITHIN)),
                                          ("estimate", N_MEETINGS * B / (A + B))])
def test_split_of_beta_binomial_meetings_matches_the_closed_form(experiments, field, exact):
    mean, se = mean_and_se([getattr(s, field) for s in experiments])
    assert abs(mean - exact) < Z * se, (field, mean, exact, se)


@pytest.mark.parametrize("field, se_field", [("var_unknowns", "var_unknowns_se"),
                                             ("var_events", "var_events_se"),
                                             ("share_unknowns", "share_se")])
def test_jackknife_standard_errors_match_the_spread_over_experiments(experiments, field,
                                                                     se_field):
    # (K - 1) s^2 / sigma^2 ~ chi2(K - 1) if the jackknife's sigma is right
    observed = np.var([getattr(s, field) for s in experiments], ddof=1)
    expected = np.mean([getattr(s, se_field) ** 2 for s in experiments])
    statistic = (EXPERIMENTS - 1) * observed / expected
    chi2 = stats.chi2(EXPERIMENTS - 1)
    assert chi2.ppf(1e-4) < statistic < chi2.ppf(1 - 1e-4), (field, observed, expected)


def test_clustered_se_is_the_standard_error_of_the_mean_and_the_naive_one_is_too_small(
        experiments):
    exact = (BETWEEN + WITHIN / REPS) / DRAWS  # Var of the mean of DRAWS draw means
    mean, se = mean_and_se([s.se**2 for s in experiments])
    assert abs(mean - exact) < Z * se, (mean, exact, se)
    observed = np.var([s.estimate for s in experiments], ddof=1)
    chi2 = stats.chi2(EXPERIMENTS - 1)
    assert chi2.ppf(1e-4) < (EXPERIMENTS - 1) * observed / exact < chi2.ppf(1 - 1e-4)
    assert all(s.se > s.se_naive for s in experiments)
    # the naive one misses the design effect 1 + (R - 1) * share, about 4.2 here
    naive = np.mean([s.se_naive**2 for s in experiments])
    assert exact / naive == pytest.approx(1 + (REPS - 1) * BETWEEN / (BETWEEN + WITHIN), rel=0.1)


def test_denoised_range_is_nearer_the_spread_of_the_expected_count_than_the_raw_one(
        experiments):
    # E[held | p] = n (1 - p): its central 80% from the Beta quantiles
    low, high = N_MEETINGS * (1 - stats.beta(A, B).ppf([0.9, 0.1]))
    for s in experiments:
        assert s.draws_p10 <= s.p10 <= s.p90 <= s.draws_p90
    denoised = np.mean([s.p90 - s.p10 for s in experiments])
    raw = np.mean([s.draws_p90 - s.draws_p10 for s in experiments])
    assert abs(denoised - (high - low)) < abs(raw - (high - low))
    assert raw > high - low  # the raw per-draw estimates carry event noise


def test_without_priors_the_unknowns_explain_nothing():
    # every draw has the same cancel probability: Beta(a, b) with a, b huge is a point mass
    draws, reps, p = 2000, 10, 0.3
    rng = np.random.default_rng(7)
    held = rng.binomial(N_MEETINGS, 1 - p, draws * reps)
    s = split(held, reps)
    assert s.share_unknowns < _null_share_bound(held, draws, reps)
    assert s.se == pytest.approx(s.se_naive, rel=0.15)  # no design effect


def _null_share_bound(values: np.ndarray, draws: int, reps: int, z: float = 5.0) -> float:
    """Return z standard deviations of the share when draws do not matter.

    Then s_b^2 - s_w^2 / R has mean 0; its SD is at most SD(s_b^2) + SD(s_w^2) / R, with
    Var(s_b^2) = (s^2/R)^2 (2/(D-1) + k/(R D)) and Var(s_w^2) = s^4 (2/(D(R-1)) + k/(D R)) for
    excess kurtosis k (floored at 0); divided by the variance s^2 of a run.
    """
    kurtosis = max(float(stats.kurtosis(values)), 0.0)
    sd_between = math.sqrt(2 / (draws - 1) + kurtosis / (reps * draws)) / reps
    sd_within = math.sqrt(2 / (draws * (reps - 1)) + kurtosis / (draws * reps)) / reps
    return z * (sd_between + sd_within)


def test_clustered_se_of_equal_draws_is_the_se_of_the_draw_means():
    held = beta_binomial(3)
    means = held.reshape(DRAWS, REPS).mean(axis=1)
    se = clustered_se(held, np.arange(len(held)) // REPS)
    assert se == pytest.approx(means.std(ddof=1) / math.sqrt(DRAWS), rel=1e-12)


def test_a_partial_last_draw_counts_in_the_estimate_but_not_in_the_split():
    held = beta_binomial(4)
    full = split(held, REPS)
    extra = np.concatenate([held, [0, 0, 0]])  # three runs of one more draw
    partial = split(extra, REPS)
    assert partial.draws == full.draws == DRAWS
    for field in ("var_unknowns", "var_events", "share_unknowns", "p10", "p90", "draws_p10"):
        assert getattr(partial, field) == pytest.approx(getattr(full, field), rel=1e-12)
    assert partial.estimate == pytest.approx(extra.mean())
    assert partial.se == pytest.approx(clustered_se(extra, np.arange(len(extra)) // REPS))


def test_one_run_per_draw_has_no_split_and_the_naive_se():
    s = split(beta_binomial(5, reps=1), 1)
    assert math.isnan(s.var_unknowns) and math.isnan(s.share_unknowns) and math.isnan(s.p10)
    assert s.se == s.se_naive
    assert s.draws_p10 < s.draws_p90  # the raw range of single runs is still there


# --- a job's table -------------------------------------------------------------------------------


def synthetic(runs: int = 400, reps: int = 10, inputs: str = "sample", seed: int = 11) -> Results:
    """Return baseline runs whose Direct flights agreement and summits depend on the draw.

    Draw d agrees on flights with probability ~ Beta(2, 3) and cancels each of 6 summits with
    probability ~ Beta(2, 5) (recorded as input.tracks.summit.cancel_prob); the rest of the
    outcomes are the engine's, independent of the draw. The tally is rebuilt from the columns.
    """
    base = cached_run("baseline", runs)
    rng = np.random.default_rng(seed)
    cols = {c: np.array(base.column(c)) for c in base.outcomes.columns}
    draw = cols["run"] // reps
    agree_p, cancel = rng.beta(2, 3, draw.max() + 1), rng.beta(A, B, draw.max() + 1)
    agreed = rng.random(runs) < agree_p[draw]
    cols["flights.outcome"] = np.where(agreed, AGREEMENT, NONE).astype(
        cols["flights.outcome"].dtype)
    cols["flights.day"] = np.where(agreed, rng.uniform(0, 700, runs), np.nan)
    cols["flights.value"] = np.where(agreed, 0.5, np.nan)
    held = rng.binomial(N_MEETINGS, 1 - cancel[draw])
    cols["summit.held"] = held.astype(cols["summit.held"].dtype)
    cols["summits_held"] = held.astype(cols["summits_held"].dtype)
    cols["first_summit_day"] = np.where(held > 0, 30.0, np.nan)
    cols["input.tracks.summit.cancel_prob"] = cancel[draw]
    tally = Tally(base.tally.layout)
    tally.add(cols)
    meta = dict(base.metadata, inputs=inputs, replications=reps)
    return Results.from_memory(base.scenario, [cols], tally, meta)


@pytest.fixture(scope="module")
def job():
    return synthetic()


def test_table_has_every_headline_estimate_labelled_as_in_the_summary(job):
    table, summary = uncertainty_table(job), job.summary()
    scenario = job.scenario
    expected = {"summits.p_any", "summits_held.mean",
                *(f"{t}.held.mean" for t in scenario.tracks),
                *(f"{t}.p_agreement" for t in scenario.topics),
                "start.p_agreement_before_deadline", "start.p_default", "start.p_interim_taken"}
    assert set(table.index) == expected
    for metric, row in table.iterrows():
        assert row["label"] == summary[metric].label
        assert row["estimate"] == pytest.approx(summary[metric].estimate, rel=1e-12)
        assert row["draws"] == 40 and row["replications"] == 10


def test_table_row_is_the_split_of_the_runs(job):
    row = uncertainty_table(job).loc["summit.held.mean"]
    s = split(job.column("summit.held"), 10)
    assert row["var_unknowns"] == pytest.approx(s.var_unknowns)
    assert row["var_events"] == pytest.approx(s.var_events)
    assert row["p10"] == pytest.approx(s.p10)
    per_draw = draw_estimates(job)
    assert len(per_draw) == 40
    assert per_draw["summit.held.mean"].to_numpy() == pytest.approx(
        job.column("summit.held").reshape(40, 10).mean(axis=1))


def test_engine_runs_without_priors_have_no_share_due_to_the_unknowns():
    # grouping independent runs into "draws" must find nothing between them
    base = cached_run("baseline", 2000)
    res = copy.copy(base)
    res.metadata = dict(base.metadata, inputs="sample", replications=10)
    table = uncertainty_table(res)
    for metric, row in table.iterrows():
        if math.isnan(row["share_unknowns"]):  # nothing varies (always or never agreed)
            assert row["var_events"] == 0
            continue
        bound = _null_share_bound(_values(res, metric), 200, 10)
        assert row["share_unknowns"] < bound, (metric, row["share_unknowns"], bound)


def _values(res: Results, metric: str) -> np.ndarray:
    from sim.uncertainty import headline_quantities

    return np.asarray(headline_quantities(res)[metric][2], float)


def test_summary_intervals_allow_for_the_draws(job):
    summary = job.summary()
    table = uncertainty_table(job)
    flights = summary["flights.p_agreement"]
    assert flights.se == pytest.approx(table.loc["flights.p_agreement", "se"])
    assert flights.se > table.loc["flights.p_agreement", "se_naive"]
    independent = copy.copy(job)
    independent.metadata = {k: v for k, v in job.metadata.items()
                            if k not in ("inputs", "replications")}
    naive = independent.summary()["flights.p_agreement"]
    assert flights.low < naive.low and flights.high > naive.high
    # the summary's p (1 - p) / n is the table's sample variance / n times (n - 1) / n
    n = job.runs
    assert naive.se == pytest.approx(table.loc["flights.p_agreement", "se_naive"]
                                     * math.sqrt((n - 1) / n), rel=1e-12)
    held = summary["summit.held.mean"]
    assert held.se == pytest.approx(table.loc["summit.held.mean", "se"])
    assert held.high - held.low > 2 * 1.96 * held.se  # t with draws - 1 degrees of freedom


def test_summary_json_holds_the_split(job):
    data = job.summary().to_dict()
    json.dumps(data, allow_nan=False)  # plain JSON: NaN written as null
    spread = data["uncertainty"]
    assert spread["replications"] == 10 and spread["draws"] == 40
    assert spread["quantiles"] == [0.1, 0.9]
    row = spread["estimates"]["flights.p_agreement"]
    assert row["share_unknowns"] == pytest.approx(
        uncertainty_table(job).loc["flights.p_agreement", "share_unknowns"])
    from helpers_results import BASELINE

    from sim.montecarlo import run
    from sim.scenario import load_scenario

    fixed = run(load_scenario(BASELINE), runs=200, workers=1)  # no priors: no split
    assert "uncertainty" not in fixed.summary().to_dict()


# --- the run's table, plot and report --------------------------------------------------------------


def flat(text: str) -> str:
    return re.sub(r"[\s│┃]+", " ", text)


@pytest.mark.parametrize("width", [80, 100, 132, 200])
def test_summary_table_shows_the_range_across_the_unknowns_and_fits(job, width):
    text = render_summary(job.summary(), width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "40 input draws of 10" in text.splitlines()[0]
    assert "unknowns:" in text
    words = flat(text)
    assert "80% (10th to 90th percentile) of the estimate across 40 input draws of 10 runs" in words
    assert "due to the unknowns" in words and "Direct flights" in words


def test_summary_cell_shows_the_denoised_range(job):
    summary = job.summary()
    row = summary.uncertainty.get("flights.p_agreement")
    text = render_summary(summary, width=200)
    span = f"unknowns: {100 * row['p10']:.0f}%-{100 * row['p90']:.0f}%"
    assert span in text


def test_one_run_per_draw_says_the_split_needs_replications():
    text = flat(render_summary(synthetic(reps=1).summary(), width=100))
    assert flat(NO_REPLICATIONS) in text
    assert "unknowns:" not in text and "input draws" not in text


def test_no_priors_shows_no_unknowns():
    from helpers_results import BASELINE

    from sim.montecarlo import run
    from sim.scenario import load_scenario

    text = render_summary(run(load_scenario(BASELINE), runs=400, workers=1).summary(), width=100)
    assert "unknowns" not in text and "--replications" not in text


def test_input_spread_plot_shows_each_draw_and_the_overall_estimate(job):
    fig = plot_input_spread(job)
    ax = fig.axes[0]
    topics = list(job.scenario.topics)
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(dots) == len(topics)
    per_draw = draw_estimates(job)
    flights = dots[topics.index("flights")].get_offsets()[:, 0]
    assert sorted(flights) == pytest.approx(sorted(per_draw["flights.p_agreement"]))
    diamonds = [line for line in ax.get_lines() if line.get_marker() == "D"]
    assert [d.get_xdata()[0] for d in diamonds] == pytest.approx(
        [job.summary()[f"{t}.p_agreement"].estimate for t in topics])
    assert "across the unknowns" in ax.get_title() and "40 draws of 10 runs" in ax.get_title()


def test_input_spread_needs_drawn_inputs_with_replications():
    with pytest.raises(ValueError, match="--replications"):
        plot_input_spread(synthetic(reps=1))


def test_default_plots_include_the_input_spread_only_when_there_is_one(job, tmp_path):
    written = save_default_plots(job, tmp_path / "a")
    assert (tmp_path / "a" / "input_spread.png") in written
    assert (tmp_path / "a" / "input_spread.png").read_bytes().startswith(PNG_MAGIC)
    plain = save_default_plots(cached_run("baseline", 400), tmp_path / "b")
    assert not any(p.name.startswith("input_spread") for p in plain)


@pytest.mark.slow
def test_report_shows_the_split_table_and_the_spread_plot(job):
    page = render_report([job])
    assert "What is known and what is not" in page
    assert page.count("<img") == 5  # the four plots of a job and the input spread
    assert "share due to the unknowns" in page and "unknowns: " in page


def test_a_job_ending_in_a_partial_draw_says_so():
    job = synthetic(runs=405)
    spread = job.summary().uncertainty
    assert (spread.draws, spread.runs_used, spread.runs_partial) == (40, 400, 5)
    assert "The last 5 runs, an incomplete draw" in spread.describe()
    assert spread.get("flights.p_agreement")["estimate"] == pytest.approx(
        np.mean(job.column("flights.outcome") == AGREEMENT))


# --- with the engine ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine_job(tmp_path_factory):
    """400 baseline runs, the initial tension drawn from a prior, 10 runs per draw, stored."""
    from helpers_results import scenario

    from sim.montecarlo import run

    s = scenario(climate__initial_tension={"uniform": [0.2, 0.9]})
    folder = tmp_path_factory.mktemp("engine") / "job"
    return run(s, runs=400, workers=1, replications=10, out=folder)


def test_engine_job_with_a_prior_splits_its_variance_and_keeps_it_when_loaded(engine_job):
    summary = engine_job.summary()
    spread = summary.uncertainty
    assert spread.split and (spread.draws, spread.replications) == (40, 10)
    # the initial tension decides New START's deadline: the draws matter there
    row = spread.get("start.p_agreement")
    assert row["share_unknowns"] > Z * row["share_se"]
    assert row["se"] > row["se_naive"]
    loaded = Results.load(engine_job.path)
    assert loaded.summary().to_dict() == summary.to_dict()
    stored = json.loads((engine_job.path / "summary.json").read_text())
    assert stored["uncertainty"]["estimates"]["start.p_agreement"]["share_unknowns"] == \
        pytest.approx(row["share_unknowns"])
