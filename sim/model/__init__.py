"""The negotiation world: one run of a compiled scenario under named random streams.

The modules listed in :data:`COMPILED_MODULES` are compiled to C by mypyc when the package is
installed (setup.py). ``SIM_PURE_PYTHON=1`` in the environment makes this process (and the
workers it starts) import their Python sources instead: the same results, bit for bit, about
1.6x slower, and steppable in a debugger.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from pathlib import Path

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
COMPILED = not _world.__file__.endswith(".py")


def _warn_if_stale() -> None:
    """Warn when a module's source changed after its extension was built."""
    for module in COMPILED_MODULES:
        built = sys.modules[f"{__name__}.{module}"].__file__
        source = _HERE / f"{module}.py"
        if built and not built.endswith(".py") and source.stat().st_mtime > Path(built).stat().st_mtime:
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
    scenario: Scenario | World, *, seed: int | None = None, run: int = 0, trace: bool = False
) -> Outcome:
    """Return the outcome record of run ``run`` of ``scenario``, with its trace if asked.

    ``seed`` defaults to the scenario's own. The same scenario, seed and run index always
    give the same record and trace.
    """
    if isinstance(scenario, World):
        world = scenario
        if seed is None:
            raise TypeError("simulate() needs a seed when given a compiled World")
    else:
        world = compile_scenario(scenario)
        seed = scenario.seed if seed is None else seed
    record, events = run_world(world, seed, run, trace)
    return Outcome(dict(zip(world.fields, record)), events)
