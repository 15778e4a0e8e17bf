"""One self-contained HTML page per set of jobs: tables, plots (embedded) and scenario diffs."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .compare import (
    Comparison,
    Difference,
    compare,
    difference_text,
    headline_rows,
    interval_of,
    scenario_differences,
    shown,
    value_text,
)
from .results import Results, write_text_atomic
from .summary import HEADLINE_NOTE, Summary, headline_columns, spread_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d232a;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-size:.88em;width:100%}
th,td{padding:.3em .6em;border-bottom:1px solid #e3e6ea;text-align:right;vertical-align:top}
th:first-child,td:first-child,td.l,th.l{text-align:left}
th{background:#f4f6f8} tr.sig td{background:#fff8e6}
figure{margin:1.2em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555} .meta{color:#555;font-size:.9em} code{font-size:.9em}
"""


def _figure_html(fig, caption: str) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _pct(row) -> str:
    if row is None:
        return ""
    if math.isnan(row.estimate):
        return "–"
    return f"{100 * row.estimate:.1f}% <small>[{100 * row.low:.1f}, {100 * row.high:.1f}]</small>"


def _row(cells: Sequence[str], cls: str = "") -> str:
    """Return a table row of already escaped cells; ``cls`` is the row's class, if any."""
    attr = f' class="{cls}"' if cls else ""
    return f"<tr{attr}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _header(cells: Sequence[str]) -> str:
    return "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cells) + "</tr>"


def _summary_html(res: Results) -> str:
    s = res.summary()
    meta = res.metadata
    head = (f"<h2>{html.escape(res.name)}</h2><p>{html.escape(res.scenario.description)}</p>"
            f'<p class="meta">{res.runs:,} runs, seed {meta.get("seed")}, from {res.scenario.start} '
            f"over {res.scenario.horizon_days} days; executor {html.escape(str(meta.get('executor')))}"
            f" ({meta.get('workers')} workers)</p>")
    return head + _topics_html(s) + _meetings_html(s) + _spread_html(s) + _drivers_html(res)


#: Inputs shown per headline outcome in the report's ranking.
TOP_INPUTS = 5
#: Runs a job needs for the report to rank its unknowns and look for PRIM boxes: with fewer,
#: trees and boxes fit noise (and, with a hundred inputs, take most of the report's time)
MIN_DRIVER_RUNS = 200


def _drivers_html(res: Results) -> str:
    """Return, for runs with sampled priors, the top unknowns and the first PRIM box of each
    headline outcome (:mod:`sim.discovery`); empty otherwise."""
    if res.metadata.get("inputs") != "sample" or res.inputs.empty:
        return ""
    if res.runs < MIN_DRIVER_RUNS:
        return ("<h3>What drives the outcomes</h3><p class='meta'>Not ranked: "
                f"{res.runs:,} runs are too few to tell the unknowns that drive an outcome "
                f"from noise (the ranking and the PRIM boxes need at least "
                f"{MIN_DRIVER_RUNS:,}).</p>")
    from .discovery import discover, headline_outcomes, importance

    outcomes = headline_outcomes(res)
    ranking = importance(res, outcomes)
    parts = ["<h3>What drives the outcomes</h3>",
             "<p class='meta'>For each headline outcome: the uncertain inputs it depends on "
             "most (extra-trees importance with a bootstrap 95% interval, from these runs), "
             "and the first PRIM box: the ranges of the inputs where the outcome concentrates, "
             "with its coverage (share of the outcome's runs inside) and density (share of "
             "the box's runs with the outcome).</p>",
             "<table>" + _header(["outcome", "top unknowns", "first box", "coverage",
                                  "density"])]
    for name, condition in outcomes.items():
        rows = ranking[ranking["outcome"] == name].head(TOP_INPUTS)
        if rows.empty:
            continue  # holds in every run or in none: nothing drives it
        top = "<br>".join(f"{html.escape(r.input)} {r.score:.3f} [{r.low:.3f}, {r.high:.3f}]"
                          for r in rows.itertuples())
        found = discover(res, condition, max_boxes=1, tree=False)  # the page shows the first
        box = found.prim_boxes[0] if found.prim_boxes else None
        limits = ("(none found)" if box is None else "<br>".join(
            f"{html.escape(k)}: {html.escape(_limit(v))}" for k, v in box.limits.items()))
        parts.append(_row([html.escape(condition), top, limits,
                           "" if box is None else f"{box.coverage:.2f}",
                           "" if box is None else f"{box.density:.2f}"]))
    parts.append("</table>")
    return "".join(parts)


def _limit(value) -> str:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(x, float) for x in value):
        return f"{value[0]:.3g} to {value[1]:.3g}"
    return "{" + ", ".join(map(str, value)) + "}"


