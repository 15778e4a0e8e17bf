"""Typed scenario models: what a scenario file may say, validated once at the edge."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveDays = Annotated[float, Field(gt=0.0, le=36500.0)]
Days = Annotated[float, Field(ge=0.0, le=36500.0)]

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
    date: dt.date
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
    salience: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    tactic: Literal["boulware", "linear", "conceder"] = "linear"
    concession: Annotated[float, Field(gt=0.0, le=100.0)] | None = Field(
        None, description="Faratin beta: <1 Boulware, 1 linear, >1 Conceder; overrides tactic"
    )
    initial_concession: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.0, description="Faratin k: share of the way conceded at t = 0"
    )
    patience_days: PositiveDays | None = Field(
        None, description="Concession horizon T; the topic's deadline or the horizon if omitted"
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
    capability: Annotated[float, Field(gt=0.0, le=100.0)] = 1.0
    discount: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.9
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
    cadence_days: Annotated[float, Field(ge=1.0, le=36500.0)] = Field(
        description="Mean days between proposals (at least a day)"
    )
    cadence: Literal["fixed", "exponential"] = "exponential"
    first_day: Days | None = Field(None, description="Day of the first proposal; one cadence if omitted")
    preparation_days: Days = 0.0
    agenda: list[Name] = Field(default_factory=list)
    authority: list[Name] = Field(default_factory=list)
    venues: list[Name] = Field(default_factory=list)
    veto_delay_days: Days = 14.0
    cancel_prob: Probability = 0.0
    postpone_prob: Probability = 0.0
    postpone_days: Days = 30.0
    max_postponements: Annotated[int, Field(ge=0, le=20)] = 2
    leak_prob: Probability = 0.0
    stall_prob: Probability = Field(0.0, description="Announced, then stalls without cancellation")
    max_meetings: Annotated[int, Field(ge=0)] | None = None
    requires: Prerequisite | None = None
    linkage: bool = False
    protocol: Literal["concession", "rubinstein"] | None = None
    relief_scale: Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        1.0, description="Multiplier on the climate's meeting relief for this track"
    )


class Shock(_Strict):
    label: str
    rate_per_year: Annotated[float, Field(ge=0.0, le=365.0)]
    tension: Annotated[float, Field(ge=-1.0, le=1.0)] = Field(
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
        float, Field(ge=0.0, le=0.5, description="Standard deviation of a side's demand at one meeting")
    ] = 0.03


class Scenario(_Strict):
    """A validated scenario: everything one Monte Carlo job needs."""

    name: Name
    description: str = ""
    start: dt.date
    horizon_days: Annotated[int, Field(gt=0, le=36500)]
    runs: Annotated[int, Field(gt=0, le=100_000_000)] = 1000
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    topics: dict[Name, Topic] = Field(min_length=1)
    sides: dict[Name, Side] = Field(min_length=2)
    climate: Climate
    venues: dict[Name, Venue] = Field(default_factory=dict)
    tracks: dict[Name, Track] = Field(min_length=1)
    shocks: dict[Name, Shock] = Field(default_factory=dict)
    bargaining: Bargaining = Bargaining()

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
