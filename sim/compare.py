"""Comparing jobs: differences of headline metrics with 95% intervals and tests.

When two jobs share their seed and run indices (common random numbers), run ``i`` of one
and run ``i`` of the other drew the same random numbers, so differences are taken run by
run (paired): McNemar's exact test for proportions, the Wilcoxon signed-rank test for counts.
Otherwise the samples are independent: Fisher's exact test for proportions, Mann-Whitney
for counts. Agreed values are compared as distributions (Kolmogorov-Smirnov), always
unpaired, since the runs that agree differ between scenarios.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from .errors import InputError
from .model.compiled import AGREEMENT, DEFAULT
from .summary import (
    CONFIDENCE,
    HEADLINE,
    TableRepr,
    headline_label,
    last_day_before,
    milestones,
)

if TYPE_CHECKING:
    import pandas as pd

    from .results import Results

Z = stats.norm.ppf(0.5 + CONFIDENCE / 2)


@dataclass(frozen=True)
class Difference:
    """One metric in two jobs: both estimates, b − a with its interval, and a test."""

    metric: str
    label: str
    kind: str  # "probability", "mean" or "distribution"
    a: float
    b: float
    difference: float
    low: float
    high: float
    test: str
    p_value: float
    paired: bool
    n_a: int
    n_b: int

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - CONFIDENCE


#: The columns a Comparison shows as its repr.
COMPARISON_COLUMNS = ["scenario", "metric", "a", "b", "difference", "low", "high", "p_value"]


class Comparison(TableRepr):
    """Differences between a reference job and each other job.

    In a notebook it shows as its table (``repr``, ``_repr_html_``); ``to_frame()`` returns
    every difference as a row of a DataFrame.
    """

    _columns = COMPARISON_COLUMNS
    _html_index = False

    def __init__(self, names: list[str], rows: list[tuple[str, Difference]], paired: dict[str, bool]):
        self.names = names
        self.reference = names[0]
        self.rows = rows  # (name of the job compared with the reference, difference)
        self.paired = paired

    def to_frame(self) -> pd.DataFrame:
        """Return one row per (compared job, metric): both estimates, b − a and its test."""
        import pandas as pd

        records = [{"scenario": name, **asdict(d)} for name, d in self.rows]
        return pd.DataFrame(records)

    table = to_frame  # the older name, kept for callers that use it

    def _title(self) -> str:
        return (f"Differences from {self.reference} (a: {self.reference}, b: "
                f"{', '.join(self.names[1:])}; {CONFIDENCE:.0%} intervals)")


    def get(self, metric: str, scenario: str | None = None) -> Difference:
        for name, d in self.rows:
            if d.metric == metric and (scenario is None or name == scenario):
                return d
        raise KeyError(metric)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "compared": self.names[1:],
            "paired": self.paired,
            "confidence": CONFIDENCE,
            "differences": [{"scenario": n, **{k: _clean(v) for k, v in asdict(d).items()}}
                            for n, d in self.rows],
        }

    def describe_pairing(self) -> list[str]:
        out = []
        for name in self.names[1:]:
            how = ("paired by run: same seed and run indices (common random numbers)"
                   if self.paired[name] else
                   "independent samples: seeds or run counts differ")
            out.append(f"{name} vs {self.reference}: {how}")
        return out


def _clean(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def is_paired(a: Results, b: Results) -> bool:
    """Return whether two jobs share seed and runs, so run i of each used the same numbers."""
    return a.seed == b.seed and a.runs == b.runs


def compare(*results: Results, metrics: list[str] | None = None) -> Comparison:
    """Return the differences of each job from the first, for every headline metric.

    ``metrics`` keeps only metrics whose name contains one of the given strings
    (e.g. ``["start.", "summits"]``).
    """
    if len(results) < 2:
        raise InputError("compare needs at least two results")
    base = results[0]
    for other in results[1:]:
        if list(other.scenario.topics) != list(base.scenario.topics):
            missing = set(base.scenario.topics) ^ set(other.scenario.topics)
            if missing:
                raise InputError(f"{other.name} and {base.name} have different topics: "
                                 f"{', '.join(sorted(missing))}")
    names = _unique_names([r.name for r in results])
    rows, paired = [], {}
    for name, other in zip(names[1:], results[1:]):
        pair = is_paired(base, other)
        paired[name] = pair
        for diff in _differences(base, other, pair):
            if metrics is None or any(m in diff.metric for m in metrics):
                rows.append((name, diff))
    if metrics is not None and not rows:
        raise InputError(f"no metric matches {', '.join(metrics)}")
    return Comparison(names, rows, paired)


def _unique_names(names: list[str]) -> list[str]:
    """Return the names with repeats told apart: baseline, baseline (2), ..."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def _differences(a: Results, b: Results, paired: bool) -> list[Difference]:
    scenario = a.scenario
    out = []
    deadlines = [t.deadline.date for t in scenario.topics.values() if t.deadline]
    dates = milestones(scenario.start, min(a.scenario.horizon_days, b.scenario.horizon_days), deadlines)
    for name, topic in scenario.topics.items():
        cat_a, cat_b = a.column(f"{name}.outcome"), b.column(f"{name}.outcome")
        agreed_a, agreed_b = cat_a == AGREEMENT, cat_b == AGREEMENT
        out += _headline_differences(a, b, name, paired)
        day_a, day_b = a.column(f"{name}.day"), b.column(f"{name}.day")
        for date in dates:
            da, db = (date - a.scenario.start).days, (date - b.scenario.start).days
            out.append(_proportions(
                f"{name}.p_agreement_by_{date.isoformat()}",
                f"{topic.label}: P(agreement by {date.isoformat()})",
                agreed_a & (np.floor(day_a) <= da), agreed_b & (np.floor(day_b) <= db), paired))
        va, vb = a.column(f"{name}.value")[agreed_a], b.column(f"{name}.value")[agreed_b]
        out.append(_distributions(f"{name}.value", f"{topic.label}: agreed value", va, vb))
    out.append(_proportions("summits.p_any", "P(at least one summit held)",
                            a.column("summits_held") > 0, b.column("summits_held") > 0, paired))
    out.append(_counts("summits_held", "Summits held per run", a.column("summits_held"),
                       b.column("summits_held"), paired))
    tracks = [t for t in scenario.tracks if t in b.scenario.tracks]
    cancelled_a = sum(a.column(f"{t}.cancelled").astype(float) for t in tracks)
    cancelled_b = sum(b.column(f"{t}.cancelled").astype(float) for t in tracks)
    out.append(_counts("meetings.cancelled", "Meetings cancelled per run (all tracks)",
                       cancelled_a, cancelled_b, paired))
    for t in tracks:
        label = scenario.tracks[t].label
        for counter in ("held", "cancelled"):
            out.append(_counts(f"{t}.{counter}", f"{label}: meetings {counter} per run",
                               a.column(f"{t}.{counter}").astype(float),
                               b.column(f"{t}.{counter}").astype(float), paired))
    out.append(_counts("tension_end", "Tension at horizon", a.column("tension_end"),
                       b.column("tension_end"), paired))
    return out


