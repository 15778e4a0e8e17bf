"""The scores: hand-computed values, closed forms, calibration and skill on synthetic forecasters.

The scores come from scoringrules (Brier, log, RPS); these tests hold them to values worked
out by hand and to closed forms, and check that a calibrated forecaster looks calibrated
(uniform PIT) and beats a deliberately wrong one (skill above zero).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from helpers_results import SCENARIOS
from scipy import stats

from sim.facts import Forecast, Item
from sim.scenario import load_scenario
from sim.scoring import (
    UNCHANGED,
    Scorecard,
    brier,
    clip,
    count_log_score,
    item_days,
    log_score,
    pit_draw,
    poisson_pmf,
    randomised_pit,
    rps,
    score,
    skill,
)

HINDCAST = load_scenario(SCENARIOS / "hindcast_2025.yaml")
START = HINDCAST.start


def yes_no(observed: bool | None, state: str = "agreed", **kw) -> Item:
    return Item(label=kw.pop("label", "x"), topic="start", state=state,
                by=START + dt.timedelta(days=30), observed=observed, **kw)


def count(observed: int | None, days: int = 30, **kw) -> Item:
    return Item(label=kw.pop("label", "n"), track="calls", count="held",
                by=START + dt.timedelta(days=days - 1), observed=observed, **kw)


def counts_forecast(pmf: list[float], runs: int = 1000) -> Forecast:
    counts = tuple(int(round(p * runs)) for p in pmf)
    assert sum(counts) == runs
    return Forecast(runs, counts=counts)


# --- yes/no -------------------------------------------------------------------------------


def test_brier_of_0_8_on_a_fact_that_happened_is_0_04():
    assert brier(0.8, True) == pytest.approx(0.04, abs=1e-15)
    s = score(yes_no(True), Forecast(1000, p_yes=0.8), HINDCAST)
    assert s.scores["brier"] == pytest.approx(0.04, abs=1e-15)
    assert s.p == pytest.approx(0.8)


def test_brier_and_log_score_of_a_fact_that_did_not_happen():
    assert brier(0.8, False) == pytest.approx(0.64)
    assert log_score(0.8, False, runs=1000) == pytest.approx(-math.log(0.2))


def test_log_score_by_hand_natural_log():
    assert log_score(0.8, True, runs=1000) == pytest.approx(-math.log(0.8), rel=1e-12)
    assert log_score(0.25, True, runs=1000) == pytest.approx(math.log(4), rel=1e-12)


def test_log_score_clips_a_share_of_runs_to_half_a_run():
    n = 200
    assert clip(0.0, n) == 1 / 400 and clip(1.0, n) == 1 - 1 / 400
    # all 200 runs said "no", and it happened: -ln(1/400), not infinity
    assert log_score(0.0, True, runs=n) == pytest.approx(math.log(400))
    assert log_score(1.0, True, runs=n) == pytest.approx(-math.log(1 - 1 / 400))
    assert brier(0.0, True) == 1.0  # the Brier score is not clipped


def test_yes_no_reference_is_unchanged_from_the_start():
    agreed = score(yes_no(True), Forecast(500, p_yes=0.3), HINDCAST)
    assert agreed.reference_p == pytest.approx(1 - UNCHANGED)
    assert agreed.reference["brier"] == pytest.approx(UNCHANGED ** 2)
    assert agreed.reference["log"] == pytest.approx(-math.log(1 - UNCHANGED))
    still_none = score(yes_no(True, state="none"), Forecast(500, p_yes=0.3), HINDCAST)
    assert still_none.reference_p == pytest.approx(UNCHANGED)
    assert still_none.reference["brier"] == pytest.approx((1 - UNCHANGED) ** 2)


def test_inside_the_central_90_for_yes_no_is_a_probability_of_at_least_5_percent():
    assert score(yes_no(True), Forecast(100, p_yes=0.05), HINDCAST).inside
    assert not score(yes_no(True), Forecast(100, p_yes=0.04), HINDCAST).inside


# --- counts --------------------------------------------------------------------------------


def test_rps_of_a_small_pmf_by_hand():
    pmf = np.array([0.5, 0.3, 0.2])
    # F = 0.5, 0.8, 1.0; y = 1: (0.5 - 0)^2 + (0.8 - 1)^2 + 0 = 0.29
    assert rps(pmf, 1) == pytest.approx(0.29, abs=1e-12)
    # y = 4, beyond the runs' largest count: (0.5)^2 + (0.8)^2 + 1 + 1 = 2.89
    assert rps(pmf, 4) == pytest.approx(0.25 + 0.64 + 1 + 1, abs=1e-12)
    assert rps(np.array([0.0, 1.0]), 1) == 0.0


def rps_closed_form(mean: float, y: int) -> float:
    """sum_k (F(k) - 1[y <= k])^2 over k = 0, 1, ..., until the tail is below 1e-15."""
    total, k = 0.0, 0
    while True:
        total += (stats.poisson.cdf(k, mean) - (1.0 if y <= k else 0.0)) ** 2
        if k >= y and stats.poisson.sf(k, mean) < 1e-15:
            return total
        k += 1


@pytest.mark.parametrize("mean", [0.05, 0.7, 2.5, 8.0, 30.0])
@pytest.mark.parametrize("y", [0, 1, 3, 12, 40])
def test_rps_of_a_poisson_forecast_equals_its_closed_form(mean, y):
    got = rps(poisson_pmf(mean, y), y)
    assert abs(got - rps_closed_form(mean, y)) < 1e-9
    # and the CRPS of a Poisson in closed form (Bessel functions): the same for integer counts
    import scoringrules as sr

    assert abs(got - float(sr.crps_poisson(y, mean))) < 1e-9


def test_a_poisson_reference_of_rate_zero_puts_everything_on_zero():
    assert poisson_pmf(0.0, 3).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert rps(poisson_pmf(0.0, 3), 3) == pytest.approx(3.0)


def test_count_log_score_and_pit_by_hand():
    pmf = np.array([0.5, 0.3, 0.2])
    assert count_log_score(pmf, 1, runs=1000) == pytest.approx(-math.log(0.3))
    assert count_log_score(pmf, 5, runs=1000) == pytest.approx(math.log(2000))  # clipped
    assert randomised_pit(pmf, 1, 0.5) == pytest.approx(0.5 + 0.5 * 0.3)
    assert randomised_pit(pmf, 0, 0.25) == pytest.approx(0.125)
    assert randomised_pit(pmf, 7, 0.9) == pytest.approx(1.0)


def test_a_count_fact_scored_with_its_intervals_and_poisson_reference():
    item = count(2, days=73, reference_rate=5.0)
    f = counts_forecast([0.2, 0.3, 0.3, 0.1, 0.1])
    s = score(item, f, HINDCAST)
    assert item_days(item, HINDCAST) == 73
    mean = 5.0 * 73 / 365  # = 1.0
    ref = poisson_pmf(mean, 2)
    assert s.p == pytest.approx(0.3)
    assert s.scores["rps"] == pytest.approx(rps(f.pmf, 2))
    assert s.reference["rps"] == pytest.approx(rps_closed_form(mean, 2), abs=1e-9)
    assert s.reference["log"] == pytest.approx(-math.log(stats.poisson.pmf(2, 1.0)))
    assert s.reference_p == pytest.approx(ref[2])
    assert f.interval(0.5) == (1, 2) and f.interval(0.9) == (0, 4)
    assert s.pit == pytest.approx(0.5 + pit_draw("n") * 0.3)
    assert s.inside


def test_a_count_outside_the_central_90_is_flagged():
    f = counts_forecast([0.2, 0.3, 0.3, 0.1, 0.1])
    far = score(count(9), f, HINDCAST)
    assert far.p == 0.0 and not far.inside and far.pit == 1.0
    assert far.scores["log"] == pytest.approx(math.log(2 * 1000))


def test_the_pit_draw_is_fixed_by_the_label():
    assert pit_draw("a") == pit_draw("a") != pit_draw("b")
    assert 0.0 <= pit_draw("a") < 1.0


def test_a_count_without_reference_rate_is_left_out_of_the_skill():
    with_ref = score(count(1, label="a", reference_rate=2.0), counts_forecast([0.5, 0.5]), HINDCAST)
    without = score(count(1, label="b"), counts_forecast([0.5, 0.5]), HINDCAST)
    card = Scorecard([with_ref, without], [], {"runs": 1000, "seed": 0})
    totals = card.totals()["counts"]
    assert totals["items"] == 2 and totals["with_reference"] == 1 and totals["left_out"] == ["b"]
    assert totals["rps"]["reference"] == pytest.approx(with_ref.reference["rps"])
    assert totals["rps"]["skill"] == pytest.approx(1 - with_ref.scores["rps"] / with_ref.reference["rps"])
    from sim.scoring import render

    assert "Left out of the count skill (no reference_rate): b." in " ".join(render(card).split())


def test_skill_is_undefined_when_the_reference_scores_zero():
    assert math.isnan(skill(0.3, 0.0))
    assert skill(0.25, 1.0) == 0.75 and skill(2.0, 1.0) == -1.0


# --- calibration and skill on synthetic forecasters --------------------------------------------


def test_a_calibrated_count_forecaster_has_a_uniform_pit_and_skill_over_a_wrong_one():
    rng = np.random.default_rng(12345)
    means = rng.uniform(0.2, 6.0, 1500)
    ys = rng.poisson(means)
    pits, model, wrong = [], {"rps": [], "log": []}, {"rps": [], "log": []}
    for i, (m, y) in enumerate(zip(means, ys)):
        good, bad = poisson_pmf(m, y), poisson_pmf(2 * m + 1, y)
        pits.append(randomised_pit(good, y, pit_draw(f"item {i}")))
        for scores, pmf in ((model, good), (wrong, bad)):
            scores["rps"].append(rps(pmf, y))
            scores["log"].append(count_log_score(pmf, y, runs=10_000))
    assert stats.kstest(pits, "uniform").pvalue > 0.01
    histogram, _ = np.histogram(pits, bins=10, range=(0, 1))
    assert stats.chisquare(histogram).pvalue > 0.01
    for name in ("rps", "log"):
        assert skill(np.mean(model[name]), np.mean(wrong[name])) > 0.05, name
    # the test has power: the wrong forecaster's PIT is far from uniform
    wrong_pits = [randomised_pit(poisson_pmf(2 * m + 1, y), y, pit_draw(f"item {i}"))
                  for i, (m, y) in enumerate(zip(means, ys))]
    assert stats.kstest(wrong_pits, "uniform").pvalue < 1e-6


def test_a_calibrated_count_forecaster_from_monte_carlo_runs_still_has_a_uniform_pit():
    rng = np.random.default_rng(7)
    pits = []
    for i in range(800):
        m = rng.uniform(0.5, 4.0)
        runs = rng.poisson(m, 2000)  # the model's runs
        f = Forecast(2000, counts=tuple(np.bincount(runs).tolist()))
        y = int(rng.poisson(m))
        pits.append(randomised_pit(f.pmf, y, pit_draw(str(i))))
    assert stats.kstest(pits, "uniform").pvalue > 0.01


def test_a_calibrated_yes_no_forecaster_has_skill_over_a_wrong_one():
    rng = np.random.default_rng(2024)
    p = rng.uniform(0, 1, 3000)
    happened = rng.uniform(0, 1, 3000) < p
    wrong = p ** 3  # deliberately too pessimistic
    for fn in (brier, lambda q, o: log_score(q, o, runs=10_000)):
        good = np.mean([fn(q, o) for q, o in zip(p, happened)])
        bad = np.mean([fn(q, o) for q, o in zip(wrong, happened)])
        assert skill(good, bad) > 0.05
    # reliability: in each tenth of forecast probability, the observed frequency is close
    for b in range(10):
        sel = (p >= b / 10) & (p < (b + 1) / 10)
        assert abs(happened[sel].mean() - p[sel].mean()) < 0.06
