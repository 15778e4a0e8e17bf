"""Facts files: dated facts and questions about a scenario, evaluated exactly at their dates.

A facts file is YAML with one key, ``facts:``, a list of items::

    facts:
      - label: Leaders' summits held          # unique in the file
        source: Anchorage, 15 August          # where the observation comes from
        by: 2025-08-15                        # a date, or a window: from: A, to: B
        track: summit                         # the quantity (see below)
        count: held
        observed: 1                           # a fact; without it, a question
        reference_rate: 0                     # counts: events a year of the reference

The quantity is one of

* ``track: NAME, count: held|cancelled|postponed|derailed|vetoes|planned``: a track's
  meetings (a count);
* ``shock: NAME``: how many times a shock struck (a count);
* ``summits: held``: leaders' summits held on every summit track (a count);
* ``topic: NAME, state: agreed|interim|default|none``: whether the topic is in that state
  on the date (a yes/no item);
* ``topic: NAME, value_above: X``: whether the topic is agreed by the date at a value above
  X (a yes/no item).

``observed:`` is a count (a whole number) or ``true``/``false``. An item with it is a *fact*
and is scored (:mod:`sim.scoring`); one without it is a *question*, whose forecast is
printed and stored (``forecasts.json``), so that the same file, filled in later, scores the
forecast made earlier (:func:`stored_forecasts`).

Evaluation exactly at dates
---------------------------
A run's day ``t`` (a real number: days since the scenario's start) lies on the date
``start + floor(t)``, and a run to horizon ``H`` keeps exactly the events with ``t < H``. So

* a count *by date D* counts the events on the days up to and including D: it is read from
  the runs simulated to horizon ``day_of(D) + 1``;
* a count in the *window from A to B* (both included) is ``count(B) - count(A - 1 day)``,
  taken run by run: both horizons are run with the same seed and runs, so run ``i`` at one
  horizon is run ``i`` at the other, cut earlier (a window from the start itself counts
  from day 0);
* a topic's state *on date D* is its outcome at the end of the run to ``day_of(D) + 1``.

This is exact, not an approximation, because a horizon only truncates: every event before
day D is the same whatever the horizon (>= D), as ``tests/test_horizon.py`` checks. A date
beyond the scenario's own horizon is therefore fine: it is evaluated by running further.
The scenario's horizon plays no part in any item's forecast. All dates' jobs go to one
executor at once (:func:`sim.montecarlo.run_jobs`).

What this does not do: the forecast of each item is the scenario's predictive distribution
as of its start. It is not updated on the facts dated earlier (a forecast for October does
not know what happened in April), and the items are read from the same runs, so their
scores are correlated. A count is the model's own tally: "planned" counts proposals made by
the date (for meetings that may fall after it), "held" and "cancelled" count what happened
on or before it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .errors import InputError
from .scenario.loading import Lines, ScenarioError, read_yaml_file, validation_problems
from .scenario.models import Date, Number, Unit

if TYPE_CHECKING:
    from .results import Results
    from .scenario import Scenario

#: A track's counters an item may ask for (the outcome columns ``<track>.<count>``).
COUNTERS = ("planned", "held", "cancelled", "postponed", "derailed", "vetoes")
#: Topic states by name, with the model's outcome codes.
STATES = {"none": 0, "agreed": 1, "interim": 2, "default": 3}
#: The longest horizon a scenario may have, so the latest day an item may fall on.
MAX_HORIZON = 36500
#: Keys of the earlier, undated facts format, and what to write instead.
_OLD_KEYS = {
    "kind": "the dated format has no kind: an item is a count or a yes/no item by its "
            "quantity (track: with count:, shock:, summits: or topic: with state:), and "
            "needs a date (by:, or from: and to:)",
    "column": "the dated format names the quantity instead (track: with count:, shock: or "
              "summits: held) and needs a date (by:, or from: and to:)",
}


def _column_advice(value: Any) -> str:
    """What to write instead of an undated fact's ``column: value``."""
    text = str(value)
    head, _, tail = text.rpartition(".")
    if head == "shocks":
        instead = f"shock: {tail}"
    elif text == "summits_held":
        instead = "summits: held"
    elif head and tail in COUNTERS:
        instead = f"track: {head}, count: {tail}"
    else:
        return _OLD_KEYS["column"]
    return f"removed: write {instead}, with a date (by:, or from: and to:)"


Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Rate = Annotated[float, Field(ge=0.0, le=10_000.0), Number]


