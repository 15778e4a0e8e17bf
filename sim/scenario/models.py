"""Typed scenario models: what a scenario file may say, validated once at the edge."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..inputs import Posterior, Prior

#: Longest name: names become file names, column names and folder names.
NAME_MAX_LENGTH = 64
#: Dates a scenario may use; anything outside is a typo, and far dates overflow ``dt.date``.
EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2200, 12, 31)


def _parses_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text.lower().startswith(("0o", "0x"))
    return True


def _no_bool_or_text(value: Any) -> Any:
    """Refuse what pydantic's lax mode would turn into a number: ``yes`` is not 1, ``"30"``
    is not 30. Lax mode stays on for the rest, so 30.0 is still a valid integer."""
    if isinstance(value, bool):
        raise PydanticCustomError(
            "sim_bool_not_number",
            "{value} is a boolean (yes/no, true/false, on/off), not a number",
            {"value": str(value).lower()})
    if isinstance(value, (str, bytes)):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        hint = "write it without quotes"
        if any(c in text.lower() for c in "eox") and _parses_as_number(text):
            # YAML 1.1 reads 1e-1 (no dot) and 0o17 as text, though nobody quoted them
            hint = ("YAML reads this spelling as text: write it with a dot, e.g. 1.0e-1, "
                    "or as a plain decimal")
        raise PydanticCustomError(
            "sim_text_not_number", "{value} is text, not a number ({hint})",
            {"value": repr(value), "hint": hint})
    return value


def _date_only(value: Any) -> Any:
    """Accept a date or ISO text (JSON and ``dump_scenario`` carry dates as text); refuse
    numbers (pydantic reads them as Unix times) and datetimes (a time of day means a typo)."""
    if isinstance(value, dt.datetime):
        raise PydanticCustomError(
            "sim_not_a_date", "{value} has a time of day; write the date alone (YYYY-MM-DD)",
            {"value": str(value)})
    if not isinstance(value, (dt.date, str)):
        raise PydanticCustomError(
            "sim_not_a_date", "{value} is not a date (write YYYY-MM-DD)", {"value": repr(value)})
    return value


def _date_in_range(value: dt.date) -> dt.date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise PydanticCustomError(
            "sim_date_out_of_range", "{value} is outside {low} .. {high}",
            {"value": str(value), "low": str(EARLIEST_DATE), "high": str(LATEST_DATE)})
    return value


#: A number written as a number: every numeric field ends its annotation with it. It comes
#: after the bounds (``Annotated[float, Field(ge=0), Number]``) so that the bounds still show
#: in the JSON Schema.
Number = BeforeValidator(_no_bool_or_text)
Int = Annotated[int, Number]
#: ``true`` or ``false`` only: 1, "yes" and "on" (as text) are refused.
Bool = Annotated[bool, Strict()]
Date = Annotated[dt.date, BeforeValidator(_date_only), AfterValidator(_date_in_range)]

Name = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=NAME_MAX_LENGTH)
]
Unit = Annotated[float, Field(ge=0.0, le=1.0), Number]
Probability = Annotated[float, Field(ge=0.0, le=1.0), Number]
PositiveDays = Annotated[float, Field(gt=0.0, le=36500.0), Number]
Days = Annotated[float, Field(ge=0.0, le=36500.0), Number]

#: Faratin beta that each named tactic stands for when ``concession`` is not given.
TACTIC_BETA = {"boulware": 0.2, "linear": 1.0, "conceder": 5.0}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scale(_Strict):
    """What the two ends of a topic's [0, 1] dimension mean."""

    low: str = Field(description="Meaning of 0 on this topic")
    high: str = Field(description="Meaning of 1 on this topic")


class Interim(_Strict):
    """An arrangement short of agreement that may be taken at the deadline."""

    label: str
    value: Unit = Field(description="Position on the topic's scale the arrangement stands for")
    duration_days: PositiveDays | None = Field(
        None, description="How long it holds; the topic defaults when it ends without agreement"
    )


class Deadline(_Strict):
    date: Date
    default: Unit = Field(description="Outcome value if nothing is agreed by the deadline")
    interim: Interim | None = None


class Topic(_Strict):
    label: str
    scale: Scale
    deadline: Deadline | None = None


class Position(_Strict):
    """One side's stance on one topic."""

    ideal: Unit
    opening: Unit | None = Field(None, description="First demand; the ideal if omitted")
    reservation: Unit | None = Field(
        None, description="Worst acceptable value; signatories must give one"
    )
    salience: Annotated[float, Field(ge=0.0, le=1.0), Number] = 0.5
    tactic: Literal["boulware", "linear", "conceder"] = "linear"
    concession: Annotated[float, Field(gt=0.0, le=100.0), Number] | None = Field(
        None, description="Faratin beta: <1 Boulware, 1 linear, >1 Conceder; overrides tactic"
    )
    initial_concession: Annotated[float, Field(ge=0.0, lt=1.0), Number] = Field(
        0.0, description="Faratin k: share of the way conceded at t = 0"
    )
    patience_days: PositiveDays | None = Field(
        None, description="Concession horizon T; the topic's deadline, or 730 days without one, if omitted"
    )
    influence: dict[Name, Unit] = Field(
        default_factory=dict,
        description="Third parties only: pull on each signatory's demand, 0..1",
    )

    @property
    def beta(self) -> float:
        return self.concession if self.concession is not None else TACTIC_BETA[self.tactic]


