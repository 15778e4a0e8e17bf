"""Plots of outcome distributions, for one job or several overlaid.

Every function takes one :class:`~sim.results.Results` or a list of them (drawn on the same
axes, one colour each), accepts ``ax=`` where it draws one panel, and returns the figure, so
plots compose in notebooks.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .model.compiled import CATEGORIES, TRACK_COUNTERS
from .tally import VALUE_BINS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .results import Results

CATEGORY_COLOURS = {"agreement": "#2a9d8f", "interim": "#e9c46a", "default": "#e76f51",
                    "none": "#c8ccd2"}
CATEGORY_LABELS = {"agreement": "agreement", "interim": "interim arrangement",
                   "default": "deadline default", "none": "none by horizon"}
Z = 1.959963984540054  # two-sided 95% normal quantile


#: The house style, applied only while one of this module's functions draws (never globally).
STYLE = {
    "figure.dpi": 130, "font.size": 9.5, "axes.titlesize": 10.5, "axes.titleweight": "bold",
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.25,
    "legend.frameon": False, "figure.constrained_layout.use": True,
}


def _styled(draw):
    """Run a plotting function inside the house style, leaving matplotlib's settings alone."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        import matplotlib

        # only the style's own keys are set and restored: plt.rc_context would also undo what
        # a backend set up meanwhile (Jupyter's inline backend turns on interactive mode when
        # the first figure is made), and later figures would then never be shown
        params = matplotlib.rcParams
        saved = {key: params[key] for key in STYLE}
        params.update(STYLE)
        try:
            return draw(*args, **kwargs)
        finally:
            params.update(saved)

    return wrapper


def _matplotlib():
    import matplotlib.pyplot as plt

    return plt


def _as_list(results: Results | Sequence[Results]) -> list[Results]:
    return list(results) if isinstance(results, (list, tuple)) else [results]


def _colours(n: int) -> list:
    plt = _matplotlib()
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return [cycle[i % len(cycle)] for i in range(n)]


def _new_axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    plt = _matplotlib()
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size)
    return fig, ax