def _headline_differences(a: Results, b: Results, topic: str, paired: bool) -> list[Difference]:
    """Return the differences of a topic's headline metrics, in :data:`HEADLINE` order.

    A deadline's metrics are compared where both jobs have the deadline, labelled with the
    first job's date. An interim is compared where either job has one: without it, a job
    takes it in no run.
    """
    events_a, events_b = _headline_events(a, topic), _headline_events(b, topic)
    out = []
    for suffix, _ in HEADLINE:
        xa, xb = events_a.get(suffix), events_b.get(suffix)
        if xa is None and xb is None:
            continue
        spec = (a if xa is not None else b).scenario.topics[topic]  # the one to label with
        if suffix == "p_interim_taken":
            xa = np.zeros(a.runs, bool) if xa is None else xa
            xb = np.zeros(b.runs, bool) if xb is None else xb
        if xa is None or xb is None:
            continue
        label = headline_label(suffix, spec, a.scenario.end)
        out.append(_proportions(f"{topic}.{suffix}", label, xa, xb, paired))
    return out


def _headline_events(res: Results, topic: str) -> dict[str, np.ndarray]:
    """Return, per headline metric of ``topic`` in ``res``, whether each run had the event."""
    spec = res.scenario.topics[topic]
    outcome = res.column(f"{topic}.outcome")
    events = {"p_agreement": outcome == AGREEMENT}
    if spec.deadline is None:
        return events
    before = last_day_before(spec.deadline.date, res.scenario.start, res.scenario.horizon_days)
    day = np.floor(res.column(f"{topic}.day"))
    events["p_agreement_before_deadline"] = (outcome == AGREEMENT) & (day <= before)
    events["p_default"] = outcome == DEFAULT
    if spec.deadline.interim is not None:  # the day it was taken; NaN where it was not
        events["p_interim_taken"] = ~np.isnan(res.column(f"{topic}.interim_day"))
    return events


