"""A validated scenario compiled into plain, fast structures, once per worker."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from ..scenario.models import Scenario

#: Outcome categories of a topic, by code.
CATEGORIES = ("none", "agreement", "interim", "default")
NONE, AGREEMENT, INTERIM, DEFAULT = range(4)

#: Concession horizon T (days) of a side without ``patience_days`` on a topic without a
#: deadline. A fixed number, not the scenario's horizon: how far an analyst simulates must
#: not change what happens in the first months (a horizon only truncates).
DEFAULT_PATIENCE = 730.0

#: Per-track counters in the outcome record, in order.
TRACK_COUNTERS = ("planned", "held", "cancelled", "postponed", "derailed", "vetoes")


class Record:
    """Base of the frozen dataclasses here: pickled and copied by their field values.

    Compiled by mypyc, a frozen dataclass does not pickle or deep-copy by default.
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), tuple(getattr(self, f.name) for f in fields(self)))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class TopicSpec(Record):
    name: str
    label: str
    deadline: float  # day number, inf without a deadline
    default: float
    interim: float | None
    interim_label: str | None
    interim_end: float  # day the interim arrangement runs out, inf if it holds
    high: int  # index of the signatory that wants high values
    # per signatory (index 0, 1):
    opening: tuple[float, float]
    reservation: tuple[float, float]
    beta: tuple[float, float]
    k: tuple[float, float]
    patience: tuple[float, float]
    salience: tuple[float, float]
    pull: tuple[float, float]  # total influence weight of third parties
    pull_target: tuple[float, float]  # influence-weighted mean ideal of those parties


@dataclass(frozen=True, slots=True)
class TrackSpec(Record):
    name: str
    label: str
    kind: str
    cadence: float
    fixed: bool
    first_day: float
    preparation: float
    authority: tuple[int, ...]
    venues: tuple[int, ...]
    # per proposer: its weight on each venue of the pool (acceptability x neutrality preference)
    venue_weights: tuple[tuple[float, ...], tuple[float, ...]]
    venue_cumulative: tuple[tuple[float, ...], tuple[float, ...]]  # running sums of those
    # per responder: its chance of accepting each venue of the pool in calm times
    venue_accept: tuple[tuple[float, ...], tuple[float, ...]]
    venue_risk: tuple[float, ...]  # 1 - security of each venue of the pool
    veto_delay: float
    cancel_prob: float
    postpone_prob: float
    postpone_days: float
    max_postponements: int
    leak_prob: float
    stall_prob: float
    max_meetings: int | None
    requires_topics: tuple[int, ...]
    requires_convergence: float
    linkage: bool
    rubinstein: bool
    relief: float


@dataclass(frozen=True, slots=True)
class VenueSpec(Record):
    name: str
    label: str
    security: float
    neutrality: float
    acceptability: tuple[float, float]


@dataclass(frozen=True, slots=True)
class ShockSpec(Record):
    name: str
    label: str
    mean_gap: float  # mean days between shocks, inf for rate 0
    tension: float
    decay: float  # per day
    derail_prob: float
    derail_window: float
    max_tension: float


@dataclass(frozen=True, slots=True)
class World(Record):
    """Everything a run needs, in plain floats and tuples; built once per worker."""

    name: str
    start_ordinal: int
    horizon: float
    signatories: tuple[str, str]
    side_labels: tuple[str, str]
    discount: tuple[float, float]
    topics: tuple[TopicSpec, ...]
    tracks: tuple[TrackSpec, ...]
    venues: tuple[VenueSpec, ...]
    shocks: tuple[ShockSpec, ...]
    initial_tension: float
    equilibrium: float
    reversion: float  # per day
    # tension components that decay at the same rate are summed into one group: group 0 is
    # the base (reversion rate), shock j adds to group shock_group[j]
    group_decay: tuple[float, ...]
    shock_group: tuple[int, ...]
    meeting_relief: float
    agreement_relief: float
    cancellation_strain: float
    concession_sensitivity: float
    cancel_sensitivity: float
    venue_sensitivity: float
    noise: float
    fields: tuple[str, ...]


def _pair(values: Iterable[Any]) -> tuple[Any, Any]:
    """Return the two per-signatory values of ``values`` as a typed pair."""
    a, b = values
    return a, b


def _rate_from_half_life(days: float) -> float:
    return math.log(2.0) / days