class Item(BaseModel):
    """One dated fact (with ``observed``) or question (without) in a facts file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    label: Text
    source: str = ""
    by: Date | None = None
    from_: Date | None = Field(None, alias="from")
    to: Date | None = None
    track: Text | None = None
    count: Literal["planned", "held", "cancelled", "postponed", "derailed", "vetoes"] | None = None
    shock: Text | None = None
    summits: Literal["held"] | None = None
    topic: Text | None = None
    state: Literal["agreed", "interim", "default", "none"] | None = None
    value_above: Unit | None = None
    observed: Any = None
    reference_rate: Rate | None = None

    #: keys of the earlier, undated format: refused, each with what to write instead
    kind: Any = Field(None, exclude=True)
    column: Any = Field(None, exclude=True)

    @field_validator("kind", "column", mode="before")
    @classmethod
    def _old_format(cls, value: Any, info: ValidationInfo) -> Any:
        advice = _OLD_KEYS[info.field_name] if info.field_name == "kind" else _column_advice(value)
        raise PydanticCustomError("sim_old_facts_format", "{value}: {advice}",
                                  {"value": repr(value), "advice": advice})

    @field_validator("observed", mode="before")
    @classmethod
    def _observed_fits(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if info.data.get("topic") is not None:
            if not isinstance(value, bool):
                raise PydanticCustomError("sim_not_yes_no", "{value} is not true or false (a "
                                          "topic's state is a yes/no item)", {"value": repr(value)})
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PydanticCustomError("sim_not_a_count", "{value} is not a count (a whole "
                                      "number, 0 or more)", {"value": str(value).lower()})
        return value

    @model_validator(mode="after")
    def _complete(self) -> Item:
        problems = _date_problems(self) + _quantity_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def is_fact(self) -> bool:
        return self.observed is not None

    @property
    def yes_no(self) -> bool:
        """Whether the item is a yes/no question (a topic's state) rather than a count."""
        return self.topic is not None

    @property
    def end(self) -> dt.date:
        """The item's date: ``by``, or a window's ``to``."""
        return self.by if self.by is not None else self.to  # type: ignore[return-value]

    def outcome_column(self) -> str:
        """The outcome column the item reads."""
        if self.track is not None:
            return f"{self.track}.{self.count}"
        if self.shock is not None:
            return f"shocks.{self.shock}"
        if self.summits is not None:
            return "summits_held"
        return f"{self.topic}.outcome"

    def quantity(self) -> str:
        """What the item asks, in words: "calls held", "start agreed", ..."""
        if self.track is not None:
            return f"{self.track} {self.count}"
        if self.shock is not None:
            return f"shock {self.shock}"
        if self.summits is not None:
            return "summits held"
        if self.state is not None:
            return f"{self.topic} {self.state}"
        return f"{self.topic} agreed above {self.value_above:g}"

    def when(self) -> str:
        if self.by is not None:
            return f"by {self.by}"
        return f"{self.from_} to {self.to}"

    def question(self) -> dict[str, Any]:
        """The item's definition (quantity and dates): a stored forecast answers it only if
        the item still asks the same."""
        keys = ("by", "from_", "to", "track", "count", "shock", "summits", "topic", "state",
                "value_above")
        return {k.rstrip("_"): v for k, v in self.model_dump(mode="json", include=set(keys)).items()
                if v is not None}


def _date_problems(item: Item) -> list[str]:
    window = item.from_ is not None or item.to is not None
    if item.by is None and not window:
        return ["give a date: by: (on that date) or from: and to: (a window)"]
    if item.by is not None and window:
        return ["by: and from:/to: exclude each other: give one date or one window"]
    if window and (item.from_ is None or item.to is None):
        return ["a window needs both from: and to:"]
    if window and item.from_ > item.to:  # type: ignore[operator]
        return [f"from: {item.from_} is after to: {item.to}"]
    if window and item.yes_no:
        return ["a topic's state is read on one date: use by:, not a window"]
    return []


def _quantity_problems(item: Item) -> list[str]:
    given = [k for k in ("track", "shock", "summits", "topic") if getattr(item, k) is not None]
    if len(given) != 1:
        return ["give one quantity: track: (with count:), shock:, summits: or topic: (with "
                "state: or value_above:)" + (f"; found {', '.join(given)}" if given else "")]
    problems = []
    if (item.track is None) != (item.count is None):
        problems.append("track: and count: go together (e.g. track: calls, count: held)")
    if item.topic is not None and (item.state is None) == (item.value_above is None):
        problems.append("a topic item needs one of state: or value_above:")
    if item.topic is None and (item.state is not None or item.value_above is not None):
        problems.append("state: and value_above: are about a topic: give topic:")
    if item.yes_no and item.reference_rate is not None:
        problems.append("reference_rate is for counts; a yes/no item's reference forecast is "
                        "'unchanged from the start' (see sim.scoring)")
    return problems


class _FactsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    facts: list[Item] = Field(min_length=1)


@dataclass(frozen=True)
class FactsFile:
    """The items of a facts file, with where each key was written (for messages)."""

    path: Path
    items: list[Item]
    lines: Lines = field(default_factory=dict)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def facts(self) -> list[Item]:
        return [i for i in self.items if i.is_fact]

    @property
    def questions(self) -> list[Item]:
        return [i for i in self.items if not i.is_fact]


def load_facts(path: str | Path) -> FactsFile:
    """Return the items of a facts file, validated.

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
    errors = _duplicate_labels(data.get("facts"))
    items: list[Item] = []
    try:
        items = _FactsFile.model_validate(data).facts
    except ValidationError as exc:
        errors = exc.errors(include_url=False) + errors
    if errors:
        problems = validation_problems(errors, lines, file=str(path))
        raise InputError("\n".join(str(p) for p in problems))
    return FactsFile(path, items, lines)


def _duplicate_labels(raw: Any) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    errors = []
    for i, entry in enumerate(raw if isinstance(raw, list) else []):
        label = entry.get("label") if isinstance(entry, dict) else None
        if not isinstance(label, str):
            continue
        if label in seen:
            errors.append(_error(("facts", i, "label"), f"'{label}' is the label of item "
                                 f"{seen[label]} too: labels must be unique"))
        seen.setdefault(label, i)
    return errors


def _error(loc: tuple, message: str) -> dict[str, Any]:
    return {"loc": loc, "type": "value_error", "msg": message, "input": None}


def check_fits(facts: FactsFile, scenario: Scenario) -> None:
    """Raise :class:`InputError`, before anything runs, listing every item that names what
    the scenario lacks or a date it cannot evaluate."""
    errors = []
    for i, item in enumerate(facts):
        for key, known in (("track", scenario.tracks), ("shock", scenario.shocks),
                           ("topic", scenario.topics)):
            name = getattr(item, key)
            if name is not None and name not in known:
                errors.append(_error(("facts", i, key), f"'{name}' is not a {key} of scenario "
                                     f"'{scenario.name}' (it has: {', '.join(known) or 'none'})"))
        errors += _date_errors(i, item, scenario)
    if errors:
        problems = validation_problems(errors, facts.lines, file=str(facts.path))
        raise InputError("\n".join(str(p) for p in problems))


def _date_errors(i: int, item: Item, scenario: Scenario) -> list[dict[str, Any]]:
    errors = []
    for key, date in (("by", item.by), ("from", item.from_), ("to", item.to)):
        if date is None:
            continue
        if date < scenario.start or (date == scenario.start and key != "from"):
            errors.append(_error(("facts", i, key), f"{date} is not after the scenario's start "
                                 f"({scenario.start})"))
        elif scenario.day_of(date) + 1 > MAX_HORIZON:
            errors.append(_error(("facts", i, key), f"{date} is more than {MAX_HORIZON} days "
                                 "after the scenario's start (the longest horizon)"))
    return errors


# --- evaluation at the items' dates -------------------------------------------------------


def horizon(scenario: Scenario, date: dt.date) -> int:
    """The horizon whose runs end with date ``date`` (its events included)."""
    return scenario.day_of(date) + 1


def horizons(scenario: Scenario, items: list[Item]) -> list[int]:
    """The horizons the items need, in increasing order (0, before the start, needs none)."""
    needed = set()
    for item in items:
        needed.add(horizon(scenario, item.end))
        if item.from_ is not None:
            needed.add(scenario.day_of(item.from_))  # the end of the day before the window
    return sorted(h for h in needed if h > 0)


def evaluate(scenario: Scenario, items: list[Item], *, runs: int, seed: int,
             have: dict[int, Results] | None = None, **job: Any) -> dict[str, np.ndarray]:
    """Return each item's value in every run: counts (int64) or yes/no (bool), by label.

    Runs ``runs`` runs with ``seed`` to every horizon the items need, on one executor, except
    the horizons in ``have`` (results already at hand, e.g. a results folder's own horizon,
    which must hold the same runs). ``job`` goes to :func:`sim.montecarlo.run_jobs`
    (``workers``, ``executor``, ``progress``) and to each :class:`~sim.montecarlo.JobSpec`
    (``inputs``, ``replications``).
    """
    from .montecarlo import JobSpec, run_jobs

    have = dict(have or {})
    spec_keys = {k: job.pop(k) for k in ("inputs", "replications") if k in job}
    todo = [h for h in horizons(scenario, items) if h not in have]
    jobs = [JobSpec(scenario.model_copy(update={"horizon_days": h}), runs, seed, **spec_keys)
            for h in todo]
    if jobs:
        have.update(zip(todo, run_jobs(jobs, **job)))
    return {item.label: item_values(item, scenario, have.__getitem__, runs) for item in items}


def item_values(item: Item, scenario: Scenario, at: Callable[[int], Results],
                runs: int) -> np.ndarray:
    """Return the item's value in each run, reading the results ``at(horizon)``."""
    if item.yes_no:
        res = at(horizon(scenario, item.end))
        code = res.column(f"{item.topic}.outcome")
        if item.state is not None:
            return np.asarray(code == STATES[item.state])
        agreed = code == STATES["agreed"]
        return np.asarray(agreed & (res.column(f"{item.topic}.value") > item.value_above))

    def count(h: int) -> np.ndarray:
        if h == 0:
            return np.zeros(runs, dtype=np.int64)
        return at(h).column(item.outcome_column()).astype(np.int64)

    total = count(horizon(scenario, item.end))
    if item.from_ is None:
        return total
    return total - count(scenario.day_of(item.from_))


# --- forecasts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    """The predictive distribution of one item, from ``runs`` runs.

    ``p_yes`` for a yes/no item; for a count, ``counts[k]`` runs gave the value k.
    ``made`` describes the job: scenario hash, seed, runs, package version, date made.
    """

    runs: int
    p_yes: float | None = None
    counts: tuple[int, ...] | None = None
    made: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, item: Item, values: np.ndarray, made: dict[str, Any]) -> Forecast:
        runs = len(values)
        if item.yes_no:
            return cls(runs, p_yes=float(np.mean(values)), made=made)
        if values.size and values.min() < 0:  # a window's count cannot be negative
            raise ValueError(f"{item.label}: a negative count; the runs are not paired")
        return cls(runs, counts=tuple(int(c) for c in np.bincount(values)), made=made)

    @property
    def pmf(self) -> np.ndarray:
        assert self.counts is not None
        return np.asarray(self.counts, dtype=float) / self.runs

    def sample(self) -> np.ndarray:
        """The runs' values, sorted (a count's runs are their histogram)."""
        assert self.counts is not None
        return np.repeat(np.arange(len(self.counts)), self.counts)

    def interval(self, level: float) -> tuple[int, int]:
        """The central ``level`` interval of a count (inverted empirical CDF, ends included)."""
        tail = (1 - level) / 2
        low, high = np.quantile(self.sample(), [tail, 1 - tail], method="inverted_cdf")
        return int(low), int(high)

    def mean(self) -> float:
        return float(np.dot(np.arange(len(self.counts or ())), self.pmf))

    def to_dict(self) -> dict[str, Any]:
        shape = {"p_yes": self.p_yes} if self.p_yes is not None else {"counts": list(self.counts or ())}
        return {**self.made, "runs": self.runs, **shape}


def job_description(scenario: Scenario, *, seed: int, runs: int) -> dict[str, Any]:
    """What a forecast was made with: the scenario (and its hash), seed, runs, package
    version and the date it was made (today, UTC)."""
    from . import __version__
    from .results import scenario_hash

    return {"scenario": scenario.name, "scenario_hash": scenario_hash(scenario),
            "scenario_hash_without_horizon": hash_without_horizon(scenario),
            "seed": seed, "runs": runs, "version": __version__,
            "made": dt.datetime.now(dt.UTC).date().isoformat()}


def hash_without_horizon(scenario: Scenario) -> str:
    """The scenario's hash with its horizon set aside: a horizon only truncates, so two
    scenarios that differ only there make the same forecasts for every date."""
    from .results import scenario_hash

    return scenario_hash(scenario.model_copy(update={"horizon_days": 1}))


def forecasts_of(items: list[Item], values: dict[str, np.ndarray],
                 made: dict[str, Any]) -> dict[str, Forecast]:
    return {item.label: Forecast.of(item, values[item.label], made) for item in items}


# --- stored forecasts (forecasts.json) -------------------------------------------------------


class _Stored(BaseModel):
    model_config = ConfigDict(extra="ignore")
    label: str
    question: dict[str, Any]
    scenario_hash_without_horizon: str
    runs: Annotated[int, Field(gt=0)]
    p_yes: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    counts: list[Annotated[int, Field(ge=0)]] | None = None
    made: str = ""


class _StoredFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    forecasts: list[_Stored]


def read_stored(path: Path) -> dict[str, tuple[Forecast, dict[str, Any]]]:
    """Return the forecasts stored in ``path`` (a ``forecasts.json``), by label, each with
    its question; :class:`InputError` if the file is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        stored = _StoredFile.model_validate(data).forecasts
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # ValidationError is a ValueError
        reason = exc.strerror if isinstance(exc, OSError) else "not a forecasts file of sim"
        raise InputError(f"{path}: cannot read stored forecasts: {reason}") from None
    out = {}
    for s, raw in zip(stored, data["forecasts"]):
        made = {k: v for k, v in raw.items()
                if k not in ("label", "question", "p_yes", "counts", "runs")}
        counts = tuple(s.counts) if s.counts is not None else None
        if (s.p_yes is None) == (counts is None) or (counts is not None and sum(counts) != s.runs):
            raise InputError(f"{path}: stored forecast '{s.label}' is damaged")
        out[s.label] = (Forecast(s.runs, s.p_yes, counts, made), s.question)
    return out


