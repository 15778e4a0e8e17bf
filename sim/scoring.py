"""Proper scores for dated facts, a reference forecaster, and the model's skill over it.

Every score here is *proper* (a forecaster expects the best score by giving the
probabilities it believes) and negatively oriented: lower is better, 0 is perfect.

Yes/no items (a topic's state on a date), with p the model's probability of "yes" (the share
of runs) and o = 1 if it happened, 0 if not:

* **Brier score** (p - o)^2, unclipped;
* **log score** -ln(probability of what happened), natural log. A share of n runs can be
  exactly 0 or 1 where the model's probability is not, and -ln 0 is infinite, so the
  probability is first clipped to [1/(2n), 1 - 1/(2n)] (half a run at either end).

Counts, with the predictive pmf f(k) (the share of runs whose count is k) and its CDF F:

* **ranked probability score** RPS = sum over k = 0..max of (F(k) - 1[y <= k])^2, where max
  is the largest of the runs' counts and y (beyond it both terms are 1); for integer counts
  this is also the CRPS;
* **log score** -ln f(y), clipped as above;
* **randomised PIT** u = F(y - 1) + V f(y) with V ~ U(0, 1): uniform on (0, 1) when the
  forecasts are calibrated (a discrete forecast needs V to be). V comes from a generator
  seeded with :data:`PIT_SEED` and the item's label, so an item's PIT does not depend on
  the other items or on when it is scored;
* the central 50% and 90% intervals (the inverted empirical CDF, ends included).

The reference forecaster, the yardstick of the skill score:

* counts: Poisson with mean ``reference_rate * days / 365``, the rate the facts file states
  for the item (events a year, e.g. the rate of the year before the scenario's start) and
  ``days`` the days the item counts (from the start to its date, or its window's length).
  An item without ``reference_rate`` has no reference: it is left out of the skill score,
  and the output says so;
* yes/no topic states: "unchanged from the start". Every topic starts unsettled (state
  "none"), and the reference gives probability :data:`UNCHANGED` = 0.9 that the topic's
  state on the date is still the one at the start, and 0.1 that it changed; an item asking
  about another state (agreed, interim, default, or agreed above a value) gets the whole
  0.1, which favours the reference. 0.9 is a stated choice, not an estimate: a forecaster
  who expects little to move in a year of talks, and is not certain of it.

Its probabilities are clipped for the log score with the same n as the model's, so both
are floored alike. A reference rate of 0 gives probability 0 to any positive count: its
log score is then the floor's, ln(2n), which grows with the runs; for such items the RPS
skill is the one to read. **Skill** is ``1 - S_model / S_reference`` on the mean scores over the
items that have a reference: above 0 the model beats the reference, 1 is perfect, below 0
the reference does better; it is undefined (shown as n/a) when the reference scores 0.

The old check stays as one line: a count is *inside the central 90%* if it lies within the
90% interval, a yes/no fact if its probability is at least 5%.

Scores use the kept library ``scoringrules`` (``brier_score``, ``log_score``,
``rps_score``); ``tests/test_scoring.py`` checks them against closed forms.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .facts import Forecast, Item

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .scenario import Scenario

#: The reference's probability that a topic's state is unchanged from the start.
UNCHANGED = 0.9
#: Seed of the PIT's randomisation (with each item's label).
PIT_SEED = 20250120
#: A Poisson reference's pmf is cut where its upper tail falls below this.
POISSON_TAIL = 1e-15
CENTRAL = 0.90


# --- the scores ----------------------------------------------------------------------------


def clip(p: float, runs: int) -> float:
    """Return ``p`` clipped to [1/(2n), 1 - 1/(2n)] for n runs."""
    low = 1.0 / (2 * runs)
    return float(min(max(p, low), 1.0 - low))


def brier(p_yes: float, happened: bool) -> float:
    import scoringrules as sr

    return float(sr.brier_score(int(happened), p_yes))


def log_score(p_yes: float, happened: bool, runs: int) -> float:
    """The log score of a yes/no forecast, its probability clipped for ``runs`` runs."""
    import scoringrules as sr

    return float(sr.log_score(int(happened), clip(p_yes, runs)))


def rps(pmf: np.ndarray, y: int) -> float:
    """The ranked probability score of a count's pmf over 0..max(len - 1, y)."""
    import scoringrules as sr

    fct = np.zeros(max(len(pmf), y + 1))
    fct[: len(pmf)] = pmf
    return float(sr.rps_score(y + 1, fct))  # its categories are numbered from 1


def count_log_score(pmf: np.ndarray, y: int, runs: int) -> float:
    """-ln f(y), f(y) clipped for ``runs`` runs.

    scoringrules' ``logs_ensemble`` smooths an ensemble into a continuous density (a kernel
    estimate), which is not the pmf of a count; ``log_score`` of the event "the count is y"
    with probability f(y) is exactly -ln f(y), and lets f(y) be clipped first.
    """
    import scoringrules as sr

    return float(sr.log_score(1, clip(_at(pmf, y), runs)))


