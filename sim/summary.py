"""Headline estimates of a job, each with its Monte Carlo standard error and 95% interval.

Proportions use Wilson intervals (``scipy.stats.binomtest``), means t intervals, medians the
distribution-free interval from binomial order statistics.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from .model.compiled import AGREEMENT, DEFAULT, INTERIM, TRACK_COUNTERS

if TYPE_CHECKING:
    import pandas as pd

    from .results import Results

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """One headline number: what it is, its value, standard error and interval."""

    metric: str
    label: str
    kind: str  # "probability", "mean", "median day"
    estimate: float
    se: float
    low: float
    high: float
    n: int


def proportion(k: int, n: int) -> tuple[float, float, float, float]:
    """Return (p, standard error, Wilson low, Wilson high) for k successes in n runs."""
    if n == 0:
        return (math.nan,) * 4
    p = k / n
    ci = stats.binomtest(int(k), int(n)).proportion_ci(CONFIDENCE, method="wilson")
    return p, math.sqrt(p * (1 - p) / n), ci.low, ci.high


def mean_from_sums(total: float, squares: float, n: int) -> tuple[float, float, float, float]:
    """Return (mean, standard error, t low, t high) from a sum and a sum of squares."""
    if n == 0:
        return (math.nan,) * 4
    mean = total / n
    if n == 1:
        return mean, math.nan, math.nan, math.nan
    var = max(squares - n * mean * mean, 0.0) / (n - 1)
    se = math.sqrt(var / n)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * se
    return mean, se, mean - half, mean + half


def median_from_histogram(counts: np.ndarray) -> tuple[float, float, float, int]:
    """Return (median, low, high, n) of day counts, with the order-statistic interval."""
    n = int(counts.sum())
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    cum = np.cumsum(counts)

    def day_of_rank(rank: int) -> float:  # rank is 1-based
        rank = min(max(rank, 1), n)
        return float(np.searchsorted(cum, rank))

    median = day_of_rank((n + 1) // 2)
    lo_rank = int(stats.binom.ppf((1 - CONFIDENCE) / 2, n, 0.5))
    hi_rank = int(stats.binom.ppf(0.5 + CONFIDENCE / 2, n, 0.5)) + 1
    return median, day_of_rank(lo_rank), day_of_rank(hi_rank), n


def milestones(start: dt.date, horizon: int, deadlines: list[dt.date]) -> list[dt.date]:
    """Return the dates at which P(agreement by date) is reported: deadlines and year ends."""
    end = start + dt.timedelta(days=horizon)
    dates = set(d for d in deadlines if start < d <= end)
    dates |= {dt.date(y, 12, 31) for y in range(start.year, end.year + 1) if start < dt.date(y, 12, 31) < end}
    return sorted(dates)


class Summary:
    """The headline estimates of one job, as rows."""

    def __init__(self, name: str, runs: int, start: dt.date, rows: list[Estimate],
                 reference: dict[str, float] | None = None):
        self.name = name
        self.runs = runs
        self.start = start
        self.rows = rows
        self.reference = reference or {}

    def __getitem__(self, metric: str) -> Estimate:
        for row in self.rows:
            if row.metric == metric:
                return row
        raise KeyError(metric)

    def table(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.rows]).set_index("metric")

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "runs": self.runs,
            "confidence": CONFIDENCE,
            "estimates": {r.metric: {k: _finite(v) for k, v in asdict(r).items() if k != "metric"}
                          for r in self.rows},
            "reference_forecast": self.reference,
        }

    def date_of(self, day: float) -> str:
        if math.isnan(day):
            return "-"
        return (self.start + dt.timedelta(days=int(day))).isoformat()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summarize(results: Results) -> Summary:
    """Return the :class:`Summary` of a job from its tally."""
    scenario, tally = results.scenario, results.tally
    n = tally.n
    rows: list[Estimate] = []

    def prob(metric: str, label: str, k: int) -> None:
        rows.append(Estimate(metric, label, "probability", *proportion(int(k), n), n))

    def mean(metric: str, label: str, sums: np.ndarray, count: int) -> None:
        rows.append(Estimate(metric, label, "mean", *mean_from_sums(sums[0], sums[1], count), count))

    deadlines = [t.deadline.date for t in scenario.topics.values() if t.deadline]
    dates = milestones(scenario.start, scenario.horizon_days, deadlines)
    for i, (name, topic) in enumerate(scenario.topics.items()):
        cats = tally.categories[i]
        prob(f"{name}.p_agreement", f"{topic.label}: P(agreement by horizon)", cats[AGREEMENT])
        if topic.deadline is not None:
            prob(f"{name}.p_default", f"{topic.label}: P(deadline default)", cats[DEFAULT])
            if topic.deadline.interim is not None:
                interim = topic.deadline.interim.label
                prob(f"{name}.p_interim_taken", f"{topic.label}: P({interim} taken at the deadline)",
                     tally.interim_taken[i])
                prob(f"{name}.p_interim", f"{topic.label}: P({interim} in force at horizon)",
                     cats[INTERIM])
        cum = np.cumsum(tally.agreement_days[i])
        for date in dates:
            day = min((date - scenario.start).days, scenario.horizon_days)
            prob(f"{name}.p_agreement_by_{date.isoformat()}",
                 f"{topic.label}: P(agreement by {date.isoformat()})", cum[day])
        median, low, high, m = median_from_histogram(tally.agreement_days[i])
        rows.append(Estimate(f"{name}.median_day", f"{topic.label}: median day of agreement",
                             "median day", median, math.nan, low, high, m))
        mean(f"{name}.mean_value", f"{topic.label}: mean agreed value", tally.value_sums[i],
             int(cats[AGREEMENT]))
    prob("summits.p_any", "P(at least one summit held)", tally.summit_any)
    median, low, high, m = median_from_histogram(tally.first_summit_days)
    rows.append(Estimate("summits.median_first_day", "Median day of the first summit",
                         "median day", median, math.nan, low, high, m))
    for i, name in enumerate(tally.layout.scalars):
        label = {"summits_held": "Summits held", "tension_end": "Tension at horizon",
                 "tension_peak": "Peak tension", "events": "SimPy events per run"}.get(name, name)
        if name.startswith("shocks."):
            label = f"Shocks: {scenario.shocks[name[7:]].label}"
        mean(f"{name}.mean", label, tally.scalars[i], n)
    for i, (name, track) in enumerate(scenario.tracks.items()):
        for j, counter in enumerate(TRACK_COUNTERS):
            mean(f"{name}.{counter}.mean", f"{track.label}: meetings {counter}", tally.tracks[i, j], n)
    from .reference import reference_forecast

    return Summary(scenario.name, n, scenario.start, rows, reference_forecast(scenario))


def render_summary(summary: Summary) -> str:
    """Return the summary as the tables ``sim run`` prints."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    def pct(row: Estimate) -> str:
        if math.isnan(row.estimate):
            return "-"
        return f"{100 * row.estimate:5.1f}% [{100 * row.low:.1f}, {100 * row.high:.1f}]"

    topics = Table(title=f"{summary.name}: {summary.runs:,} runs (95% intervals)")
    for col in ("topic", "P(agreement)", "P(deadline default)", "median agreement date",
                "mean value", "reference"):
        topics.add_column(col, justify="left" if col == "topic" else "right",
                          no_wrap=col == "topic")
    names = [r.metric[: -len(".p_agreement")] for r in summary.rows if r.metric.endswith(".p_agreement")]
    for name in names:
        agree = summary[f"{name}.p_agreement"]
        default = next((r for r in summary.rows if r.metric == f"{name}.p_default"), None)
        median = summary[f"{name}.median_day"]
        value = summary[f"{name}.mean_value"]
        ref = summary.reference.get(name)
        topics.add_row(
            agree.label.split(":")[0],
            pct(agree),
            pct(default) if default else "",
            summary.date_of(median.estimate),
            "-" if math.isnan(value.estimate) else f"{value.estimate:.2f}",
            "" if ref is None else f"{ref:.2f}",
        )
    other = Table(title="Meetings and climate (means per run)")
    for col in ("metric", "estimate", "95% interval"):
        other.add_column(col, justify="left" if col == "metric" else "right")
    p_any = summary["summits.p_any"]
    other.add_row(p_any.label, pct(p_any), "")
    for row in summary.rows:
        if row.metric.endswith((".held.mean", ".cancelled.mean")) or row.metric in (
                "summits_held.mean", "tension_end.mean", "tension_peak.mean"):
            other.add_row(row.label, f"{row.estimate:.2f}", f"[{row.low:.2f}, {row.high:.2f}]")
    buffer = StringIO()
    console = Console(file=buffer, width=140, force_terminal=False, color_system=None)
    console.print(topics)
    console.print("reference: salience- and capability-weighted mean of the sides' ideal points")
    console.print(other)
    return buffer.getvalue()
