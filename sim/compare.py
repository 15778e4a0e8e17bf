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
from .summary import CONFIDENCE, milestones

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


class Comparison:
    """Differences between a reference job and each other job."""

    def __init__(self, names: list[str], rows: list[tuple[str, Difference]], paired: dict[str, bool]):
        self.names = names
        self.reference = names[0]
        self.rows = rows  # (name of the job compared with the reference, difference)
        self.paired = paired

    def table(self) -> pd.DataFrame:
        import pandas as pd

        records = [{"scenario": name, **asdict(d)} for name, d in self.rows]
        return pd.DataFrame(records)

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
        out.append(_proportions(f"{name}.p_agreement", f"{topic.label}: P(agreement by horizon)",
                                agreed_a, agreed_b, paired))
        if topic.deadline is not None:
            out.append(_proportions(f"{name}.p_default", f"{topic.label}: P(deadline default)",
                                    cat_a == DEFAULT, cat_b == DEFAULT, paired))
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


def render_comparison(comparison: Comparison, *, all_metrics: bool = False) -> str:
    """Return the comparison as a table: by default the headline rows only."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Differences from {comparison.reference} (b − a, 95% intervals)")
    for col in ("scenario", "metric", comparison.reference, "b", "difference", "95% interval",
                "test", "p"):
        table.add_column(col, justify="left" if col in ("scenario", "metric", "test") else "right")
    for name, d in comparison.rows:
        if not all_metrics and "_by_" in d.metric:
            continue
        if not all_metrics and d.metric.endswith((".held", ".cancelled")) and d.metric != "meetings.cancelled":
            continue
        fmt = _pct if d.kind == "probability" else _num
        star = " *" if d.significant else ""
        table.add_row(name, d.label, fmt(d.a), fmt(d.b), fmt(d.difference, signed=True) + star,
                      f"[{fmt(d.low, signed=True)}, {fmt(d.high, signed=True)}]", d.test,
                      "-" if math.isnan(d.p_value) else f"{d.p_value:.3g}")
    buffer = StringIO()
    console = Console(file=buffer, width=160, force_terminal=False, color_system=None)
    for line in comparison.describe_pairing():
        console.print(line)
    console.print(table)
    console.print("* significant at the 5% level")
    return buffer.getvalue()


def _pct(x: float, signed: bool = False) -> str:
    if math.isnan(x):
        return "-"
    return f"{100 * x:+.1f} pp" if signed else f"{100 * x:.1f}%"


def _num(x: float, signed: bool = False) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


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
