"""Hindcast: the predictive distribution of a past period held against what happened.

For each recorded fact the check gives the model's predictive probability of what happened
(for a topic agreed or not) or its central 90% interval (for a count), and whether the fact
falls inside the central 90%. With calibrated forecasts about 9 facts in 10 should.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .errors import InputError
from .model.compiled import AGREEMENT
from .results import Results
from .scenario.loading import ScenarioError, read_yaml_file, validation_problems
from .scenario.models import Int

CENTRAL = 0.90


class Fact(BaseModel):
    """One thing that happened in the hindcast window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    kind: Literal["count", "agreed", "not_agreed"]
    column: str | None = None
    topic: str | None = None
    observed: Int | None = None  # a count: `yes` or "2" is refused, not read as 1 or 2
    source: str = ""

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Fact:
        if self.kind == "count" and (self.column is None or self.observed is None):
            raise ValueError("a count fact needs column and observed")
        if self.kind != "count" and self.topic is None:
            raise ValueError(f"an {self.kind} fact needs topic")
        return self


class _FactsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    facts: list[Fact]


@dataclass(frozen=True)
class FactCheck:
    """A fact against the predictive distribution."""

    fact: Fact
    observed: str
    prediction: str
    probability: float  # P(what happened): exact count, or the topic's observed state
    inside: bool


def load_facts(path: str | Path) -> list[Fact]:
    """Return the facts listed in a YAML file, validated.

    The file is read like a scenario file (a regular UTF-8 file, safe YAML, no duplicate
    keys); :class:`InputError` lists every problem, one per line, each with its line.
    """
    path = Path(path)
    try:
        data, lines = read_yaml_file(path, "facts file")
    except ScenarioError as exc:
        raise InputError(str(exc)) from None
    if not isinstance(data, dict):
        raise InputError(f"{path}:1: a facts file is a mapping with the key 'facts'")
    try:
        return _FactsFile.model_validate(data).facts
    except ValidationError as exc:
        problems = validation_problems(exc.errors(include_url=False), lines, file=str(path))
        raise InputError("\n".join(str(p) for p in problems)) from None


def check_facts(results: Results, facts: list[Fact]) -> list[FactCheck]:
    """Return each fact checked against the runs in ``results``."""
    checks = []
    tail = (1 - CENTRAL) / 2
    for fact in facts:
        if fact.kind == "count":
            if fact.column not in results.outcomes.columns:
                raise InputError(f"fact '{fact.label}': no outcome column '{fact.column}'")
            x = results.column(fact.column).astype(float)
            low, high = np.quantile(x, [tail, 1 - tail], method="inverted_cdf")
            p = float(np.mean(x == fact.observed))
            checks.append(FactCheck(
                fact, str(fact.observed),
                f"90% interval [{low:g}, {high:g}], mean {x.mean():.2f}", p,
                bool(low <= fact.observed <= high)))
        else:
            if f"{fact.topic}.outcome" not in results.outcomes.columns:
                raise InputError(f"fact '{fact.label}': no topic '{fact.topic}'")
            agreed = float(np.mean(results.column(f"{fact.topic}.outcome") == AGREEMENT))
            p = agreed if fact.kind == "agreed" else 1.0 - agreed
            observed = "agreed" if fact.kind == "agreed" else "not agreed"
            checks.append(FactCheck(fact, observed, f"P(agreed) = {agreed:.1%}", p, p >= tail))
    return checks


def render_checks(checks: list[FactCheck], runs: int) -> str:
    """Return the fact-by-fact table and the honest count."""

    from rich.table import Table

    table = Table(title=f"Hindcast: {runs:,} runs against the record")
    for col in ("fact", "observed", "model", "P(observed)", "in central 90%"):
        table.add_column(col, justify="left" if col in ("fact", "model") else "right")
    for c in checks:
        table.add_row(c.fact.label, c.observed, c.prediction, f"{c.probability:.1%}",
                      "yes" if c.inside else "NO")
    inside = sum(c.inside for c in checks)
    from .summary import render_text

    return render_text(table, f"{inside} of {len(checks)} facts fall inside the central 90% "
                       f"(about {CENTRAL * len(checks):.0f} expected if the model is calibrated).")
