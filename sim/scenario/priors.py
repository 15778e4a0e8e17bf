"""Priors in scenario data: taken out at load time, checked over their whole support.

A scenario file writes a prior where a value goes (``cancel_prob: {uniform: [0.05, 0.3]}``).
Loading takes each one out (:func:`take_priors`), puts its point value (median, or a choice's
mode) in its place so that the scenario validates as before, and keeps the priors on the
scenario (``Scenario.priors``, by dotted key). Then the whole support is checked: every
value a draw can take must pass the field's own bounds (:func:`support_problems`), and the
orderings the validator enforces between a side's ideal, opening and reservation must hold
for every combination of draws (:func:`order_problems`). :func:`inline` writes the priors
back in place, for ``scenario.yaml`` and for editors.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from ..inputs import Prior, extract_priors, parse_prior

#: The smallest and largest uniforms :func:`sim.inputs.uniforms` can give: a draw never
#: goes beyond the quantiles at these, so an unbounded family has a finite reach.
U_MIN = 2.0 ** -53
U_MAX = 1.0 - 2.0 ** -53


def take_priors(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Prior],
                                                  list[tuple[str, str]]]:
    """Return (data with point values in place of priors, priors by key, problems)."""
    from ..model.patch import unsupported

    point = copy.deepcopy(dict(data))
    internal = point.pop("priors", None) or {}  # a scenario dumped as data carries its own
    priors: dict[str, Prior] = {}
    problems: list[tuple[str, str]] = []
    if isinstance(internal, Mapping):
        for key, raw in internal.items():
            priors[str(key)] = raw if isinstance(raw, Prior) else Prior.model_validate(raw)
    found, _ = extract_priors(point)
    for key, raw in found.items():
        reason = unsupported(key)
        if reason is not None:
            problems.append((key, f"a prior is not allowed here: {reason}"))
            continue
        try:
            priors[key] = parse_prior(raw)
        except ValueError as exc:
            problems.append((key, f"malformed prior: {exc}"))
    for key in found:
        _put(point, key, priors[key].point() if key in priors else None)
    return point, priors, problems


def _key(node: Mapping[Any, Any], part: str) -> Any:
    """Return the key of ``node`` written ``part`` (a key that is not text is reported by the
    validator; here it is found by its text, as the dotted path names it)."""
    if part in node:
        return part
    return next((k for k in node if str(k) == part), part)


def _put(data: dict[str, Any], key: str, value: Any) -> None:
    node: Any = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[_key(node, part)]
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[_key(node, parts[-1])] = value


def _get(data: Mapping[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, Mapping):
            node = node.get(_key(node, part))
        else:
            return None
    return node


def reach(prior: Prior) -> list[Any]:
    """Return the extreme values a draw can take: both ends, or every value of a choice."""
    if prior.categorical:
        return list(prior.values)
    low, high = prior.support()
    if prior.family == "lognormal":  # open at 0: a draw never reaches it
        low = math.nan
    if not math.isfinite(low) or not math.isfinite(high):
        q = prior.ppf(_array([U_MIN, U_MAX]))
        low = low if math.isfinite(low) else float(q[0])
        high = high if math.isfinite(high) else float(q[1])
    return [low, high]


def _array(values: list[float]):
    import numpy as np

    return np.array(values)


def support_problems(point: dict[str, Any], priors: Mapping[str, Prior]) -> list[tuple[str, str]]:
    """Return, for each prior, the values it can draw that its field refuses."""
    from pydantic import ValidationError

    from .loading import _dotted, _message
    from .models import Scenario

    out: list[tuple[str, str]] = []
    for key, prior in priors.items():
        original = _get(point, key)
        if isinstance(original, int) and not isinstance(original, bool) and not prior.categorical:
            out.append((key, f"takes whole numbers: write its prior as a choice "
                             f"(got {prior.describe()})"))
            continue
        for value in reach(prior):
            _put(point, key, value)
            try:
                Scenario.model_validate(point)
            except ValidationError as exc:
                refused = [e for e in exc.errors(include_url=False) if _dotted(e["loc"]) == key]
                if refused:
                    shown = f"{value:g}" if isinstance(value, float) else repr(value)
                    out.append((key, f"the prior {prior.describe()} can draw {shown}: "
                                     f"{_message(refused[0])}"))
                    break
            finally:
                _put(point, key, original)
    return out


def order_problems(point: Mapping[str, Any], priors: Mapping[str, Prior]) -> list[tuple[str, str]]:
    """Return orderings between ideal, opening and reservation that some draws would break.

    The side wanting high values must keep ``ideal >= opening >= reservation`` (the other
    side the reverse) for every combination of draws, and the two ideals must not cross
    (which side wants high values is fixed). Positions without a prior are left to the
    validator's own checks.
    """
    sides = point.get("sides") if isinstance(point.get("sides"), Mapping) else {}
    signatories = [n for n, s in sides.items() if isinstance(s, Mapping)
                   and s.get("role", "signatory") == "signatory"]
    if len(signatories) != 2 or not priors:
        return []
    out: list[tuple[str, str]] = []
    for topic in point.get("topics") or {}:
        paths = {s: f"sides.{s}.topics.{topic}" for s in signatories}
        if not any(k.startswith(p + ".") for k in priors for p in paths.values()):
            continue
        spans = {s: _spans(point, priors, paths[s]) for s in signatories}
        if any(v is None for v in spans.values()):
            continue  # a value of the wrong type: the validator says so
        a, b = signatories
        # as the compiler decides: the side whose (point) ideal is higher wants high values
        high, low = ((a, b) if _point_ideal(point, a, topic) >= _point_ideal(point, b, topic)
                     else (b, a))
        if spans[high]["ideal"][0] < spans[low]["ideal"][1]:
            out.append((f"{paths[high]}.ideal",
                        f"priors let the two sides' ideals cross ({high} from "
                        f"{spans[high]['ideal'][0]:g}, {low} up to {spans[low]['ideal'][1]:g}): "
                        "which side wants high values must be the same in every run"))
        for side, sign in ((high, 1.0), (low, -1.0)):
            out += _side_order(paths[side], spans[side], sign, priors)
    return out


def _point_ideal(point: Mapping[str, Any], side: str, topic: str) -> float:
    value = _get(point, f"sides.{side}.topics.{topic}.ideal")
    return float(value) if isinstance(value, (int, float)) else math.nan


def _spans(point: Mapping[str, Any], priors: Mapping[str, Prior],
           path: str) -> dict[str, tuple[float, float]] | None:
    spans = {}
    for field in ("ideal", "opening", "reservation"):
        key = f"{path}.{field}"
        if key in priors and not priors[key].categorical:
            values = reach(priors[key])
            spans[field] = (min(values), max(values))
            continue
        value = _get(point, key)
        if value is None and field == "opening":
            spans[field] = spans["ideal"]  # the opening demand is the ideal
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        spans[field] = (float(value), float(value))
    return spans


def _side_order(path: str, spans: dict[str, tuple[float, float]], sign: float,
                priors: Mapping[str, Prior]) -> list[tuple[str, str]]:
    """Return the orderings of one side that some draws would break (only where a prior is)."""
    out = []
    wants = "high" if sign > 0 else "low"
    for better, worse in (("ideal", "reservation"), ("opening", "reservation")):
        keys = (f"{path}.{better}", f"{path}.{worse}")
        if not any(k in priors for k in keys):
            continue  # fixed values: the validator's own check reports them
        worst_better = spans[better][0] if sign > 0 else spans[better][1]
        worst_worse = spans[worse][1] if sign > 0 else spans[worse][0]
        if sign * (worst_better - worst_worse) < 0:
            shown = [f"{k.rsplit('.', 1)[1]} {priors[k].describe()}" for k in keys if k in priors]
            out.append((f"{path}.{worse}" if keys[1] in priors else f"{path}.{better}",
                        f"with {' and '.join(shown)}, a draw can put the {worse} "
                        f"({worst_worse:g}) beyond the {better} ({worst_better:g}) for a side "
                        f"wanting {wants} values on this topic"))
    return out


def inline(data: dict[str, Any], priors: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``data`` (a scenario as plain data) with each prior written in its place."""
    out = copy.deepcopy(data)
    out.pop("priors", None)
    for key, prior in priors.items():
        prior = prior if isinstance(prior, Prior) else Prior.model_validate(prior)
        _put(out, key, prior.to_yaml())
    return out