def compile_scenario(scenario: Scenario) -> World:
    """Return the scenario as a :class:`World` the simulation loop reads without lookups."""
    sig = _pair(scenario.signatories)
    topic_index = {name: i for i, name in enumerate(scenario.topics)}
    venue_index = {name: i for i, name in enumerate(scenario.venues)}
    horizon = float(scenario.horizon_days)
    influencers = [s for s in scenario.sides.values() if s.role == "influencer"]

    topics = []
    for name, topic in scenario.topics.items():
        pos = [scenario.sides[s].topics[name] for s in sig]
        high = 0 if pos[0].ideal >= pos[1].ideal else 1
        deadline = math.inf
        if topic.deadline is not None:
            deadline = float(scenario.day_of(topic.deadline.date))
        pulls, targets = [], []
        for s in sig:
            weight = total = 0.0
            for side in influencers:
                p = side.topics.get(name)
                if p is not None and s in p.influence:
                    weight += p.influence[s]
                    total += p.influence[s] * p.ideal
            targets.append(total / weight if weight > 0 else 0.0)
            pulls.append(min(weight, 1.0))
        interim = topic.deadline.interim if topic.deadline else None
        topics.append(
            TopicSpec(
                name=name,
                label=topic.label,
                deadline=deadline,
                default=topic.deadline.default if topic.deadline else math.nan,
                interim=interim.value if interim else None,
                interim_label=interim.label if interim else None,
                interim_end=(
                    deadline + interim.duration_days
                    if interim is not None and interim.duration_days is not None
                    else math.inf
                ),
                high=high,
                opening=_pair(p.opening if p.opening is not None else p.ideal for p in pos),
                reservation=_pair(p.reservation for p in pos),
                beta=_pair(p.beta for p in pos),
                k=_pair(p.initial_concession for p in pos),
                patience=_pair(
                    p.patience_days or (deadline if math.isfinite(deadline) else DEFAULT_PATIENCE)
                    for p in pos
                ),
                salience=_pair(p.salience for p in pos),
                pull=_pair(pulls),
                pull_target=_pair(targets),
            )
        )

    tracks = []
    venue_list = list(scenario.venues.values())
    for name, tr in scenario.tracks.items():
        pool = [venue_list[venue_index[v]] for v in tr.venues]
        # a proposer weighs each venue by its own acceptability, preferring neutral ground
        weights = _pair(
            tuple(v.acceptability.get(s, 1.0) * (0.5 + 0.5 * v.neutrality) for v in pool)
            for s in sig
        )
        req = tr.requires
        protocol = tr.protocol or scenario.bargaining.protocol
        tracks.append(
            TrackSpec(
                name=name,
                label=tr.label,
                kind=tr.kind,
                cadence=tr.cadence_days,
                fixed=tr.cadence == "fixed",
                first_day=tr.first_day if tr.first_day is not None else tr.cadence_days,
                preparation=tr.preparation_days,
                authority=tuple(topic_index[t] for t in tr.authority),
                venues=tuple(venue_index[v] for v in tr.venues),
                venue_weights=weights,
                venue_cumulative=_pair(tuple(itertools.accumulate(w)) for w in weights),
                venue_accept=_pair(tuple(v.acceptability.get(s, 1.0) for v in pool) for s in sig),
                venue_risk=tuple(1.0 - v.security for v in pool),
                veto_delay=tr.veto_delay_days,
                cancel_prob=tr.cancel_prob,
                postpone_prob=tr.postpone_prob,
                postpone_days=tr.postpone_days,
                max_postponements=tr.max_postponements,
                leak_prob=tr.leak_prob,
                stall_prob=tr.stall_prob,
                max_meetings=tr.max_meetings,
                requires_topics=tuple(topic_index[t] for t in req.topics) if req else (),
                requires_convergence=req.convergence if req else 0.0,
                linkage=tr.linkage,
                rubinstein=protocol == "rubinstein",
                relief=tr.relief_scale,
            )
        )

    venues = tuple(
        VenueSpec(
            name=name,
            label=v.label,
            security=v.security,
            neutrality=v.neutrality,
            acceptability=_pair(v.acceptability.get(s, 1.0) for s in sig),
        )
        for name, v in scenario.venues.items()
    )
    shocks = tuple(
        ShockSpec(
            name=name,
            label=s.label,
            mean_gap=365.0 / s.rate_per_year if s.rate_per_year > 0 else math.inf,
            tension=s.tension,
            decay=_rate_from_half_life(s.half_life_days),
            derail_prob=s.derail_prob,
            derail_window=s.derail_window_days,
            max_tension=s.max_tension,
        )
        for name, s in scenario.shocks.items()
    )
    c = scenario.climate
    reversion = _rate_from_half_life(c.reversion_half_life_days)
    half_lives = [c.reversion_half_life_days]
    for shock in scenario.shocks.values():
        if shock.half_life_days not in half_lives:
            half_lives.append(shock.half_life_days)
    return World(
        name=scenario.name,
        start_ordinal=scenario.start.toordinal(),
        horizon=horizon,
        signatories=sig,
        side_labels=_pair(scenario.sides[s].label for s in sig),
        discount=_pair(scenario.sides[s].discount for s in sig),
        topics=tuple(topics),
        tracks=tuple(tracks),
        venues=venues,
        shocks=shocks,
        initial_tension=c.initial_tension,
        equilibrium=c.equilibrium,
        reversion=reversion,
        group_decay=tuple(_rate_from_half_life(h) for h in half_lives),
        shock_group=tuple(half_lives.index(s.half_life_days) for s in scenario.shocks.values()),
        meeting_relief=c.meeting_relief,
        agreement_relief=c.agreement_relief,
        cancellation_strain=c.cancellation_strain,
        concession_sensitivity=c.concession_sensitivity,
        cancel_sensitivity=c.cancel_sensitivity,
        venue_sensitivity=c.venue_sensitivity,
        noise=scenario.bargaining.noise,
        fields=outcome_fields(scenario),
    )


