"""``sim.plots``: what each plot draws, checked on the artists, not on pixels.

Every plotting function returns its figure and, where it draws one panel, draws on an
``ax=`` it is given. Sweep and sensitivity plots are checked on hand-made tables.
"""

from __future__ import annotations

import copy
import datetime as dt

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from helpers_results import NO_SUMMITS, cached_run
from matplotlib.patches import Rectangle, StepPatch
from scipy import stats

from sim.compare import compare
from sim.model.compiled import CATEGORIES
from sim.plots import (
    plot_agreed_values,
    plot_agreed_values_grid,
    plot_agreement_curve,
    plot_agreement_curves,
    plot_forest,
    plot_meetings,
    plot_outcome_categories,
    plot_sensitivity,
    plot_sweep_heatmap,
    plot_sweep_line,
    wilson_band,
)
from sim.sweep import Sensitivity
from sim.tally import VALUE_BINS

RUNS = 400
COUNTERS = ("held", "cancelled", "derailed", "postponed")  # plot_meetings' default


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def base():
    return cached_run("baseline", RUNS)


@pytest.fixture(scope="module")
def pair(base):
    """The baseline and the baseline without summits, labelled apart (shallow copies)."""
    other = copy.copy(cached_run("baseline", RUNS, overrides=NO_SUMMITS))
    other.name = "no_summits"
    return [base, other]


def step_lines(ax):
    return [line for line in ax.get_lines() if line.get_drawstyle() == "steps-post"]


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


# --- agreement curves ---------------------------------------------------------------------------


def test_agreement_curve_draws_one_step_line_and_one_band_per_job(pair):
    fig = plot_agreement_curve(pair, "start")
    ax = fig.axes[0]
    lines = step_lines(ax)
    assert len(lines) == 2
    assert len(ax.collections) == 2  # the 95% bands
    for line, band, res in zip(lines, ax.collections, pair):
        assert res.name in line.get_label() and f"n={res.runs:,}" in line.get_label()
        assert np.allclose(band.get_facecolor()[0][:3], matplotlib.colors.to_rgb(line.get_color()))
    assert ax.get_title() == "New START / strategic stability"


def test_agreement_curve_is_the_cumulative_share_of_runs_agreed_by_each_date(pair):
    ax = plot_agreement_curve(pair, "start").axes[0]
    for line, res in zip(step_lines(ax), pair):
        x, y = line.get_xdata(orig=True), line.get_ydata()
        start, horizon = res.scenario.start, res.scenario.horizon_days
        assert len(x) == horizon + 1
        assert x[0] == start and x[-1] == start + dt.timedelta(days=horizon)
        assert np.all(np.diff(y) >= 0), "a cumulative probability never falls"
        summary = res.summary()
        assert y[-1] == pytest.approx(summary["start.p_agreement"].estimate)
        by_deadline = (dt.date(2026, 2, 5) - start).days
        assert y[by_deadline] == pytest.approx(
            summary["start.p_agreement_by_2026-02-05"].estimate)


def test_agreement_curve_x_axis_holds_dates_not_day_numbers(base):
    ax = plot_agreement_curve(base, "start").axes[0]
    x = step_lines(ax)[0].get_xdata(orig=True)
    assert all(isinstance(v, dt.date) for v in x)
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    low, high = (mdates.num2date(v).date() for v in ax.get_xlim())
    assert low <= base.scenario.start and high >= base.scenario.end
    assert high - low < dt.timedelta(days=base.scenario.horizon_days + 120)


def test_agreement_curve_marks_the_deadline(base):
    ax = plot_agreement_curve(base, "start").axes[0]
    deadline = dt.date(2026, 2, 5)
    verticals = [line for line in ax.get_lines() if list(line.get_xdata()) == [deadline, deadline]]
    assert len(verticals) == 1
    assert any("deadline 05 Feb 2026" in t.get_text() for t in ax.texts)
    ax2 = plot_agreement_curve(base, "flights").axes[0]  # no deadline on flights
    assert len(ax2.get_lines()) == 1 and not ax2.texts


