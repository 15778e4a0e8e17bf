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

import copy
import gc
import math
import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..scenario.models import TACTIC_BETA, Scenario
from . import COMPILED
from .compiled import (
    SHOCK_WRITES,
    TOPIC_WRITES,
    TRACK_WRITES,
    VENUE_FIELDS,
    WORLD_WRITES,
    World,
    venue_fields,
    write_shocks,
    write_topics,
    write_tracks,
    write_world,
)

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


#: The fields the compiled writers write, by spec kind (codes: positions here); the order
#: of the kinds is that of the writers' calls
NATIVE_WRITES = {"topics": TOPIC_WRITES, "tracks": TRACK_WRITES, "shocks": SHOCK_WRITES,
                 "world": WORLD_WRITES}
#: A kind's ops: its spec copies, field codes, first columns in a run's row, widths.
Ops = tuple[list[Any], list[int], list[int], list[int]]


def _write_compiled(world: World, ops: tuple[Ops, ...], row: list[float]) -> None:
    """Write a run's row with the compiled model's own writers (about 10 ns a field)."""
    topics, tracks, shocks, worlds = ops
    write_topics(topics[0], topics[1], topics[2], row)
    write_tracks(tracks[0], tracks[1], tracks[2], row)
    write_shocks(shocks[0], shocks[1], shocks[2], row)
    write_world(world, worlds[1], worlds[2], row)


def _write_from_python(world: World, ops: tuple[Ops, ...], row: list[float]) -> None:
    """Write a run's row through ``object.__setattr__``: the model's Python sources, whose
    frozen specs refuse the compiled writers' plain assignments."""
    put = object.__setattr__
    for table, (specs, codes, starts, widths) in zip(NATIVE_WRITES.values(), ops):
        for spec, code, j, width in zip(specs, codes, starts, widths):
            name = table[code]
            if name == "venues":
                for field, value in zip(VENUE_FIELDS, venue_fields(row, j, len(spec.venues))):
                    put(spec, field, value)
            else:
                put(spec, name, row[j] if width == 1 else (row[j], row[j + 1]))


