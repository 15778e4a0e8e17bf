"""One replication: a SimPy environment playing out the scenario's horizon in days.

Each track is a SimPy process; shocks and deadlines are processes too. All per-run state
lives on a :class:`_Run`, in plain floats and lists; the random draws come from the run's
named :class:`~sim.model.streams.Streams`.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

import simpy

from .bargaining import faratin_alpha, gap, linkage_deal, rubinstein_share
from .compiled import (
    AGREEMENT,
    CATEGORIES,
    DEFAULT,
    INTERIM,
    NONE,
    Record,
    TopicSpec,
    TrackSpec,
    World,
)
from .streams import StreamPool, Streams

_NAN = math.nan
_exp = math.exp


@dataclass(frozen=True, slots=True)
class TraceEvent(Record):
    """One dated line of a run's story."""

    day: float
    date: dt.date
    source: str
    kind: str
    text: str


class Outcome:
    """The record of one run: a fixed set of fields, plus its trace when asked for."""

    __slots__ = ("values", "trace")

    def __init__(self, values: dict[str, Any], trace: list[TraceEvent] | None = None):
        self.values = values
        self.trace = trace

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def category(self, topic: str) -> str:
        """Return the outcome category of ``topic`` by name."""
        return CATEGORIES[self.values[f"{topic}.outcome"]]

    def __repr__(self) -> str:
        return f"Outcome({self.values!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Outcome, (self.values, self.trace))


def run_world(world: World, seed: int, run: int, trace: bool = False,
              pool: StreamPool | None = None) -> tuple[tuple, list | None]:
    """Return the outcome record of run ``run`` as a tuple in ``world.fields`` order, and
    the trace if asked for. ``pool`` lends generators that a loop over runs reuses."""
    r = _Run(world, Streams(seed, run, pool), trace)
    return r.play(), r.trace