def test_agreement_curve_draws_on_a_given_axes(base):
    fig, axes = plt.subplots(1, 2)
    out = plot_agreement_curve(base, "embassy", ax=axes[1])
    assert out is fig
    assert len(step_lines(axes[1])) == 1 and not step_lines(axes[0])
    assert axes[1].get_legend() is not None
    plot_agreement_curve(base, "start", ax=axes[0], legend=False)
    assert axes[0].get_legend() is None


def test_wilson_band_is_the_wilson_score_interval():
    n = 57
    k = np.array([0, 1, 10, 28, 56, 57])
    low, high = wilson_band(k, n)
    for ki, lo, hi in zip(k, low, high):
        ci = stats.binomtest(int(ki), n).proportion_ci(0.95, method="wilson")
        assert (lo, hi) == pytest.approx((ci.low, ci.high), abs=1e-9)
        assert lo - 1e-12 <= ki / n <= hi + 1e-12  # the estimate is inside (up to rounding)


def test_agreement_curves_has_one_visible_panel_per_topic(pair, base):
    fig = plot_agreement_curves(pair)
    panels = visible_axes(fig)
    labels = [t.label for t in base.scenario.topics.values()]
    assert [ax.get_title() for ax in panels] == labels
    assert all(len(step_lines(ax)) == 2 for ax in panels)
    fig3 = plot_agreement_curves(pair, ["start", "flights", "property"])
    assert len(fig3.axes) == 4  # a 2 x 2 grid
    assert [ax.get_title() for ax in visible_axes(fig3)] == [
        "New START / strategic stability", "Direct flights", "Diplomatic property"]
    assert len(fig3.legends) == 1 and len(fig3.legends[0].get_texts()) == 2


# --- outcome categories -------------------------------------------------------------------------


def test_outcome_categories_draws_a_bar_per_topic_category_and_job(pair, base):
    fig = plot_outcome_categories(pair)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    n_topics = len(base.scenario.topics)
    assert len(bars) == n_topics * len(CATEGORIES) * len(pair)


def test_outcome_category_bars_are_the_shares_of_runs_and_stack_to_one(pair, base):
    ax = plot_outcome_categories(pair).axes[0]
    bars = list(ax.patches)
    topics = base.tally.layout.topics
    order = ["agreement", "interim", "default", "none"]  # drawn in this order
    k = 0
    for res in pair:
        share = res.tally.categories / res.tally.n
        left = np.zeros(len(topics))
        for category in order:
            col = CATEGORIES.index(category)
            for i in range(len(topics)):
                bar = bars[k]
                k += 1
                assert bar.get_width() == pytest.approx(share[i, col])
                assert bar.get_x() == pytest.approx(left[i])
            left += share[:, col]
        assert np.allclose(left, 1.0)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [base.scenario.topics[t].label for t in topics]


def test_outcome_categories_draws_on_a_given_axes(base):
    fig, ax = plt.subplots()
    assert plot_outcome_categories(base, ax=ax) is fig
    assert len(ax.patches) == len(base.scenario.topics) * len(CATEGORIES)


# --- meetings -----------------------------------------------------------------------------------


def test_meetings_draws_a_bar_per_track_counter_and_job(pair, base):
    ax = plot_meetings(pair).axes[0]
    assert len(ax.patches) == len(base.scenario.tracks) * len(COUNTERS) * len(pair)


def test_meeting_bars_are_the_mean_meetings_per_run(pair, base):
    ax = plot_meetings(pair, counters=("held", "vetoes")).axes[0]
    tracks = list(base.scenario.tracks)
    assert len(ax.patches) == len(tracks) * 2 * len(pair)
    heights = iter(p.get_height() for p in ax.patches)
    for res in pair:
        summary = res.summary()
        for counter in ("held", "vetoes"):
            for track in tracks:
                assert next(heights) == pytest.approx(summary[f"{track}.{counter}.mean"].estimate)
    no_summit_held = [p.get_height() for p in ax.patches][len(tracks) * 2 + 1]
    assert no_summit_held == 0.0  # the summit track of the job without summits