def wilson_band(k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return pointwise 95% Wilson intervals for counts ``k`` out of ``n``."""
    k = np.asarray(k, dtype=float)
    p = k / n
    denom = 1 + Z**2 / n
    centre = (p + Z**2 / (2 * n)) / denom
    half = Z * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n * n)) / denom
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def _error_bars(y, low, high) -> np.ndarray:
    """Return matplotlib's ``yerr`` (distances below and above ``y``) for an interval.

    A Wilson interval of 0 or n successes ends at the estimate itself, computed in floating
    point: its end can fall a rounding error on the wrong side of the estimate, and
    matplotlib refuses negative error bars. Distances are clipped to 0 (NaN stays NaN).
    """
    y, low, high = (np.asarray(v, dtype=float) for v in (y, low, high))
    return np.clip(np.array([y - low, high - y]), 0.0, None)


def _dates(start: dt.date, days: int) -> np.ndarray:
    return np.array([start + dt.timedelta(days=d) for d in range(days)])


def _date_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


@_styled
def plot_agreement_curve(results: Results | Sequence[Results], topic: str, *,
                         ax: Axes | None = None, legend: bool = True) -> Figure:
    """Draw P(agreement by date) on ``topic`` with 95% bands; return the figure."""
    from matplotlib.ticker import PercentFormatter

    runs = _as_list(results)
    fig, ax = _new_axes(ax, (6.4, 3.6))
    scenario = runs[0].scenario
    for res, colour in zip(runs, _colours(len(runs))):
        i = res.tally.layout.topics.index(topic)
        counts = np.cumsum(res.tally.agreement_days[i])
        n = res.tally.n
        x = _dates(res.scenario.start, len(counts))
        low, high = wilson_band(counts, n)
        ax.step(x, counts / n, where="post", color=colour, lw=1.8,
                label=f"{res.name} (n={n:,})")
        ax.fill_between(x, low, high, step="post", color=colour, alpha=0.18, lw=0)
    deadline = scenario.topics[topic].deadline
    if deadline is not None:
        ax.axvline(deadline.date, color="0.35", ls="--", lw=1)
        ax.annotate(f"deadline {deadline.date:%d %b %Y}", (deadline.date, 0.98),
                    xycoords=("data", "axes fraction"), ha="left", va="top", fontsize=8,
                    color="0.3", xytext=(3, 0), textcoords="offset points")
    ax.set_title(scenario.topics[topic].label)
    ax.set_ylabel("P(agreement by date)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    top = max(ax.get_ylim()[1], 0.05)
    ax.set_ylim(0, min(1.0, top))
    _date_axis(ax)
    if legend:
        ax.legend(loc="upper left", fontsize=8)
    return fig


@_styled
def plot_agreement_curves(results: Results | Sequence[Results],
                          topics: Sequence[str] | None = None, *, columns: int = 2) -> Figure:
    """Draw one agreement-curve panel per topic; return the figure."""
    plt = _matplotlib()
    runs = _as_list(results)
    topics = list(topics or runs[0].scenario.topics)
    rows = math.ceil(len(topics) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 2.9 * rows), squeeze=False)
    for k, topic in enumerate(topics):
        plot_agreement_curve(runs, topic, ax=axes.flat[k], legend=False)
    for ax in list(axes.flat)[len(topics):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(runs), 4))
    fig.suptitle("Cumulative probability of agreement (shaded: 95% interval)",
                 fontweight="bold")
    return fig


@_styled
def plot_outcome_categories(results: Results | Sequence[Results], *,
                            ax: Axes | None = None) -> Figure:
    """Draw each topic's outcome categories as stacked bars, grouped by scenario."""
    runs = _as_list(results)
    topics = runs[0].tally.layout.topics
    labels = [runs[0].scenario.topics[t].label for t in topics]
    fig, ax = _new_axes(ax, (7.5, 0.45 * len(topics) * len(runs) + 1.6))
    height = 0.8 / len(runs)
    hatches = ["", "//", "..", "xx"]
    y = np.arange(len(topics))
    for r, res in enumerate(runs):
        share = res.tally.categories / res.tally.n
        left = np.zeros(len(topics))
        pos = y + (r - (len(runs) - 1) / 2) * height
        for category in CATEGORIES[1:] + CATEGORIES[:1]:
            col = CATEGORIES.index(category)
            ax.barh(pos, share[:, col], height * 0.92, left=left,
                    color=CATEGORY_COLOURS[category], hatch=hatches[r % len(hatches)],
                    edgecolor="white", lw=0.5,
                    label=CATEGORY_LABELS[category] if r == 0 else None)
            left += share[:, col]
        if len(runs) > 1:
            for p in pos:
                ax.text(1.01, p, res.name, va="center", fontsize=7.5, transform=ax.get_yaxis_transform())
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    from matplotlib.ticker import PercentFormatter

    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("share of runs")
    ax.set_title("Outcome by topic at the horizon", pad=24)
    ax.grid(axis="y", visible=False)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=4, fontsize=8)
    return fig


@_styled
def plot_agreed_values(results: Results | Sequence[Results], topic: str, *,
                       ax: Axes | None = None) -> Figure:
    """Draw the distribution of agreed values on ``topic`` (runs that agreed), overlaid."""
    runs = _as_list(results)
    fig, ax = _new_axes(ax, (5.5, 3.3))
    edges = np.linspace(0, 1, VALUE_BINS + 1)
    scale = runs[0].scenario.topics[topic].scale
    used = np.zeros(VALUE_BINS, bool)
    for res, colour in zip(runs, _colours(len(runs))):
        i = res.tally.layout.topics.index(topic)
        counts = res.tally.values[i]
        total = counts.sum()
        if total == 0:
            ax.plot([], [], color=colour, label=f"{res.name} (no agreements)")
            continue
        used |= counts > 0
        density = counts / total / np.diff(edges)
        noun = "agreement" if total == 1 else "agreements"
        ax.stairs(density, edges, color=colour, lw=1.6, fill=len(runs) == 1, alpha=0.85,
                  label=f"{res.name} ({total:,} {noun})")
    if used.any():  # agreements fill a narrow band of the scale: show that band, widened a bit
        lo, hi = edges[np.argmax(used)], edges[VALUE_BINS - np.argmax(used[::-1])]
        ax.set_xlim(max(0.0, lo - 0.1), min(1.0, hi + 0.1))
    else:
        ax.set_xlim(0, 1)
    ax.set_title(runs[0].scenario.topics[topic].label)
    ax.set_xlabel(f"agreed value on the 0-1 scale\n(0: {_short(scale.low, 48)}; "
                  f"1: {_short(scale.high, 48)})", fontsize=7.5)
    ax.set_ylabel("density")
    ax.legend(fontsize=7.5, loc="best")
    return fig


