"""Named random streams for one run, drawn in cheap batches.

Run ``i`` of a job with seed ``s`` owns ``SeedSequence(s, spawn_key=(i,))``. Its first
``4 * len(STREAM_NAMES)`` 64-bit words of output are split among the named streams, four words
each, in the order of :data:`STREAM_NAMES`: the 128-bit state and the (odd) 128-bit increment
of that stream's PCG64 generator. Streams are independent, so a change in how many venue draws
one scenario makes does not shift the shocks another scenario sees (common random numbers).

Seeding this way costs one ``SeedSequence`` per run instead of one per stream, and the PCG64
generators are reused from run to run (only their state is set), which matters at a few
hundred microseconds per run.
"""

from __future__ import annotations

from itertools import chain

import numpy as np
from numpy.random import PCG64, Generator, SeedSequence

#: Order fixes which words of the run's seed each stream takes; append names, never reorder.
STREAM_NAMES = ("venue", "disruption", "shocks", "bargaining")

_BLOCK = 64
_MASK64 = (1 << 64) - 1


def stream_states(seed: int, run: int) -> list[tuple[int, int]]:
    """Return the PCG64 (state, increment) of each named stream of run ``run``."""
    words = SeedSequence(seed, spawn_key=(run,)).generate_state(4 * len(STREAM_NAMES), np.uint64)
    return states_from_words(words.tolist())


def states_from_words(w: list[int]) -> list[tuple[int, int]]:
    """Return the streams' PCG64 (state, increment) from the first words of a run's seed."""
    return [((w[4 * k] << 64) | w[4 * k + 1], ((w[4 * k + 2] << 64) | w[4 * k + 3]) | 1)
            for k in range(len(STREAM_NAMES))]


class Stream:
    """Uniform, exponential and normal draws from one ``numpy.random.Generator``.

    Draws come from blocks of ``_BLOCK`` values: a scalar ``Generator`` call costs about
    1 us, while ``random`` and ``normal`` here are the C-level ``__next__`` of an iterator
    over the blocks (about 40 ns). Blocks are drawn lazily, when the previous one runs out,
    so the sequence of draws depends only on the order of calls.
    """

    __slots__ = ("_generator", "random", "normal")

    def __init__(self, generator: Generator):
        self._generator = generator
        #: Return a uniform draw in [0, 1).
        self.random = chain.from_iterable(iter(self._uniform_block, None)).__next__
        #: Return a standard normal draw.
        self.normal = chain.from_iterable(iter(self._normal_block, None)).__next__

    def _uniform_block(self) -> list[float]:
        return self._generator.random(_BLOCK).tolist()

    def _normal_block(self) -> list[float]:
        return self._generator.standard_normal(_BLOCK).tolist()


class StreamPool:
    """One PCG64 generator per stream name, reseeded for each run (one pool per worker)."""

    def __init__(self) -> None:
        self.bit_generators = [PCG64(0) for _ in STREAM_NAMES]
        self.generators = [Generator(b) for b in self.bit_generators]
        self._preset: tuple[int, int, list[int]] | None = None

    def preset(self, seed: int, run: int, words: list[int]) -> None:
        """Give the words of run ``run``'s seed, already generated (with its inputs' words),
        so that seeding that run does not generate them again."""
        self._preset = (seed, run, words)

    def seed(self, seed: int, run: int) -> None:
        preset, self._preset = self._preset, None
        if preset is not None and preset[0] == seed and preset[1] == run:
            states = states_from_words(preset[2])
        else:
            states = stream_states(seed, run)
        for bits, (state, inc) in zip(self.bit_generators, states):
            bits.state = {"bit_generator": "PCG64", "state": {"state": state, "inc": inc},
                          "has_uint32": 0, "uinteger": 0}


class Streams:
    """The named streams of one run: ``streams.venue``, ``.disruption``, ``.shocks``, ``.bargaining``.

    Pass a :class:`StreamPool` to reuse its generators (the previous run's streams from that
    pool must be done with); without one, fresh generators are made.
    """

    __slots__ = STREAM_NAMES
    venue: Stream
    disruption: Stream
    shocks: Stream
    bargaining: Stream

    def __init__(self, seed: int, run: int, pool: StreamPool | None = None):
        pool = pool or StreamPool()
        pool.seed(seed, run)
        for name, generator in zip(STREAM_NAMES, pool.generators):
            setattr(self, name, Stream(generator))