class _Run:
    """The mutable state of one replication."""

    def __init__(self, world: World, streams: Streams, trace: bool):
        self.w = world
        self.s = streams
        self.env = simpy.Environment()
        self.trace: list[TraceEvent] | None = [] if trace else None
        n = len(world.topics)
        self.status = [NONE] * n
        self.day = [_NAN] * n
        self.value = [_NAN] * n
        self.counts = [[0] * 6 for _ in world.tracks]
        # tension = equilibrium + sum of components, each decaying exponentially: group 0 is
        # the base (initial deviation, relief, strain), the others sum the shocks that decay at
        # one rate; all are brought forward together to clim_t, the clipped total kept in level
        self.groups = [world.initial_tension - world.equilibrium] + [0.0] * (len(world.group_decay) - 1)
        self.active: list[int] = [0]  # groups whose level is not known to be zero
        self.decay = world.group_decay
        self.inv_decay = [1.0 / d for d in world.group_decay]
        self.eq = world.equilibrium
        self.cs = world.concession_sensitivity
        self.clim_t = 0.0
        self.raw = world.initial_tension  # before clipping to [0, 1]
        self.level = world.initial_tension
        self.shock_count = [0] * len(world.shocks)
        self.derail_until = [-1.0] * len(world.shocks)
        self.derail_end = -1.0  # the latest derail window's end
        self.derailing = [j for j, shock in enumerate(world.shocks) if shock.derail_prob > 0.0]
        self.peak = world.initial_tension
        self.first_summit = _NAN
        self.interim_day = [_NAN] * n
        # topic -> (concession clock at the deadline, interim duration, share conceded then)
        self.interim_clock: dict[int, tuple[float, float, tuple[float, ...]]] = {}
        # the concession clock: effective days of concession, slowed by tension
        self.tau = 0.0

    # --- the run ----------------------------------------------------------------------

    def play(self) -> tuple:
        w, env = self.w, self.env
        for i, spec in enumerate(w.tracks):
            if spec.max_meetings != 0:
                env.process(self._track(i, spec))
        for j, shock in enumerate(w.shocks):
            if math.isfinite(shock.mean_gap):
                env.process(self._shock(j))
        for i, topic in enumerate(w.topics):
            if topic.deadline < w.horizon:
                env.process(self._deadline(i, topic))
        env.run(until=w.horizon)
        return self._record()

    def _record(self) -> tuple:
        w = self.w
        out: list[Any] = []
        for i, topic in enumerate(w.topics):
            out += (self.status[i], self.day[i], self.value[i])
            if topic.interim is not None:
                out.append(self.interim_day[i])
        summits = 0
        for spec, c in zip(w.tracks, self.counts):
            out += c
            if spec.kind == "summit":
                summits += c[1]
        out += (summits, self.first_summit, self.tension(w.horizon), self.peak)
        out += self.shock_count
        out.append(next(self.env._eid))  # events scheduled in this run
        return tuple(out)

    def note(self, source: str, kind: str, text: str) -> None:
        trace = self.trace
        if trace is not None:
            day = float(self.env.now)
            date = dt.date.fromordinal(self.w.start_ordinal + int(day))
            trace.append(TraceEvent(day, date, source, kind, text))

    # --- climate ----------------------------------------------------------------------

    def tension(self, t: float) -> float:
        """Return tension at ``t``, which never precedes the last time asked (SimPy time)."""
        if t == self.clim_t:
            return self.level
        dt = t - self.clim_t
        levels, decay, inv = self.groups, self.decay, self.inv_decay
        raw = self.eq
        area = raw * dt  # the integral of tension over the step, for the concession clock
        for g in self.active:
            x = levels[g]
            e = _exp(-decay[g] * dt)
            area += x * (1.0 - e) * inv[g]
            x *= e
            levels[g] = x
            raw += x
        # the concession clock runs at 1 - concession_sensitivity * tension, integrated exactly
        self.tau += dt - self.cs * area
        self.clim_t = t
        self.raw = raw
        level = 0.0 if raw < 0.0 else 1.0 if raw > 1.0 else raw
        self.level = level
        if level > self.peak:  # the peak is observed at events (see docs/model.md)
            self.peak = level
        return level

    def shift_tension(self, t: float, delta: float, shock: int = -1) -> None:
        """Add ``delta`` to tension at ``t``: to the base, or to shock ``shock``'s component."""
        if t != self.clim_t:
            self.tension(t)
        levels = self.groups
        if shock < 0:
            levels[0] += delta
        else:
            g = self.w.shock_group[shock]
            if g not in self.active:
                self.active.append(g)
            levels[g] += delta
        raw = self.raw + delta
        # tension saturates: what would pass 0 or 1 is taken off the base, not kept as hidden debt
        if raw < 0.0:
            levels[0] -= raw
            raw = 0.0
        elif raw > 1.0:
            levels[0] -= raw - 1.0
            raw = 1.0
        self.raw = raw
        self.level = raw
        if raw > self.peak:
            self.peak = raw

    # --- processes ----------------------------------------------------------------------

    def _shock(self, j: int):
        w, env, uniform = self.w, self.env, self.s.shocks.random
        shock = w.shocks[j]
        timeout, log, mean_gap = env.timeout, math.log, shock.mean_gap
        gated = shock.max_tension < 1.0
        derail = shock.derail_prob > 0.0
        while True:
            yield timeout(-mean_gap * log(1.0 - uniform()))
            t = env.now
            if gated and self.tension(t) > shock.max_tension:
                level = self.level
                if self.trace is not None:
                    self.note(shock.name, "shock", f"{shock.label}: window missed, tension {level:.2f}")
                continue
            self.shift_tension(t, shock.tension, j)
            self.shock_count[j] += 1
            if derail:
                self.derail_until[j] = t + shock.derail_window
                if t + shock.derail_window > self.derail_end:
                    self.derail_end = t + shock.derail_window
            if self.trace is not None:
                self.note(shock.name, "shock",
                          f"{shock.label}: tension {shock.tension:+.2f} -> {self.level:.2f}")

    def _deadline(self, i: int, topic: TopicSpec):
        yield self.env.timeout(topic.deadline)
        if self.status[i] != NONE:
            return
        t = self.env.now
        if topic.interim is not None:
            high, low = self.demands(i, t, noise=False)
            if high <= topic.interim <= low:
                self._settle(i, INTERIM, topic.interim)
                self.interim_day[i] = t
                if self.trace is not None:
                    self.note(topic.name, "interim",
                              f"{topic.label}: deadline reached; {topic.interim_label} taken "
                              f"(demands {high:.2f} / {low:.2f} bracket {topic.interim:.2f})")
                if topic.interim_end == math.inf:
                    return  # it holds for good
                # the arrangement buys time: from where they stand, both sides concede
                # towards their reservation points again, over the arrangement's term
                tau = self.clock(t)
                shares = tuple(faratin_alpha(tau, topic.patience[s], topic.beta[s], topic.k[s])
                               for s in (0, 1))
                self.interim_clock[i] = (tau, topic.interim_end - topic.deadline, shares)
                yield self.env.timeout(topic.interim_end - t)
                if self.status[i] != INTERIM:
                    return
                if self.trace is not None:
                    self.note(topic.name, "default",
                              f"{topic.label}: {topic.interim_label} runs out with no agreement")
                self._settle(i, DEFAULT, topic.default)
                return
            if self.trace is not None:
                self.note(topic.name, "default",
                          f"{topic.label}: deadline reached; {topic.interim_label} refused "
                          f"(demands {high:.2f} / {low:.2f} do not bracket {topic.interim:.2f})")
        elif self.trace is not None:
            self.note(topic.name, "default", f"{topic.label}: deadline reached with no agreement")
        self._settle(i, DEFAULT, topic.default)

    def _settle(self, i: int, status: int, value: float) -> None:
        self.status[i] = status
        self.day[i] = float(self.env.now)
        self.value[i] = value

    def _track(self, i: int, spec: TrackSpec):
        w, env = self.w, self.env
        timeout = env.timeout
        disrupt = self.s.disruption
        counts = self.counts[i]
        tracing = self.trace is not None
        horizon = w.horizon
        # the track's settings, read once per run rather than at every event
        max_meetings = spec.max_meetings if spec.max_meetings is not None else math.inf
        requires, needed = spec.requires_topics, spec.requires_convergence
        has_venues, preparation = bool(spec.venues), spec.preparation
        is_summit, bargains = spec.kind == "summit", bool(spec.authority)
        relief, strain = -w.meeting_relief * spec.relief, w.cancellation_strain
        next_day = spec.first_day
        planned = 0
        while next_day < horizon:
            if planned >= max_meetings:
                return
            yield timeout(next_day - env.now)
            t = env.now
            if requires and self.convergence(requires) < needed:
                if tracing:
                    self.note(spec.name, "not ready",
                              f"{spec.label}: positions too far apart to plan a meeting "
                              f"(convergence {self.convergence(requires):.2f} < {needed:.2f})")
                next_day = t + self._interval(spec)
                continue
            planned += 1
            counts[0] += 1
            proposer = (planned - 1) % 2
            venue = -1
            delay = 0.0
            if has_venues:
                venue, vetoes = self._agree_venue(spec, proposer, t)
                if vetoes:
                    counts[5] += vetoes
                    delay = vetoes * spec.veto_delay
                if venue < 0:
                    counts[2] += 1
                    self.shift_tension(t, strain)
                    if tracing:
                        self.note(spec.name, "cancelled", f"{spec.label}: no venue acceptable to both sides")
                    next_day = t + delay + self._interval(spec)
                    continue
            meeting_day = t + delay + preparation
            if tracing:
                where = f" in {w.venues[venue].label}" if venue >= 0 else ""
                self.note(spec.name, "planned",
                          f"{spec.label}: {w.side_labels[proposer]} proposes a meeting{where} "
                          f"for {self._date(meeting_day)}")
            postponements = 0
            while True:
                if meeting_day >= horizon:
                    return
                if meeting_day > t:
                    yield timeout(meeting_day - t)
                    t = env.now
                fate = self._disruption(spec, disrupt, t)
                if fate != "postponed":
                    break
                if postponements >= spec.max_postponements:
                    fate = "cancelled"
                    break
                postponements += 1
                counts[3] += 1
                meeting_day = t + spec.postpone_days
                if tracing:
                    self.note(spec.name, "postponed", f"{spec.label}: postponed to {self._date(meeting_day)}")
            if fate == "held":
                counts[1] += 1
                if is_summit and self.first_summit != self.first_summit:
                    self.first_summit = t
                if tracing:
                    # shift_tension brings the climate forward to t just below anyway: reading
                    # it here first moves no draw and changes no bit of the record
                    where = f" in {w.venues[venue].label}" if venue >= 0 else ""
                    self.note(spec.name, "held",
                              f"{spec.label}: meeting held{where} (tension {self.tension(t):.2f})")
                self.shift_tension(t, relief)
                if bargains:
                    self._bargain(spec, proposer, t)
            else:
                counts[2 if fate == "cancelled" else 4] += 1
                self.shift_tension(t, strain)
                if tracing:
                    self.note(spec.name, fate, f"{spec.label}: meeting {fate}")
            next_day = t + (spec.cadence if spec.fixed
                            else -spec.cadence * math.log(1.0 - disrupt.random()))

    def _interval(self, spec: TrackSpec) -> float:
        if spec.fixed:
            return spec.cadence
        return -spec.cadence * math.log(1.0 - self.s.disruption.random())

    def _date(self, day: float) -> str:
        return dt.date.fromordinal(self.w.start_ordinal + int(day)).isoformat()

    def _disruption(self, spec: TrackSpec, draw, t: float) -> str:
        """Return what happens to a meeting on its day: held, cancelled, postponed or derailed.

        In order: overshadowed by a recent shock (each shock whose derail window is open
        derails it with its own probability), derailed by leaks, stalled, cancelled (with a
        chance that grows with tension), postponed. One uniform draw decides each stage.
        """
        w = self.w
        if self.derail_end >= t:
            keep = 1.0
            open_windows = []
            for j in self.derailing:
                if self.derail_until[j] >= t:
                    keep *= 1.0 - w.shocks[j].derail_prob
                    open_windows.append(j)
            if keep < 1.0 and draw.random() >= keep:
                if self.trace is not None:
                    labels = ", ".join(w.shocks[j].label for j in open_windows)
                    self.note(spec.name, "shock", f"{spec.label}: overshadowed by {labels}")
                return "derailed"
        if spec.leak_prob > 0.0 or spec.stall_prob > 0.0:
            u = draw.random()
            if u < spec.leak_prob:
                if self.trace is not None:
                    self.note(spec.name, "leak", f"{spec.label}: leaks and rumours before the meeting")
                return "derailed"
            if u < spec.leak_prob + (1.0 - spec.leak_prob) * spec.stall_prob:
                if self.trace is not None:
                    self.note(spec.name, "stall", f"{spec.label}: announced, then stalls; dates never set")
                return "derailed"
        p = spec.cancel_prob
        if w.cancel_sensitivity > 0.0:
            p = min(1.0, p + w.cancel_sensitivity * self.tension(t))
        q = spec.postpone_prob
        if p > 0.0 or q > 0.0:
            u = draw.random()
            if u < p:
                return "cancelled"
            if u < p + (1.0 - p) * q:
                return "postponed"
        return "held"

    def _agree_venue(self, spec: TrackSpec, proposer: int, t: float) -> tuple[int, int]:
        """Return (venue index or -1, number of vetoes) after proposals and vetoes."""
        w, draw = self.w, self.s.venue
        other = 1 - proposer
        accept = spec.venue_accept[other]
        strain = w.venue_sensitivity * self.tension(t) if w.venue_sensitivity > 0.0 else 0.0
        # the first proposal, by far the most common case, from precomputed cumulative weights
        cumulative = spec.venue_cumulative[proposer]
        if cumulative[-1] <= 0.0:
            return -1, 0
        k = bisect_right(cumulative, draw.random() * cumulative[-1])
        if k >= len(cumulative):
            k = len(cumulative) - 1
        p = accept[k]
        if strain:
            p *= 1.0 - strain * spec.venue_risk[k]
        if p >= 1.0 or (p > 0.0 and draw.random() < p):
            return spec.venues[k], 0
        if self.trace is not None:
            self.note(spec.name, "veto",
                      f"{spec.label}: {w.side_labels[other]} rejects {w.venues[spec.venues[k]].label}")
        weights = list(spec.venue_weights[proposer])
        weights[k] = 0.0  # a vetoed venue is not proposed again for this meeting
        vetoes = 1
        while True:
            total = sum(weights)
            if total <= 0.0:
                return -1, vetoes
            # the proposer picks a venue with probability proportional to its weight
            target = draw.random() * total
            k = 0
            acc = weights[0]
            while acc <= target and k < len(weights) - 1:
                k += 1
                acc += weights[k]
            p = accept[k]
            if strain:
                p *= 1.0 - strain * spec.venue_risk[k]
            if p >= 1.0 or (p > 0.0 and draw.random() < p):
                return spec.venues[k], vetoes
            vetoes += 1
            weights[k] = 0.0  # a vetoed venue is not proposed again for this meeting
            if self.trace is not None:
                self.note(spec.name, "veto",
                          f"{spec.label}: {w.side_labels[other]} rejects {w.venues[spec.venues[k]].label}")

    # --- bargaining -------------------------------------------------------------------

    def clock(self, t: float) -> float:
        """Return the concession clock at ``t``: days elapsed, each weighted by calm.

        The clock runs at m = 1 - concession_sensitivity * tension, integrated in closed form
        over tension's exponential components whenever the climate moves forward, so tension
        slows concession, never takes it back, and how often the clock is read does not matter.
        """
        if t != self.clim_t:
            self.tension(t)
        return self.tau

    def demand(self, i: int, side: int, tau: float) -> float:
        """Return ``side``'s demand on topic ``i`` at concession clock ``tau``, before noise."""
        topic = self.w.topics[i]
        opening, reservation = topic.opening[side], topic.reservation[side]
        interim = self.interim_clock.get(i) if self.interim_clock else None
        if interim is None:
            alpha = faratin_alpha(tau, topic.patience[side], topic.beta[side], topic.k[side])
        else:
            start, term, shares = interim
            a0 = shares[side]
            alpha = a0 + (1.0 - a0) * faratin_alpha(tau - start, term, topic.beta[side], 0.0)
        d = opening + alpha * (reservation - opening)
        pull = topic.pull[side]
        if pull:
            d += pull * (topic.pull_target[side] - d)
        return d

    def demands(self, i: int, t: float, noise: bool) -> tuple[float, float]:
        """Return (demand of the side wanting high, demand of the side wanting low) on topic i.

        The same arithmetic as :meth:`demand` for both sides, inlined: this runs for every
        topic of every held meeting.
        """
        w = self.w
        topic = w.topics[i]
        tau = self.tau if t == self.clim_t else self.clock(t)
        hi = topic.high
        interim = self.interim_clock.get(i) if self.interim_clock else None
        out = []
        for side in (hi, 1 - hi):
            opening = topic.opening[side]
            beta = topic.beta[side]
            if interim is None:
                patience, k, x = topic.patience[side], topic.k[side], tau
                if x <= 0.0:
                    alpha = k
                elif x >= patience:
                    alpha = 1.0
                else:
                    alpha = k + (1.0 - k) * (x / patience) ** (1.0 / beta)
            else:
                start, term, shares = interim
                a0 = shares[side]
                alpha = a0 + (1.0 - a0) * faratin_alpha(tau - start, term, beta, 0.0)
            d = opening + alpha * (topic.reservation[side] - opening)
            pull = topic.pull[side]
            if pull:
                d += pull * (topic.pull_target[side] - d)
            out.append(d)
        dh, dl = out
        if noise and w.noise > 0.0:
            normal = self.s.bargaining.normal
            dh += w.noise * normal()
            dl += w.noise * normal()
        # a side never asks for less than its reservation nor more than the scale allows
        rh, rl = topic.reservation[hi], topic.reservation[1 - hi]
        dh = rh if dh < rh else 1.0 if dh > 1.0 else dh
        dl = rl if dl > rl else 0.0 if dl < 0.0 else dl
        return dh, dl

    def convergence(self, topics: tuple[int, ...]) -> float:
        t = self.env.now
        total = 0.0
        for i in topics:
            if self.status[i] != NONE:
                continue  # settled, bridged or lapsed: no longer in the way of a meeting
            total += gap(*self.demands(i, t, noise=False))
        return 1.0 - total / len(topics)

    def _bargain(self, spec: TrackSpec, proposer: int, t: float) -> None:
        w = self.w
        tracing = self.trace is not None
        open_gaps: list[tuple[int, float, float]] = []
        for i in spec.authority:
            if self.status[i] in (AGREEMENT, DEFAULT):
                continue
            topic = w.topics[i]
            if spec.rubinstein:
                self._rubinstein(i, topic, spec, proposer)
                continue
            dh, dl = self.demands(i, t, noise=True)
            if dh <= dl:
                self._agree(i, 0.5 * (dh + dl), spec, f"demands cross ({dh:.2f} <= {dl:.2f})")
            else:
                open_gaps.append((i, dh, dl))
                if tracing:
                    self.note(spec.name, "talks",
                              f"{topic.label}: {w.side_labels[topic.high]} asks {dh:.2f}, "
                              f"{w.side_labels[1 - topic.high]} offers {dl:.2f}; gap {dh - dl:.2f}")
        if spec.linkage and len(open_gaps) > 1:
            self._link(spec, open_gaps)

    def _agree(self, i: int, value: float, spec: TrackSpec, why: str) -> None:
        self._settle(i, AGREEMENT, value)
        self.shift_tension(self.env.now, -self.w.agreement_relief)
        if self.trace is not None:
            topic = self.w.topics[i]
            self.note(spec.name, "agreement", f"{topic.label}: agreed at {value:.2f}; {why}")

    def _rubinstein(self, i: int, topic: TopicSpec, spec: TrackSpec, proposer: int) -> None:
        """Settle at once on the Rubinstein split of the zone between reservation points."""
        hi = topic.high
        floor, ceiling = topic.reservation[hi], topic.reservation[1 - hi]
        if floor > ceiling:
            return
        d = self.w.discount
        share = rubinstein_share(d[proposer], d[1 - proposer])
        surplus = ceiling - floor
        value = floor + share * surplus if proposer == hi else ceiling - share * surplus
        self._agree(i, value, spec, f"alternating offers, {self.w.side_labels[proposer]} proposes first")

    def _link(self, spec: TrackSpec, open_gaps: list[tuple[int, float, float]]) -> None:
        """Trade concessions across topics: each side yields where it cares less."""
        w = self.w
        for a in range(len(open_gaps)):
            p, dh_p, dl_p = open_gaps[a]
            if self.status[p] == AGREEMENT:
                continue
            for b in range(a + 1, len(open_gaps)):
                q, dh_q, dl_q = open_gaps[b]
                if self.status[q] == AGREEMENT:
                    continue
                tp, tq = w.topics[p], w.topics[q]
                deal = linkage_deal(dh_p - dl_p, dh_q - dl_q,
                                    tp.salience[0], tq.salience[0], tp.salience[1], tq.salience[1])
                if deal is None:
                    continue
                # the side that gets p (A for "a_gets_p") has its demand on p, the other on q
                winner_p = 0 if deal == "a_gets_p" else 1
                value_p = _accepted_value(tp, winner_p, dh_p, dl_p)
                value_q = _accepted_value(tq, 1 - winner_p, dh_q, dl_q)
                if value_p is None or value_q is None:
                    continue
                self._agree(p, value_p, spec, f"package with {tq.label}")
                self._agree(q, value_q, spec, f"package with {tp.label}")
                break


def _accepted_value(topic: TopicSpec, winner: int, dh: float, dl: float) -> float | None:
    """Return the winner's demand on ``topic`` if the other side's reservation admits it."""
    if winner == topic.high:
        return dh if dh <= topic.reservation[1 - winner] else None
    return dl if dl >= topic.reservation[1 - winner] else None