def _short(text: str, width: int = 34) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@_styled
def plot_agreed_values_grid(results: Results | Sequence[Results],
                            topics: Sequence[str] | None = None, *, columns: int = 2) -> Figure:
    """Draw one agreed-value panel per topic that has agreements in some scenario."""
    plt = _matplotlib()
    runs = _as_list(results)
    all_topics = topics or runs[0].scenario.topics
    topics = [t for t in all_topics
              if any(r.tally.values[r.tally.layout.topics.index(t)].sum() for r in runs)] or list(all_topics)[:1]
    rows = math.ceil(len(topics) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.0 * rows), squeeze=False)
    for k, topic in enumerate(topics):
        plot_agreed_values(runs, topic, ax=axes.flat[k])
    for ax in list(axes.flat)[len(topics):]:
        ax.set_visible(False)
    fig.suptitle("Distribution of agreed values (runs with an agreement)", fontweight="bold")
    return fig


@_styled
def plot_meetings(results: Results | Sequence[Results], *, ax: Axes | None = None,
                  counters: Sequence[str] = ("held", "cancelled", "derailed", "postponed")) -> Figure:
    """Draw meetings per run by track and fate (means with 95% intervals)."""
    from .summary import mean_from_sums

    runs = _as_list(results)
    # every track of any job, in first-seen order; a job without a track draws no bar there
    tracks = list(dict.fromkeys(t for res in runs for t in res.tally.layout.tracks))
    labels = [next(r.scenario.tracks[t].label for r in runs if t in r.scenario.tracks)
              for t in tracks]
    fig, ax = _new_axes(ax, (9.0, 4.6))
    groups = len(runs) * len(counters)
    width = 0.84 / groups
    x = np.arange(len(tracks))
    fate_colour = {"held": "#2a9d8f", "cancelled": "#e76f51", "derailed": "#f4a261",
                   "postponed": "#8d99ae", "planned": "#264653", "vetoes": "#6d597a"}
    hatches = ["", "//", "..", "xx"]
    k = 0
    for r, res in enumerate(runs):
        for counter in counters:
            j = TRACK_COUNTERS.index(counter)
            own = res.tally.layout.tracks
            nan = (math.nan,) * 4
            stats = [mean_from_sums(*res.tally.tracks[own.index(t), j], res.tally.n)
                     if t in own else nan for t in tracks]
            means = np.array([s[0] for s in stats])
            err = _error_bars(means, [s[2] for s in stats], [s[3] for s in stats])
            label = counter if len(runs) == 1 else f"{counter}: {res.name}"
            ax.bar(x + (k - (groups - 1) / 2) * width, means, width * 0.95, yerr=err,
                   color=fate_colour[counter], hatch=hatches[r % len(hatches)], edgecolor="white",
                   lw=0.5, capsize=1.5, error_kw={"lw": 0.8}, label=label)
            k += 1
    ax.set_xticks(x, [_wrap(lbl) for lbl in labels], fontsize=8)
    ax.set_ylabel("meetings per run (mean)")
    ax.set_title("Meetings by track and fate (bars: 95% intervals)")
    ax.grid(axis="x", visible=False)
    ax.legend(fontsize=8, ncols=min(groups, 4), loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return fig


#: What :func:`plot_input_spread` can show per topic: metric suffix -> axis label.
SPREAD_METRICS = {
    "p_agreement": "P(agreement by the horizon)",
    "p_agreement_before_deadline": "P(agreement before the deadline)",
    "p_interim_taken": "P(interim taken at the deadline)",
    "p_default": "P(deadline default)",
}


@_styled
def plot_input_spread(results: Results | Sequence[Results], metric: str = "p_agreement", *,
                      ax: Axes | None = None) -> Figure:
    """Draw, per topic, the per-draw estimates of a probability across the input draws.

    For jobs whose inputs were drawn from priors with ``--replications`` R > 1: one dot per
    input draw (the share of its R runs with the event), a box of their quartiles with
    whiskers at the 10th and 90th percentiles, a band for the central 80% with the event
    noise of R runs taken out (see :mod:`sim.uncertainty`), and the overall estimate with its
    95% interval. ``metric`` is a key of :data:`SPREAD_METRICS`; topics without it (no
    deadline) are left out. Returns the figure.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter

    from .uncertainty import draw_estimates, has_spread, replications

    runs = [res for res in _as_list(results) if has_spread(res)]
    if not runs:
        raise ValueError("no input draws to show: the jobs did not draw their inputs from "
                         "priors with --replications above 1")
    topics = [t for t in runs[0].scenario.topics
              if f"{t}.{metric}" in draw_estimates(runs[0]).columns]
    fig, ax = _new_axes(ax, (7.5, 0.55 * len(topics) * len(runs) + 2.2))
    height = 0.8 / len(runs)
    rng = np.random.default_rng(0)  # the same jitter every time the plot is drawn
    for r, (res, colour) in enumerate(zip(runs, _colours(len(runs)))):
        per_draw, summary = draw_estimates(res), res.summary()
        pos = np.arange(len(topics)) + (r - (len(runs) - 1) / 2) * height
        for k, topic in enumerate(topics):
            name = f"{topic}.{metric}"
            values = per_draw[name].to_numpy()
            ax.scatter(values, pos[k] + rng.uniform(-0.28, 0.28, len(values)) * height, s=7,
                       color=colour, alpha=0.35, lw=0, zorder=2)
            split = summary.uncertainty.get(name) if summary.uncertainty else None
            if split is not None and not math.isnan(split["p10"]):
                ax.plot([split["p10"], split["p90"]], [pos[k]] * 2, color=colour, lw=7,
                        alpha=0.3, solid_capstyle="butt", zorder=1)
            row = summary[name]
            ax.errorbar([row.estimate], [pos[k]],
                        xerr=_error_bars([row.estimate], [row.low], [row.high]),
                        fmt="D", color="black", ms=4.5, lw=1, capsize=2, zorder=4)
        ax.boxplot([per_draw[f"{t}.{metric}"].to_numpy() for t in topics], positions=pos,
                   orientation="horizontal", whis=(10, 90), widths=height * 0.55,
                   showfliers=False, manage_ticks=False, zorder=3,
                   boxprops={"color": colour}, whiskerprops={"color": colour},
                   capprops={"color": colour}, medianprops={"color": colour})
        if len(runs) > 1:
            for p in pos:
                ax.text(1.01, p, res.name, va="center", fontsize=7.5,
                        transform=ax.get_yaxis_transform())
    labels = [runs[0].scenario.topics[t].label for t in topics]
    ax.set_yticks(np.arange(len(topics)), [_wrap(lbl, 26) for lbl in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(-0.02, 1.02)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(f"{SPREAD_METRICS.get(metric, metric)} in one input draw")
    shapes = "; ".join(dict.fromkeys(f"{res.runs // replications(res):,} draws of "
                                     f"{replications(res)} runs each" for res in runs))
    ax.set_title(f"{SPREAD_METRICS.get(metric, metric)} across the unknowns\n"
                 f"(one dot per input draw: {shapes})", fontsize=10)
    grey = "0.45"
    handles = [
        Line2D([], [], color=grey, marker="o", lw=0, alpha=0.5,
               label="one input draw (carries event noise)"),
        Patch(facecolor="white", edgecolor=grey, label="quartiles; whiskers 10th-90th pct"),
        Patch(facecolor=grey, alpha=0.3, label="central 80%, event noise taken out"),
        Line2D([], [], color="black", marker="D", ms=4.5, lw=1,
               label="overall estimate, 95% interval"),
    ]
    ax.legend(handles=handles, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.12),
              ncols=2)
    return fig


def _wrap(text: str, width: int = 16) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


@_styled
def save_default_plots(results: Results | Sequence[Results], folder: Path,
                       formats: Sequence[str] = ("png",)) -> list[Path]:
    """Write the default plots into ``folder``; return the paths written.

    ``<name>.<format>`` for agreement_curves, outcome_categories, agreed_values, meetings and,
    for jobs whose inputs were drawn from priors with --replications above 1, input_spread.
    """
    from .results import write_atomic

    plt = _matplotlib()
    from .uncertainty import has_spread

    figures = {
        "agreement_curves": plot_agreement_curves(results),
        "outcome_categories": plot_outcome_categories(results),
        "agreed_values": plot_agreed_values_grid(results),
        "meetings": plot_meetings(results),
    }
    if any(has_spread(res) for res in _as_list(results)):  # inputs drawn, R runs per draw
        figures["input_spread"] = plot_input_spread(results)
    written = []
    for name, fig in figures.items():
        for fmt in formats:
            path = folder / f"{name}.{fmt}"
            write_atomic(path, lambda tmp, fig=fig, fmt=fmt: fig.savefig(tmp, format=fmt))
            written.append(path)
        plt.close(fig)
    return written


@_styled
def plot_forest(comparison, *, kind: str = "probability", ax: Axes | None = None,
                include_dates: bool = False) -> Figure:
    """Draw the differences from the reference job with 95% intervals (a forest plot).

    ``kind`` "probability" shows probability differences in percentage points, "mean"
    differences of per-run means (meetings, summits, tension).
    """
    rows = [(name, d) for name, d in comparison.rows if d.kind == kind
            and (include_dates or "_by_" not in d.metric)
            and not (kind == "mean" and d.metric.endswith(".held") and d.metric != "summits_held")
            and not math.isnan(d.difference)]
    fig, ax = _new_axes(ax, (9.5, 0.32 * max(len(rows), 3) + 1.8))
    names = comparison.names[1:]
    colours = dict(zip(names, _colours(len(names) + 1)[1:]))
    scale = 100.0 if kind == "probability" else 1.0
    y = np.arange(len(rows))
    for k, (name, d) in enumerate(rows):
        colour = colours[name]
        ax.plot([d.low * scale, d.high * scale], [k, k], color=colour, lw=2, solid_capstyle="butt")
        ax.plot(d.difference * scale, k, "o", color=colour, ms=5,
                mfc=colour if d.significant else "white")
    ax.axvline(0, color="0.3", lw=0.9)
    labels = [d.label if len(names) == 1 else f"{d.label} [{name}]" for name, d in rows]
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    unit = "percentage points" if kind == "probability" else "per run"
    ax.set_xlabel(f"difference from {comparison.reference} ({unit})")
    pairing = "paired by run" if all(comparison.paired.values()) else "independent samples"
    what = "Probabilities" if kind == "probability" else "Means"
    ax.set_title(f"{what}: difference from {comparison.reference}\n"
                 f"(95% intervals, {pairing})", fontsize=10)
    ax.grid(axis="y", visible=False)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colours[n], marker="o", lw=2, label=n) for n in names]
    handles.append(Line2D([], [], color="0.4", marker="o", mfc="white", lw=0,
                          label="open: not significant at 5%"))
    ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14),
              ncols=min(len(handles), 4))
    return fig


def _metric_label(metric: str) -> str:
    name, _, what = metric.partition(".")
    words = {"p_agreement": "P(agreement by horizon)", "p_default": "P(deadline default)",
             "p_agreement_before_deadline": "P(agreement before deadline)",
             "p_interim_taken": "P(interim taken)", "p_any": "P(at least one)",
             "mean": "mean", "held.mean": "meetings held"}
    return f"{name}: {words.get(what, what)}"


@_styled
def plot_sweep_line(table, param: str, metrics: Sequence[str], *, ax: Axes | None = None,
                    lines: bool | None = None) -> Figure:
    """Draw metrics against one swept parameter with 95% bands; return the figure.

    Probabilities get Wilson bands (honest at 0% and 100%), means ±1.96 standard errors.
    Points are joined by lines for a grid (``lines=None`` decides from ``table.attrs``); a
    Latin hypercube or Sobol' design varies other parameters between points, so it is drawn
    as points with error bars.
    """
    fig, ax = _new_axes(ax, (6.4, 3.8))
    data = table.sort_values(param)
    x = data[param].to_numpy(float)
    if lines is None:
        lines = table.attrs.get("design", "grid") == "grid"
    runs = data["runs"].to_numpy(int) if "runs" in data else None
    for metric, colour in zip(metrics, _colours(len(metrics))):
        y = data[metric].to_numpy(float)
        if metric.split(".", 1)[1].startswith("p_") and runs is not None:
            low, high = wilson_band(np.round(y * runs), runs)
        else:
            se = data[f"{metric}_se"].to_numpy(float)
            low, high = y - Z * se, y + Z * se
        if lines:
            ax.plot(x, y, "o-", color=colour, ms=3.5, lw=1.6, label=_metric_label(metric))
            ax.fill_between(x, low, high, color=colour, alpha=0.18, lw=0)
        else:
            ax.errorbar(x, y, yerr=_error_bars(y, low, high), fmt="o", color=colour, ms=3.5, lw=0.8,
                        capsize=1.5, label=_metric_label(metric))
    if all(m.split(".", 1)[1].startswith("p_") for m in metrics):
        from matplotlib.ticker import PercentFormatter

        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(_wrap(param, 60))
    per_point = f"{int(runs[0]):,} runs per point, " if runs is not None else ""
    ax.set_title(f"Sweep ({per_point}95% bands)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


@_styled
def plot_sweep_heatmap(table, x: str, y: str, metric: str, *, ax: Axes | None = None) -> Figure:
    """Draw a metric over a two-parameter grid as a heat map, values written in the cells."""
    fig, ax = _new_axes(ax, (6.0, 4.6))
    grid = table.pivot_table(index=y, columns=x, values=metric, aggfunc="mean")
    values = grid.to_numpy(float)
    is_prob = metric.split(".", 1)[1].startswith("p_")
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis",
                      vmin=0 if is_prob else None, vmax=1 if is_prob else None)
    ax.set_xticks(range(len(grid.columns)), [f"{v:g}" for v in grid.columns], fontsize=8)
    ax.set_yticks(range(len(grid.index)), [f"{v:g}" for v in grid.index], fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(False)
    for (r, c), v in np.ndenumerate(values):
        if not math.isnan(v):
            text = f"{100 * v:.0f}%" if is_prob else f"{v:.2f}"
            bright = image.norm(v) > 0.6
            ax.text(c, r, text, ha="center", va="center", fontsize=7.5,
                    color="black" if bright else "white")
    bar = fig.colorbar(image, ax=ax, label=_metric_label(metric))
    if is_prob:
        from matplotlib.ticker import PercentFormatter

        bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_title(_metric_label(metric), fontsize=10)
    return fig


@_styled
def plot_sensitivity(sensitivity, *, ax: Axes | None = None) -> Figure:
    """Draw Sobol' first-order and total indices as bars with bootstrap 95% intervals."""
    fig, ax = _new_axes(ax, (6.4, 0.5 * len(sensitivity.names) + 1.8))
    y = np.arange(len(sensitivity.names))
    h = 0.38
    for offset, (label, est, lo, hi, colour) in enumerate((
            ("first order", sensitivity.first_order, sensitivity.first_low, sensitivity.first_high, "#2a9d8f"),
            ("total", sensitivity.total_order, sensitivity.total_low, sensitivity.total_high, "#264653"))):
        err = _error_bars(est, lo, hi)
        ax.barh(y + (offset - 0.5) * h, est, h * 0.95, xerr=err, color=colour, label=label,
                capsize=2, error_kw={"lw": 0.8})
    ax.set_yticks(y, sensitivity.names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_xlabel("Sobol' index (share of output variance)")
    ax.set_title(f"Sensitivity of {sensitivity.metric} ({sensitivity.evaluations} evaluations)",
                 fontsize=10)
    ax.grid(axis="y", visible=False)
    ax.legend(fontsize=8)
    return fig


@_styled
def plot_prior_posterior(key: str, prior, values: np.ndarray, weights: np.ndarray | None = None,
                         *, ax: Axes | None = None) -> Figure:
    """Plot an input's prior density against its (weighted) posterior sample's histogram,
    with both central 90% intervals marked."""
    fig, ax = _new_axes(ax, (6.0, 3.6))
    values = np.asarray(values, dtype=float)
    weights = np.ones_like(values) if weights is None else np.asarray(weights, dtype=float)
    frozen = prior._frozen()
    lo, hi = (float(x) for x in prior.support())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = float(frozen.ppf(0.001)), float(frozen.ppf(0.999))
    grid = np.linspace(lo, hi, 400)
    prior_colour, post_colour = _colours(2)
    ax.plot(grid, frozen.pdf(grid), color=prior_colour, label=f"prior {prior.describe()}")
    ax.hist(values, bins=30, range=(lo, hi), weights=weights, density=True, alpha=0.55,
            color=post_colour, label="posterior (weighted particles)")
    for q_lo, q_hi, colour in ((float(frozen.ppf(0.05)), float(frozen.ppf(0.95)), prior_colour),
                               (*_weighted_interval(values, weights), post_colour)):
        ax.axvspan(q_lo, q_hi, ymin=0, ymax=0.03, color=colour, alpha=0.9)
    ax.set_xlabel(key)
    ax.set_ylabel("density")
    ax.set_title(_short(key, 60), fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return fig


def _weighted_interval(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    order = np.argsort(values, kind="stable")
    cdf = np.cumsum(weights[order]) / weights.sum()
    pick = lambda q: float(values[order][min(np.searchsorted(cdf, q), len(values) - 1)])  # noqa: E731
    return pick(0.05), pick(0.95)
