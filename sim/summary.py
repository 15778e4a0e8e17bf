"""Headline estimates of a job, each with its Monte Carlo standard error and 95% interval.

Proportions use Wilson intervals (``scipy.stats.binomtest``), means t intervals, medians the
distribution-free interval from binomial order statistics.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from .model.compiled import AGREEMENT, DEFAULT, INTERIM, TRACK_COUNTERS

if TYPE_CHECKING:
    import pandas as pd

    from .results import Results
    from .scenario.models import Scenario, Topic
    from .tally import Tally
    from .uncertainty import Spread

CONFIDENCE = 0.95

#: Width of printed tables when there is no terminal to measure and $COLUMNS is unset.
FALLBACK_WIDTH = 100

#: The questions a topic's headline answers, in the order shown: (metric suffix, column
#: header). Columns read as the event they count, so that "P(agreement)" by the horizon is not
#: taken for an agreement before the deadline, which is often the question asked.
HEADLINE = (
    ("p_agreement_before_deadline", "P(agreement) before deadline"),
    ("p_interim_taken", "P(interim) at deadline"),
    ("p_default", "P(deadline default)"),
    ("p_agreement", "P(agreement) by horizon"),
)

#: What the headline columns count, printed under the tables that show them.
HEADLINE_NOTE = (
    "Before deadline: agreed on a day before the deadline's date. Interim at deadline: the "
    "interim arrangement taken when the deadline came. Deadline default: no agreement and no "
    "interim at the deadline, or an interim that ran out, by the horizon. By horizon: agreed "
    "at any time before the horizon, after the deadline too."
)


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


def headline_label(suffix: str, topic: Topic, end: dt.date) -> str:
    """Return the label of a topic's headline metric ``suffix`` (see :data:`HEADLINE`)."""
    deadline = topic.deadline
    if suffix == "p_agreement":
        what = f"P(agreement by the horizon, {end})"
    elif deadline is None:
        raise ValueError(f"{topic.label} has no deadline, so no {suffix}")
    elif suffix == "p_agreement_before_deadline":
        what = f"P(agreement before the deadline, {deadline.date})"
    elif suffix == "p_interim_taken" and deadline.interim is not None:
        what = f"P({deadline.interim.label} taken at the deadline)"
    elif suffix == "p_default":
        what = "P(deadline default)"
    else:
        raise ValueError(f"no headline metric {suffix} for {topic.label}")
    return f"{topic.label}: {what}"


def last_day_before(deadline: dt.date, start: dt.date, horizon: int) -> int:
    """Return the last day number strictly before the deadline's day, within the horizon.

    The deadline fires at the start of its day (sim/model/world.py), so an agreement on that
    day, or after, came too late for it; -1 when the deadline is on the first day or before.
    """
    return min((deadline - start).days - 1, horizon)


SUMMARY_COLUMNS = ["label", "estimate", "se", "low", "high"]


class TableRepr:
    """Shows an object as its table: a title, then ``to_frame()[_columns]``, in a terminal
    and in Jupyter."""

    _columns: list[str] = []
    _html_index = True

    def _title(self) -> str:
        raise NotImplementedError

    def to_frame(self) -> pd.DataFrame:
        raise NotImplementedError

    def __repr__(self) -> str:
        frame = self.to_frame()[self._columns]
        return f"{self._title()}\n{frame.to_string(float_format=lambda v: f'{v:.4g}')}"

    def _repr_html_(self) -> str:
        import html

        frame = self.to_frame()[self._columns]
        return (f"<p><b>{html.escape(self._title())}</b></p>"
                + frame.to_html(index=self._html_index, float_format=lambda v: f"{v:.4g}"))


