"""One self-contained HTML page per set of jobs: tables, plots (embedded) and scenario diffs."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .results import Results, write_text_atomic

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
    if math.isnan(row.estimate):
        return "–"
    return f"{100 * row.estimate:.1f}% <small>[{100 * row.low:.1f}, {100 * row.high:.1f}]</small>"


def _cell(x: float, signed: bool = False, *, probability: bool) -> str:
    """Return a table cell's text: probabilities in percent (differences in points)."""
    if math.isnan(x):
        return "–"
    if probability:
        return f"{100 * x:+.1f} pp" if signed else f"{100 * x:.1f}%"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def _summary_html(res: Results) -> str:
    s = res.summary()
    meta = res.metadata
    head = (f"<h2>{html.escape(res.name)}</h2><p>{html.escape(res.scenario.description)}</p>"
            f'<p class="meta">{res.runs:,} runs, seed {meta.get("seed")}, from {res.scenario.start} '
            f"over {res.scenario.horizon_days} days; executor {html.escape(str(meta.get('executor')))}"
            f" ({meta.get('workers')} workers)</p>")
    rows = ["<table><tr><th>topic</th><th>P(agreement by horizon)</th><th>P(deadline default)</th>"
            "<th>median agreement date</th><th>mean agreed value</th>"
            "<th>reference forecast</th></tr>"]
    for name, topic in res.scenario.topics.items():
        default = s[f"{name}.p_default"] if topic.deadline else None
        value = s[f"{name}.mean_value"]
        ref = s.reference.get(name)
        rows.append(
            f"<tr><td>{html.escape(topic.label)}</td><td>{_pct(s[f'{name}.p_agreement'])}</td>"
            f"<td>{_pct(default) if default else ''}</td>"
            f"<td>{s.date_of(s[f'{name}.median_day'].estimate)}</td>"
            f"<td>{'–' if math.isnan(value.estimate) else f'{value.estimate:.2f}'}</td>"
            f"<td>{'' if ref is None else f'{ref:.2f}'}</td></tr>")
    rows.append("</table>")
    rows.append("<table><tr><th>meetings and climate</th><th>estimate</th><th>95% interval</th></tr>")
    p_any = s["summits.p_any"]
    rows.append(f"<tr><td>{p_any.label}</td><td>{_pct(p_any)}</td><td></td></tr>")
    for row in s.rows:
        if row.metric.endswith((".held.mean", ".cancelled.mean")) or row.metric in (
                "tension_end.mean", "tension_peak.mean"):
            rows.append(f"<tr><td>{html.escape(row.label)}</td><td>{row.estimate:.2f}</td>"
                        f"<td>[{row.low:.2f}, {row.high:.2f}]</td></tr>")
    rows.append("</table>")
    return head + "".join(rows)


def _comparison_html(results: Sequence[Results]) -> str:
    from .compare import compare, scenario_differences

    comparison = compare(*results)
    parts = ["<h2>Differences</h2>"]
    parts += [f"<p>{html.escape(line)}.</p>" for line in comparison.describe_pairing()]
    parts.append("<table><tr><th>scenario</th><th>metric</th>"
                 f"<th>{html.escape(comparison.reference)}</th><th>other</th><th>difference</th>"
                 "<th>95% interval</th><th class='l'>test</th><th>p</th></tr>")
    for name, d in comparison.rows:
        if "_by_" in d.metric or (d.metric.endswith((".held", ".cancelled"))
                                  and d.metric != "meetings.cancelled"):
            continue
        f = functools.partial(_cell, probability=d.kind == "probability")
        cls = ' class="sig"' if d.significant else ""
        p = "–" if math.isnan(d.p_value) else f"{d.p_value:.3g}"
        parts.append(f"<tr{cls}><td>{html.escape(name)}</td><td class='l'>{html.escape(d.label)}</td>"
                     f"<td>{f(d.a)}</td><td>{f(d.b)}</td><td>{f(d.difference, True)}</td>"
                     f"<td>[{f(d.low, True)}, {f(d.high, True)}]</td><td class='l'>{d.test}</td>"
                     f"<td>{p}</td></tr>")
    parts.append("</table><p class='meta'>Highlighted rows: significant at the 5% level.</p>")
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
        plot_meetings,
        plot_outcome_categories,
    )

    results = list(results)
    names = ", ".join(r.name for r in results)
    body = [f"<h1>Negotiation outcomes: {html.escape(names)}</h1>",
            f'<p class="meta">Generated {dt.datetime.now():%Y-%m-%d %H:%M} by sim {__version__}. '
            "Intervals are 95%: Wilson for probabilities, t for means, order statistics for "
            "medians. The reference forecast is the salience- and capability-weighted mean of "
            "the sides' ideal points on each topic's 0-1 scale.</p>"]
    for res in results:
        body.append(_summary_html(res))
    if len(results) > 1:
        body.append(_comparison_html(results))
    body.append("<h2>Plots</h2>")
    body.append(_figure_html(plot_agreement_curves(results),
                             "Cumulative probability of agreement by date, with 95% bands"))
    body.append(_figure_html(plot_outcome_categories(results), "Outcome categories by topic"))
    body.append(_figure_html(plot_agreed_values_grid(results),
                             "Distribution of agreed values among runs with an agreement"))
    body.append(_figure_html(plot_meetings(results), "Meetings per run by track and fate"))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Negotiation outcomes: {html.escape(names)}</title><style>{_CSS}</style>"
            f"</head><body>{''.join(body)}</body></html>\n")


def write_report(results: Sequence[Results], path: str | Path) -> Path:
    """Write the HTML report for ``results`` to ``path`` (atomically) and return it."""
    path = Path(path)
    write_text_atomic(path, render_report(results))
    return path