class Side(_Strict):
    label: str
    role: Literal["signatory", "influencer"] = "signatory"
    capability: Annotated[float, Field(gt=0.0, le=100.0), Number] = 1.0
    discount: Annotated[float, Field(gt=0.0, lt=1.0), Number] = 0.9
    topics: dict[Name, Position]


class Climate(_Strict):
    """Shared tension in [0, 1]: shocks raise it, meetings and agreements lower it."""

    initial_tension: Unit
    equilibrium: Unit = Field(description="Level tension reverts to without events")
    reversion_half_life_days: PositiveDays = 90.0
    meeting_relief: Unit = 0.02
    agreement_relief: Unit = 0.05
    cancellation_strain: Unit = 0.03
    concession_sensitivity: Unit = Field(
        0.5, description="Share of concession withheld at tension 1"
    )
    cancel_sensitivity: Unit = Field(
        0.0, description="Added cancellation probability at tension 1"
    )
    venue_sensitivity: Unit = Field(
        0.0, description="Drop in venue acceptance at tension 1 for a venue without security"
    )


class Venue(_Strict):
    label: str
    security: Unit = 0.5
    neutrality: Unit = 0.5
    acceptability: dict[Name, Probability] = Field(
        default_factory=dict,
        description="Per signatory, chance of accepting the venue when proposed; 0 is a veto",
    )


class Prerequisite(_Strict):
    convergence: Unit = Field(description="Needed 1 - mean gap over the listed topics")
    topics: list[Name] = Field(min_length=1)


class Track(_Strict):
    label: str
    kind: Literal["call", "summit", "ministers", "consultations", "parliament", "envoys"]
    cadence_days: Annotated[float, Field(ge=1.0, le=36500.0), Number] = Field(
        description="Mean days between proposals (at least a day)"
    )
    cadence: Literal["fixed", "exponential"] = "exponential"
    first_day: Days | None = Field(None, description="Day of the first proposal; one cadence if omitted")
    preparation_days: Days = 0.0
    authority: list[Name] = Field(
        default_factory=list, description="Topics a held meeting of this track bargains over"
    )
    venues: list[Name] = Field(default_factory=list)
    veto_delay_days: Days = 14.0
    cancel_prob: Probability = 0.0
    postpone_prob: Probability = 0.0
    postpone_days: Days = 30.0
    max_postponements: Annotated[int, Field(ge=0, le=20), Number] = 2
    leak_prob: Probability = 0.0
    stall_prob: Probability = Field(0.0, description="Announced, then stalls without cancellation")
    max_meetings: Annotated[int, Field(ge=0), Number] | None = None
    requires: Prerequisite | None = None
    linkage: Bool = False
    protocol: Literal["concession", "rubinstein"] | None = None
    relief_scale: Annotated[float, Field(ge=0.0, le=10.0), Number] = Field(
        1.0, description="Multiplier on the climate's meeting relief for this track"
    )


class Shock(_Strict):
    label: str
    rate_per_year: Annotated[float, Field(ge=0.0, le=365.0), Number]
    tension: Annotated[float, Field(ge=-1.0, le=1.0), Number] = Field(
        description="Jump in tension when the shock lands (negative for relief)"
    )
    half_life_days: PositiveDays = 60.0
    source: Name | None = None
    derail_prob: Probability = Field(
        0.0, description="Chance that a meeting within derail_window_days is derailed"
    )
    derail_window_days: Days = 14.0
    max_tension: Unit = Field(1.0, description="The shock only lands while tension is at most this")


class Bargaining(_Strict):
    protocol: Literal["concession", "rubinstein"] = "concession"
    noise: Annotated[
        float,
        Field(ge=0.0, le=0.5, description="Standard deviation of a side's demand at one meeting"),
        Number,
    ] = 0.03


class Scenario(_Strict):
    """A validated scenario: everything one Monte Carlo job needs."""

    name: Name
    description: str = ""
    start: Date
    horizon_days: Annotated[int, Field(gt=0, le=36500), Number]
    runs: Annotated[int, Field(gt=0, le=100_000_000), Number] = 1000
    seed: Annotated[int, Field(ge=0, lt=2**63), Number] = 0
    topics: dict[Name, Topic] = Field(min_length=1)
    sides: dict[Name, Side] = Field(min_length=2)
    climate: Climate
    venues: dict[Name, Venue] = Field(default_factory=dict)
    tracks: dict[Name, Track] = Field(min_length=1)
    shocks: dict[Name, Shock] = Field(default_factory=dict)
    bargaining: Bargaining = Bargaining()
    priors: dict[str, Prior] = Field(
        default_factory=dict,
        description="Uncertain inputs by dotted key; files write each in place of its value",
    )
    posterior: Posterior | None = Field(
        default=None,
        description="A calibration's posterior the runs draw their inputs from (sim run "
                    "--inputs-from); never written in a scenario file",
    )

    @model_validator(mode="after")
    def _two_signatories(self) -> Scenario:
        signatories = [n for n, s in self.sides.items() if s.role == "signatory"]
        if len(signatories) != 2:
            raise ValueError(
                f"exactly two sides must have role 'signatory', found {len(signatories)}"
            )
        return self

    @property
    def signatories(self) -> list[str]:
        return [n for n, s in self.sides.items() if s.role == "signatory"]

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.horizon_days)

    def day_of(self, date: dt.date) -> int:
        """Day number of a calendar date, counted from the scenario's start."""
        return (date - self.start).days
