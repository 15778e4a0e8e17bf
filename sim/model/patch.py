"""Per-run worlds: a run's sampled inputs written into copies of the specs they touch.

The compiled :class:`~sim.model.compiled.World` is built once per worker. For a run with
uncertain inputs, :class:`Patcher` copies only the topic, track, venue and shock specs (and
the world's own fields) that an uncertain key touches, writes the sampled values into them,
recomputes what the compiler derives from them (venue weights from acceptability and
neutrality, rates from half-lives, concession horizons, third parties' pull), and returns a
new ``World`` sharing every untouched spec. The model never knows whether a number was fixed
or drawn.

:data:`SUPPORTED` lists the keys a prior may sit on; :func:`unsupported` explains the others.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from ..scenario.models import TACTIC_BETA, Scenario
from .compiled import World

_POSITION = ("ideal", "opening", "reservation", "salience", "tactic", "concession",
             "initial_concession", "patience_days")
_TRACK = ("cadence_days", "cadence", "first_day", "preparation_days", "veto_delay_days",
          "cancel_prob", "postpone_prob", "postpone_days", "max_postponements", "leak_prob",
          "stall_prob", "max_meetings", "linkage", "protocol", "relief_scale",
          "requires.convergence")
_SHOCK = ("rate_per_year", "tension", "half_life_days", "derail_prob", "derail_window_days",
          "max_tension")
_CLIMATE = ("initial_tension", "equilibrium", "reversion_half_life_days", "meeting_relief",
            "agreement_relief", "cancellation_strain", "concession_sensitivity",
            "cancel_sensitivity", "venue_sensitivity")

#: The dotted keys (as patterns) that may carry a prior.
SUPPORTED = (
    *(f"sides.<side>.topics.<topic>.{f}" for f in _POSITION),
    "sides.<side>.topics.<topic>.influence.<side>",
    "sides.<side>.discount", "sides.<side>.capability",
    "topics.<topic>.deadline.default", "topics.<topic>.deadline.interim.value",
    "topics.<topic>.deadline.interim.duration_days",
    *(f"tracks.<track>.{f}" for f in _TRACK),
    "venues.<venue>.security", "venues.<venue>.neutrality",
    "venues.<venue>.acceptability.<side>",
    *(f"shocks.<shock>.{f}" for f in _SHOCK),
    *(f"climate.{f}" for f in _CLIMATE),
    "bargaining.noise", "bargaining.protocol",
)
_PATTERNS = [re.compile("^" + re.escape(p).replace(r"<side>", r"[^.]+").replace(r"<topic>", r"[^.]+")
                        .replace(r"<track>", r"[^.]+").replace(r"<venue>", r"[^.]+")
                        .replace(r"<shock>", r"[^.]+") + "$") for p in SUPPORTED]


def unsupported(key: str) -> str | None:
    """Return why ``key`` may not carry a prior, or None if it may."""
    if any(p.match(key) for p in _PATTERNS):
        return None
    if key in ("runs", "seed", "horizon_days", "start"):
        return "a job's size, seed and calendar are not uncertain inputs"
    return "no prior may sit here (see 'Uncertain inputs' in docs/model.md for the keys that may)"


def _asdict(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


class Patcher:
    """Builds a run's world from the base world and the run's values of the uncertain keys."""

    def __init__(self, scenario: Scenario, world: World, keys: list[str]):
        self.world = world
        self.sig = tuple(scenario.signatories)
        self.topic_index = {n: i for i, n in enumerate(scenario.topics)}
        self.track_index = {n: i for i, n in enumerate(scenario.tracks)}
        self.venue_index = {n: i for i, n in enumerate(scenario.venues)}
        self.shock_index = {n: i for i, n in enumerate(scenario.shocks)}
        self.scenario = scenario
        self.setters: list[tuple[str, Callable[[_Draft, Any], None]]] = [
            (key, self._setter(key)) for key in keys]
        self.topics_with_pull = {key.split(".")[3] for key in keys
                                 if key.startswith("sides.") and self._is_influence_key(key)}
        self.venue_keys = any(k.startswith("venues.") for k in keys)
        self.half_life_keys = any(k.endswith("half_life_days") for k in keys)

    def _is_influence_key(self, key: str) -> bool:
        parts = key.split(".")
        side = parts[1]
        return (self.scenario.sides[side].role == "influencer"
                and (parts[-2] == "influence" or parts[-1] == "ideal"))

    def world_for(self, values: Mapping[str, Any]) -> World:
        """Return the world of one run whose uncertain keys take ``values``."""
        draft = _Draft(self.world)
        for key, setter in self.setters:
            setter(draft, values[key])
        for topic in self.topics_with_pull:
            self._pull(draft, self.topic_index[topic])
        if self.venue_keys:
            self._venue_fields(draft)
        if self.half_life_keys:
            self._groups(draft)
        return draft.build()

    # --- one setter per kind of key ---------------------------------------------------

    def _setter(self, key: str) -> Callable[[_Draft, Any], None]:
        parts = key.split(".")
        head = parts[0]
        if head == "sides":
            return self._side_setter(parts)
        if head == "topics":
            return self._topic_setter(parts)
        if head == "tracks":
            return self._track_setter(parts)
        if head == "venues":
            return self._venue_setter(parts)
        if head == "shocks":
            return self._shock_setter(parts)
        if head == "climate":
            return self._climate_setter(parts[1])
        if key == "bargaining.noise":
            return lambda d, v: d.set_world("noise", float(v))
        if key == "bargaining.protocol":
            own = [i for i, tr in enumerate(self.scenario.tracks.values()) if tr.protocol is None]

            def protocol(d: _Draft, v: Any) -> None:
                for i in own:
                    d.track(i)["rubinstein"] = v == "rubinstein"
            return protocol
        raise ValueError(f"{key}: {unsupported(key)}")

    def _side_setter(self, parts: list[str]) -> Callable[[_Draft, Any], None]:
        side = parts[1]
        if len(parts) == 3:
            if parts[2] == "capability":  # weighs the reference forecast only
                return lambda d, v: None
            index = self.sig.index(side) if side in self.sig else None
            if index is None:  # an influencer's discount plays no part
                return lambda d, v: None

            def discount(d: _Draft, v: Any) -> None:
                pair = list(d.world_field("discount"))
                pair[index] = float(v)
                d.set_world("discount", tuple(pair))
            return discount
        topic, field = parts[3], parts[4]
        j = self.topic_index[topic]
        if side not in self.sig:  # an influencer: its ideal and influence feed the pull
            return lambda d, v: d.influence(j, side, parts[4:], v)
        i = self.sig.index(side)
        position = self.scenario.sides[side].topics[topic]

        def pair_set(name: str, value: float) -> Callable[[_Draft], None]:
            def apply(d: _Draft) -> None:
                spec = d.topic(j)
                pair = list(spec[name])
                pair[i] = value
                spec[name] = tuple(pair)
            return apply

        if field == "ideal":
            if position.opening is not None:
                return lambda d, v: None  # the opening demand is given: the ideal is not read
            return lambda d, v: pair_set("opening", float(v))(d)
        names = {"opening": "opening", "reservation": "reservation", "salience": "salience",
                 "initial_concession": "k", "patience_days": "patience"}
        if field in names:
            return lambda d, v: pair_set(names[field], float(v))(d)
        if field == "concession":
            return lambda d, v: pair_set("beta", float(v))(d)
        if field == "tactic":
            if position.concession is not None:
                return lambda d, v: None  # concession overrides the tactic
            return lambda d, v: pair_set("beta", TACTIC_BETA[v])(d)
        raise ValueError(f"{'.'.join(parts)}: {unsupported('.'.join(parts))}")

    def _topic_setter(self, parts: list[str]) -> Callable[[_Draft, Any], None]:
        j = self.topic_index[parts[1]]
        rest = ".".join(parts[2:])
        if rest == "deadline.default":
            return lambda d, v: d.topic(j).__setitem__("default", float(v))
        if rest == "deadline.interim.value":
            return lambda d, v: d.topic(j).__setitem__("interim", float(v))
        if rest == "deadline.interim.duration_days":
            def duration(d: _Draft, v: Any) -> None:
                spec = d.topic(j)
                spec["interim_end"] = spec["deadline"] + float(v)
            return duration
        raise ValueError(f"{'.'.join(parts)}: {unsupported('.'.join(parts))}")

    def _track_setter(self, parts: list[str]) -> Callable[[_Draft, Any], None]:
        i = self.track_index[parts[1]]
        track = self.scenario.tracks[parts[1]]
        field = ".".join(parts[2:])
        direct = {"preparation_days": "preparation", "veto_delay_days": "veto_delay",
                  "cancel_prob": "cancel_prob", "postpone_prob": "postpone_prob",
                  "postpone_days": "postpone_days", "leak_prob": "leak_prob",
                  "stall_prob": "stall_prob", "relief_scale": "relief",
                  "requires.convergence": "requires_convergence", "first_day": "first_day"}
        if field in direct:
            return lambda d, v: d.track(i).__setitem__(direct[field], float(v))
        if field == "cadence_days":
            def cadence(d: _Draft, v: Any) -> None:
                spec = d.track(i)
                spec["cadence"] = float(v)
                if track.first_day is None:  # the first proposal comes one cadence in
                    spec["first_day"] = float(v)
            return cadence
        if field == "cadence":
            return lambda d, v: d.track(i).__setitem__("fixed", v == "fixed")
        if field == "max_postponements":
            return lambda d, v: d.track(i).__setitem__("max_postponements", int(v))
        if field == "max_meetings":
            return lambda d, v: d.track(i).__setitem__("max_meetings", int(v))
        if field == "linkage":
            return lambda d, v: d.track(i).__setitem__("linkage", bool(v))
        if field == "protocol":
            return lambda d, v: d.track(i).__setitem__("rubinstein", v == "rubinstein")
        raise ValueError(f"{'.'.join(parts)}: {unsupported('.'.join(parts))}")

    def _venue_setter(self, parts: list[str]) -> Callable[[_Draft, Any], None]:
        k = self.venue_index[parts[1]]
        if parts[2] in ("security", "neutrality"):
            return lambda d, v: d.venue(k).__setitem__(parts[2], float(v))
        side = self.sig.index(parts[3])

        def accept(d: _Draft, v: Any) -> None:
            spec = d.venue(k)
            pair = list(spec["acceptability"])
            pair[side] = float(v)
            spec["acceptability"] = tuple(pair)
        return accept

    def _shock_setter(self, parts: list[str]) -> Callable[[_Draft, Any], None]:
        j = self.shock_index[parts[1]]
        field = parts[2]
        if field == "rate_per_year":
            return lambda d, v: d.shock(j).__setitem__(
                "mean_gap", 365.0 / float(v) if v > 0 else math.inf)
        if field == "half_life_days":
            return lambda d, v: d.shock(j).__setitem__("decay", math.log(2.0) / float(v))
        names = {"tension": "tension", "derail_prob": "derail_prob",
                 "derail_window_days": "derail_window", "max_tension": "max_tension"}
        return lambda d, v: d.shock(j).__setitem__(names[field], float(v))

    def _climate_setter(self, field: str) -> Callable[[_Draft, Any], None]:
        if field == "reversion_half_life_days":
            return lambda d, v: d.set_world("reversion", math.log(2.0) / float(v))
        return lambda d, v: d.set_world(field, float(v))

    # --- what the compiler derives --------------------------------------------------------

    def _pull(self, d: _Draft, j: int) -> None:
        """Recompute third parties' pull on each signatory for topic ``j``."""
        topic = list(self.scenario.topics)[j]
        pulls, targets = [], []
        for s in self.sig:
            weight = total = 0.0
            for name, side in self.scenario.sides.items():
                if side.role != "influencer" or topic not in side.topics:
                    continue
                p = side.topics[topic]
                w = d.influence_value(j, name, ("influence", s), p.influence.get(s))
                if w is None:
                    continue
                ideal = d.influence_value(j, name, ("ideal",), p.ideal)
                weight += w
                total += w * ideal
            targets.append(total / weight if weight > 0 else 0.0)
            pulls.append(min(weight, 1.0))
        spec = d.topic(j)
        spec["pull"], spec["pull_target"] = tuple(pulls), tuple(targets)

    def _venue_fields(self, d: _Draft) -> None:
        """Recompute the venue weights, acceptance and risk of tracks whose pool changed."""
        touched = set(d.venues)
        for i, base in enumerate(self.world.tracks):
            if touched.isdisjoint(base.venues):
                continue
            pool = [d.venue_view(k) for k in base.venues]
            weights = tuple(tuple(v["acceptability"][s] * (0.5 + 0.5 * v["neutrality"])
                                  for v in pool) for s in range(2))
            spec = d.track(i)
            spec["venue_weights"] = weights
            spec["venue_cumulative"] = tuple(tuple(itertools.accumulate(w)) for w in weights)
            spec["venue_accept"] = tuple(tuple(v["acceptability"][s] for v in pool)
                                         for s in range(2))
            spec["venue_risk"] = tuple(1.0 - v["security"] for v in pool)

    def _groups(self, d: _Draft) -> None:
        """Regroup tension components by decay rate (half-lives that coincide share one)."""
        rates = [d.world_field("reversion")]
        groups = []
        for j in range(len(self.world.shocks)):
            rate = d.shock_view(j)["decay"]
            if rate not in rates:
                rates.append(rate)
            groups.append(rates.index(rate))
        d.set_world("group_decay", tuple(rates))
        d.set_world("shock_group", tuple(groups))