def _topics_html(s: Summary) -> str:
    """Return the topics' table: the headline probabilities, then when and where agreed."""
    columns = headline_columns(s)
    rows = ["<table>" + _header(["topic", "deadline", *(h for _, h in columns),
                                 "median agreement date", "mean agreed value",
                                 "reference forecast"])]
    for name in s.topics():
        value = s[f"{name}.mean_value"].estimate
        ref = s.reference.get(name)
        rows.append(_row([
            html.escape(s[f"{name}.p_agreement"].label.split(":")[0]),
            str(s.deadlines.get(name, "")),
            *(_pct(s.get(f"{name}.{suffix}")) + _unknowns(s, f"{name}.{suffix}")
              for suffix, _ in columns),
            s.date_of(s[f"{name}.median_day"].estimate),
            "–" if math.isnan(value) else f"{value:.2f}",
            "" if ref is None else f"{ref:.2f}"]))
    rows.append("</table>")
    if s.deadlines:
        rows.append(f"<p class='meta'>{html.escape(HEADLINE_NOTE)}</p>")
    return "".join(rows)


def _meetings_html(s: Summary) -> str:
    rows = ["<table><tr><th>meetings and climate</th><th>estimate</th><th>95% interval</th></tr>"]
    p_any = s["summits.p_any"]
    rows.append(f"<tr><td>{p_any.label}</td><td>{_pct(p_any)}</td><td></td></tr>")
    for row in s.rows:
        if row.metric.endswith((".held.mean", ".cancelled.mean")) or row.metric in (
                "tension_end.mean", "tension_peak.mean"):
            rows.append(f"<tr><td>{html.escape(row.label)}</td><td>{row.estimate:.2f}</td>"
                        f"<td>[{row.low:.2f}, {row.high:.2f}]</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _unknowns(s: Summary, metric: str) -> str:
    """Return a probability's range across the unknowns as a line of a cell, or ""."""
    text = spread_text(s.uncertainty.get(metric)) if s.uncertainty is not None else ""
    return f"<br><small>unknowns: {html.escape(text)}</small>" if text else ""


#: The columns of the split table: header, and how a row shows (probability, mean).
_SPLIT_COLUMNS = ("estimate", "95% interval", "SE (clustered by draw)",
                  "SE if runs were independent", "variance due to the unknowns",
                  "variance due to events", "share due to the unknowns",
                  "central 80% across the unknowns", "per-draw estimates, 10th-90th pct")


def _spread_html(s: Summary) -> str:
    """Return what is known and what is not: the split of each headline estimate's variance
    into the unknowns (input draws) and events; "" for a job without priors."""
    spread = s.uncertainty
    if spread is None:
        return ""
    parts = ["<h3>What is known and what is not</h3>",
             f"<p class='meta'>{html.escape(spread.describe())} Variance: of one run's outcome "
             "(1 if the event happened), split by the law of total variance into the variance "
             "of the per-draw expectation (the unknowns) and the expected variance within a draw "
             "(events), each estimated without bias (one-way random effects); jackknife SE of "
             "the share over draws. Per-draw estimates carry event noise: their range is wider "
             "than the spread due to the unknowns.</p>"]
    if spread.table is None:
        return "".join(parts)
    parts.append("<table>" + _header(["metric", *_SPLIT_COLUMNS]))
    for metric, row in spread.table.iterrows():
        parts.append(_row(_split_cells(s, str(metric), row)))
    parts.append("</table>")
    return "".join(parts)


def _split_cells(s: Summary, metric: str, row) -> list[str]:
    """Return the escaped cells of one metric's row of the split table."""
    prob = row["kind"] == "probability"

    def value(x: float) -> str:
        if math.isnan(x):
            return "–"
        return f"{100 * x:.1f}%" if prob else f"{x:.2f}"

    def num(x: float) -> str:
        return "–" if math.isnan(x) else f"{x:.3g}"

    est = s.get(metric)
    interval = "" if est is None else f"[{value(est.low)}, {value(est.high)}]"
    share = ("–" if math.isnan(row["share_unknowns"]) else
             f"{100 * row['share_unknowns']:.0f}% ± {100 * row['share_se']:.0f}")
    return [html.escape(row["label"]), value(row["estimate"]), interval, num(row["se"]),
            num(row["se_naive"]), num(row["var_unknowns"]), num(row["var_events"]), share,
            f"{value(row['p10'])} – {value(row['p90'])}",
            f"{value(row['draws_p10'])} – {value(row['draws_p90'])}"]


def _difference_cells(d: Difference) -> list[str]:
    """Return the cells of a difference: both estimates, b − a, its interval and p."""
    p = "–" if math.isnan(d.p_value) else f"{d.p_value:.3g}"
    return [value_text(d.a, d.kind, missing="–"), value_text(d.b, d.kind, missing="–"),
            difference_text(d, missing="–"), interval_of(d, missing="–"), p]


def _headline_html(comparison: Comparison) -> str:
    """Return the headline differences of each job from the first, significant ones first."""
    ref = comparison.reference
    parts = ["<h2>Headline differences</h2>",
             f"<p class='meta'>Each job against {html.escape(ref)}: 95% intervals, "
             "significant differences (5% level) first and highlighted.</p>"]
    rows = headline_rows(comparison)
    for name in comparison.names[1:]:
        parts.append("<table>" + _header([f"{name} vs {ref}", ref, name, "difference",
                                          "95% interval", "p"]))
        parts += [_row([html.escape(d.label), *_difference_cells(d)],
                       "sig" if d.significant else "")
                  for other, d in rows if other == name]
        parts.append("</table>")
    return "".join(parts)


def _comparison_html(results: Sequence[Results], comparison: Comparison | None = None) -> str:
    comparison = comparison or compare(*results)
    ref = comparison.reference
    parts = ["<h2>Differences</h2>"]
    parts += [f"<p>{html.escape(line)}.</p>" for line in comparison.describe_pairing()]
    for name in comparison.names[1:]:
        parts.append(f"<h3>{html.escape(name)} − {html.escape(ref)}</h3><table>"
                     + _header(["metric", ref, name, "difference", "95% interval", "p", "test"]))
        parts += [_row([html.escape(d.label), *_difference_cells(d), d.test],
                       "sig" if d.significant else "")
                  for other, d in comparison.rows if other == name and shown(d)]
        parts.append("</table>")
    parts.append("<p class='meta'>Highlighted rows: significant at the 5% level.</p>")
    from .plots import plot_forest

    parts.append(_figure_html(plot_forest(comparison, kind="probability"),
                              "Differences of probabilities with 95% intervals"))
    parts.append(_figure_html(plot_forest(comparison, kind="mean"),
                              "Differences of per-run means with 95% intervals"))
    parts.append("<h2>Scenario differences</h2>")
    base = results[0]
    for other in results[1:]:
        diffs = scenario_differences(base, other)
        parts.append(f"<h3>{html.escape(other.name)} vs {html.escape(base.name)}: "
                     f"{len(diffs)} keys differ</h3>")
        parts.append(f"<table><tr><th>key</th><th>{html.escape(base.name)}</th>"
                     f"<th>{html.escape(other.name)}</th></tr>")
        for key, va, vb in diffs:
            parts.append(f"<tr><td><code>{html.escape(key)}</code></td>"
                         f"<td class='l'>{html.escape(str(va))}</td>"
                         f"<td class='l'>{html.escape(str(vb))}</td></tr>")
        parts.append("</table>")
    return "".join(parts)


def render_report(results: Sequence[Results]) -> str:
    """Return the HTML page for one or more jobs, images embedded."""
    from .plots import (
        plot_agreed_values_grid,
        plot_agreement_curves,
        plot_input_spread,
        plot_meetings,
        plot_outcome_categories,
    )
    from .uncertainty import has_spread

    results = list(results)
    names = ", ".join(r.name for r in results)
    body = [f"<h1>Negotiation outcomes: {html.escape(names)}</h1>",
            f'<p class="meta">Generated {dt.datetime.now():%Y-%m-%d %H:%M} by sim {__version__}. '
            "Intervals are 95%: Wilson for probabilities, t for means, order statistics for "
            "medians. The reference forecast is the salience- and capability-weighted mean of "
            "the sides' ideal points on each topic's 0-1 scale.</p>"]
    comparison = compare(*results) if len(results) > 1 else None
    if comparison is not None:  # the answer first: what changes between the jobs
        body.append(_headline_html(comparison))
    for res in results:
        body.append(_summary_html(res))
    if comparison is not None:
        body.append(_comparison_html(results, comparison))
    body.append("<h2>Plots</h2>")
    body.append(_figure_html(plot_agreement_curves(results),
                             "Cumulative probability of agreement by date, with 95% bands"))
    body.append(_figure_html(plot_outcome_categories(results), "Outcome categories by topic"))
    body.append(_figure_html(plot_agreed_values_grid(results),
                             "Distribution of agreed values among runs with an agreement"))
    body.append(_figure_html(plot_meetings(results), "Meetings per run by track and fate"))
    if any(has_spread(res) for res in results):
        body.append(_figure_html(plot_input_spread(results),
                                 "P(agreement by the horizon) in each input draw, across the "
                                 "unknowns (jobs whose inputs were drawn from priors)"))
    from .outputs import REPORT_HEAD  # how sim recognises its own reports: their first bytes

    return (REPORT_HEAD +
            f"<title>Negotiation outcomes: {html.escape(names)}</title><style>{_CSS}</style>"
            f"</head><body>{''.join(body)}</body></html>\n")


def write_report(results: Sequence[Results], path: str | Path) -> Path:
    """Write the HTML report for ``results`` to ``path`` (atomically) and return it."""
    path = Path(path)
    write_text_atomic(path, render_report(results))
    return path
