"""Streaming tallies of outcome records: merged chunk by chunk, so memory stays flat.

A :class:`Tally` holds counts, sums and day histograms, enough for every headline estimate,
its Monte Carlo standard error and the cumulative agreement curves, without keeping runs.
Tallies are merged in chunk order, so float sums are bit-identical whatever the executor.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .model.compiled import AGREEMENT, CATEGORIES, DEFAULT, TRACK_COUNTERS

VALUE_BINS = 50


@dataclass
class Layout:
    """Where each part of an outcome record sits, by column name."""

    topics: list[str]
    tracks: list[str]
    shocks: list[str]
    horizon: int

    @classmethod
    def from_fields(cls, fields: list[str] | tuple[str, ...], horizon: int) -> Layout:
        topics = [f[: -len(".outcome")] for f in fields if f.endswith(".outcome")]
        tracks = [f[: -len(".planned")] for f in fields if f.endswith(".planned")]
        shocks = [f[len("shocks."):] for f in fields if f.startswith("shocks.")]
        return cls(topics, tracks, shocks, horizon)

    @property
    def scalars(self) -> list[str]:
        return ["summits_held", "tension_end", "tension_peak", "events",
                *(f"shocks.{s}" for s in self.shocks)]


@dataclass
class Tally:
    """Mergeable sufficient statistics of a set of runs."""

    layout: Layout
    n: int = 0
    categories: np.ndarray = field(init=False)  # [topic, category] counts
    agreement_days: np.ndarray = field(init=False)  # [topic, day] agreements on that day
    default_days: np.ndarray = field(init=False)  # [topic, day] defaults on that day
    values: np.ndarray = field(init=False)  # [topic, bin] agreed values histogram
    interim_taken: np.ndarray = field(init=False)  # [topic] runs that took the interim
    value_sums: np.ndarray = field(init=False)  # [topic, (sum, sum of squares)]
    tracks: np.ndarray = field(init=False)  # [track, counter, (sum, sum of squares)]
    scalars: np.ndarray = field(init=False)  # [scalar, (sum, sum of squares)]
    summit_any: int = 0
    first_summit_days: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        t, d = len(self.layout.topics), self.layout.horizon + 1
        self.categories = np.zeros((t, len(CATEGORIES)), np.int64)
        self.agreement_days = np.zeros((t, d), np.int64)
        self.default_days = np.zeros((t, d), np.int64)
        self.values = np.zeros((t, VALUE_BINS), np.int64)
        self.interim_taken = np.zeros(t, np.int64)
        self.value_sums = np.zeros((t, 2))
        self.tracks = np.zeros((len(self.layout.tracks), len(TRACK_COUNTERS), 2))
        self.scalars = np.zeros((len(self.layout.scalars), 2))
        self.first_summit_days = np.zeros(d, np.int64)

    def add(self, columns: dict[str, np.ndarray]) -> None:
        """Add one chunk of runs given as columns."""
        lay = self.layout
        n = len(next(iter(columns.values())))
        self.n += n
        for i, topic in enumerate(lay.topics):
            cat = columns[f"{topic}.outcome"]
            self.categories[i] += np.bincount(cat, minlength=len(CATEGORIES))
            day = columns[f"{topic}.day"]
            agreed = cat == AGREEMENT
            self.agreement_days[i] += _day_counts(day[agreed], lay.horizon)
            self.default_days[i] += _day_counts(day[cat == DEFAULT], lay.horizon)
            v = columns[f"{topic}.value"][agreed]
            self.values[i] += np.histogram(v, bins=VALUE_BINS, range=(0.0, 1.0))[0]
            self.value_sums[i] += (v.sum(), (v * v).sum())
            interim = columns.get(f"{topic}.interim_day")
            if interim is not None:
                self.interim_taken[i] += int((~np.isnan(interim)).sum())
        for i, track in enumerate(lay.tracks):
            for j, counter in enumerate(TRACK_COUNTERS):
                x = columns[f"{track}.{counter}"].astype(np.float64)
                self.tracks[i, j] += (x.sum(), (x * x).sum())
        for i, name in enumerate(lay.scalars):
            x = columns[name].astype(np.float64)
            self.scalars[i] += (x.sum(), (x * x).sum())
        first = columns["first_summit_day"]
        held = ~np.isnan(first)
        self.summit_any += int(held.sum())
        self.first_summit_days += _day_counts(first[held], lay.horizon)

    def merge(self, other: Tally) -> None:
        """Add another tally's runs to this one."""
        self.n += other.n
        self.summit_any += other.summit_any
        for name in ("categories", "agreement_days", "default_days", "values", "value_sums",
                     "interim_taken", "tracks", "scalars", "first_summit_days"):
            getattr(self, name).__iadd__(getattr(other, name))

    # --- estimates used while running ----------------------------------------------------

    def headline_standard_errors(self) -> np.ndarray:
        """Return the standard errors of the headline probabilities, for ``--target-se``.

        Uses p~ = (k + 2) / (n + 4) (Agresti-Coull) so that an event not yet seen does not
        count as known exactly.
        """
        n = self.n
        counts = [self.categories[:, AGREEMENT], self.categories[:, DEFAULT], [self.summit_any]]
        k = np.concatenate([np.asarray(c, float) for c in counts])
        p = (k + 2.0) / (n + 4.0)
        return np.sqrt(p * (1.0 - p) / max(n, 1))

    # --- persistence -----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        with open(path, "wb") as fh:
            np.savez(fh, n=self.n, summit_any=self.summit_any, **arrays)

    @classmethod
    def load(cls, path: Path, layout: Layout) -> Tally:
        """Return the tally saved at ``path``; a damaged or foreign file is an InputError.

        Pickled objects are never loaded (``allow_pickle=False``): a results folder may come
        from anywhere.
        """
        from .errors import InputError

        tally = cls(layout)
        try:
            with np.load(path, allow_pickle=False) as data:
                tally.n = _count(data["n"])
                tally.summit_any = _count(data["summit_any"])
                for name in _ARRAYS:
                    array = data[name]
                    expected = getattr(tally, name)
                    if array.shape != expected.shape or array.dtype.kind not in "iuf":
                        raise ValueError(f"{name} has shape {array.shape}, not {expected.shape}")
                    setattr(tally, name, array.astype(expected.dtype, copy=False))
        except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path}: not a tally this tool wrote ({exc}); the results "
                             "folder is damaged") from None
        return tally


_ARRAYS = ("categories", "agreement_days", "default_days", "values", "value_sums",
           "interim_taken", "tracks", "scalars", "first_summit_days")


def _count(value: np.ndarray) -> int:
    if value.shape != () or value.dtype.kind not in "iu" or int(value) < 0:
        raise ValueError("a count is not a non-negative integer")
    return int(value)


def _day_counts(days: np.ndarray, horizon: int) -> np.ndarray:
    idx = np.clip(np.floor(days).astype(np.int64), 0, horizon)
    return np.bincount(idx, minlength=horizon + 1)
