"""Monte Carlo scenario simulator for negotiation outcomes.

The public API, in one place::

    import sim
    scenario = sim.load_scenario("scenarios/baseline.yaml")
    outcome = sim.simulate(scenario, run=0, trace=True)      # one run, with its dated trace
    results = sim.run(scenario, runs=2000)                    # a Results
    results.summary()                                         # shows as a table in a notebook
    sim.compare(results, other)                               # differences, with tests
    sim.plot_agreement_curves([results, other])

Every name loads its submodule on first use, so ``import sim`` and ``sim --help`` stay cheap
(no pandas, matplotlib, scipy or SimPy until something needs them).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_PLOTS = (
    "plot_agreed_values",
    "plot_agreed_values_grid",
    "plot_agreement_curve",
    "plot_agreement_curves",
    "plot_forest",
    "plot_input_spread",
    "plot_meetings",
    "plot_outcome_categories",
    "plot_sensitivity",
    "plot_prior_posterior",
    "plot_sweep_heatmap",
    "plot_sweep_line",
    "save_default_plots",
)

#: Public name -> the module that defines it.
_EXPORTS = {
    "Scenario": "sim.scenario",
    "ScenarioError": "sim.scenario",
    "load_scenario": "sim.scenario",
    "parse_scenario": "sim.scenario",
    "Outcome": "sim.model",
    "compile_scenario": "sim.model",
    "simulate": "sim.model",
    "run": "sim.montecarlo",
    "Results": "sim.results",
    "compare": "sim.compare",
    "sweep": "sim.sweep",
    "model_sensitivity": "sim.sweep",
    "Prior": "sim.inputs",
    "problem": "sim.inputs",
    "uncertainty_table": "sim.uncertainty",
    "discover": "sim.discovery",
    "importance": "sim.discovery",
    "calibrate": "sim.calibration",
    "load_posterior": "sim.calibration",
    "Posterior": "sim.inputs",
    **{name: "sim.plots" for name in _PLOTS},
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from .calibration import calibrate, load_posterior
    from .compare import compare
    from .discovery import discover, importance
    from .inputs import Posterior, Prior, problem
    from .model import Outcome, compile_scenario, simulate
    from .montecarlo import run
    from .plots import (
        plot_agreed_values,
        plot_agreed_values_grid,
        plot_agreement_curve,
        plot_agreement_curves,
        plot_forest,
        plot_input_spread,
        plot_meetings,
        plot_outcome_categories,
        plot_prior_posterior,
        plot_sensitivity,
        plot_sweep_heatmap,
        plot_sweep_line,
        save_default_plots,
    )
    from .results import Results
    from .scenario import Scenario, ScenarioError, load_scenario, parse_scenario
    from .sweep import model_sensitivity, sweep
    from .uncertainty import uncertainty_table


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


class _Package(types.ModuleType):
    """The package ``sim``, whose functions ``compare`` and ``sweep`` share their modules' names.

    Importing a submodule sets it as an attribute of its package (``import sim.compare`` sets
    ``sim.compare`` to the module), which would hide the function of that name, and
    ``__getattr__`` never fires for an attribute that exists. Binding the functions eagerly
    would import scipy and pandas with ``import sim``. So the package keeps the function
    instead whenever the import system sets such a module: ``sim.compare`` is always the
    function, and the modules stay reachable as ``sys.modules["sim.compare"]`` and through
    ``from sim.compare import ...``.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == value.__name__:
            value = getattr(value, name)  # sim.compare the module -> its function compare
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