class Summary(TableRepr):
    """The headline estimates of one job, as rows.

    In a notebook it shows as its table (``repr``, ``_repr_html_``); ``to_frame()`` returns
    that table as a DataFrame and ``summary[metric]`` one :class:`Estimate`. A job whose
    inputs were drawn from priors also has ``uncertainty`` (:class:`~sim.uncertainty.Spread`):
    how much of each headline estimate's spread the unknowns explain; None otherwise.
    """

    _columns = SUMMARY_COLUMNS
    _html_index = True

    def __init__(self, name: str, runs: int, start: dt.date, rows: list[Estimate],
                 reference: dict[str, float] | None = None, *, end: dt.date | None = None,
                 deadlines: dict[str, dt.date] | None = None, uncertainty: Spread | None = None):
        self.name = name
        self.runs = runs
        self.start = start
        self.end = end
        self.rows = rows
        self.reference = reference or {}
        self.deadlines = deadlines or {}  # topic -> deadline date, for topics with one
        self.uncertainty = uncertainty

    def __getitem__(self, metric: str) -> Estimate:
        for row in self.rows:
            if row.metric == metric:
                return row
        raise KeyError(metric)

    def get(self, metric: str) -> Estimate | None:
        """Return the estimate of ``metric``, or None when this job has no such metric."""
        try:
            return self[metric]
        except KeyError:
            return None

    def topics(self) -> list[str]:
        """Return the names of the topics, in the scenario's order."""
        return [r.metric[: -len(".p_agreement")] for r in self.rows
                if r.metric.endswith(".p_agreement")]

    def to_frame(self) -> pd.DataFrame:
        """Return every estimate as a row of a DataFrame indexed by metric."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.rows]).set_index("metric")

    table = to_frame  # the older name, kept for callers that use it

    def _title(self) -> str:
        return f"Summary of {self.name}: {self.runs:,} runs, {CONFIDENCE:.0%} intervals"


    def to_dict(self) -> dict[str, Any]:
        """Return the summary as plain data (summary.json), with the split when there is one."""
        out = {
            "scenario": self.name,
            "runs": self.runs,
            "confidence": CONFIDENCE,
            "estimates": {r.metric: {k: _finite(v) for k, v in asdict(r).items() if k != "metric"}
                          for r in self.rows},
            "reference_forecast": self.reference,
        }
        if self.uncertainty is not None:
            out["uncertainty"] = self.uncertainty.to_dict()
        return out

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

    deadlines = {name: t.deadline.date for name, t in scenario.topics.items() if t.deadline}
    dates = milestones(scenario.start, scenario.horizon_days, list(deadlines.values()))
    for i, (name, topic) in enumerate(scenario.topics.items()):
        cats = tally.categories[i]
        cum = np.cumsum(tally.agreement_days[i])
        for suffix, k in _headline_counts(scenario, topic, tally, i).items():
            prob(f"{name}.{suffix}", headline_label(suffix, topic, scenario.end), k)
        if topic.deadline is not None and topic.deadline.interim is not None:
            prob(f"{name}.p_interim",
                 f"{topic.label}: P({topic.deadline.interim.label} in force at horizon)",
                 cats[INTERIM])
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

    spread = None
    if results.metadata.get("inputs") == "sample":
        from .uncertainty import clustered_rows, input_spread

        spread = input_spread(results)
        rows = clustered_rows(results, rows)  # runs of one draw share inputs: not independent
    return Summary(scenario.name, n, scenario.start, rows, reference_forecast(scenario),
                   end=scenario.end, deadlines=deadlines, uncertainty=spread)


def _headline_counts(scenario: Scenario, topic: Topic, tally: Tally, i: int) -> dict[str, int]:
    """Return the runs that had each headline event of topic ``i``, in :data:`HEADLINE` order."""
    cats = tally.categories[i]
    counts = {"p_agreement": int(cats[AGREEMENT])}
    if topic.deadline is not None:
        before = last_day_before(topic.deadline.date, scenario.start, scenario.horizon_days)
        counts["p_agreement_before_deadline"] = int(tally.agreement_days[i][: before + 1].sum())
        counts["p_default"] = int(cats[DEFAULT])
        if topic.deadline.interim is not None:
            counts["p_interim_taken"] = int(tally.interim_taken[i])
    return {suffix: counts[suffix] for suffix, _ in HEADLINE if suffix in counts}


def terminal_width() -> int:
    """Return the width to print tables at: $COLUMNS, else the terminal's, else 100."""
    return shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns


def render_text(*items: Any, width: int | None = None) -> str:
    """Return rich renderables (tables, text) as plain text, ``width`` columns wide.

    The default width is the terminal's (:func:`terminal_width`): rich wraps and folds the
    cells of a table to fit it rather than cutting them off.
    """
    from io import StringIO

    from rich.console import Console

    buffer = StringIO()
    console = Console(file=buffer, width=width or terminal_width(), force_terminal=False,
                      color_system=None)
    for item in items:
        console.print(item)
    return buffer.getvalue()


def natural_width(renderable: Any) -> int:
    """Return the columns a rich renderable takes when nothing has to wrap."""
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(width=10_000)
    return Measurement.get(console, console.options, renderable).maximum


def interval_text(row: Estimate | None, stacked: bool = False) -> str:
    """Return a probability as "32.8% [30.8, 34.9]" (percent, with its interval).

    ``stacked`` puts the interval on a line of its own.
    """
    if row is None:
        return ""
    if math.isnan(row.estimate):
        return "-"
    gap = "\n" if stacked else " "
    return f"{100 * row.estimate:.1f}%{gap}[{100 * row.low:.1f}, {100 * row.high:.1f}]"


def headline_columns(summary: Summary) -> list[tuple[str, str]]:
    """Return the (metric suffix, header) of the headline columns some topic has."""
    out = []
    for suffix, header in HEADLINE:
        if any(summary.get(f"{t}.{suffix}") for t in summary.topics()):
            if suffix == "p_agreement" and summary.end is not None:
                header = f"{header} ({summary.end})"
            out.append((suffix, header))
    return out


def render_summary(summary: Summary, *, width: int | None = None) -> str:
    """Return the summary as the tables ``sim run`` prints, ``width`` columns wide.

    The default width is the terminal's. With inputs drawn from priors and more than one run
    per draw, each headline probability also shows its range across the unknowns, and lines
    under the table say what that range is and how much of the variance the unknowns explain.
    """
    width = width or terminal_width()
    headline = _headline_table(summary)
    if natural_width(headline) > width:  # narrow: estimates above their intervals, not split
        headline = _headline_table(summary, stacked=True)
    notes = [HEADLINE_NOTE] if summary.deadlines else []
    notes.append("reference: salience- and capability-weighted mean of the sides' ideal points")
    return render_text(headline, *_spread_notes(summary), _agreements_table(summary), *notes,
                       _meetings_table(summary), width=width)