def test_meetings_draws_on_a_given_axes(base):
    fig, ax = plt.subplots()
    assert plot_meetings(base, ax=ax) is fig
    assert len(ax.patches) == len(base.scenario.tracks) * len(COUNTERS)


@pytest.mark.parametrize("budapest_first", [True, False])
def test_meetings_of_jobs_with_different_tracks_use_each_jobs_own_tracks(base, budapest_first):
    budapest = cached_run("budapest_summit", 100)
    assert list(budapest.scenario.tracks) == [*base.scenario.tracks, "budapest"]
    jobs = [budapest, base] if budapest_first else [base, budapest]
    ax = plot_meetings(jobs, counters=("held",)).axes[0]
    tracks = list(budapest.scenario.tracks)  # every track of either job
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "Budapest summit"
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == len(tracks) * len(jobs)
    for r, res in enumerate(jobs):
        summary = res.summary()
        for k, track in enumerate(tracks):
            height = heights[r * len(tracks) + k]
            if track in res.scenario.tracks:  # each job's bars are its own means
                assert height == pytest.approx(summary[f"{track}.held.mean"].estimate), track
            else:  # a track the job does not have: no bar
                assert np.isnan(height) or height == 0.0


# --- agreed values ------------------------------------------------------------------------------


def test_agreed_values_draws_a_density_per_job_that_integrates_to_one(pair):
    fig = plot_agreed_values(pair, "start")
    ax = fig.axes[0]
    stairs = [p for p in ax.patches if isinstance(p, StepPatch)]
    assert len(stairs) == 2
    for patch, res in zip(stairs, pair):
        values, edges = patch.get_data().values, patch.get_data().edges
        assert len(values) == VALUE_BINS
        assert np.allclose(edges, np.linspace(0, 1, VALUE_BINS + 1))
        assert np.sum(values * np.diff(edges)) == pytest.approx(1.0)
        i = res.tally.layout.topics.index("start")
        assert np.allclose(values, res.tally.values[i] / res.tally.values[i].sum() * VALUE_BINS)
        assert f"{res.tally.values[i].sum():,} agreements" in patch.get_label()


def test_agreed_values_of_a_topic_never_agreed_says_so(base):
    fig, ax = plt.subplots()
    assert plot_agreed_values(base, "sanctions", ax=ax) is fig
    assert not [p for p in ax.patches if isinstance(p, StepPatch)]
    assert "no agreements" in ax.get_legend().get_texts()[0].get_text()


def test_agreed_values_grid_has_a_panel_per_topic_with_agreements(pair, base):
    fig = plot_agreed_values_grid(pair)
    agreed = [t for t in base.tally.layout.topics
              if any(r.tally.values[r.tally.layout.topics.index(t)].sum() for r in pair)]
    assert "sanctions" not in agreed and "start" in agreed
    titles = [ax.get_title() for ax in visible_axes(fig)]
    assert titles == [base.scenario.topics[t].label for t in agreed]


# --- forest plots -------------------------------------------------------------------------------


def interval_lines(ax):
    """The horizontal interval lines of a forest plot: two points at the same height."""
    return [line for line in ax.get_lines()
            if len(line.get_xdata()) == 2 and line.get_ydata()[0] == line.get_ydata()[1]]


@pytest.fixture(scope="module")
def comparison(pair):
    return compare(*pair)


@pytest.mark.parametrize("kind", ["probability", "mean"])
def test_forest_draws_one_interval_per_row_of_the_kind(comparison, kind):
    rows = [d for _, d in comparison.rows if d.kind == kind and "_by_" not in d.metric
            and not d.metric.endswith(".held") and not np.isnan(d.difference)]
    ax = plot_forest(comparison, kind=kind).axes[0]
    lines = interval_lines(ax)
    assert len(lines) == len(rows)
    scale = 100 if kind == "probability" else 1
    for k, (line, d) in enumerate(zip(lines, rows)):
        assert list(line.get_ydata()) == [k, k]
        assert list(line.get_xdata()) == pytest.approx([d.low * scale, d.high * scale])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [d.label for d in rows]