class Patcher:
    """Builds the worlds of a chunk of runs from the base world and the runs' input values.

    The work is done column by column for the whole chunk (numpy where it pays); then, run
    by run, the values are written into a scratch copy of the specs the keys touch, while
    every other spec is shared with the base world. The venue specs are not copied: a run
    reads only their labels; what their security, neutrality and acceptability decide lives
    in the tracks' venue fields, which are.
    """

    def __init__(self, scenario: Scenario, world: World, keys: list[str]):
        self.world = world
        self.scenario = scenario
        self.keys = list(keys)
        self.sig = tuple(scenario.signatories)
        self.topic_index = {n: i for i, n in enumerate(scenario.topics)}
        self.track_index = {n: i for i, n in enumerate(scenario.tracks)}
        self.venue_index = {n: i for i, n in enumerate(scenario.venues)}
        self.shock_index = {n: i for i, n in enumerate(scenario.shocks)}
        self.writes: list[tuple[str, Target, Callable[[Any], Any]]] = []
        for key in self.keys:
            self.writes += self._writes(key)
        self.pull_topics = sorted({self.topic_index[k.split(".")[3]] for k in self.keys
                                   if k.startswith("sides.") and self._is_influence_key(k)})
        self.venue_keys = [k for k in self.keys if k.startswith("venues.")]
        self.regroup = any(k.endswith("half_life_days") for k in self.keys)
        self._scratch_for: tuple[Target, ...] | None = None
        self._scratch_world: World = world
        self._scratch_cells: list[tuple[Any, str, Target]] = []

    def _is_influence_key(self, key: str) -> bool:
        parts = key.split(".")
        return (self.scenario.sides[parts[1]].role == "influencer"
                and (parts[-2] == "influence" or parts[-1] == "ideal"))

    # --- one run, or a chunk ----------------------------------------------------------

    def world_for(self, values: Mapping[str, Any]) -> World:
        """Return the world of one run whose uncertain keys take ``values``."""
        return next(self.worlds({k: [values[k]] for k in self.keys}, 1))

    def worlds(self, values: Mapping[str, Any], n: int):
        """Yield the world of each of ``n`` runs; ``values`` holds each key's ``n`` values.

        The world yielded is this patcher's scratch copy: the specs the keys touch are copied
        once, and each run's values are written into those copies, so a yielded world is
        valid until the next one is drawn (a worker runs one world at a time).
        """
        columns = _without_gc(self._columns, values, n)
        world, cells = self._scratch(columns)
        ops, matrix, others = self._layout(cells, columns, n)
        del columns
        other_objects = [obj for obj, _, _ in others]
        other_names = [name for _, name, _ in others]
        rows = _without_gc(_transpose, [values for _, _, values in others], n)
        write = _write_compiled if COMPILED else _write_from_python
        put = object.__setattr__  # the specs are frozen for the model; this copy is ours
        for r in range(n):
            write(world, ops, matrix[r].tolist())
            # map runs the writes in C, one call per cell; the deque drops the Nones
            deque(map(put, other_objects, other_names, rows[r]), maxlen=0)
            yield world

    def _layout(self, cells: list[tuple[Any, str, Target]], columns: dict[Target, Any],
                n: int) -> tuple[tuple[Ops, ...], np.ndarray, list[tuple[Any, str, list[Any]]]]:
        """Lay out the chunk's values for the runs' writes.

        The numbers of every cell the writers know (a pair as two, a track's venue fields
        as 7 per venue of its pool) go into one float matrix, a row per run; each kind of
        spec gets its ops (spec, field code, first column, width), in :data:`NATIVE_WRITES`
        order. The values of the few other cells (whole numbers, flags, tension groups)
        come back as lists, to be written from Python.
        """
        ops: dict[str, Ops] = {kind: ([], [], [], []) for kind in NATIVE_WRITES}
        blocks, others = [], []
        at = 0
        for obj, name, target in cells:
            column = columns[target]
            table = NATIVE_WRITES.get(target[0], ())
            if isinstance(column, np.ndarray) and name in table:
                block = column.reshape(n, -1)
                for part, value in zip(ops[target[0]], (obj, table.index(name), at,
                                                        block.shape[1])):
                    part.append(value)
                blocks.append(block)
                at += block.shape[1]
            else:  # whole numbers, flags, groups: _columns makes them lists
                others.append((obj, name, _as_list(column, n)))
        matrix = np.concatenate(blocks, axis=1) if blocks else np.empty((n, 0))
        return tuple(ops.values()), matrix, others

    def _scratch(self, columns: Mapping[Target, Any]) -> tuple[World, list[tuple[Any, str, Target]]]:
        """Return the scratch world and, per changed field, (its spec copy, name, target)."""
        targets = tuple(sorted(columns, key=repr))
        if self._scratch_for == targets:
            return self._scratch_world, self._scratch_cells
        base = self.world
        copies: dict[tuple[str, int], Any] = {}
        cells = []
        for target in targets:
            kind, index, field = target
            if kind == "world":
                continue
            key = (kind, index)
            if key not in copies:
                copies[key] = copy.copy(getattr(base, kind)[index])
            cells.append((copies[key], field, target))
        parts = {kind: tuple(copies.get((kind, i), spec) for i, spec in enumerate(getattr(base, kind)))
                 for kind in ("topics", "tracks", "shocks")}
        world = copy.copy(base)
        for kind, specs in parts.items():
            object.__setattr__(world, kind, specs)
        cells += [(world, field, (kind, index, field)) for kind, index, field in targets
                  if kind == "world"]
        self._scratch_for, self._scratch_world, self._scratch_cells = targets, world, cells
        return world, cells

    # --- the chunk's columns ------------------------------------------------------------

    def _columns(self, values: Mapping[str, Any], n: int) -> dict[Target, Any]:
        """Return each changed spec field's values, one per run: a float array for a number,
        an (n, 2) float array for a pair of numbers, a list of Python values otherwise."""
        slots: dict[Target, dict[int, Any]] = {}
        plain: dict[Target, Any] = {}
        for key, target, transform in self.writes:
            column = transform(values[key])
            kind, index, field, slot = target
            if slot is None:
                plain[(kind, index, field, None)] = column
            else:
                slots.setdefault((kind, index, field, None), {})[slot] = column
        out: dict[Target, Any] = {}
        for (kind, index, field, _), column in plain.items():
            base = self._base(kind, index, field)
            out[(kind, index, field)] = (_float_column(column, n) if type(base) is float
                                         else _as_list(column, n))
        for (kind, index, field, _), by_slot in slots.items():
            base = self._base(kind, index, field)
            if all(type(b) is float for b in base):
                out[(kind, index, field)] = np.column_stack(
                    [_float_column(by_slot[s], n) if s in by_slot else np.full(n, base[s])
                     for s in (0, 1)])
            else:
                pair = [_as_list(by_slot[s], n) if s in by_slot else [base[s]] * n
                        for s in (0, 1)]
                out[(kind, index, field)] = list(zip(*pair))
        if self.pull_topics:
            self._pull(values, n, out)
        if self.venue_keys:
            self._venue_fields(values, n, out)
        if self.regroup:
            self._groups(values, n, out)
        return out

    def _base(self, kind: str, index: int | None, field: str) -> Any:
        return getattr(self.world if kind == "world" else getattr(self.world, kind)[index], field)

    # --- which spec fields each key writes ------------------------------------------------

    def _writes(self, key: str) -> list[tuple[str, Target, Callable[[Any], Any]]]:
        parts = key.split(".")
        head = parts[0]
        if head == "sides":
            found = self._side_writes(parts)
        elif head == "topics":
            found = self._topic_writes(parts)
        elif head == "tracks":
            found = self._track_writes(parts)
        elif head == "venues":
            found = []  # read by _venue_fields
        elif head == "shocks":
            found = self._shock_writes(parts)
        elif head == "climate":
            field = parts[1]
            if field == "reversion_half_life_days":
                found = [(("world", None, "reversion", None), _rate)]
            else:
                found = [(("world", None, field, None), _floats)]
        elif key == "bargaining.noise":
            found = [(("world", None, "noise", None), _floats)]
        elif key == "bargaining.protocol":
            found = [(("tracks", i, "rubinstein", None), _equals("rubinstein"))
                     for i, tr in enumerate(self.scenario.tracks.values()) if tr.protocol is None]
        else:
            raise ValueError(f"{key}: {unsupported(key)}")
        return [(key, target, transform) for target, transform in found]

    def _side_writes(self, parts: list[str]) -> list[tuple[Target, Callable[[Any], Any]]]:
        side = parts[1]
        if len(parts) == 3:
            if parts[2] == "discount" and side in self.sig:
                return [(("world", None, "discount", self.sig.index(side)), _floats)]
            return []  # capability weighs the reference forecast only; an influencer's
            # discount plays no part
        topic, field = parts[3], parts[4]
        j = self.topic_index[topic]
        if side not in self.sig:
            return []  # an influencer: its ideal and influence feed the pull (_pull)
        i = self.sig.index(side)
        position = self.scenario.sides[side].topics[topic]
        names = {"opening": "opening", "reservation": "reservation", "salience": "salience",
                 "initial_concession": "k", "patience_days": "patience", "concession": "beta"}
        if field in names:
            return [(("topics", j, names[field], i), _floats)]
        if field == "ideal":  # read only as the opening demand, when none is given
            return [] if position.opening is not None else [(("topics", j, "opening", i), _floats)]
        if field == "tactic":  # concession, when given, overrides the tactic
            return [] if position.concession is not None else [
                (("topics", j, "beta", i), lambda v: [TACTIC_BETA[x] for x in v])]
        raise ValueError(f"{'.'.join(parts)}: {unsupported('.'.join(parts))}")

    def _topic_writes(self, parts: list[str]) -> list[tuple[Target, Callable[[Any], Any]]]:
        j = self.topic_index[parts[1]]
        rest = ".".join(parts[2:])
        if rest == "deadline.default":
            return [(("topics", j, "default", None), _floats)]
        if rest == "deadline.interim.value":
            return [(("topics", j, "interim", None), _floats)]
        if rest == "deadline.interim.duration_days":
            deadline = self.world.topics[j].deadline
            return [(("topics", j, "interim_end", None),
                     lambda v: np.asarray(v, dtype=float) + deadline)]
        raise ValueError(f"{'.'.join(parts)}: {unsupported('.'.join(parts))}")

    def _track_writes(self, parts: list[str]) -> list[tuple[Target, Callable[[Any], Any]]]:
        i = self.track_index[parts[1]]
        track = self.scenario.tracks[parts[1]]
        field = ".".join(parts[2:])
        direct = {"preparation_days": "preparation", "veto_delay_days": "veto_delay",
                  "cancel_prob": "cancel_prob", "postpone_prob": "postpone_prob",
                  "postpone_days": "postpone_days", "leak_prob": "leak_prob",
                  "stall_prob": "stall_prob", "relief_scale": "relief",
                  "requires.convergence": "requires_convergence", "first_day": "first_day"}
        if field in direct:
            return [(("tracks", i, direct[field], None), _floats)]
        if field == "cadence_days":  # without a first day, the first proposal is one cadence in
            found: list[tuple[Target, Callable[[Any], Any]]] = [
                (("tracks", i, "cadence", None), _floats)]
            if track.first_day is None:
                found.append((("tracks", i, "first_day", None), _floats))
            return found
        if field == "cadence":
            return [(("tracks", i, "fixed", None), _equals("fixed"))]
        if field in ("max_postponements", "max_meetings"):
            return [(("tracks", i, field, None), lambda v: [int(x) for x in v])]
        if field == "linkage":
            return [(("tracks", i, "linkage", None), lambda v: [bool(x) for x in v])]
        if field == "protocol":
            return [(("tracks", i, "rubinstein", None), _equals("rubinstein"))]
        raise ValueError(f"{'.'.join(parts)}: {unsupported('.'.join(parts))}")

    def _shock_writes(self, parts: list[str]) -> list[tuple[Target, Callable[[Any], Any]]]:
        j = self.shock_index[parts[1]]
        field = parts[2]
        if field == "rate_per_year":
            return [(("shocks", j, "mean_gap", None), _mean_gap)]
        if field == "half_life_days":
            return [(("shocks", j, "decay", None), _rate)]
        names = {"tension": "tension", "derail_prob": "derail_prob",
                 "derail_window_days": "derail_window", "max_tension": "max_tension"}
        return [(("shocks", j, names[field], None), _floats)]

    # --- what the compiler derives --------------------------------------------------------

    def _value(self, values: Mapping[str, Any], key: str, default: Any, n: int) -> np.ndarray:
        if key in values:
            return np.asarray(values[key], dtype=float)
        return np.full(n, float(default))

    def _pull(self, values: Mapping[str, Any], n: int, out: dict[Target, Any]) -> None:
        """Recompute third parties' pull on each signatory for the topics it changes."""
        names = list(self.scenario.topics)
        for j in self.pull_topics:
            topic = names[j]
            pulls, targets = [], []
            for s in self.sig:
                weight, total = np.zeros(n), np.zeros(n)
                for name, side in self.scenario.sides.items():
                    if side.role != "influencer" or topic not in side.topics:
                        continue
                    p = side.topics[topic]
                    key = f"sides.{name}.topics.{topic}.influence.{s}"
                    if s not in p.influence and key not in values:
                        continue
                    w = self._value(values, key, p.influence.get(s, 0.0), n)
                    ideal = self._value(values, f"sides.{name}.topics.{topic}.ideal", p.ideal, n)
                    weight += w
                    total += w * ideal
                safe = np.where(weight > 0, weight, 1.0)
                targets.append(np.where(weight > 0, total / safe, 0.0))
                pulls.append(np.minimum(weight, 1.0))
            out[("topics", j, "pull")] = np.column_stack(pulls)
            out[("topics", j, "pull_target")] = np.column_stack(targets)

    def _venue_fields(self, values: Mapping[str, Any], n: int,
                      out: dict[Target, Any]) -> None:
        """Recompute the venue weights, acceptance and risk of tracks whose pool changed."""
        touched = {self.venue_index[k.split(".")[1]] for k in self.venue_keys}
        names = list(self.scenario.venues)
        cache: dict[tuple[int, str], np.ndarray] = {}

        def venue(k: int, field: str) -> np.ndarray:
            if (k, field) not in cache:
                v = self.scenario.venues[names[k]]
                if field in ("security", "neutrality"):
                    base = getattr(v, field)
                else:
                    base = v.acceptability.get(field, 1.0)
                key = (f"venues.{names[k]}.{field}" if field in ("security", "neutrality")
                       else f"venues.{names[k]}.acceptability.{field}")
                cache[(k, field)] = self._value(values, key, base, n)
            return cache[(k, field)]

        for i, base in enumerate(self.world.tracks):
            if touched.isdisjoint(base.venues):
                continue
            pool = list(base.venues)
            neutral = np.stack([0.5 + 0.5 * venue(k, "neutrality") for k in pool], axis=1)
            accept = [np.stack([venue(k, s) for k in pool], axis=1) for s in self.sig]
            weights = [a * neutral for a in accept]
            risk = 1.0 - np.stack([venue(k, "security") for k in pool], axis=1)
            # one block per track: each side's weights, cumulative weights and acceptance,
            # then the risk, k columns each (as compiled.venue_fields reads them)
            out[("tracks", i, "venues")] = np.concatenate(
                [*weights, *(np.cumsum(w, axis=1) for w in weights), *accept, risk], axis=1)

    def _groups(self, values: Mapping[str, Any], n: int, out: dict[Target, Any]) -> None:
        """Regroup tension components by decay rate (half-lives that coincide share one)."""
        reversion = _plain(out.get(("world", None, "reversion"), [self.world.reversion] * n))
        decays = [_plain(out.get(("shocks", j, "decay"), [s.decay] * n))
                  for j, s in enumerate(self.world.shocks)]
        group_decay, shock_group = [], []
        for r in range(n):
            rates = [reversion[r]]
            groups = []
            for column in decays:
                rate = column[r]
                if rate not in rates:
                    rates.append(rate)
                groups.append(rates.index(rate))
            group_decay.append(tuple(rates))
            shock_group.append(tuple(groups))
        out[("world", None, "group_decay")] = group_decay
        out[("world", None, "shock_group")] = shock_group