def percent_text(p: float) -> str:
    """Return a probability as a short percentage: "8%", "61%", "0.4%" below 1%."""
    if math.isnan(p):
        return "-"
    return f"{100 * p:.1f}%" if 0 < p < 0.01 else f"{100 * p:.0f}%"


def spread_text(split: dict[str, Any] | None, kind: str = "probability") -> str:
    """Return a range across the unknowns, "8%-61%" (one value where its ends print alike),
    or "" without one."""
    if split is None or math.isnan(split["p10"]):
        return ""
    if kind == "probability":
        low, high = percent_text(split["p10"]), percent_text(split["p90"])
    else:
        low, high = f"{split['p10']:.2f}", f"{split['p90']:.2f}"
    return low if low == high else f"{low}-{high}"


def _spread_notes(summary: Summary) -> list[str]:
    """Return the lines under the headline table about the unknowns (none without priors)."""
    spread = summary.uncertainty
    if spread is None:
        return []
    if not spread.split:
        return [spread.describe()]
    shares = []
    for name in summary.topics():
        row = spread.get(f"{name}.p_agreement")
        if row is not None:
            share = row["share_unknowns"]
            shares.append(f"{row['label'].split(':')[0]} "
                          f"{'-' if math.isnan(share) else f'{100 * share:.0f}%'}")
    return [spread.describe(), "Share of the run-to-run variance of agreeing by the horizon "
            "that is due to the unknowns (the rest is events): " + ", ".join(shares) + "."]


def _topic_cell(summary: Summary, name: str) -> str:
    label = summary[f"{name}.p_agreement"].label.split(":")[0]
    deadline = summary.deadlines.get(name)
    return label if deadline is None else f"{label}\ndeadline {deadline}"


def _title(summary: Summary) -> str:
    spread = summary.uncertainty
    if spread is not None and spread.split:
        return (f"{summary.name}: {summary.runs:,} runs, {spread.draws:,} input draws of "
                f"{spread.replications} (95% intervals)")
    return f"{summary.name}: {summary.runs:,} runs (95% intervals)"


def _headline_cell(summary: Summary, metric: str, stacked: bool) -> str:
    """Return a headline probability with its interval and, if known, its range across the
    unknowns on the line below ("unknowns: 8%-61%")."""
    text = interval_text(summary.get(metric), stacked)
    spread = summary.uncertainty.get(metric) if summary.uncertainty is not None else None
    extra = spread_text(spread)
    return f"{text}\nunknowns: {extra}" if text and extra else text


def _headline_table(summary: Summary, stacked: bool = False):
    from rich.table import Table

    table = Table(title=_title(summary))
    table.add_column("topic", min_width=12, overflow="fold")
    columns = headline_columns(summary)
    for _, header in columns:
        table.add_column(header, justify="right", overflow="fold")
    for name in summary.topics():
        table.add_row(_topic_cell(summary, name),
                      *(_headline_cell(summary, f"{name}.{suffix}", stacked)
                        for suffix, _ in columns))
    return table


def _agreements_table(summary: Summary):
    from rich.table import Table

    table = Table(title="Agreements: when, and where on the scale")
    for header in ("topic", "median agreement date", "mean agreed value", "reference"):
        table.add_column(header, justify="left" if header == "topic" else "right",
                         overflow="fold")
    for name in summary.topics():
        value = summary[f"{name}.mean_value"].estimate
        ref = summary.reference.get(name)
        table.add_row(summary[f"{name}.p_agreement"].label.split(":")[0],
                      summary.date_of(summary[f"{name}.median_day"].estimate),
                      "-" if math.isnan(value) else f"{value:.2f}",
                      "" if ref is None else f"{ref:.2f}")
    return table


def _meetings_table(summary: Summary):
    from rich.table import Table

    spread = summary.uncertainty
    split = spread is not None and spread.split
    other = Table(title="Meetings and climate (means per run)")
    columns = ["metric", "estimate", "95% interval"] + (["across the unknowns"] if split else [])
    for col in columns:
        other.add_column(col, justify="left" if col == "metric" else "right", overflow="fold")

    def spread_of(metric: str, kind: str) -> list[str]:
        if not split:
            return []
        return [spread_text(spread.get(metric), kind)]

    p_any = summary["summits.p_any"]
    other.add_row(p_any.label, interval_text(p_any), "", *spread_of("summits.p_any", "probability"))
    for row in summary.rows:
        if row.metric.endswith((".held.mean", ".cancelled.mean")) or row.metric in (
                "summits_held.mean", "tension_end.mean", "tension_peak.mean"):
            other.add_row(row.label, f"{row.estimate:.2f}", f"[{row.low:.2f}, {row.high:.2f}]",
                          *spread_of(row.metric, "mean"))
    return other
