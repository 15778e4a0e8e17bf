"""Monte Carlo scenario simulator for negotiation outcomes.

The public API; submodules load on first use so that ``import sim`` and ``sim --help`` stay
cheap::

    from sim import load_scenario, simulate
    scenario = load_scenario("scenarios/baseline.yaml")
    outcome = simulate(scenario, run=0, trace=True)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "Scenario": "sim.scenario",
    "ScenarioError": "sim.scenario",
    "load_scenario": "sim.scenario",
    "parse_scenario": "sim.scenario",
    "Outcome": "sim.model",
    "compile_scenario": "sim.model",
    "simulate": "sim.model",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from .model import Outcome, compile_scenario, simulate
    from .scenario import Scenario, ScenarioError, load_scenario, parse_scenario


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