def _proportions(metric: str, label: str, xa: np.ndarray, xb: np.ndarray,
                 paired: bool) -> Difference:
    na, nb = len(xa), len(xb)
    pa, pb = xa.mean(), xb.mean()
    diff = pb - pa
    if paired:
        d = xb.astype(float) - xa.astype(float)
        se = d.std(ddof=1) / math.sqrt(na) if na > 1 else math.nan
        only_b, only_a = int((xb & ~xa).sum()), int((xa & ~xb).sum())
        discordant = only_a + only_b
        p = stats.binomtest(only_b, discordant, 0.5).pvalue if discordant else 1.0
        test = "McNemar exact"
    else:
        se = math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
        ka, kb = int(xa.sum()), int(xb.sum())
        p = stats.fisher_exact([[kb, nb - kb], [ka, na - ka]]).pvalue
        test = "Fisher exact"
    low, high = (diff - Z * se, diff + Z * se) if se > 0 else (diff, diff)
    return Difference(metric, label, "probability", pa, pb, diff, low, high, test, float(p),
                      paired, na, nb)


def _counts(metric: str, label: str, xa: np.ndarray, xb: np.ndarray, paired: bool) -> Difference:
    xa, xb = np.asarray(xa, float), np.asarray(xb, float)
    na, nb = len(xa), len(xb)
    diff = xb.mean() - xa.mean()
    if paired:
        d = xb - xa
        se = d.std(ddof=1) / math.sqrt(na)
        dof = na - 1
        p = stats.wilcoxon(d).pvalue if np.any(d != 0) else 1.0
        test = "Wilcoxon signed-rank"
    else:
        va, vb = xa.var(ddof=1) / na, xb.var(ddof=1) / nb
        se = math.sqrt(va + vb)
        dof = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1)) if va + vb > 0 else 1
        p = stats.mannwhitneyu(xa, xb).pvalue if np.ptp(np.r_[xa, xb]) > 0 else 1.0
        test = "Mann-Whitney U"
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, dof) * se if se > 0 else 0.0
    return Difference(metric, label, "mean", xa.mean(), xb.mean(), diff, diff - half, diff + half,
                      test, float(p), paired, na, nb)


def _distributions(metric: str, label: str, xa: np.ndarray, xb: np.ndarray) -> Difference:
    na, nb = len(xa), len(xb)
    if na < 2 or nb < 2:
        nan = math.nan
        return Difference(metric, label, "distribution", xa.mean() if na else nan,
                          xb.mean() if nb else nan, nan, nan, nan, "Kolmogorov-Smirnov", nan,
                          False, na, nb)
    va, vb = xa.var(ddof=1) / na, xb.var(ddof=1) / nb
    se = math.sqrt(va + vb)
    diff = xb.mean() - xa.mean()
    dof = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1)) if se > 0 else 1
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, dof) * se
    p = stats.ks_2samp(xa, xb).pvalue
    return Difference(metric, label, "distribution", xa.mean(), xb.mean(), diff, diff - half,
                      diff + half, "Kolmogorov-Smirnov", float(p), False, na, nb)


def shown(d: Difference, all_metrics: bool = False) -> bool:
    """Return whether a difference is shown by default: dated and per-track rows are not."""
    if all_metrics:
        return True
    per_track = d.metric.endswith((".held", ".cancelled")) and d.metric != "meetings.cancelled"
    return "_by_" not in d.metric and not per_track


def is_headline(d: Difference) -> bool:
    """Return whether a difference answers a headline question (see summary.HEADLINE)."""
    return d.metric == "summits.p_any" or d.metric.endswith(
        tuple(f".{suffix}" for suffix, _ in HEADLINE))