def test_forest_fills_the_markers_of_significant_differences_only(comparison):
    ax = plot_forest(comparison, kind="probability").axes[0]
    markers = [line for line in ax.get_lines() if len(line.get_xdata()) == 1]
    rows = [d for _, d in comparison.rows if d.kind == "probability"
            and "_by_" not in d.metric and not np.isnan(d.difference)]
    assert len(markers) == len(rows)
    for marker, d in zip(markers, rows):
        assert marker.get_xdata()[0] == pytest.approx(100 * d.difference)
        filled = marker.get_markerfacecolor() != "white"
        assert filled == d.significant, d.metric
    summit = rows.index(comparison.get("summits.p_any"))
    assert markers[summit].get_markerfacecolor() != "white"
    assert "paired by run" in ax.get_title()


def test_forest_with_dates_adds_the_dated_rows_and_draws_on_a_given_axes(comparison):
    fig, ax = plt.subplots()
    assert plot_forest(comparison, kind="probability", include_dates=True, ax=ax) is fig
    rows = [d for _, d in comparison.rows if d.kind == "probability"
            and not np.isnan(d.difference)]
    assert len(interval_lines(ax)) == len(rows)


# --- sweeps and sensitivity (hand-made tables) -------------------------------------------------


@pytest.fixture
def line_table():
    x = [0.9, 0.1, 0.5, 0.3, 0.7]  # unsorted on purpose
    p = [0.8, 0.0, 0.4, 0.2, 0.6]
    return pd.DataFrame({
        "point": range(5), "k": x,
        "start.p_agreement": p, "start.p_agreement_se": [0.02] * 5,
        "start.p_default": [1 - v for v in p], "start.p_default_se": [0.03] * 5,
        "runs": [100] * 5,
    })


def test_sweep_line_draws_each_metric_against_the_parameter_with_bands(line_table):
    fig = plot_sweep_line(line_table, "k", ["start.p_agreement", "start.p_default"])
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 2 and len(ax.collections) == 2
    assert list(lines[0].get_xdata()) == [0.1, 0.3, 0.5, 0.7, 0.9]  # sorted by the parameter
    assert list(lines[0].get_ydata()) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert list(lines[1].get_ydata()) == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    # probabilities get Wilson bands from the runs per point: honest at 0%, never below it
    band = ax.collections[0].get_paths()[0].vertices
    low, high = wilson_band(np.array([0, 20, 40, 60, 80]), 100)
    assert band[:, 1].max() == pytest.approx(high[-1])
    assert band[:, 1].min() == pytest.approx(0.0)
    assert high[0] > 0.03  # 0 of 100 still allows a few percent
    assert ax.get_xlabel() == "k"
    assert "100 runs per point" in ax.get_title()


def test_sweep_line_draws_on_a_given_axes(line_table):
    fig, ax = plt.subplots()
    assert plot_sweep_line(line_table, "k", ["start.p_default"], ax=ax) is fig
    assert len(ax.get_lines()) == 1


def test_sweep_heatmap_image_is_the_grid_of_the_metric():
    xs, ys = [0.2, 0.4, 0.6, 0.8], [1, 2, 3]
    rows = [{"x": x, "y": y, "m.p_agreement": x * y / 3, "m.p_agreement_se": 0.01}
            for y in ys for x in xs]
    table = pd.DataFrame(rows).sample(frac=1.0, random_state=1)  # any row order
    fig = plot_sweep_heatmap(table, "x", "y", "m.p_agreement")
    ax = fig.axes[0]
    image = ax.get_images()[0]
    values = np.asarray(image.get_array())
    assert values.shape == (len(ys), len(xs))
    for r, y in enumerate(ys):  # rows are y values from the bottom, columns x values
        for c, x in enumerate(xs):
            assert values[r, c] == pytest.approx(x * y / 3)
    assert image.get_clim() == (0, 1)  # probabilities on a fixed 0-100% scale
    assert len(ax.texts) == len(xs) * len(ys)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.2", "0.4", "0.6", "0.8"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "2", "3"]
    assert len(fig.axes) == 2  # the heat map and its colour bar