def outcome_fields(scenario: Scenario) -> tuple[str, ...]:
    """Return the names of an outcome record's fields, in order."""
    fields: list[str] = []
    for t, topic in scenario.topics.items():
        fields += [f"{t}.outcome", f"{t}.day", f"{t}.value"]
        if topic.deadline is not None and topic.deadline.interim is not None:
            fields.append(f"{t}.interim_day")
    for tr in scenario.tracks:
        fields += [f"{tr}.{c}" for c in TRACK_COUNTERS]
    fields += ["summits_held", "first_summit_day", "tension_end", "tension_peak"]
    fields += [f"shocks.{s}" for s in scenario.shocks]
    fields += ["events"]
    return tuple(fields)


# --- per-run inputs, written natively ----------------------------------------------------
#
# A run whose inputs are drawn gets its own copy of the specs they touch (sim.model.patch),
# and its values are written into that copy before it starts. Compiled, these functions
# write a field in about 10 ns, where a write from Python through object.__setattr__ takes
# 65 ns; a run of the baseline writes about a hundred fields. They bypass the frozen
# dataclasses' guard on purpose, and only patch calls them, and only when compiled (from
# the Python sources the assignments would raise FrozenInstanceError). Each op is
# (spec, code, position of its first value in the run's row of floats); a pair takes two
# values, a track's venue fields 7 per venue of its pool.

#: Field codes, by their position here.
TOPIC_WRITES = ("default", "interim", "interim_end", "opening", "reservation", "beta", "k",
                "patience", "salience", "pull", "pull_target")
TRACK_WRITES = ("cadence", "first_day", "preparation", "veto_delay", "cancel_prob",
                "postpone_prob", "postpone_days", "leak_prob", "stall_prob",
                "requires_convergence", "relief", "venues")
SHOCK_WRITES = ("mean_gap", "tension", "decay", "derail_prob", "derail_window", "max_tension")
WORLD_WRITES = ("initial_tension", "equilibrium", "reversion", "meeting_relief",
                "agreement_relief", "cancellation_strain", "concession_sensitivity",
                "cancel_sensitivity", "venue_sensitivity", "noise", "discount")


#: A track's venue fields, in the order of their values in a row (see venue_fields).
VENUE_FIELDS = ("venue_weights", "venue_cumulative", "venue_accept", "venue_risk")
Sides = tuple[tuple[float, ...], tuple[float, ...]]


def venue_fields(row: list[float], j: int, k: int) -> tuple[Sides, Sides, Sides, tuple[float, ...]]:
    """Return a track's venue fields from the 7 k values of ``row`` from ``j`` on: each
    side's weights, cumulative weights and acceptance of the k venues of its pool, then
    their risk."""
    def pair(at: int) -> Sides:
        return tuple(row[at:at + k]), tuple(row[at + k:at + 2 * k])

    return pair(j), pair(j + 2 * k), pair(j + 4 * k), tuple(row[j + 6 * k:j + 7 * k])