def randomised_pit(pmf: np.ndarray, y: int, v: float) -> float:
    """u = F(y - 1) + v f(y) (computed with numpy: scoringrules has no PIT)."""
    return float(pmf[: min(y, len(pmf))].sum() + v * _at(pmf, y))


def pit_draw(label: str) -> float:
    """The item's V ~ U(0, 1): from :data:`PIT_SEED` and its label, the same every time."""
    seq = np.random.SeedSequence(PIT_SEED, spawn_key=(zlib.crc32(label.encode("utf-8")),))
    return float(np.random.default_rng(seq).random())


def poisson_pmf(mean: float, y: int = 0) -> np.ndarray:
    """Poisson(mean) probabilities of 0..K, K the larger of y and where the tail beyond
    falls below :data:`POISSON_TAIL`."""
    from scipy import stats

    top = int(stats.poisson.isf(POISSON_TAIL, mean)) if mean > 0 else 0
    return stats.poisson.pmf(np.arange(max(top, y) + 1), mean)


def skill(model: float, reference: float) -> float:
    """1 - model / reference; NaN when the reference scores 0."""
    if not reference > 0 or not math.isfinite(reference):
        return math.nan
    return 1.0 - model / reference


def _at(pmf: np.ndarray, y: int) -> float:
    return float(pmf[y]) if 0 <= y < len(pmf) else 0.0


# --- scoring items ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    """One fact against the model's forecast and the reference's."""

    item: Item
    forecast: Forecast
    p: float  # the model's probability of what happened
    scores: dict[str, float]  # brier and log, or rps and log
    reference: dict[str, float] | None  # the same scores of the reference, if it has one
    reference_p: float | None
    reference_text: str
    pit: float | None = None
    stored: bool = False  # scored from a forecast stored earlier

    @property
    def inside(self) -> bool:
        """The old coverage check: inside the central 90%."""
        if self.item.yes_no:
            return self.p >= (1 - CENTRAL) / 2
        low, high = self.forecast.interval(CENTRAL)
        return bool(low <= self.item.observed <= high)


def item_days(item: Item, scenario: Scenario) -> int:
    """The days an item counts: from the start to its date, or its window's length."""
    first = scenario.day_of(item.from_) if item.from_ is not None else 0
    return scenario.day_of(item.end) + 1 - first


def score(item: Item, forecast: Forecast, scenario: Scenario, *, stored: bool = False) -> Scored:
    """Return the fact ``item`` scored with ``forecast`` and against the reference."""
    if item.yes_no:
        return _score_yes_no(item, forecast, stored)
    return _score_count(item, forecast, scenario, stored)


def _score_yes_no(item: Item, forecast: Forecast, stored: bool) -> Scored:
    assert forecast.p_yes is not None
    happened, n = bool(item.observed), forecast.runs
    p_ref = UNCHANGED if item.state == "none" else 1.0 - UNCHANGED

    def scores(p_yes: float) -> dict[str, float]:
        return {"brier": brier(p_yes, happened), "log": log_score(p_yes, happened, n)}

    return Scored(item, forecast, forecast.p_yes if happened else 1.0 - forecast.p_yes,
                  scores(forecast.p_yes), scores(p_ref), p_ref if happened else 1.0 - p_ref,
                  f"unchanged from the start: P(yes) = {p_ref:g}", stored=stored)


def _score_count(item: Item, forecast: Forecast, scenario: Scenario, stored: bool) -> Scored:
    y, n, pmf = int(item.observed), forecast.runs, forecast.pmf

    def scores(f: np.ndarray) -> dict[str, float]:
        return {"rps": rps(f, y), "log": count_log_score(f, y, n)}

    reference, p_ref, text = None, None, "none (no reference_rate)"
    if item.reference_rate is not None:
        mean = item.reference_rate * item_days(item, scenario) / 365.0
        ref = poisson_pmf(mean, y)
        reference, p_ref = scores(ref), _at(ref, y)
        text = f"Poisson, {item.reference_rate:g} a year: mean {mean:.2f}"
    return Scored(item, forecast, _at(pmf, y), scores(pmf), reference, p_ref, text,
                  pit=randomised_pit(pmf, y, pit_draw(item.label)), stored=stored)


# --- the scorecard ---------------------------------------------------------------------------