#: (spec kind: "topics", "tracks", "shocks" or "world"; its index; field; slot of a pair).
Target = Any


def _without_gc(build: Callable[..., Any], *args: Any) -> Any:
    """Return ``build(*args)`` with the cyclic garbage collector paused.

    A chunk's columns are tens of thousands of small tuples that all stay alive: the
    collector would trace them again and again as they are made (five times the cost of
    making them) and find nothing to free. Reference counting frees them as usual.
    """
    if not gc.isenabled():
        return build(*args)
    gc.disable()
    try:
        return build(*args)
    finally:
        gc.enable()


def _transpose(columns: list[list[Any]], n: int) -> list[tuple[Any, ...]]:
    """Return the rows (one per run) of ``columns``."""
    return list(zip(*columns)) if columns else [()] * n


def _floats(v: Any) -> Any:
    return np.asarray(v, dtype=float)


def _rate(v: Any) -> Any:
    return math.log(2.0) / np.asarray(v, dtype=float)


def _mean_gap(v: Any) -> Any:
    v = np.asarray(v, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(v > 0, 365.0 / np.where(v > 0, v, 1.0), math.inf)


def _equals(value: str) -> Callable[[Any], list[bool]]:
    return lambda v: [x == value for x in v]


def _plain(column: Any) -> list[Any]:
    return column.tolist() if isinstance(column, np.ndarray) else column


def _float_column(column: Any, n: int) -> np.ndarray:
    out = np.asarray(column, dtype=np.float64)
    if out.shape != (n,):
        raise ValueError(f"{len(out)} values for {n} runs")
    return out


def _as_list(column: Any, n: int) -> list[Any]:
    """Return a column as a list of Python values (the rows of a 2-D array as tuples)."""
    if isinstance(column, np.ndarray) and column.ndim == 2:
        out = [tuple(row) for row in column.tolist()]
    else:
        out = column.tolist() if isinstance(column, np.ndarray) else list(column)
    if len(out) != n:
        raise ValueError(f"{len(out)} values for {n} runs")
    return out