def headline_rows(comparison: Comparison) -> list[tuple[str, Difference]]:
    """Return the headline differences: significant ones first, larger ones first within."""
    rows = [(name, d) for name, d in comparison.rows if is_headline(d)]
    return sorted(rows, key=lambda row: (not row[1].significant, -abs(_size(row[1]))))


def _size(d: Difference) -> float:
    return 0.0 if math.isnan(d.difference) else d.difference


def render_comparison(comparison: Comparison, *, all_metrics: bool = False,
                      width: int | None = None) -> str:
    """Return the comparison as text, one table per job compared with the first.

    By default the headline rows only; ``width`` defaults to the terminal's.
    """
    from .summary import render_text

    tables = [_comparison_table(comparison, name, all_metrics) for name in comparison.names[1:]]
    return render_text(*comparison.describe_pairing(), *tables,
                       "* significant at the 5% level", width=width)


def _comparison_table(comparison: Comparison, name: str, all_metrics: bool):
    from rich.table import Table

    ref = comparison.reference
    rows = [d for other, d in comparison.rows if other == name and shown(d, all_metrics)]
    # one test per kind of metric within a pair of jobs: named once, under the table, which
    # leaves the room of a column to the metrics' labels
    tests = "; ".join(f"{t} ({_KIND_NAMES[k]})" for k, t in {d.kind: d.test for d in rows}.items())
    table = Table(title=f"Differences from {ref}: {name} − {ref} (95% intervals)",
                  caption=f"tests: {tests}" if tests else None)
    for col in ("metric", ref, name, "difference", "95% interval", "p"):
        table.add_column(col, justify="left" if col == "metric" else "right", overflow="fold")
    for d in rows:
        star = " *" if d.significant else ""
        table.add_row(d.label, value_text(d.a, d.kind), value_text(d.b, d.kind),
                      difference_text(d) + star, interval_of(d),
                      "-" if math.isnan(d.p_value) else f"{d.p_value:.3g}")
    return table


_KIND_NAMES = {"probability": "probabilities", "mean": "means per run",
               "distribution": "agreed values"}


def value_text(x: float, kind: str, *, signed: bool = False, nonzero: bool = False,
               missing: str = "-") -> str:
    """Return a table cell: probabilities in percent (differences in points), else numbers.

    With ``nonzero`` a non-zero ``x`` gets the decimals it takes not to read as 0.
    """
    if math.isnan(x):
        return missing
    if kind == "probability":
        return _decimals(100 * x, 1, signed, nonzero) + (" pp" if signed else "%")
    return _decimals(x, 2, signed, nonzero)


def difference_text(d: Difference, missing: str = "-") -> str:
    """Return b − a; a significant difference never reads as +0.0 pp or +0.00."""
    return value_text(d.difference, d.kind, signed=True, nonzero=d.significant, missing=missing)


def interval_of(d: Difference, missing: str = "-") -> str:
    """Return the 95% interval of b − a as "[-1.2 pp, +3.4 pp]"."""
    return (f"[{value_text(d.low, d.kind, signed=True, missing=missing)}, "
            f"{value_text(d.high, d.kind, signed=True, missing=missing)}]")


def _decimals(x: float, decimals: int, signed: bool, nonzero: bool) -> str:
    if nonzero and x != 0 and round(abs(x), decimals) == 0:
        decimals = -math.floor(math.log10(abs(x)))  # down to the first significant digit
    return f"{x:+.{decimals}f}" if signed else f"{x:.{decimals}f}"


def scenario_differences(a: Results, b: Results) -> list[tuple[str, Any, Any]]:
    """Return (dotted key, value in a, value in b) for every key where the scenarios differ."""
    from .scenario import scenario_to_dict

    flat_a, flat_b = _flatten(scenario_to_dict(a.scenario)), _flatten(scenario_to_dict(b.scenario))
    keys = sorted(set(flat_a) | set(flat_b))
    missing = "(absent)"
    return [(k, flat_a.get(k, missing), flat_b.get(k, missing)) for k in keys
            if flat_a.get(k, missing) != flat_b.get(k, missing)]


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}