def write_topics(specs: list[TopicSpec], codes: list[int], at: list[int], row: list[float]) -> None:
    for i in range(len(codes)):
        t = specs[i]
        c = codes[i]
        j = at[i]
        v = row[j]
        if c == 0:
            t.default = v  # type: ignore[misc]
        elif c == 1:
            t.interim = v  # type: ignore[misc]
        elif c == 2:
            t.interim_end = v  # type: ignore[misc]
        else:
            pair = (v, row[j + 1])
            if c == 3:
                t.opening = pair  # type: ignore[misc]
            elif c == 4:
                t.reservation = pair  # type: ignore[misc]
            elif c == 5:
                t.beta = pair  # type: ignore[misc]
            elif c == 6:
                t.k = pair  # type: ignore[misc]
            elif c == 7:
                t.patience = pair  # type: ignore[misc]
            elif c == 8:
                t.salience = pair  # type: ignore[misc]
            elif c == 9:
                t.pull = pair  # type: ignore[misc]
            else:
                t.pull_target = pair  # type: ignore[misc]


def write_tracks(specs: list[TrackSpec], codes: list[int], at: list[int], row: list[float]) -> None:
    for i in range(len(codes)):
        t = specs[i]
        c = codes[i]
        j = at[i]
        if c == 11:
            weights, cumulative, accept, risk = venue_fields(row, j, len(t.venues))
            t.venue_weights = weights  # type: ignore[misc]
            t.venue_cumulative = cumulative  # type: ignore[misc]
            t.venue_accept = accept  # type: ignore[misc]
            t.venue_risk = risk  # type: ignore[misc]
            continue
        v = row[j]
        if c == 0:
            t.cadence = v  # type: ignore[misc]
        elif c == 1:
            t.first_day = v  # type: ignore[misc]
        elif c == 2:
            t.preparation = v  # type: ignore[misc]
        elif c == 3:
            t.veto_delay = v  # type: ignore[misc]
        elif c == 4:
            t.cancel_prob = v  # type: ignore[misc]
        elif c == 5:
            t.postpone_prob = v  # type: ignore[misc]
        elif c == 6:
            t.postpone_days = v  # type: ignore[misc]
        elif c == 7:
            t.leak_prob = v  # type: ignore[misc]
        elif c == 8:
            t.stall_prob = v  # type: ignore[misc]
        elif c == 9:
            t.requires_convergence = v  # type: ignore[misc]
        else:
            t.relief = v  # type: ignore[misc]


def write_shocks(specs: list[ShockSpec], codes: list[int], at: list[int], row: list[float]) -> None:
    for i in range(len(codes)):
        s = specs[i]
        c = codes[i]
        v = row[at[i]]
        if c == 0:
            s.mean_gap = v  # type: ignore[misc]
        elif c == 1:
            s.tension = v  # type: ignore[misc]
        elif c == 2:
            s.decay = v  # type: ignore[misc]
        elif c == 3:
            s.derail_prob = v  # type: ignore[misc]
        elif c == 4:
            s.derail_window = v  # type: ignore[misc]
        else:
            s.max_tension = v  # type: ignore[misc]


def write_world(w: World, codes: list[int], at: list[int], row: list[float]) -> None:
    for i in range(len(codes)):
        c = codes[i]
        j = at[i]
        v = row[j]
        if c == 0:
            w.initial_tension = v  # type: ignore[misc]
        elif c == 1:
            w.equilibrium = v  # type: ignore[misc]
        elif c == 2:
            w.reversion = v  # type: ignore[misc]
        elif c == 3:
            w.meeting_relief = v  # type: ignore[misc]
        elif c == 4:
            w.agreement_relief = v  # type: ignore[misc]
        elif c == 5:
            w.cancellation_strain = v  # type: ignore[misc]
        elif c == 6:
            w.concession_sensitivity = v  # type: ignore[misc]
        elif c == 7:
            w.cancel_sensitivity = v  # type: ignore[misc]
        elif c == 8:
            w.venue_sensitivity = v  # type: ignore[misc]
        elif c == 9:
            w.noise = v  # type: ignore[misc]
        else:
            w.discount = (v, row[j + 1])  # type: ignore[misc]
