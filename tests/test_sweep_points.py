"""Every design point of a sweep is run, whatever it shares with the others.

Points that repeat (a grid listing a value twice, integer Latin-hypercube ranges) and points
that differ only in seed or runs are separate jobs: none may be left with 0 runs and NaN
metrics, and a swept seed is the point's own.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sim.scenario import load_scenario
from sim.sweep import sweep

BASELINE = Path(__file__).resolve().parents[1] / "tests" / "data" / "pinned" / "baseline.yaml"


@pytest.fixture(scope="module")
def base():
    return load_scenario(BASELINE)


def assert_every_point_ran(table, runs: int) -> None:
    assert (table["runs"] == runs).all(), table["runs"].tolist()
    for column in table.columns:
        if column.endswith(".p_agreement"):
            assert not table[column].isna().any(), column


def test_a_repeated_grid_point_runs_twice_and_gives_the_same_numbers(base):
    table = sweep(base, {"climate.equilibrium": [0.5, 0.5, 0.6]}, runs=40, workers=1)
    assert_every_point_ran(table, 40)
    metrics = [c for c in table.columns if c.endswith(".p_agreement")]
    assert table.loc[0, metrics].tolist() == table.loc[1, metrics].tolist()  # common numbers


def test_a_swept_seed_is_each_points_own(base):
    table = sweep(base, {"seed": [1, 2, 3]}, runs=60, workers=1)
    assert_every_point_ran(table, 60)
    alone = sweep(base, {"climate.equilibrium": [base.climate.equilibrium]}, runs=60, seed=2,
                  workers=1)
    metrics = [c for c in table.columns if c.endswith(".mean") or c.endswith(".p_agreement")]
    assert table.loc[1, metrics].tolist() == alone.loc[0, metrics].tolist()
    assert table.loc[0, metrics].tolist() != table.loc[2, metrics].tolist()


def test_integer_lhs_ranges_that_repeat_points_run_them_all(base):
    table = sweep(base, {"tracks.summit.max_postponements": (0, 2)}, design="lhs", points=8,
                  runs=30, workers=1)
    assert table["tracks.summit.max_postponements"].duplicated().any()  # the case in point
    assert_every_point_ran(table, 30)


def test_repeated_points_on_a_process_pool_and_in_a_folder(base, tmp_path):
    table = sweep(base, {"climate.equilibrium": [0.5, 0.5]}, runs=450, workers=2,
                  executor="process", out=tmp_path / "s")
    assert_every_point_ran(table, 450)
    assert sorted(p.name for p in (tmp_path / "s" / "points").iterdir()) == ["0000", "0001"]
    assert not math.isnan(table.loc[1, "summits.p_any"])
