"""``sim.sweep`` and ``sim sweep``: designs, common random numbers, validation, resume, Sobol'.

Every design point runs the same seed and run indices, so a point equal to the base
scenario reproduces ``run(base)`` exactly and a key the model ignores changes nothing.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from helpers_results import BASELINE, PNG_MAGIC, assert_clean_error, sim_cli

from sim.errors import InputError
from sim.montecarlo import run
from sim.scenario import ScenarioError, load_scenario
from sim.sweep import (
    design_points,
    headline_metrics,
    model_sensitivity,
    parse_param,
    sobol_sensitivity,
    sweep,
)

RUNS = 60
GRID_RUNS = 160  # the grid's effects below are > 8 standard errors at this size
TENSION = "climate.initial_tension"  # 0.6 in the baseline
SUMMIT_CANCEL = "tracks.summit.cancel_prob"  # 0.15 in the baseline
US_START = "sides.united_states.topics.start.concession"  # 0.9 in the baseline


@pytest.fixture(scope="module")
def base():
    return load_scenario(BASELINE)


@pytest.fixture(scope="module")
def grid(base):
    """A 2 x 2 grid whose first point is the baseline itself."""
    return sweep(base, {TENSION: [0.6, 0.9], SUMMIT_CANCEL: [0.15, 0.9]}, runs=GRID_RUNS,
                 workers=1)


# --- E1: the grid ----------------------------------------------------------------------------------


def test_grid_is_the_cartesian_product_one_row_per_point(grid):
    assert len(grid) == 4
    assert list(grid["point"]) == [0, 1, 2, 3]
    assert list(zip(grid[TENSION], grid[SUMMIT_CANCEL])) == [
        (0.6, 0.15), (0.6, 0.9), (0.9, 0.15), (0.9, 0.9)]
    assert list(grid["runs"]) == [GRID_RUNS] * 4


def test_grid_table_has_each_headline_metric_and_its_standard_error(grid, base):
    metrics = headline_metrics(base)
    assert "start.p_interim_taken" in metrics and "irritants.held.mean" in metrics
    assert list(grid.columns) == ["point", TENSION, SUMMIT_CANCEL,
                                  *[c for m in metrics for c in (m, f"{m}_se")], "runs"]
    assert grid.attrs["design"] == "grid" and grid.attrs["runs"] == GRID_RUNS
    assert grid.attrs["seed"] == base.seed


def test_standard_error_of_a_probability_is_the_binomial_one(grid, base):
    for metric in (m for m in headline_metrics(base) if ".p_" in m):
        p = grid[metric].to_numpy()
        assert np.all((0 <= p) & (p <= 1)), metric
        se = np.sqrt(p * (1 - p) / GRID_RUNS)
        assert np.allclose(grid[f"{metric}_se"], se, rtol=0, atol=1e-15)


def test_metrics_move_the_way_the_parameters_push_them(grid):
    # effects chosen large against the Monte Carlo error of single points (expected > 8 SE),
    # tested at 5 SE (the tense point's p_default is near 1: its SE is floored at 1 / runs)
    # most summits cancelled: fewer summits held, whatever the tension
    for tension in (0.6, 0.9):
        low, high = (grid[(grid[TENSION] == tension) & (grid[SUMMIT_CANCEL] == c)].iloc[0]
                     for c in (0.15, 0.9))
        se = math.hypot(low["summits_held.mean_se"], high["summits_held.mean_se"])
        assert low["summits_held.mean"] - high["summits_held.mean"] > 5 * se
    # a tenser start slows concession before the START deadline: more lapses
    for cancel in (0.15, 0.9):
        calm, tense = (grid[(grid[SUMMIT_CANCEL] == cancel) & (grid[TENSION] == t)].iloc[0]
                       for t in (0.6, 0.9))
        floor = max(tense["start.p_default_se"], 1 / GRID_RUNS)
        se = math.hypot(calm["start.p_default_se"], floor)
        assert tense["start.p_default"] - calm["start.p_default"] > 5 * se


# --- E2: common random numbers ------------------------------------------------------------------


def test_a_point_equal_to_the_base_reproduces_run_exactly(grid, base):
    summary = run(base, runs=GRID_RUNS, seed=base.seed, workers=1).summary()
    row = grid.iloc[0]
    for metric in headline_metrics(base):
        expected = summary[metric]
        assert row[metric] == expected.estimate or (
            math.isnan(row[metric]) and math.isnan(expected.estimate)), metric
        se = row[f"{metric}_se"]
        assert se == expected.se or (math.isnan(se) and math.isnan(expected.se)), metric


@pytest.mark.parametrize("key,values", [
    ("topics.ukraine.label", ["Ukraine settlement", "Peace in Ukraine"]),
    ("description", ["one", "another"]),
    ("sides.ukraine.capability", [0.4, 2.0]),  # weighs in the reference forecast only
])
def test_a_key_the_model_ignores_gives_identical_rows(base, key, values):
    table = sweep(base, {key: values}, runs=40, workers=1)
    assert list(table[key]) == values
    metrics = table.drop(columns=["point", key])
    pdt.assert_series_equal(metrics.iloc[0], metrics.iloc[1], check_names=False)


def test_sweep_seed_defaults_to_the_scenarios_and_can_be_set(base):
    a = sweep(base, {TENSION: [0.6]}, runs=40, workers=1)
    b = sweep(base, {TENSION: [0.6]}, runs=40, seed=base.seed, workers=1)
    c = sweep(base, {TENSION: [0.6]}, runs=40, seed=base.seed + 1, workers=1)
    pdt.assert_frame_equal(a, b)
    assert c.attrs["seed"] == base.seed + 1
    assert not a.drop(columns=["point", TENSION]).equals(c.drop(columns=["point", TENSION]))


def test_sweep_accepts_a_scenario_path(base):
    by_path = sweep(BASELINE, {TENSION: [0.6]}, runs=40, workers=1)
    pdt.assert_frame_equal(by_path, sweep(base, {TENSION: [0.6]}, runs=40, workers=1))


# --- E3: validation before anything runs ----------------------------------------------------------


@pytest.mark.parametrize("params,path,message", [
    ({"tracks.summit.bogus": [1, 2]}, "tracks.summit.bogus", "unknown key"),
    ({SUMMIT_CANCEL: [0.5, 1.5]}, SUMMIT_CANCEL, "1.5 is above 1"),
    ({"name.part": ["x"]}, "name.part", "not a mapping"),
    # the US wants low values on START (ideal 0.3): a reservation of 0.1 beats its ideal
    ({"sides.united_states.topics.start.reservation": [0.6, 0.1]},
     "sides.united_states.topics.start.reservation", "better than the ideal"),
])
def test_a_bad_point_raises_with_its_dotted_path_before_anything_runs(base, tmp_path, params,
                                                                      path, message):
    out = tmp_path / "sweep"
    started = time.perf_counter()
    with pytest.raises(ScenarioError) as info:
        # 5,000 runs of a point take about ten seconds: an error at once means nothing ran
        sweep(base, params, runs=5_000, workers=1, out=out)
    assert time.perf_counter() - started < 5
    problems = [(p.path, p.message) for p in info.value.problems]
    assert any(p == path and message in m for p, m in problems), problems
    assert all("sweep point" in (p.file or "") for p in info.value.problems)
    assert not out.exists(), "no folder is made for a sweep that cannot run"


def test_every_bad_key_is_reported_at_once(base):
    with pytest.raises(ScenarioError) as info:
        sweep(base, {"tracks.summit.bogus": [1], "tracks.calls.cancel_prob": [2.0, 3.0]},
              runs=10, workers=1)
    paths = sorted({p.path for p in info.value.problems})
    assert paths == ["tracks.calls.cancel_prob", "tracks.summit.bogus"]


@pytest.mark.parametrize("params,design,points", [
    ({}, "grid", None),
    ({TENSION: 0.5}, "grid", None),  # a grid needs a list
    ({TENSION: []}, "grid", None),
    ({TENSION: "0.5"}, "grid", None),
    ({TENSION: (0.7, 0.3)}, "lhs", 4),  # low >= high
    ({TENSION: (0.3, 0.7, 0.9)}, "lhs", 4),
    ({TENSION: (0.3, 0.7)}, "lhs", None),
    ({TENSION: (0.3, 0.7)}, "lhs", 0),
    ({TENSION: (0.3, 0.7)}, "sobol", 6),  # not a power of 2
    ({TENSION: (0.3, 0.7)}, "factorial", 4),
])
def test_bad_designs_are_input_errors(params, design, points):
    with pytest.raises(InputError):
        design_points(params, design, points, seed=1)


# --- E4: Latin hypercube and Sobol' designs --------------------------------------------------------

RANGES = {"a": (0.0, 1.0), "b": (-2.0, 3.0), "c": (10.0, 10.5)}


def strata(points, key, n):
    lo, hi = RANGES[key]
    return sorted(math.floor((p[key] - lo) / (hi - lo) * n) for p in points)


@pytest.mark.parametrize("design,n", [("lhs", 10), ("lhs", 7), ("sobol", 16), ("sobol", 1)])
def test_space_filling_designs_stay_in_range_and_fill_every_stratum(design, n):
    points = design_points(RANGES, design, n, seed=11)
    assert len(points) == n
    for p in points:
        assert list(p) == list(RANGES)
        for key, (lo, hi) in RANGES.items():
            assert lo <= p[key] <= hi and isinstance(p[key], float)
    # n equal strata of each range hold one point each (Latin hypercube; for Sobol', the
    # first 2^m points of a scrambled (t, m, s)-net have the same one-dimensional property)
    for key in RANGES:
        assert strata(points, key, n) == list(range(n)), key


@pytest.mark.parametrize("design", ["lhs", "sobol"])
def test_space_filling_designs_are_deterministic_for_a_seed(design):
    assert design_points(RANGES, design, 8, seed=5) == design_points(RANGES, design, 8, seed=5)
    assert design_points(RANGES, design, 8, seed=5) != design_points(RANGES, design, 8, seed=6)


@pytest.mark.parametrize("design", ["lhs", "sobol"])
def test_integer_ranges_give_integers(design):
    points = design_points({"tracks.summit.max_meetings": (0, 4), "x": (0.0, 4)}, design, 16,
                           seed=2)
    values = [p["tracks.summit.max_meetings"] for p in points]
    assert all(type(v) is int and 0 <= v <= 4 for v in values)
    assert len(set(values)) > 1
    assert all(isinstance(p["x"], float) for p in points)  # one float bound: floats


def test_sweep_runs_the_design_it_is_given(base):
    params = {TENSION: (0.3, 0.7), US_START: (0.5, 2.0)}
    table = sweep(base, params, design="lhs", points=5, runs=30, seed=9, workers=1)
    expected = design_points(params, "lhs", 5, seed=9)  # the design uses the sweep's seed
    assert table[[TENSION, US_START]].to_dict("records") == expected
    assert table.attrs["design"] == "lhs"


# --- E5: a sweep on disk, and resuming it ----------------------------------------------------------


def test_sweep_folder_holds_the_table_and_one_results_folder_per_point(base, tmp_path):
    out = tmp_path / "sweep"
    params = {TENSION: [0.5, 0.7], SUMMIT_CANCEL: [0.15]}
    table = sweep(base, params, runs=RUNS, workers=1, out=out)
    assert {p.name for p in out.iterdir()} == {"sweep.parquet", "sweep.csv", "sweep.json",
                                               "points", ".sim-output"}
    assert sorted(p.name for p in (out / "points").iterdir()) == ["0000", "0001"]
    for point in (out / "points").iterdir():
        assert (point / "metadata.json").is_file() and (point / "summary.json").is_file()
    pdt.assert_frame_equal(pd.read_parquet(out / "sweep.parquet"), table)
    pdt.assert_frame_equal(pd.read_csv(out / "sweep.csv"), table, check_dtype=False)

    # again without resume: refused, and nothing already there is lost
    with pytest.raises(InputError, match="resume"):
        sweep(base, params, runs=RUNS, workers=1, out=out)
    pdt.assert_frame_equal(pd.read_parquet(out / "sweep.parquet"), table)

    # a sweep interrupted: one point never finished, another lost a chunk of runs
    (out / "points" / "0001" / "metadata.json").unlink()
    (out / "points" / "0001" / "summary.json").unlink()
    (out / "sweep.parquet").unlink()
    parts = sorted((out / "points" / "0000" / "outcomes").glob("part-*.parquet"))
    parts[-1].unlink()
    resumed = sweep(base, params, runs=RUNS, workers=1, out=out, resume=True)
    pdt.assert_frame_equal(resumed, table)
    pdt.assert_frame_equal(pd.read_parquet(out / "sweep.parquet"), table)
    assert (out / "points" / "0001" / "metadata.json").is_file()

    # resuming with another design is refused; force replaces the sweep
    with pytest.raises(InputError, match="different sweep"):
        sweep(base, {TENSION: [0.5, 0.9]}, runs=RUNS, workers=1, out=out, resume=True)
    forced = sweep(base, {TENSION: [0.9]}, runs=RUNS, workers=1, out=out, force=True)
    assert sorted(p.name for p in (out / "points").iterdir()) == ["0000"]
    pdt.assert_frame_equal(pd.read_parquet(out / "sweep.parquet"), forced)


def test_resume_of_a_folder_without_a_sweep_is_an_input_error(base, tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a sweep")
    with pytest.raises(InputError, match="nothing to resume"):
        sweep(base, {TENSION: [0.5]}, runs=10, workers=1, out=tmp_path / "other", resume=True)
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["notes.txt"]


def test_resume_with_numpy_values_reproduces_the_table(base, tmp_path):
    values = list(np.arange(0, 2))  # numpy int64, as np.arange or np.linspace(...).astype gives
    table = sweep(base, {"tracks.summit.max_meetings": values}, runs=40, workers=1,
                  out=tmp_path / "s")
    resumed = sweep(base, {"tracks.summit.max_meetings": values}, runs=40, workers=1,
                    out=tmp_path / "s", resume=True)
    pdt.assert_frame_equal(resumed, table)


# --- parse_param (the command line's --param) ----------------------------------------------------


@pytest.mark.parametrize("text,design,expected", [
    ("k=0:3:4", "grid", ("k", [0, 1, 2, 3])),
    ("k=0.5:2:4", "grid", ("k", [0.5, 1.0, 1.5, 2.0])),
    ("k=1:2:3", "grid", ("k", [1.0, 1.5, 2.0])),
    ("k=0.1,0.2,0.4", "grid", ("k", [0.1, 0.2, 0.4])),
    ("k=fixed,exponential", "grid", ("k", ["fixed", "exponential"])),
    (" k = -1:1", "lhs", ("k", (-1, 1))),
    ("k=0.2:0.8", "sobol", ("k", (0.2, 0.8))),
])
def test_parse_param_reads_ranges_and_lists(text, design, expected):
    key, values = parse_param(text, design)
    assert (key, values) == expected
    if expected[1] == [0, 1, 2, 3]:
        assert all(type(v) is int for v in values)


@pytest.mark.parametrize("text,design", [
    ("k", "grid"), ("=1:2:3", "grid"), ("k=", "grid"), ("k=0:1", "grid"), ("k=0:1:x", "grid"),
    ("k=0:1:0", "grid"), ("k=0:1:2.5", "grid"), ("k=a:b", "lhs"), ("k=0.1,0.2", "lhs"),
])
def test_parse_param_rejects_bad_syntax(text, design):
    with pytest.raises(InputError):
        parse_param(text, design)


# --- E6: Sobol' indices ----------------------------------------------------------------------------

ISHIGAMI_FIRST = (0.3139, 0.4424, 0.0)
ISHIGAMI_TOTAL = (0.5576, 0.4424, 0.2437)


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(x[0]) + a * np.sin(x[1]) ** 2 + b * x[2] ** 4 * np.sin(x[0])


@pytest.fixture(scope="module")
def ishigami_indices():
    bounds = {name: (-math.pi, math.pi) for name in ("x1", "x2", "x3")}
    return sobol_sensitivity(ishigami, bounds, n=2048, seed=0, metric="ishigami")


def test_sobol_indices_of_the_ishigami_function(ishigami_indices):
    s = ishigami_indices
    assert s.names == ["x1", "x2", "x3"]
    assert s.evaluations == 2048 * (3 + 2)
    for k in range(3):
        # the known values lie inside the 95% bootstrap intervals ...
        assert s.first_low[k] <= ISHIGAMI_FIRST[k] <= s.first_high[k], k
        assert s.total_low[k] <= ISHIGAMI_TOTAL[k] <= s.total_high[k], k
        # ... which are narrow enough for that to mean something
        assert s.first_high[k] - s.first_low[k] < 0.12
        assert s.total_high[k] - s.total_low[k] < 0.15
        assert s.first_low[k] <= s.first_order[k] <= s.first_high[k]
    table = s.table()
    assert list(table["parameter"]) == ["x1", "x2", "x3"]
    assert table.loc[1, "first_order"] == s.first_order[1]


def test_sobol_ranking_of_the_ishigami_inputs(ishigami_indices):
    s = ishigami_indices
    assert np.argmax(s.first_order) == 1  # x2 matters most alone
    assert np.argmax(s.total_order) == 0  # x1 most with its interaction with x3
    assert s.total_order[2] - s.first_order[2] > 0.15  # x3 acts through the interaction only


def test_sobol_sensitivity_is_deterministic_for_a_seed():
    bounds = {"x1": (-math.pi, math.pi), "x2": (-math.pi, math.pi), "x3": (-math.pi, math.pi)}
    a = sobol_sensitivity(ishigami, bounds, n=64, seed=3, n_resamples=50)
    b = sobol_sensitivity(ishigami, bounds, n=64, seed=3, n_resamples=50)
    assert np.array_equal(a.first_order, b.first_order)
    assert np.array_equal(a.total_order, b.total_order)


@pytest.mark.slow
def test_model_sensitivity_finds_the_input_that_matters_and_the_one_that_does_not(base):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate bootstrap for the ignored input
        s = model_sensitivity(base, {"sides.ukraine.capability": (0.2, 2.0), US_START: (0.6, 1.4)},
                              "start.p_default", n=16, runs=60, workers=2, n_resamples=200)
    assert s.names == ["sides.ukraine.capability", US_START]
    assert s.evaluations == 16 * (2 + 2)
    assert s.metric == "start.p_default"
    # Ukraine's capability only weighs in the reference forecast: with common random numbers
    # changing it changes no run, so both of its indices vanish
    assert abs(s.first_order[0]) < 0.05 and abs(s.total_order[0]) < 0.05
    # US flexibility on START decides the lapse (the notebook's cliff): the only input that
    # acts has a total index of 1 in theory; with n=16 the estimate is rough (0.7 to 1.15 over
    # eight seeds), its bootstrap interval wide but clear of 0
    assert s.total_order[1] > 0.5
    assert s.total_low[1] > 0.0


def test_model_sensitivity_checks_metric_and_ranges_before_running(base):
    with pytest.raises(InputError, match="unknown metric"):
        model_sensitivity(base, {US_START: (0.6, 1.4)}, "start.p_nothing", n=8, runs=10)
    with pytest.raises(ScenarioError) as info:
        model_sensitivity(base, {SUMMIT_CANCEL: (0.5, 1.5)}, "start.p_default", n=8, runs=10)
    assert info.value.problems[0].path == SUMMIT_CANCEL


def test_model_sensitivity_of_an_integer_key_uses_integers(base):
    # like design_points, integer bounds give integer values (max_meetings must be an int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = model_sensitivity(base, {"tracks.summit.max_meetings": (0, 3),
                                     "sides.ukraine.capability": (0.4, 2.0)},
                              "summits_held.mean", n=4, runs=20, workers=1, n_resamples=20)
    assert s.names == ["tracks.summit.max_meetings", "sides.ukraine.capability"]
    assert s.total_order[0] > 0.5  # the number of summits allowed decides the summits held
    assert s.total_order[1] == 0.0  # the reference forecast's weight changes no run


def test_sensitivity_to_a_single_input_is_all_of_the_variance_or_refused():
    try:
        s = sobol_sensitivity(lambda x: x[0] ** 2, {"a": (0.0, 1.0)}, n=1024, seed=0,
                              n_resamples=200)
    except InputError:
        return  # refusing one input (nothing to apportion) is fine too
    # one input explains all of the variance: both indices are 1
    assert s.first_low[0] <= 1.0 <= s.first_high[0]
    assert s.total_low[0] <= 1.0 <= s.total_high[0]


@pytest.mark.parametrize("metric,n", [("start.p_default", 6), ("calls.bogus.mean", 4)])
def test_model_sensitivity_rejects_bad_settings_as_input_errors(base, metric, n):
    with pytest.raises(InputError):
        model_sensitivity(base, {TENSION: (0.3, 0.7)}, metric, n=n, runs=10, workers=1)


# --- E7: the command ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_sim_sweep_of_one_key_writes_table_and_line_plot(tmp_path):
    out = tmp_path / "out"
    proc = sim_cli("sweep", str(BASELINE), "-p", f"{US_START}=0.5:2:3", "--runs", "50",
                   "-w", "1", "--out", str(out), "-m", "start.p_default")
    assert proc.returncode == 0, proc.stderr
    for name in ("sweep.parquet", "sweep.csv", "sweep.png"):
        assert (out / name).is_file(), name
        assert str(out / name) in proc.stdout
    assert (out / "sweep.png").read_bytes()[:8] == PNG_MAGIC
    table = pd.read_parquet(out / "sweep.parquet")
    assert list(table[US_START]) == [0.5, 1.25, 2.0]
    assert set(table["runs"]) == {50}
    assert "3 points x 50 runs" in proc.stdout
    # the same design through the library: the same table
    expected = sweep(load_scenario(BASELINE), {US_START: [0.5, 1.25, 2.0]}, runs=50, workers=1)
    pdt.assert_frame_equal(table, expected, check_dtype=False)


@pytest.mark.slow
def test_sim_sweep_of_two_keys_writes_a_heat_map_per_metric(tmp_path):
    out = tmp_path / "out"
    proc = sim_cli("sweep", str(BASELINE), "-p", f"{TENSION}=0.4:0.8:2",
                   "-p", f"{SUMMIT_CANCEL}=0.1,0.4", "--runs", "30", "-w", "1", "-q",
                   "--out", str(out), "-m", "start.p_default", "-m", "summits_held.mean")
    assert proc.returncode == 0, proc.stderr
    for name in ("sweep.parquet", "sweep.csv", "heatmap_start.p_default.png",
                 "heatmap_summits_held.mean.png"):
        assert (out / name).is_file(), name
    assert (out / "heatmap_start.p_default.png").read_bytes()[:8] == PNG_MAGIC
    assert not (out / "sweep.png").exists()
    assert len(pd.read_csv(out / "sweep.csv")) == 4


@pytest.mark.parametrize("args,message", [
    (["-p", "climate.initial_tension"], "--param"),
    (["-p", "climate.initial_tension=0.2:0.8:3", "-m", "start.p_nothing"], "not a sweep metric"),
    (["-p", "tracks.summit.bogus=1,2"], "nothing was run"),
])
def test_sim_sweep_bad_input_is_a_clean_error(tmp_path, args, message):
    out = tmp_path / "out"
    proc = sim_cli("sweep", str(BASELINE), "--runs", "20", "-w", "1", "--out", str(out), *args)
    assert_clean_error(proc)
    assert message in proc.stderr
    assert not out.exists()



@pytest.mark.parametrize("args", [
    ["--sensitivity", "start.p_default", "--sensitivity-n", "6"],
    ["--sensitivity", "start.p_nothing"],
])
def test_sim_sweep_bad_sensitivity_settings_are_refused_before_running(tmp_path, args):
    out = tmp_path / "out"
    proc = sim_cli("sweep", str(BASELINE), "-p", f"{TENSION}=0.3:0.7:2", "--runs", "20",
                   "-w", "1", "-q", "--out", str(out), *args)
    assert_clean_error(proc)
    assert not out.exists(), "nothing runs when the settings are wrong"


def test_sim_sweep_of_one_key_with_sensitivity_works_or_is_refused_before_running(tmp_path):
    out = tmp_path / "out"
    proc = sim_cli("sweep", str(BASELINE), "-p", f"{TENSION}=0.3:0.7:2", "--runs", "20",
                   "-w", "1", "-q", "--out", str(out), "--sensitivity", "start.p_default",
                   "--sensitivity-n", "4")
    assert "Traceback" not in proc.stderr
    if proc.returncode == 2:
        assert not out.exists(), "refused before anything runs"
    else:
        assert proc.returncode == 0, proc.stderr
        assert (out / "sensitivity.csv").is_file() and (out / "sensitivity.png").is_file()
