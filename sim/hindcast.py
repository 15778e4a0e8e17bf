"""Forecasts held to account: ``sim score`` and the 2025 hindcast (``sim hindcast``).

A facts file (:mod:`sim.facts`) lists dated facts and questions. :func:`scorecard` runs the
scenario to every date they need (exactly: a horizon only truncates), turns the runs into
each item's forecast, scores the facts (:mod:`sim.scoring`: log score, Brier, RPS, PIT,
skill over a stated reference forecaster) and keeps the questions' forecasts.

Output folder (a plain "results" folder claimed through :func:`sim.outputs.claim`; in the
hindcast, the job's own results folder): :data:`SCORE_FILES`

* ``score.json``: every fact with its forecast, scores and reference; totals, skill,
  coverage; the job (scenario hash, seed, runs, version, date made);
* ``reliability.png``: reliability diagram of the yes/no facts;
* ``pit.png``: histogram of the counts' randomised PIT values;
* ``forecasts.json`` (when there are questions): the questions' forecasts with the scenario
  hash, seed, runs, package version and the date made. Filled in later, the same facts
  file scores these stored forecasts when the scenario is the same (see
  :func:`sim.facts.stored_forecasts`), rather than forecasts made after the fact.

The hindcast is this scorer on ``scenarios/hindcast_2025.yaml`` (a forecast made as of
20 January 2025) with the dated record of 2025 (``scenarios/facts/hindcast_2025.yaml``); it
also writes the job's runs (an ordinary results folder), and prints the old coverage
count ("k of n facts fall inside the central 90%") among the scores.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .facts import (
    FactsFile,
    Forecast,
    check_fits,
    evaluate,
    forecasts_of,
    job_description,
    load_facts,
    read_stored,
    stored_forecasts,
    stored_text,
)
from .scoring import Scorecard, pit_figure, reliability_figure, score

if TYPE_CHECKING:
    from .results import Results
    from .scenario import Scenario

#: The files scoring writes into its folder (forecasts.json only when there are questions).
SCORE_FILES = ("score.json", "reliability.png", "pit.png", "forecasts.json")
DEFAULT_SCENARIO = "scenarios/hindcast_2025.yaml"
DEFAULT_FACTS = "scenarios/facts/hindcast_2025.yaml"

Stored = dict[str, tuple[Forecast, dict[str, Any]]]


def scorecard(scenario: Scenario, facts: FactsFile, *, runs: int, seed: int,
              stored: Stored | None = None, have: dict[int, Results] | None = None,
              **job: Any) -> Scorecard:
    """Return the facts scored and the questions forecast, from ``runs`` runs with ``seed``
    to each date (``job``: see :func:`sim.facts.evaluate`)."""
    made = job_description(scenario, seed=seed, runs=runs)
    values = evaluate(scenario, facts.items, runs=runs, seed=seed, have=have, **job)
    fresh = forecasts_of(facts.items, values, made)
    used, notes = stored_forecasts(facts.items, stored or {}, scenario)

    def forecast(label: str) -> Forecast:
        return used.get(label, fresh[label])

    scored = [score(i, forecast(i.label), scenario, stored=i.label in used) for i in facts.facts]
    questions = [(i, forecast(i.label)) for i in facts.questions]
    return Scorecard(scored, questions, {**made, "facts_file": str(facts.path)}, notes)


def write_outputs(folder: Path, card: Scorecard) -> list[Path]:
    """Write score.json, reliability.png, pit.png and (if any) forecasts.json; return them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .results import write_atomic, write_text_atomic

    written = [folder / "score.json"]
    write_text_atomic(written[0], json.dumps(_finite(card.to_dict()), indent=2) + "\n")
    for name, fig in (("reliability.png", reliability_figure(card)), ("pit.png", pit_figure(card))):
        write_atomic(folder / name, lambda tmp, fig=fig: fig.savefig(tmp, format="png"))
        plt.close(fig)
        written.append(folder / name)
    kept = [(i, f) for i, f in card.questions] + [(s.item, s.forecast) for s in card.scored
                                                  if s.stored]
    if kept:
        text = stored_text([i for i, _ in kept], {i.label: f for i, f in kept})
        write_text_atomic(folder / "forecasts.json", text)
        written.append(folder / "forecasts.json")
    return written


