"""The headline answers the question asked: for a topic with a deadline, P(agreement before
the deadline), P(interim taken at the deadline) and P(deadline default) are separate figures
from P(agreement by the horizon), in the summary, the comparison and their tables; the tables
fit the terminal; ``import sim`` is one cheap public surface whose summaries show as tables.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers_results import REPO, cached_run

import sim
from sim.compare import (
    Comparison,
    Difference,
    compare,
    difference_text,
    headline_rows,
    render_comparison,
)
from sim.model.compiled import AGREEMENT, DEFAULT, INTERIM, NONE
from sim.results import Results
from sim.summary import (
    FALLBACK_WIDTH,
    interval_text,
    last_day_before,
    render_summary,
    terminal_width,
)
from sim.tally import Tally

RUNS = 400
START_DEADLINE = dt.date(2026, 2, 5)
HEADERS = ("P(agreement) before deadline", "P(interim) at deadline", "P(deadline default)",
           "P(agreement) by horizon")


@pytest.fixture(scope="module")
def base():
    return cached_run("baseline", RUNS)


def deadline_day(res: Results) -> int:
    return (START_DEADLINE - res.scenario.start).days


def with_start(res: Results, outcomes: list[tuple[int, float, float]]) -> Results:
    """Return a copy of ``res`` whose START outcome is (category, day, interim day) per run.

    Runs beyond the list reach the horizon with nothing (NONE). The tally is rebuilt from the
    columns, as a job would build it.
    """
    columns = {c: np.array(res.column(c)) for c in res.outcomes.columns}
    n = len(columns["run"])
    category = np.full(n, NONE, dtype=columns["start.outcome"].dtype)
    day, interim = np.full(n, np.nan), np.full(n, np.nan)
    for k, (cat, d, i) in enumerate(outcomes):
        category[k], day[k], interim[k] = cat, d, i
    columns["start.outcome"], columns["start.day"], columns["start.interim_day"] = (
        category, day, interim)
    columns["start.value"] = np.where(category == AGREEMENT, 0.5, np.nan)
    tally = Tally(res.tally.layout)
    tally.add(columns)
    return Results.from_memory(res.scenario, [columns], tally, dict(res.metadata))


@pytest.fixture(scope="module")
def synthetic(base):
    """START outcomes around the deadline day D: agreed on D-1 (twice: at its start and just
    before D), agreed on D and after D, defaulted on D, interim taken on D (twice, once
    followed by an agreement)."""
    d = deadline_day(base)
    return with_start(base, [
        (AGREEMENT, d - 1, math.nan), (AGREEMENT, d - 0.01, math.nan), (AGREEMENT, d, math.nan),
        (AGREEMENT, d + 200, d), (DEFAULT, d, math.nan), (INTERIM, d, d)])


# --- the summary metric ------------------------------------------------------------------------


def test_the_deadline_day_itself_is_too_late():
    # the deadline fires at the start of its day (sim/model/world.py: timeout(deadline day))
    start = dt.date(2025, 11, 1)
    assert last_day_before(START_DEADLINE, start, 730) == (START_DEADLINE - start).days - 1
    assert last_day_before(start, start, 730) == -1  # a deadline on day 0 leaves no day
    assert last_day_before(dt.date(2030, 1, 1), start, 730) == 730  # past the horizon


def test_agreement_before_the_deadline_counts_agreements_strictly_before_its_day(synthetic):
    summary = synthetic.summary()
    n = synthetic.runs
    assert summary["start.p_agreement_before_deadline"].estimate == pytest.approx(2 / n)
    assert summary["start.p_agreement"].estimate == pytest.approx(4 / n)
    assert summary["start.p_interim_taken"].estimate == pytest.approx(2 / n)
    assert summary["start.p_default"].estimate == pytest.approx(1 / n)


def test_agreement_before_the_deadline_matches_the_outcome_columns(base):
    summary = base.summary()
    agreed = base.column("start.outcome") == AGREEMENT
    before = agreed & (np.floor(base.column("start.day")) < deadline_day(base))
    row = summary["start.p_agreement_before_deadline"]
    assert row.estimate == before.mean()
    assert row.low <= row.estimate <= row.high and row.n == base.runs
    assert row.label == ("New START / strategic stability: "
                         "P(agreement before the deadline, 2026-02-05)")
    # the question asked differs from the agreement by the horizon, which comes later
    assert row.estimate < summary["start.p_agreement"].estimate
    assert "2027-11-01" in summary["start.p_agreement"].label


def test_topics_without_a_deadline_have_only_the_agreement_by_the_horizon(base):
    summary = base.summary()
    assert summary.get("flights.p_agreement") is not None
    for suffix in ("p_agreement_before_deadline", "p_interim_taken", "p_default"):
        assert summary.get(f"flights.{suffix}") is None
    assert summary.deadlines == {"start": START_DEADLINE}


# --- the run's table ---------------------------------------------------------------------------


def line_of(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.strip("│┃ ").startswith(start))


def test_summary_table_shows_the_four_figures_as_separate_columns(base):
    summary = base.summary()
    text = render_summary(summary, width=250)  # wide enough for one line per row
    header = line_of(text, "topic")
    positions = [header.index(h) for h in HEADERS]
    assert positions == sorted(positions), "before, interim, default, by horizon"
    assert "P(agreement) by horizon (2027-11-01)" in header
    start = line_of(text, "New START")
    cells = [interval_text(summary[f"start.{m}"]) for m in (
        "p_agreement_before_deadline", "p_interim_taken", "p_default", "p_agreement")]
    found = [start.index(c) for c in cells]
    assert found == sorted(found)
    flights = line_of(text, "Direct flights")
    assert flights.count("%") == 1  # by the horizon only: no deadline
    assert interval_text(summary["flights.p_agreement"]) in flights
    assert "deadline 2026-02-05" in text


def test_summary_of_a_job_without_deadlines_has_no_deadline_columns(base):
    summary = copy.copy(base.summary())
    summary.rows = [r for r in summary.rows if not r.metric.startswith("start.")]
    summary.deadlines = {}
    text = render_summary(summary, width=250)
    assert "P(agreement) by horizon" in text
    assert "before deadline" not in text and "P(deadline default)" not in text


@pytest.mark.parametrize("width", [80, 100, 132, 200])
def test_summary_table_fits_the_width_and_uses_it(base, width):
    text = render_summary(base.summary(), width=width)
    lengths = [len(line) for line in text.splitlines()]
    assert max(lengths) <= width
    assert max(lengths) > width - 10  # the tables and notes take the room there is
    for estimate in ("start.p_agreement_before_deadline", "start.p_default"):
        p = base.summary()[estimate]
        assert f"{100 * p.estimate:.1f}%" in text  # folded or wrapped, never cut off


def test_tables_default_to_the_terminal_width(base, monkeypatch):
    monkeypatch.setenv("COLUMNS", "90")
    assert terminal_width() == 90
    lengths = [len(line) for line in render_summary(base.summary()).splitlines()]
    assert 80 < max(lengths) <= 90
    monkeypatch.delenv("COLUMNS")

    def no_terminal(*args):
        raise OSError("not a terminal")

    monkeypatch.setattr(os, "get_terminal_size", no_terminal)
    assert terminal_width() == FALLBACK_WIDTH == 100


# --- the comparison ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tense():
    res = copy.copy(cached_run("baseline", RUNS, overrides={"climate.initial_tension": 0.7}))
    res.name = "tense"
    return res


def test_comparison_has_the_deadline_figures_with_the_summaries_estimates(base, tense):
    comparison = compare(base, tense)
    for metric in ("start.p_agreement_before_deadline", "start.p_interim_taken",
                   "start.p_default", "start.p_agreement"):
        d = comparison.get(metric)
        assert d.kind == "probability" and d.test == "McNemar exact", metric
        assert d.a == pytest.approx(base.summary()[metric].estimate, abs=1e-12), metric
        assert d.b == pytest.approx(tense.summary()[metric].estimate, abs=1e-12), metric
        assert d.label == base.summary()[metric].label
    metrics = {d.metric for _, d in comparison.rows}
    assert "flights.p_agreement" in metrics
    assert not {"flights.p_agreement_before_deadline", "flights.p_default",
                "flights.p_interim_taken"} & metrics


def test_comparison_of_interim_and_before_deadline_counts_runs(base, synthetic):
    comparison = compare(base, synthetic)
    n = synthetic.runs
    assert comparison.get("start.p_agreement_before_deadline").b == pytest.approx(2 / n)
    taken = comparison.get("start.p_interim_taken")
    assert taken.b == pytest.approx(2 / n)  # from start.interim_day: the day, NaN if not
    assert taken.a == np.mean(~np.isnan(base.column("start.interim_day")))


def test_comparison_table_columns_carry_the_scenario_names(base, tense):
    text = render_comparison(compare(base, tense), width=250)
    header = line_of(text, "metric")
    cells = [c.strip() for c in header.strip("┃ ").split("┃")]
    assert cells[:4] == ["metric", "baseline", "tense", "difference"]
    assert "b" not in cells
    assert "Differences from baseline: tense − baseline" in text
    for label in ("P(agreement before the deadline, 2026-02-05)",
                  "P(mutual one-year adherence to the central limits taken at the deadline)",
                  "P(deadline default)", "P(agreement by the horizon, 2027-11-01)"):
        assert label in text


def test_comparison_table_fits_the_width(base, tense):
    for width in (80, 120):
        text = render_comparison(compare(base, tense), width=width)
        assert max(len(line) for line in text.splitlines()) <= width


def difference(metric: str, kind: str, diff: float, p: float) -> Difference:
    return Difference(metric, metric, kind, 0.5, 0.5 + diff, diff, diff / 2, diff * 1.5,
                      "McNemar exact", p, True, 20000, 20000)


TINY = [difference("x.p_agreement", "probability", 0.0004, 0.001),
        difference("tension_end", "mean", 0.003, 0.01),
        difference("y.p_agreement", "probability", 0.0004, 0.5),
        difference("summits_held", "mean", -0.0012, 0.02)]


def test_a_significant_difference_never_reads_as_zero():
    assert [difference_text(d) for d in TINY] == ["+0.04 pp", "+0.003", "+0.0 pp", "-0.001"]
    assert difference_text(difference("z.p_agreement", "probability", 0.012, 0.01)) == "+1.2 pp"
    comparison = Comparison(["a", "b"], [("b", d) for d in TINY], {"b": True})
    text = render_comparison(comparison, width=200)
    assert "+0.04 pp *" in text and "+0.003 *" in text and "-0.001 *" in text
    assert "+0.0 pp *" not in text and "+0.00 *" not in text


def test_headline_rows_put_significant_differences_first():
    rows = [("b", difference("x.p_agreement", "probability", 0.01, 0.5)),
            ("b", difference("x.p_default", "probability", -0.02, 0.01)),
            ("b", difference("tension_end", "mean", 0.5, 0.001)),  # not a headline metric
            ("b", difference("x.p_agreement_before_deadline", "probability", 0.05, 0.001)),
            ("b", difference("summits.p_any", "probability", 0.2, 0.9))]
    comparison = Comparison(["a", "b"], rows, {"b": True})
    assert [d.metric for _, d in headline_rows(comparison)] == [
        "x.p_agreement_before_deadline", "x.p_default", "summits.p_any", "x.p_agreement"]


# --- notebooks: summaries and comparisons show as tables ----------------------------------------


def test_summary_shows_as_its_table(base):
    summary = base.summary()
    frame = summary.to_frame()
    assert summary.table().equals(frame)  # the older name
    assert list(frame.columns[:4]) == ["label", "kind", "estimate", "se"]
    assert frame.loc["start.p_agreement_before_deadline", "estimate"] == (
        summary["start.p_agreement_before_deadline"].estimate)
    text = repr(summary)
    assert text.startswith("Summary of baseline: 400 runs")
    header = text.splitlines()[1].split()
    assert header == ["label", "estimate", "se", "low", "high"]
    assert "start.p_agreement_before_deadline" in text and "tension_end.mean" in text
    page = summary._repr_html_()
    assert "<table" in page and "start.p_agreement_before_deadline" in page


def test_comparison_shows_as_its_table(base, tense):
    comparison = compare(base, tense)
    frame = comparison.to_frame()
    assert len(frame) == len(comparison.rows) and comparison.table().equals(frame)
    text = repr(comparison)
    assert "Differences from baseline" in text and "start.p_agreement_before_deadline" in text
    assert re.search(r"scenario\s+metric\s+a\s+b\s+difference", text)
    assert "<table" in comparison._repr_html_()


# --- one public surface --------------------------------------------------------------------------


def python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_import_sim_stays_cheap():
    loaded = python("import sys, sim; heavy = ('pandas', 'matplotlib', 'scipy', 'simpy'); "
                    "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    assert loaded == "[]"


def test_compare_and_sweep_are_the_functions_even_after_their_modules_are_imported():
    out = python(
        "import sim.compare, sim.sweep, sys\n"
        "import sim\n"
        "from sim.compare import compare\n"
        "from sim.sweep import sweep\n"
        "assert callable(sim.compare) and sim.compare is compare\n"
        "assert sim.sweep is sweep\n"
        "assert sys.modules['sim.compare'].render_comparison\n"
        "print('ok')")
    assert out == "ok"


def test_the_public_names_are_the_library_functions():
    import sim.montecarlo
    import sim.plots
    import sim.sweep as sweep_function  # the package keeps the function under its name
    from sim.sweep import model_sensitivity, sweep

    assert sim.run is sim.montecarlo.run and callable(sim.run)
    assert sim.compare is compare and sim.sweep is sweep is sweep_function
    assert sim.model_sensitivity is model_sensitivity and sim.Results is Results
    assert sim.load_scenario and sim.simulate
    assert sim.plot_sweep_line is sim.plots.plot_sweep_line
    for name in sim.__all__:
        assert getattr(sim, name) is not None, name
    plots = {n for n in dir(sys.modules["sim.plots"]) if n.startswith("plot_")}
    assert plots <= set(sim.__all__)
    with pytest.raises(AttributeError):
        sim.no_such_name  # noqa: B018


def test_sim_run_and_summary_from_the_package(base):
    res = sim.run(sim.load_scenario(REPO / "scenarios" / "baseline.yaml"), runs=RUNS, workers=1)
    assert res.summary()["start.p_default"] == base.summary()["start.p_default"]
