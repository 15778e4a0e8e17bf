"""The negotiation world: one run of a compiled scenario under named random streams.

The modules listed in :data:`COMPILED_MODULES` are compiled to C by mypyc when the package is
installed (setup.py). ``SIM_PURE_PYTHON=1`` in the environment makes this process (and the
workers it starts) import their Python sources instead: the same results, bit for bit, about
1.6x slower, and steppable in a debugger. The switch is read when ``sim.model`` is first
imported; setting it later, reloading, or a notebook's autoreload do not change the build in
use. Workers of a remote Dask cluster run whatever build their own install has (the same
results either way).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import operator
import os
import sys
import warnings
from pathlib import Path
from typing import Any

#: The model's modules that the build compiles (see setup.py).
COMPILED_MODULES = ("bargaining", "compiled", "world")

_HERE = Path(__file__).resolve().parent


class _PythonSources(importlib.abc.MetaPathFinder):
    """Import the compiled modules from their ``.py`` sources, not their extensions."""

    def find_spec(self, name, path=None, target=None):
        package, _, module = name.rpartition(".")
        if package != __name__ or module not in COMPILED_MODULES:
            return None
        return importlib.util.spec_from_file_location(name, _HERE / f"{module}.py")


if os.environ.get("SIM_PURE_PYTHON") == "1" and not any(
    isinstance(f, _PythonSources) for f in sys.meta_path
):
    sys.meta_path.insert(0, _PythonSources())

from ..scenario.models import Scenario  # noqa: E402
from . import world as _world  # noqa: E402
from .compiled import CATEGORIES, TRACK_COUNTERS, World, compile_scenario, outcome_fields  # noqa: E402
from .streams import STREAM_NAMES, Streams  # noqa: E402
from .world import Outcome, TraceEvent, run_world  # noqa: E402

#: True when the model runs as C extensions compiled by mypyc, False for its Python sources.
COMPILED = _world.__file__ is not None and _world.__file__.endswith(
    tuple(importlib.machinery.EXTENSION_SUFFIXES)
)


def _warn_if_stale() -> None:
    """Warn when a module's source differs from the one its extension was compiled from.

    The build records each source's SHA-256 in ``_build.json`` beside the extensions.
    """
    try:
        built = json.loads((Path(_world.__file__).parent / "_build.json").read_text())
    except (OSError, ValueError):
        return
    for module, digest in built.items():
        source = _HERE / f"{module}.py"
        try:
            current = hashlib.sha256(source.read_bytes()).hexdigest()
        except OSError:
            continue
        if current != digest:
            warnings.warn(
                f"{source} changed after it was compiled, and the compiled model runs the old "
                "code: rebuild it (`make`, or `pip install -e .`) or set SIM_PURE_PYTHON=1",
                stacklevel=3,
            )
            return


if COMPILED:
    _warn_if_stale()

__all__ = [
    "CATEGORIES",
    "COMPILED",
    "STREAM_NAMES",
    "TRACK_COUNTERS",
    "Outcome",
    "Streams",
    "TraceEvent",
    "World",
    "compile_scenario",
    "outcome_fields",
    "simulate",
]


def simulate(
    scenario: Scenario | World, *, seed: int | None = None, run: int = 0, trace: bool = False,
    replications: int = 1, inputs: str = "sample",
) -> Outcome:
    """Return the outcome record of run ``run`` of ``scenario``, with its trace if asked.

    ``seed`` defaults to the scenario's own. The same scenario, seed and run index always
    give the same record and trace: the record a Monte Carlo job with the same seed,
    ``replications`` and ``inputs`` mode ("sample" or "point") holds for that run, its drawn
    uncertain inputs (``input.<key>``) included.
    """
    drawn: dict[str, Any] = {}
    if isinstance(scenario, World):
        world = scenario
        if seed is None:
            raise TypeError("simulate() needs a seed when given a compiled World")
    else:
        world = compile_scenario(scenario)
        seed = scenario.seed if seed is None else seed
        if scenario.priors and inputs == "sample":
            from ..inputs import RunInputs

            sampler = RunInputs(scenario, world, replications)
            values = sampler.draws(operator.index(seed), operator.index(run),
                                   operator.index(run) + 1)
            drawn = {k: v[0] for k, v in sampler.columns(values).items()}
            world = next(iter(sampler.worlds(values, 1)))
    # the compiled run_world takes exact types: numpy integers and truthy values are converted
    record, events = run_world(world, operator.index(seed), operator.index(run), bool(trace))
    return Outcome({**dict(zip(world.fields, record)), **drawn}, events)