def _finite(data: Any) -> Any:
    """JSON has no NaN: undefined numbers (a skill with no reference) become null."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def stored_in(folder: Path, path: str | Path | None, notes: list[str]) -> Stored:
    """Return the stored forecasts to use: ``path`` if given, else the folder's
    forecasts.json if it has one (read before the folder is replaced)."""
    from .outputs import is_ours, is_regular_file

    if path is not None:
        return read_stored(Path(path))
    candidate = folder / "forecasts.json"
    if not (is_ours(folder, "results") and is_regular_file(candidate)):
        return {}
    try:
        return read_stored(candidate)
    except InputError as exc:
        notes.append(f"ignored {exc}")
        return {}


def score_into(folder: Path, scenario: Scenario, facts: FactsFile, *, force: bool,
               forecasts: str | Path | None = None, **kwargs: Any) -> tuple[Scorecard, list[Path]]:
    """Score ``facts`` on ``scenario`` (``kwargs``: see :func:`scorecard`) into ``folder``,
    a folder claimed for this (``force`` replaces one that sim wrote)."""
    from .outputs import claim, discard, record

    notes: list[str] = []
    stored = stored_in(folder, forecasts, notes)
    lock, created = claim(folder, "results", force=force)
    try:
        card = scorecard(scenario, facts, stored=stored, **kwargs)
        card.notes[:0] = notes
        written = write_outputs(folder, card)
        record(folder, written)
    except BaseException:
        if lock is not None:
            lock.release()
        discard(folder, "results", created)
        raise
    if lock is not None:
        lock.release()
    return card, written


def folder_scenario(results: Results) -> Scenario:
    """The scenario a results folder's runs were made with, to run it again to other dates:
    with the posterior it drew from (``sim run --inputs-from``), which must still be there,
    unchanged."""
    calibration = results.metadata.get("calibration")
    if not calibration:
        return results.scenario
    from .calibration import attach, load_posterior

    source = calibration.get("source", "")
    try:
        posterior = load_posterior(source)
    except InputError as exc:
        raise InputError(f"{results.path}: its runs drew inputs from the calibration in "
                         f"{source}, needed to run it to other dates: {exc}") from None
    if posterior.digest != calibration.get("digest"):
        raise InputError(f"{results.path}: its runs drew inputs from the calibration in {source}, "
                         "which has changed since; run the scenario again with --inputs-from")
    return attach(results.scenario, posterior)[0]


def folder_job(results: Results) -> dict[str, Any]:
    """The job a results folder holds, to run again to other dates: its runs, seed and
    input mode, and its own runs for the dates at its horizon's end."""
    meta = results.metadata
    inputs = meta.get("inputs") if meta.get("inputs") in ("sample", "point") else "sample"
    return {"runs": results.runs, "seed": results.seed, "inputs": inputs,
            "replications": int(meta.get("replications", 1)),
            "have": {results.scenario.horizon_days: results}}


def hindcast(scenario_path: str | Path, facts_path: str | Path, *, runs: int | None,
             seed: int | None, workers: int | None, out: str | Path | None, force: bool,
             progress: bool = False) -> tuple[Scorecard, Path, list[Path]]:
    """Run the hindcast into its results folder, then score the facts into the same folder.

    Everything is checked (the facts file, the scenario, the items against it) before
    anything runs or is written.
    """
    from .montecarlo import run
    from .outputs import FolderLock, record
    from .scenario import load_scenario

    facts = load_facts(facts_path)
    scenario = load_scenario(scenario_path)
    check_fits(facts, scenario)
    folder = Path(out) if out else Path("results") / scenario.name
    notes: list[str] = []
    stored = stored_in(folder, None, notes)
    results = run(scenario, runs=runs, seed=seed, workers=workers, out=folder, force=force,
                  progress=progress)
    card = scorecard(scenario, facts, stored=stored, workers=workers, progress=progress,
                     **folder_job(results))
    card.notes[:0] = notes
    lock = FolderLock(folder)
    lock.acquire()
    try:
        written = write_outputs(folder, card)
        record(folder, written)  # ours, so that --force may replace them
    finally:
        lock.release()
    return card, folder, written