class _Fields:
    """The base world's specs as field dicts, made once: a run copies only those it changes."""

    def __init__(self, base: World):
        self.world = _asdict(base)
        self.topics = [_asdict(t) for t in base.topics]
        self.tracks = [_asdict(t) for t in base.tracks]
        self.venues = [_asdict(v) for v in base.venues]
        self.shocks = [_asdict(s) for s in base.shocks]


_FIELDS: dict[int, tuple[World, _Fields]] = {}


def _fields_of(base: World) -> _Fields:
    cached = _FIELDS.get(id(base))
    if cached is None or cached[0] is not base:
        cached = (base, _Fields(base))
        _FIELDS[id(base)] = cached
    return cached[1]


class _Draft:
    """The parts of a world one run changes, as dicts; the rest stays shared."""

    __slots__ = ("base", "fields", "own", "topics", "tracks", "venues", "shocks", "influences")

    def __init__(self, base: World):
        self.base = base
        self.fields = _fields_of(base)
        self.own: dict[str, Any] = {}
        self.topics: dict[int, dict[str, Any]] = {}
        self.tracks: dict[int, dict[str, Any]] = {}
        self.venues: dict[int, dict[str, Any]] = {}
        self.shocks: dict[int, dict[str, Any]] = {}
        self.influences: dict[tuple[int, str, tuple[str, ...]], float] = {}

    def topic(self, j: int) -> dict[str, Any]:
        if j not in self.topics:
            self.topics[j] = dict(self.fields.topics[j])
        return self.topics[j]

    def track(self, i: int) -> dict[str, Any]:
        if i not in self.tracks:
            self.tracks[i] = dict(self.fields.tracks[i])
        return self.tracks[i]

    def venue(self, k: int) -> dict[str, Any]:
        if k not in self.venues:
            self.venues[k] = dict(self.fields.venues[k])
        return self.venues[k]

    def venue_view(self, k: int) -> dict[str, Any]:
        return self.venues[k] if k in self.venues else self.fields.venues[k]

    def shock(self, j: int) -> dict[str, Any]:
        if j not in self.shocks:
            self.shocks[j] = dict(self.fields.shocks[j])
        return self.shocks[j]

    def shock_view(self, j: int) -> dict[str, Any]:
        return self.shocks[j] if j in self.shocks else {"decay": self.base.shocks[j].decay}

    def world_field(self, name: str) -> Any:
        return self.own[name] if name in self.own else getattr(self.base, name)

    def set_world(self, name: str, value: Any) -> None:
        self.own[name] = value

    def influence(self, j: int, side: str, rest: list[str], value: Any) -> None:
        self.influences[(j, side, tuple(rest))] = float(value)

    def influence_value(self, j: int, side: str, rest: tuple[str, ...], default: Any) -> Any:
        return self.influences.get((j, side, rest), default)

    def build(self) -> World:
        base = self.base
        parts = dict(self.own)
        if self.topics:
            parts["topics"] = tuple(type(t)(**self.topics[j]) if j in self.topics else t
                                    for j, t in enumerate(base.topics))
        if self.tracks:
            parts["tracks"] = tuple(type(t)(**self.tracks[i]) if i in self.tracks else t
                                    for i, t in enumerate(base.tracks))
        if self.venues:
            parts["venues"] = tuple(type(v)(**self.venues[k]) if k in self.venues else v
                                    for k, v in enumerate(base.venues))
        if self.shocks:
            parts["shocks"] = tuple(type(s)(**self.shocks[j]) if j in self.shocks else s
                                    for j, s in enumerate(base.shocks))
        if "reversion" in parts and "group_decay" not in parts:
            decay = list(base.group_decay)
            decay[0] = parts["reversion"]
            parts["group_decay"] = tuple(decay)
        if not parts:
            return base
        return type(base)(**{**self.fields.world, **parts})