@dataclass
class Scorecard:
    """The facts scored, the questions forecast, and how the forecasts were made."""

    scored: list[Scored]
    questions: list[tuple[Item, Forecast]]
    made: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def of_kind(self, yes_no: bool) -> list[Scored]:
        return [s for s in self.scored if s.item.yes_no == yes_no]

    def coverage(self) -> tuple[int, int]:
        return sum(s.inside for s in self.scored), len(self.scored)

    def totals(self) -> dict[str, Any]:
        """Mean scores by kind, the model's and (over the items that have one) the
        reference's, with the skill; and the log score over all facts with a reference."""
        out: dict[str, Any] = {}
        for kind, yes_no, names in (("yes_no", True, ("brier", "log")),
                                    ("counts", False, ("rps", "log"))):
            items = self.of_kind(yes_no)
            out[kind] = _means(items, names)
        out["all"] = _means(self.scored, ("log",))
        return out

    def coverage_line(self) -> str:
        inside, n = self.coverage()
        return (f"{inside} of {n} facts fall inside the central 90% (about {CENTRAL * n:.0f} "
                "expected if the model is calibrated).")

    def to_dict(self) -> dict[str, Any]:
        inside, n = self.coverage()
        return {**self.made, "facts": [_scored_dict(s) for s in self.scored],
                "questions": [{**_item_dict(i), "forecast": _forecast_dict(i, f)}
                              for i, f in self.questions],
                "totals": self.totals(),
                "coverage": {"inside_central_90": inside, "facts": n, "expected": CENTRAL * n},
                "notes": self.notes,
                "reference": {"counts": "Poisson at each item's reference_rate (a year)",
                              "yes_no": f"unchanged from the start, P = {UNCHANGED}"}}


def _means(items: list[Scored], names: tuple[str, ...]) -> dict[str, Any]:
    with_ref = [s for s in items if s.reference is not None]
    out: dict[str, Any] = {"items": len(items), "with_reference": len(with_ref),
                           "left_out": [s.item.label for s in items if s.reference is None]}
    for name in names:
        model = float(np.mean([s.scores[name] for s in items])) if items else math.nan
        m_ref = float(np.mean([s.scores[name] for s in with_ref])) if with_ref else math.nan
        ref = float(np.mean([s.reference[name] for s in with_ref])) if with_ref else math.nan
        out[name] = {"model": model, "model_on_reference_items": m_ref, "reference": ref,
                     "skill": skill(m_ref, ref)}
    return out


def _item_dict(item: Item) -> dict[str, Any]:
    return {"label": item.label, "source": item.source, "quantity": item.quantity(),
            "when": item.when(), **item.question(), "kind": "yes/no" if item.yes_no else "count"}


def _forecast_dict(item: Item, f: Forecast) -> dict[str, Any]:
    if item.yes_no:
        return {"p_yes": f.p_yes, "runs": f.runs}
    return {"mean": f.mean(), "central_50": list(f.interval(0.5)),
            "central_90": list(f.interval(CENTRAL)), "pmf": f.pmf.tolist(), "runs": f.runs}


def _scored_dict(s: Scored) -> dict[str, Any]:
    return {**_item_dict(s.item), "observed": s.item.observed,
            "forecast": _forecast_dict(s.item, s.forecast), "p_observed": s.p,
            "scores": s.scores, "pit": s.pit, "reference": s.reference_text,
            "reference_p_observed": s.reference_p, "reference_scores": s.reference,
            "inside_central_90": s.inside, "stored_forecast": s.stored,
            "forecast_made": s.forecast.made.get("made")}


# --- text ------------------------------------------------------------------------------------


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}f}"


def _model_text(item: Item, f: Forecast) -> str:
    if item.yes_no:
        return f"P(yes) {f.p_yes:.1%}"
    (a, b), (c, d) = f.interval(0.5), f.interval(CENTRAL)
    return f"mean {f.mean():.2f}, 50% {a}-{b}, 90% {c}-{d}"


_NAMES = {"brier": "Brier", "log": "log", "rps": "RPS"}


def _scores_text(scores: dict[str, float] | None, pit: float | None = None) -> str:
    if scores is None:
        return "n/a"
    text = " ".join(f"{_NAMES[k]} {_fmt(v)}" for k, v in scores.items())
    return text + (f" PIT {_fmt(pit, 2)}" if pit is not None else "")


def _date_text(item: Item) -> str:
    return str(item.by) if item.by is not None else f"{item.from_} to {item.to}"