def test_sweep_heatmap_draws_on_a_given_axes():
    table = pd.DataFrame({"x": [1, 2, 1, 2], "y": [5, 5, 6, 6], "tension_end.mean": [.1, .2, .3, .4]})
    fig, ax = plt.subplots()
    assert plot_sweep_heatmap(table, "x", "y", "tension_end.mean", ax=ax) is fig
    assert np.asarray(ax.get_images()[0].get_array()).shape == (2, 2)


def test_sensitivity_draws_first_order_and_total_bars_per_input():
    sens = Sensitivity(
        names=["a", "b", "c"],
        first_order=np.array([0.3, 0.45, 0.0]), total_order=np.array([0.55, 0.45, 0.25]),
        first_low=np.array([0.25, 0.4, -0.05]), first_high=np.array([0.35, 0.5, 0.05]),
        total_low=np.array([0.5, 0.4, 0.2]), total_high=np.array([0.6, 0.5, 0.3]),
        evaluations=500, metric="start.p_default")
    fig = plot_sensitivity(sens)
    ax = fig.axes[0]
    bars = list(ax.patches)
    assert len(bars) == 2 * len(sens.names)
    assert [b.get_width() for b in bars[:3]] == pytest.approx([0.3, 0.45, 0.0])
    assert [b.get_width() for b in bars[3:]] == pytest.approx([0.55, 0.45, 0.25])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert "start.p_default" in ax.get_title() and "500 evaluations" in ax.get_title()
    fig2, ax2 = plt.subplots()
    assert plot_sensitivity(sens, ax=ax2) is fig2
    assert len(ax2.patches) == 6


@pytest.mark.parametrize("runs", [100, 400, 2000])
def test_sweep_points_at_zero_and_one_draw_error_bars(runs):
    """A Sobol' design draws points with error bars; a probability of 0 or 1 has a Wilson
    interval that ends at the point, up to rounding, and the bars must not go negative."""
    p = [0.0, 1.0, 0.5, 0.0, 1.0]
    table = pd.DataFrame({"k": [0.1, 0.2, 0.3, 0.4, 0.5], "start.p_default": p,
                          "start.p_default_se": [0.0, 0.0, 0.05, 0.0, 0.0],
                          "runs": [runs] * 5})
    table.attrs["design"] = "sobol"
    ax = plot_sweep_line(table, "k", ["start.p_default"]).axes[0]
    bars = [c for c in ax.collections if c.get_segments()]
    assert len(bars) == 1, "one set of error bars"
    low, high = wilson_band(np.round(np.array(p) * runs), runs)
    for segment, lo, hi in zip(bars[0].get_segments(), low, high):
        (_, bottom), (_, top) = segment
        assert bottom == pytest.approx(lo, abs=1e-12) and top == pytest.approx(hi, abs=1e-12)
        assert bottom <= top
    assert not step_lines(ax)  # points, not lines: other parameters vary between them


def test_sensitivity_error_bars_are_never_negative():
    sens = Sensitivity(
        names=["a", "b"], first_order=np.array([0.0, 1.0]), total_order=np.array([0.0, 1.0]),
        first_low=np.array([1e-18, 0.9]), first_high=np.array([0.1, 1.0 - 1e-16]),
        total_low=np.array([0.0, 0.9]), total_high=np.array([0.1, 1.0]),
        evaluations=64, metric="start.p_default")
    assert len(plot_sensitivity(sens).axes[0].patches) == 4
