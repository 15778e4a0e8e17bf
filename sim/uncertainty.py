"""What is known and what is not: how much of the spread of an outcome the unknowns explain.

A scenario with priors draws its uncertain inputs per run. With ``--replications R``, input
draw ``d`` is played by the ``R`` runs ``i`` with ``i // R == d``, each with its own event
streams. A per-run quantity ``Y`` (an event happened: 0 or 1; a count) then varies for two
reasons, and the law of total variance splits its variance exactly::

    Var(Y) = Var_d(E[Y | d])  +  E_d[Var(Y | d)]
             the unknowns        the events

Both parts are estimated without bias from ``D`` draws of ``R`` runs each, as in a one-way
random-effects analysis of variance: the within-draw variance ``s_w^2`` (pooled over draws,
``D (R - 1)`` degrees of freedom) estimates the events' part, and since the variance of the
draw means ``s_b^2`` also holds the event noise of ``R`` runs, ``s_b^2 - s_w^2 / R`` estimates
the unknowns' part. That difference is floored at 0 (it can come out negative by chance when
the unknowns matter little), which biases it up slightly near 0; the share due to the
unknowns, a ratio of the two estimates, is consistent rather than unbiased. Their standard
errors are delete-one-draw jackknife ones.

The split uses complete draws only (``R`` runs each): a job stopped early (``--target-se``)
may end in a partial draw, whose runs still count in the overall estimate and its standard
error, but not in the split or the ranges.

Runs of one draw share their inputs, so they are not independent: the standard error of an
overall estimate is the cluster-robust one, clustered by draw (:func:`clustered_se`). It is
larger than the naive one, which treats the runs as independent, by about
``sqrt(1 + (R - 1) * share)``. A summary of such a job shows these standard errors and
intervals to match (:func:`clustered_rows`).

Ranges across the unknowns are the central 80% (10th to 90th percentiles) of the per-draw
estimates. A per-draw estimate from ``R`` runs carries event noise, so the raw range
(``draws_p10`` .. ``draws_p90``) is wider than the spread due to the unknowns alone. The
de-noised range (``p10`` .. ``p90``, shown in the headline) pulls every per-draw estimate
toward their mean by ``sqrt(var_unknowns / s_b^2)``, so that their variance is the estimated
variance due to the unknowns: exact for the variance, an approximation for the percentiles of a
skewed spread, and the same as the raw range as ``R`` grows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .model.compiled import AGREEMENT, INTERIM, TRACK_COUNTERS

if TYPE_CHECKING:
    import pandas as pd

    from .results import Results
    from .summary import Estimate

#: The central range shown across the unknowns: its lower and upper quantile.
QUANTILES = (0.10, 0.90)

#: What :meth:`Spread.describe` says when the priors were sampled with one run per draw.
NO_REPLICATIONS = ("Inputs drawn from their priors, one run per draw: how much of the spread "
                   "is due to the unknowns and how much to events can't be split without "
                   "--replications.")


@dataclass(frozen=True)
class Split:
    """One per-run quantity: its overall estimate, standard errors and variance split.

    ``var_unknowns`` is Var_d(E[Y|d]), ``var_events`` E_d[Var(Y|d)], ``share_unknowns`` the
    first over their sum; the ``*_se`` of the split are jackknife standard errors over draws.
    Split fields are NaN with fewer than 2 complete draws or ``replications`` < 2.
    """

    estimate: float
    se: float  # clustered by draw
    se_naive: float  # as if runs were independent: sample SD / sqrt(runs)
    var_unknowns: float
    var_events: float
    share_unknowns: float
    var_unknowns_se: float
    var_events_se: float
    share_se: float
    p10: float  # central 80% of the per-draw estimates, de-noised
    p90: float
    draws_p10: float  # central 80% of the raw per-draw estimates
    draws_p90: float
    draws: int  # complete draws used for the split
    replications: int


def draws_of(runs: np.ndarray, replications: int) -> np.ndarray:
    """Return the input draw of each run: ``run // replications``."""
    return np.asarray(runs, dtype=np.int64) // max(int(replications), 1)


def clustered_se(values: np.ndarray, draws: np.ndarray,
                 weights: np.ndarray | None = None) -> float:
    """Return the standard error of ``sum(values) / sum(weights)``, clustered by draw.

    The cluster-robust (sandwich) estimator with the usual ``G / (G - 1)`` factor for ``G``
    draws; for ``G`` equal draws of a mean it is the variance of the draw means over ``G``.
    ``weights`` (default 1 per run) make it the linearised SE of a ratio, e.g. the mean agreed
    value over the runs that agreed.
    """
    y = np.asarray(values, dtype=float)
    x = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    _, group = np.unique(draws, return_inverse=True)
    clusters = int(group.max()) + 1 if len(group) else 0
    total = x.sum()
    if clusters < 2 or total == 0:
        return math.nan
    residual = y - (y.sum() / total) * x
    per_draw = np.bincount(group, weights=residual, minlength=clusters)
    return math.sqrt(clusters / (clusters - 1) * float(per_draw @ per_draw)) / float(total)