def stored_forecasts(items: list[Item], stored: dict[str, tuple[Forecast, dict[str, Any]]],
                     scenario: Scenario) -> tuple[dict[str, Forecast], list[str]]:
    """Return the stored forecasts that answer these items for this scenario, and notes.

    A stored forecast is used when it has the item's label, asks the same question (quantity
    and dates) and was made with the same scenario (its hash, horizon set aside); otherwise
    the notes say why not and the item is scored with the forecast made now.
    """
    now = hash_without_horizon(scenario)
    used, notes = {}, []
    for item in items:
        if item.label not in stored:
            continue
        forecast, question = stored[item.label]
        made = forecast.made.get("made", "an unknown date")
        if question != item.question():
            notes.append(f"'{item.label}': the stored forecast of {made} asks another question "
                         "(its quantity or dates changed); scored the forecast made now")
        elif forecast.made.get("scenario_hash_without_horizon") != now:
            notes.append(f"'{item.label}': the stored forecast of {made} was made with another "
                         f"scenario (hash {str(forecast.made.get('scenario_hash'))[:12]}, now "
                         "another); scored the forecast made now")
        elif (forecast.p_yes is not None) != item.yes_no:
            notes.append(f"'{item.label}': the stored forecast of {made} is of another kind")
        else:
            used[item.label] = forecast
            notes.append(f"'{item.label}': scored the forecast stored on {made} "
                         f"({forecast.runs:,} runs, seed {forecast.made.get('seed')}, "
                         f"version {forecast.made.get('version')})")
    return used, notes


def stored_text(items: list[Item], forecasts: dict[str, Forecast]) -> str:
    """Return ``forecasts.json``: the forecast of each item, with its question and job."""
    entries = [{"label": item.label, "question": item.question(),
                **forecasts[item.label].to_dict()} for item in items]
    return json.dumps({"tool": "negotiation-sim", "kind": "forecasts", "forecasts": entries},
                      indent=2) + "\n"
