"""The reference forecast: the salience- and capability-weighted mean of the sides' positions.

The simple baseline that political forecasting studies find hard to beat (the weighted mean
of stakeholders' positions, as in expected-utility forecasting work): for each topic,
``sum(capability * salience * ideal) / sum(capability * salience)`` over every side,
signatories and third parties alike, that holds a position on it.
"""

from __future__ import annotations

from .scenario import Scenario


def reference_forecast(scenario: Scenario) -> dict[str, float]:
    """Return, per topic, the weighted mean position of all sides on the topic's scale."""
    out = {}
    for topic in scenario.topics:
        weight = total = 0.0
        for side in scenario.sides.values():
            pos = side.topics.get(topic)
            if pos is not None:
                w = side.capability * pos.salience
                weight += w
                total += w * pos.ideal
        out[topic] = total / weight if weight > 0 else float("nan")
    return out
