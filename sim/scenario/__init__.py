"""Scenario files: typed models, loading with ``extends:`` and overrides, and errors."""

from .loading import (
    Problem,
    ScenarioError,
    dump_scenario,
    load_scenario,
    parse_scenario,
    scenario_to_dict,
    validate,
)
from .models import Scenario

__all__ = [
    "Problem",
    "Scenario",
    "ScenarioError",
    "dump_scenario",
    "load_scenario",
    "parse_scenario",
    "scenario_to_dict",
    "validate",
]
