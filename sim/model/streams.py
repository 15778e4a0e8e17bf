"""Named random streams for one run, drawn in cheap batches.

Run ``i`` of a job with seed ``s`` owns ``SeedSequence(s, spawn_key=(i, k))`` for the ``k``-th
name in :data:`STREAM_NAMES`. Streams are independent, so a change in how many venue draws
one scenario makes does not shift the shocks another scenario sees (common random numbers).
"""

from __future__ import annotations

import math
from itertools import chain

from numpy.random import PCG64, Generator, SeedSequence

#: Order fixes each stream's spawn key; append new names, never reorder.
STREAM_NAMES = ("venue", "disruption", "shocks", "bargaining")

_BLOCK = 64


class Stream:
    """Uniform, exponential and normal draws from one ``numpy.random.Generator``.

    Draws come from blocks of ``_BLOCK`` values: a scalar ``Generator`` call costs about
    1 us, while ``random`` and ``normal`` here are the C-level ``__next__`` of an iterator
    over the blocks (about 40 ns). Blocks are drawn lazily, when the previous one runs out,
    so the sequence of draws depends only on the order of calls.
    """

    __slots__ = ("_seed", "_generator", "random", "normal")

    def __init__(self, seed: SeedSequence):
        self._seed = seed
        self._generator: Generator | None = None
        #: Return a uniform draw in [0, 1).
        self.random = chain.from_iterable(iter(self._uniform_block, None)).__next__
        #: Return a standard normal draw.
        self.normal = chain.from_iterable(iter(self._normal_block, None)).__next__

    def _gen(self) -> Generator:
        if self._generator is None:
            self._generator = Generator(PCG64(self._seed))
        return self._generator

    def _uniform_block(self) -> list[float]:
        return self._gen().random(_BLOCK).tolist()

    def _normal_block(self) -> list[float]:
        return self._gen().standard_normal(_BLOCK).tolist()

    def exponential(self, mean: float) -> float:
        """Return an exponential draw with the given mean."""
        return -mean * math.log(1.0 - self.random())

    def choice(self, weights: list[float]) -> int:
        """Return an index drawn with probability proportional to ``weights``."""
        total = sum(weights)
        target = self.random() * total
        acc = 0.0
        for i, w in enumerate(weights):
            acc += w
            if target < acc:
                return i
        return len(weights) - 1


class Streams:
    """The named streams of one run: ``streams.venue``, ``.disruption``, ``.shocks``, ``.bargaining``."""

    __slots__ = STREAM_NAMES

    def __init__(self, seed: int, run: int):
        for k, name in enumerate(STREAM_NAMES):
            setattr(self, name, Stream(SeedSequence(seed, spawn_key=(run, k))))