def split(values: np.ndarray, replications: int, draws: np.ndarray | None = None) -> Split:
    """Return the :class:`Split` of a per-run quantity given in run order.

    ``draws`` is each run's input draw (default: position // ``replications``); only draws
    with exactly ``replications`` runs enter the variance split and the ranges.
    """
    y = np.asarray(values, dtype=float)
    n, r = len(y), int(replications)
    draws = draws_of(np.arange(n), r) if draws is None else np.asarray(draws)
    estimate = float(y.mean()) if n else math.nan
    se_naive = float(y.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    se = clustered_se(y, draws) if r > 1 else se_naive
    means, wss = _complete_draws(y, draws, r)
    parts = _components(means, wss, r)
    errors = _jackknife(means, wss, r)
    ranges = _ranges(means, parts[0], r)
    return Split(estimate, se, se_naive, *parts, *errors, *ranges, len(means), r)


def _complete_draws(y: np.ndarray, draws: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and within sum of squares of each draw with ``r`` runs."""
    labels, group = np.unique(draws, return_inverse=True)
    count = np.bincount(group, minlength=len(labels))
    mean = np.bincount(group, weights=y, minlength=len(labels)) / np.maximum(count, 1)
    # deviations from each draw's own mean: no cancellation, even for large counts
    wss = np.bincount(group, weights=(y - mean[group]) ** 2, minlength=len(labels))
    keep = count == r
    return mean[keep], wss[keep]


def _components(means: np.ndarray, wss: np.ndarray, r: int) -> tuple[float, float, float]:
    """Return (var_unknowns, var_events, share_unknowns) from complete draws."""
    d = len(means)
    if r < 2 or d < 2:
        return math.nan, math.nan, math.nan
    within = float(wss.sum()) / (d * (r - 1))
    between = max(float(means.var(ddof=1)) - within / r, 0.0)
    total = between + within
    return between, within, between / total if total > 0 else math.nan


def _jackknife(means: np.ndarray, wss: np.ndarray, r: int) -> tuple[float, float, float]:
    """Return the delete-one-draw jackknife standard errors of the three components."""
    d = len(means)
    if r < 2 or d < 3:
        return math.nan, math.nan, math.nan
    c = means - means.mean()
    s_b2 = (float(c @ c) - c * c * d / (d - 1)) / (d - 2)  # variance of the other draw means
    within = (float(wss.sum()) - wss) / ((d - 1) * (r - 1))
    between = np.maximum(s_b2 - within / r, 0.0)
    total = between + within
    share = np.divide(between, total, out=np.full(d, np.nan), where=total > 0)

    def se(t: np.ndarray) -> float:
        return math.sqrt((d - 1) / d * float(((t - t.mean()) ** 2).sum()))

    return se(between), se(within), se(share)


def _ranges(means: np.ndarray, between: float, r: int) -> tuple[float, float, float, float]:
    """Return the de-noised and the raw central 80% of the per-draw estimates."""
    if len(means) < 2:
        return (math.nan,) * 4
    low, high = (float(q) for q in np.quantile(means, QUANTILES))
    spread = float(means.var(ddof=1))
    if r < 2 or math.isnan(between):
        return math.nan, math.nan, low, high
    shrink = math.sqrt(between / spread) if spread > 0 else 0.0
    centre = float(means.mean())
    return centre + shrink * (low - centre), centre + shrink * (high - centre), low, high


# --- the quantities of a job -------------------------------------------------------------------


def replications(results: Results) -> int:
    """Return the runs per input draw of a job (1 when its metadata does not say)."""
    value = results.metadata.get("replications")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else 1


def inputs_mode(results: Results) -> str:
    """Return how a job set its uncertain inputs: "sample", "point" or "none"."""
    mode = results.metadata.get("inputs")
    return mode if mode in ("sample", "point") else "none"


def job_draws(results: Results) -> np.ndarray:
    """Return the input draw of each run of a job, in run order.

    The outcomes hold runs 0 .. runs - 1 sorted by run (a stored job is checked for that when
    loaded), so the run numbers are their positions.
    """
    return draws_of(np.arange(results.runs), replications(results))


class _Quantities:
    """The per-run quantities of a job, each outcome column read once (from Parquet on disk)."""

    def __init__(self, results: Results):
        self.results = results
        self._columns: dict[str, np.ndarray] = {}
        self._events: dict[str, dict[str, np.ndarray]] = {}

    def column(self, name: str) -> np.ndarray:
        if name not in self._columns:
            self._columns[name] = self.results.column(name)
        return self._columns[name]

    def events(self, topic: str) -> dict[str, np.ndarray]:
        """Return whether each run had each headline event of ``topic`` (as in the comparison)."""
        from .compare import _headline_events

        if topic not in self._events:
            self._events[topic] = _headline_events(self.results, topic)
        return self._events[topic]

    def values(self, metric: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Return the per-run values (and weights) whose mean is summary ``metric``, or None.

        Weights are None for a mean over all runs, and the runs that agreed for a mean agreed
        value; medians have no such values.
        """
        scenario, col = self.results.scenario, self.column
        name, _, what = metric.partition(".")
        if name in scenario.topics:
            return self._topic_values(name, what)
        if metric == "summits.p_any":
            return ~np.isnan(col("first_summit_day")), None
        stem = metric.removesuffix(".mean")
        if stem == metric:
            return None
        if stem in self.results.tally.layout.scalars:
            return col(stem), None
        track, _, counter = stem.partition(".")
        if track in scenario.tracks and counter in TRACK_COUNTERS:
            return col(stem), None
        return None

    def _topic_values(self, topic: str, what: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        import datetime as dt

        col, scenario = self.column, self.results.scenario
        events = self.events(topic)
        if what in events:
            return events[what], None
        if what == "p_interim":
            return col(f"{topic}.outcome") == INTERIM, None
        agreed = col(f"{topic}.outcome") == AGREEMENT
        if what == "mean_value":
            return np.where(agreed, col(f"{topic}.value"), 0.0), agreed.astype(float)
        if what.startswith("p_agreement_by_"):
            date = dt.date.fromisoformat(what.removeprefix("p_agreement_by_"))
            day = min((date - scenario.start).days, scenario.horizon_days)
            return agreed & (np.floor(col(f"{topic}.day")) <= day), None
        return None


def headline_quantities(results: Results) -> dict[str, tuple[str, str, np.ndarray]]:
    """Return the per-run quantities of the split table: metric -> (label, kind, values).

    Each topic's headline events (as in the comparison, :mod:`sim.compare`), P(at least one
    summit), summits held and each track's meetings held; metrics named as in the summary.
    """
    from .summary import HEADLINE, headline_label

    scenario, quantities = results.scenario, _Quantities(results)
    out: dict[str, tuple[str, str, np.ndarray]] = {}
    for name, topic in scenario.topics.items():
        events = quantities.events(name)
        for suffix, _ in HEADLINE:
            if suffix in events:
                out[f"{name}.{suffix}"] = (headline_label(suffix, topic, scenario.end),
                                           "probability", events[suffix])
    out["summits.p_any"] = ("P(at least one summit held)", "probability",
                            quantities.values("summits.p_any")[0])  # type: ignore[index]
    out["summits_held.mean"] = ("Summits held", "mean", quantities.column("summits_held"))
    for name, track in scenario.tracks.items():
        out[f"{name}.held.mean"] = (f"{track.label}: meetings held", "mean",
                                    quantities.column(f"{name}.held"))
    return out


# --- tables --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """The split of a job with sampled inputs: how many draws, and the table (R > 1 only)."""

    inputs: str
    replications: int
    draws: int  # complete draws in the split
    runs_used: int  # runs in complete draws
    runs_partial: int  # runs of a last, incomplete draw: left out of the split
    table: pd.DataFrame | None  # None with one run per draw

    @property
    def split(self) -> bool:
        """Whether the variance could be split (more than one run per draw)."""
        return self.table is not None

    def get(self, metric: str) -> dict[str, Any] | None:
        """Return one metric's row of the table as a dict, or None."""
        if self.table is None or metric not in self.table.index:
            return None
        return self.table.loc[metric].to_dict()

    def describe(self) -> str:
        """Return one sentence saying what the ranges across the unknowns are."""
        if not self.split:
            return NO_REPLICATIONS
        low, high = (round(100 * q) for q in QUANTILES)
        text = (f"unknowns: the central {high - low}% ({low}th to {high}th percentile) of "
                f"the estimate across {self.draws:,} input draws of {self.replications} runs "
                f"each, with the event noise of {self.replications} runs taken out. 95% "
                "intervals allow for the runs of a draw sharing its inputs.")
        if self.runs_partial:
            text += (f" The last {self.runs_partial} runs, an incomplete draw, count in the "
                     "estimates but not in the ranges.")
        return text

    def to_dict(self) -> dict[str, Any]:
        """Return the split as plain data, for summary.json (NaN as None)."""
        out: dict[str, Any] = {"inputs": self.inputs, "replications": self.replications,
                               "draws": self.draws, "runs_used": self.runs_used,
                               "runs_partial": self.runs_partial,
                               "quantiles": list(QUANTILES)}
        if self.table is None:
            out["note"] = NO_REPLICATIONS
            return out
        out["estimates"] = {metric: {k: _plain(v) for k, v in row.items()}
                            for metric, row in self.table.to_dict(orient="index").items()}
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def uncertainty_table(results: Results) -> pd.DataFrame:
    """Return the split of each headline estimate into unknowns and events, by metric.

    Columns: label, kind ("probability" or "mean"), estimate (over all runs), se (clustered
    by draw), se_naive, var_unknowns, var_events, share_unknowns and their jackknife ``*_se``,
    p10/p90 (central 80% across the unknowns, de-noised), draws_p10/draws_p90 (the same of the
    raw per-draw estimates), draws and replications. The split is NaN with one run per draw.
    """
    import pandas as pd

    r = replications(results)
    draws = job_draws(results)
    rows = []
    for metric, (label, kind, values) in headline_quantities(results).items():
        rows.append({"metric": metric, "label": label, "kind": kind,
                     **asdict(split(values, r, draws))})
    return pd.DataFrame(rows).set_index("metric")


def input_spread(results: Results) -> Spread:
    """Return the :class:`Spread` of a job (its table only with more than one run per draw)."""
    r = replications(results)
    runs = results.runs
    table = uncertainty_table(results) if r > 1 else None
    complete = runs // r if r > 1 else runs
    return Spread(inputs_mode(results), r, complete, complete * r, runs - complete * r, table)


def has_spread(results: Results) -> bool:
    """Return whether a job's inputs were drawn from priors with more than one run per draw."""
    return inputs_mode(results) == "sample" and replications(results) > 1


def draw_estimates(results: Results) -> pd.DataFrame:
    """Return the per-draw estimates of the headline metrics: one row per complete draw.

    Each is the mean of the draw's ``R`` runs, so it carries the event noise of ``R`` runs on
    top of what the draw's inputs make of the metric.
    """
    import pandas as pd

    r = replications(results)
    draws = job_draws(results)
    labels, counts = np.unique(draws, return_counts=True)
    complete = labels[counts == r]  # in the order of _complete_draws
    data = {metric: _complete_draws(np.asarray(values, float), draws, r)[0]
            for metric, (_, _, values) in headline_quantities(results).items()}
    return pd.DataFrame(data, index=pd.Index(complete, name="draw"))


# --- summary intervals that allow for the draws ----------------------------------------------


def clustered_rows(results: Results, rows: list[Estimate]) -> list[Estimate]:
    """Return the summary rows with standard errors and intervals clustered by input draw.

    For every probability and per-run mean (medians are left as they are): the standard
    error is the clustered one, never below the naive one (the design effect is truncated at
    1, as survey statistics do: runs sharing inputs can't be more informative than independent
    runs). Probabilities get Wilson intervals at the effective number of runs (runs / design
    effect), means t intervals with draws - 1 degrees of freedom.
    """
    r = replications(results)
    if r < 2:
        return rows
    draws = job_draws(results)
    clusters = len(np.unique(draws))
    quantities = _Quantities(results)
    out = []
    for row in rows:
        found = (quantities.values(row.metric)
                 if row.kind in ("probability", "mean") and not math.isnan(row.estimate) else None)
        if found is None:
            out.append(row)
            continue
        values, weights = found
        out.append(_clustered(row, clustered_se(values, draws, weights), clusters))
    return out


def _clustered(row: Estimate, se: float, clusters: int) -> Estimate:
    """Return ``row`` with its standard error and interval widened for clustering."""
    from scipy import stats

    from .summary import CONFIDENCE

    if math.isnan(se) or math.isnan(row.se) or row.se <= 0 or se <= row.se:
        return row  # nothing varies, or no more than between independent runs
    deff = (se / row.se) ** 2
    if row.kind == "probability":
        low, high = wilson(row.estimate, row.n / deff, CONFIDENCE)
    else:
        half = stats.t.ppf(0.5 + CONFIDENCE / 2, clusters - 1) * se
        low, high = row.estimate - half, row.estimate + half
    return replace(row, se=se, low=low, high=high)


def wilson(p: float, n: float, confidence: float) -> tuple[float, float]:
    """Return the Wilson score interval of a proportion ``p`` from ``n`` (possibly fractional)
    runs."""
    from scipy import stats

    z = stats.norm.ppf(0.5 + confidence / 2)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(centre - half, 0.0), min(centre + half, 1.0)