def render(card: Scorecard) -> str:
    """Return the facts table, the totals with skill, the coverage line and the questions."""
    from rich.table import Table

    from .summary import render_text

    parts: list[Any] = []
    if card.scored:
        table = Table(title=f"Forecasts against the record: {card.made.get('runs', 0):,} runs, "
                            f"seed {card.made.get('seed')}")
        for col in ("fact", "date", "observed", "model", "P(obs.)", "scores",
                    "reference P(obs.)", "reference scores"):
            table.add_column(col, justify="left" if col in ("fact", "model") else "right")
        for s in card.scored:
            observed = str(s.item.observed).lower() if s.item.yes_no else str(s.item.observed)
            ref_p = f"{s.reference_p:.1%}" if s.reference_p is not None else "n/a"
            table.add_row(s.item.label + (" *" if s.stored else ""), _date_text(s.item), observed,
                          _model_text(s.item, s.forecast), f"{s.p:.1%}",
                          _scores_text(s.scores, s.pit), ref_p, _scores_text(s.reference))
        parts += [table, *_totals_lines(card), card.coverage_line()]
        if any(s.stored for s in card.scored):
            parts.append("* scored with the forecast stored earlier (forecasts.json)")
    if card.questions:
        parts.append(_questions_table(card))
    parts += card.notes
    return render_text(*parts)


def _totals_lines(card: Scorecard) -> list[str]:
    t = card.totals()
    lines = []
    yn, ct, every = t["yes_no"], t["counts"], t["all"]
    if yn["items"]:
        lines.append(
            f"Yes/no facts ({yn['items']}): mean Brier {_fmt(yn['brier']['model'])} "
            f"(reference {_fmt(yn['brier']['reference'])}, skill {_fmt(yn['brier']['skill'])}); "
            f"mean log score {_fmt(yn['log']['model'])} (reference {_fmt(yn['log']['reference'])}, "
            f"skill {_fmt(yn['log']['skill'])}). Reference: unchanged from the start, P = {UNCHANGED}.")
    if ct["items"]:
        lines.append(
            f"Counts ({ct['items']}): mean RPS {_fmt(ct['rps']['model'])}, mean log score "
            f"{_fmt(ct['log']['model'])}. Against the Poisson reference on the "
            f"{ct['with_reference']} with a reference_rate: RPS {_fmt(ct['rps']['model_on_reference_items'])} "
            f"vs {_fmt(ct['rps']['reference'])} (skill {_fmt(ct['rps']['skill'])}), log "
            f"{_fmt(ct['log']['model_on_reference_items'])} vs {_fmt(ct['log']['reference'])} "
            f"(skill {_fmt(ct['log']['skill'])}).")
        if ct["left_out"]:
            lines.append("Left out of the count skill (no reference_rate): "
                         + ", ".join(ct["left_out"]) + ".")
    if every["with_reference"]:
        lines.append(f"Log score over the {every['with_reference']} facts with a reference: model "
                     f"{_fmt(every['log']['model_on_reference_items'])}, reference "
                     f"{_fmt(every['log']['reference'])}, skill {_fmt(every['log']['skill'])}.")
    return lines


def _questions_table(card: Scorecard) -> Any:
    from rich.table import Table

    table = Table(title="Questions (no observed value yet): forecasts stored in forecasts.json")
    for col in ("question", "date", "quantity", "forecast", "made"):
        table.add_column(col)
    for item, f in card.questions:
        table.add_row(item.label, item.when(), item.quantity(), _model_text(item, f),
                      str(f.made.get("made", "")))
    return table


# --- figures -------------------------------------------------------------------------------


def reliability_figure(card: Scorecard, bins: int = 10) -> Figure:
    """Reliability diagram of the yes/no facts: forecast probability (binned) against the
    observed frequency, with the number of facts in each bin."""
    import matplotlib.pyplot as plt

    facts = card.of_kind(True)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    p = np.array([s.forecast.p_yes for s in facts], dtype=float)
    o = np.array([bool(s.item.observed) for s in facts], dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    for b in range(bins):
        sel = which == b
        if sel.any():
            x, y = p[sel].mean(), o[sel].mean()
            ax.scatter([x], [y], s=30 + 20 * sel.sum(), color="C0", zorder=3)
            ax.annotate(f"n={sel.sum()}", (x, y), textcoords="offset points", xytext=(6, 6))
    if not facts:
        ax.text(0.5, 0.5, "no yes/no facts", ha="center")
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.05, 1.05), xlabel="forecast probability (bin mean)",
           ylabel="observed frequency", title=f"Reliability: {len(facts)} yes/no facts")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def pit_figure(card: Scorecard, bins: int = 5) -> Figure:
    """Histogram of the counts' randomised PIT values: flat if calibrated."""
    import matplotlib.pyplot as plt

    pits = [s.pit for s in card.of_kind(False) if s.pit is not None]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    if pits:
        ax.hist(pits, bins=bins, range=(0, 1), density=True, color="C0", edgecolor="white")
    else:
        ax.text(0.5, 0.5, "no count facts", ha="center")
    ax.axhline(1.0, ls="--", color="grey", lw=1, label="uniform (calibrated)")
    ax.set(xlim=(0, 1), ylim=(0, 1.3 * max(ax.get_ylim()[1], 1.0)), xlabel="randomised PIT",
           ylabel="density", title=f"PIT histogram: {len(pits)} counts")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig
