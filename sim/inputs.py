"""Uncertain inputs: priors written in place of scenario values, and their per-run draws.

A prior is data: a family and its parameters (:class:`Prior`), validated once when the
scenario is loaded. A scenario file writes it where a number (or a category) would go::

    cancel_prob: {uniform: [0.05, 0.30]}
    reservation: {beta: [6, 4]}
    patience_days: {triangular: [180, 540, 900]}
    tactic: {choice: [boulware, linear], weights: [0.7, 0.3]}

Run ``i`` of a job with seed ``s`` draws its inputs from its ``inputs`` stream: the words
that :data:`INPUT_WORDS` names of ``SeedSequence(s, spawn_key=(d,))``, where ``d`` is the run's
input draw (``i // replications``). Each uncertain key's uniform is a SplitMix64 hash of those
words and the key's name, so a key's draw depends on (seed, draw, key) alone: adding or
changing another prior moves no other draw, the event streams are untouched (common random
numbers still pair runs), and two scenarios with the same prior on a key draw the same value.
The uniform goes through the family's quantile function (``scipy.stats``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

FAMILIES = ("uniform", "triangular", "beta", "normal", "lognormal", "choice")
#: How many parameters each family's list takes.
_ARITY = {"uniform": 2, "triangular": 3, "beta": 2, "normal": 2, "lognormal": 2}
#: The inputs stream: words 16..17 of the run's SeedSequence (0..15 seed the event streams,
#: see :mod:`sim.model.streams`).
INPUT_WORDS = (16, 18)
#: Prefix of the experiments table's input columns in the outcomes.
COLUMN_PREFIX = "input."


#: Frozen scipy.stats distributions by (family, params, low, high).
_FROZEN: dict[tuple, Any] = {}


#: The key of the inputs stream's uniform that picks a run's posterior particle.
POSTERIOR_KEY = "__posterior__"


class Posterior(BaseModel):
    """A weighted sample of input values (a calibration's posterior) that runs draw from.

    Each input draw picks one particle with probability proportional to its weight (through
    the inputs stream, key :data:`POSTERIOR_KEY`), and its keys take that particle's values;
    the scenario's other uncertain keys keep their priors.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: tuple[str, ...]
    particles: tuple[tuple[float, ...], ...]
    weights: tuple[float, ...]
    #: where it came from (a calibration folder) and a digest of its content
    source: str = ""
    digest: str = ""

    def cumulative(self) -> np.ndarray:
        w = np.asarray(self.weights, dtype=float)
        return np.cumsum(w / w.sum())

    def pick(self, u: np.ndarray) -> np.ndarray:
        """Return the particle index of each uniform in ``u``."""
        cumulative = self.cumulative()
        return np.minimum(np.searchsorted(cumulative, u, side="right"), len(cumulative) - 1)


class Prior(BaseModel):
    """One uncertain input: a distribution over the values of one dotted scenario key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: Literal["uniform", "triangular", "beta", "normal", "lognormal", "choice"]
    params: tuple[float, ...] = ()
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] = ()
    weights: tuple[float, ...] = ()

    # --- what it says ------------------------------------------------------------------

    @property
    def categorical(self) -> bool:
        return self.family == "choice"

    def support(self) -> tuple[float, float]:
        """Return the lowest and highest value a draw can take (numeric families)."""
        p = self.params
        if self.family == "uniform":
            return p[0], p[1]
        if self.family == "triangular":
            return p[0], p[2]
        if self.family == "beta":
            return (0.0 if self.low is None else self.low), (1.0 if self.high is None else self.high)
        if self.family == "normal":
            return (-math.inf if self.low is None else self.low), (math.inf if self.high is None else self.high)
        if self.family == "lognormal":
            return 0.0, math.inf
        numbers = [v for v in self.values if _is_number(v)]
        return (min(numbers), max(numbers)) if numbers else (math.nan, math.nan)

    def point(self) -> Any:
        """Return the point value of point mode: the median, or the mode of a choice."""
        if self.categorical:
            weights = self.probabilities()
            return self.values[int(np.argmax(weights))]
        return _plain(float(self.ppf(np.array([0.5]))[0]))

    def probabilities(self) -> tuple[float, ...]:
        n = len(self.values)
        return self.weights if self.weights else tuple(1.0 / n for _ in range(n))

    def ppf(self, u: np.ndarray) -> Any:
        """Return the draws for uniforms ``u`` in (0, 1): an array, or a list for a choice."""
        if self.categorical:
            cumulative = np.cumsum(self.probabilities())
            index = np.minimum(np.searchsorted(cumulative, u, side="right"), len(self.values) - 1)
            return [self.values[k] for k in index]
        return self._frozen().ppf(u)

    def _frozen(self):
        """Return the scipy.stats distribution (made once per prior: freezing costs ~1 ms)."""
        key = (self.family, self.params, self.low, self.high)
        frozen = _FROZEN.get(key)
        if frozen is None:
            frozen = _FROZEN[key] = self._freeze()
        return frozen

    def _freeze(self):
        from scipy import stats

        p = self.params
        if self.family == "uniform":
            return stats.uniform(loc=p[0], scale=p[1] - p[0])
        if self.family == "triangular":
            low, mode, high = p
            return stats.triang(c=(mode - low) / (high - low), loc=low, scale=high - low)
        if self.family == "beta":
            low, high = self.support()
            return stats.beta(p[0], p[1], loc=low, scale=high - low)
        if self.family == "normal":
            mean, sd = p
            low, high = self.support()
            return stats.truncnorm((low - mean) / sd, (high - mean) / sd, loc=mean, scale=sd)
        median, sigma = p
        return stats.lognorm(s=sigma, scale=median)

    def describe(self) -> str:
        """Return the prior as written in a scenario file, e.g. ``uniform(0.05, 0.3)``."""
        if self.categorical:
            inner = ", ".join(map(str, self.values))
            weights = f"; weights {', '.join(f'{w:g}' for w in self.weights)}" if self.weights else ""
            return f"choice({inner}{weights})"
        inner = ", ".join(f"{x:g}" for x in self.params)
        bounds = ""
        if self.low is not None or self.high is not None:
            bounds = f" on [{_g(self.low)}, {_g(self.high)}]"
        return f"{self.family}({inner}){bounds}"

    def to_yaml(self) -> dict[str, Any]:
        """Return the prior in the inline form of a scenario file."""
        if self.categorical:
            out: dict[str, Any] = {"choice": list(self.values)}
            if self.weights:
                out["weights"] = list(self.weights)
            return out
        out = {self.family: [_plain(x) for x in self.params]}
        if self.low is not None:
            out["low"] = _plain(self.low)
        if self.high is not None:
            out["high"] = _plain(self.high)
        return out


def _g(x: float | None) -> str:
    return "-inf" if x is None else f"{x:g}"


def _plain(x: Any) -> Any:
    """Return whole floats as ints only where the caller wants; here: numpy to Python."""
    return x.item() if isinstance(x, np.generic) else x


def _parses(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# --- reading priors from scenario data ---------------------------------------------------


def looks_like_prior(value: Any) -> bool:
    """Return whether ``value`` is written as a prior: a mapping with one family key whose
    value is a list (``topics: {beta: {...}}`` names a topic, not a prior)."""
    if not isinstance(value, Mapping):
        return False
    families = [k for k in value if k in FAMILIES]
    return len(families) == 1 and isinstance(value[families[0]], list)


def parse_prior(raw: Mapping[str, Any]) -> Prior:
    """Return the :class:`Prior` written as ``raw``, or raise ValueError saying what is wrong."""
    (family,) = [k for k in raw if k in FAMILIES]
    allowed = {family, "weights"} if family == "choice" else {family, "low", "high"}
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} in a {family} prior "
                         f"(it takes {', '.join(sorted(allowed))})")
    args = raw[family]
    if family == "choice":
        return _choice(args, raw.get("weights"))
    if len(args) != _ARITY[family] or not all(_is_number(a) for a in args):
        texts = [a for a in args if isinstance(a, str) and _parses(a)]
        hint = (f" ({texts[0]!r} is read as text by YAML: write it with a dot, e.g. 1.0e-3)"
                if texts else "")
        raise ValueError(f"a {family} prior takes a list of {_ARITY[family]} numbers{hint}")
    if not all(math.isfinite(a) for a in args):
        raise ValueError(f"a {family} prior's parameters must be finite, got {list(args)}")
    low, high = raw.get("low"), raw.get("high")
    for name, bound in (("low", low), ("high", high)):
        if bound is not None and not (_is_number(bound) and math.isfinite(bound)):
            raise ValueError(f"{name}: {bound!r} is not a number")
    if family in ("uniform", "triangular", "lognormal") and (low is not None or high is not None):
        raise ValueError(f"a {family} prior takes no low or high (its parameters set its range)")
    prior = Prior(family=family, params=tuple(float(a) for a in args),
                  low=None if low is None else float(low), high=None if high is None else float(high))
    _check_parameters(prior)
    return prior


def _choice(values: Any, weights: Any) -> Prior:
    if not values:
        raise ValueError("a choice prior needs at least one value")
    for v in values:
        if isinstance(v, (Mapping, list)) or v is None:
            raise ValueError(f"a choice takes plain values, not {v!r}")
    if len({repr(v) for v in values}) != len(values):
        raise ValueError("a choice lists a value twice")
    if weights is None:
        return Prior(family="choice", values=tuple(values))
    if (not isinstance(weights, list) or len(weights) != len(values)
            or not all(_is_number(w) and math.isfinite(w) and w >= 0 for w in weights)):
        raise ValueError(f"weights must be {len(values)} non-negative numbers, one per value")
    if abs(sum(weights) - 1.0) > 1e-9:
        raise ValueError(f"weights sum to {sum(weights):g}, not 1")
    return Prior(family="choice", values=tuple(values), weights=tuple(float(w) for w in weights))


def _check_parameters(prior: Prior) -> None:
    p, family = prior.params, prior.family
    if family == "uniform" and not p[0] < p[1]:
        raise ValueError(f"uniform: low {p[0]:g} must be below high {p[1]:g}")
    if family == "triangular" and not (p[0] <= p[1] <= p[2] and p[0] < p[2]):
        raise ValueError(f"triangular: need low <= mode <= high with low < high, got {list(p)}")
    if family == "beta" and not (p[0] > 0 and p[1] > 0):
        raise ValueError(f"beta: a and b must be positive, got {list(p)}")
    if family == "normal" and not p[1] > 0:
        raise ValueError(f"normal: sd must be positive, got {p[1]:g}")
    if family == "lognormal" and not (p[0] > 0 and p[1] > 0):
        raise ValueError(f"lognormal: median and sigma must be positive, got {list(p)}")
    if family in ("beta", "normal"):
        low, high = prior.support()
        if not low < high:
            raise ValueError(f"{family}: low {low:g} must be below high {high:g}")
        if family == "normal" and prior._frozen().cdf(high) - prior._frozen().cdf(low) < 1e-12:
            raise ValueError("normal: [low, high] holds no probability under this normal")


def extract_priors(data: Any, prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Return (priors as raw mappings by dotted key, problems) found anywhere in ``data``."""
    found: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    if isinstance(data, Mapping):
        items = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(str(i), v) for i, v in enumerate(data)]
    else:
        return found, problems
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else key
        if looks_like_prior(value):
            found[path] = value
        else:
            sub, bad = extract_priors(value, path)
            found.update(sub)
            problems += bad
    return found, problems


# --- drawing -----------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def key_hash(key: str) -> np.uint64:
    """Return a stable 64-bit number for a dotted key (the same on every machine)."""
    return np.uint64(int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little"))


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def seed_words(seed: int, draws: Sequence[int]) -> np.ndarray:
    """Return the first words of each draw's (run's) SeedSequence, the event streams' and the
    inputs stream's: an array of shape (len(draws), 18)."""
    from numpy.random import SeedSequence

    out = np.empty((len(draws), INPUT_WORDS[1]), dtype=np.uint64)
    for row, d in enumerate(draws):
        out[row] = SeedSequence(seed, spawn_key=(int(d),)).generate_state(INPUT_WORDS[1], np.uint64)
    return out


def input_words(seed: int, draws: Sequence[int]) -> np.ndarray:
    """Return the inputs-stream words of each draw: an array of shape (len(draws), 2)."""
    return seed_words(seed, draws)[:, INPUT_WORDS[0]:INPUT_WORDS[1]]


def uniforms(words: np.ndarray, key: str) -> np.ndarray:
    """Return one uniform in (0, 1) per row of ``words`` for ``key``."""
    return uniform_matrix(words, [key])[:, 0]


def uniform_matrix(words: np.ndarray, keys: Sequence[str]) -> np.ndarray:
    """Return the uniforms of each row of ``words`` (a draw) for each key (a column): the
    same numbers as :func:`uniforms` key by key, in one pass."""
    hashes = np.array([key_hash(k) for k in keys], dtype=np.uint64)
    z = _splitmix(_splitmix(words[:, 0:1] ^ hashes) ^ words[:, 1:2])
    # 52 bits and a half step: every value lies in [2**-53, 1 - 2**-53], exactly representable,
    # so no quantile function is ever asked for 0 or 1
    return ((z >> np.uint64(12)).astype(np.float64) + 0.5) * (1.0 / 4503599627370496.0)


def sample(priors: Mapping[str, Prior], seed: int, draws: Sequence[int],
           words: np.ndarray | None = None, quantiles: Quantiles | None = None) -> dict[str, Any]:
    """Return each key's values for the input draws ``draws`` (arrays, lists for choices).

    ``words`` may give the draws' inputs-stream words if they are at hand already, and
    ``quantiles`` the priors' :class:`Quantiles` (made once for many calls).
    """
    if not priors:
        return {}
    words = input_words(seed, draws) if words is None else words
    quantiles = Quantiles(priors.values()) if quantiles is None else quantiles
    return dict(zip(priors, quantiles(uniform_matrix(words, list(priors)))))


def family_groups(frozen: Mapping[int, Any]) -> list[tuple[Any, list[int], list[np.ndarray],
                                                             dict[str, np.ndarray]]]:
    """Group frozen scipy.stats distributions (by column) by family: for each family, the
    distribution, its columns, and its shape and keyword parameters as arrays."""
    families: dict[tuple, list[int]] = {}
    for j, f in frozen.items():
        families.setdefault((f.dist.name, len(f.args), tuple(sorted(f.kwds))), []).append(j)
    groups = []
    for (_, n_args, kwds), columns in families.items():
        members = [frozen[j] for j in columns]
        args = [np.array([f.args[a] for f in members], dtype=float) for a in range(n_args)]
        named = {k: np.array([f.kwds[k] for f in members], dtype=float) for k in kwds}
        groups.append((members[0].dist, columns, args, named))
    return groups


class Quantiles:
    """The quantile functions of many priors at once: ``Quantiles(priors)(u)`` maps uniforms
    ``u`` of shape (rows, len(priors)) to their values, one scipy.stats call per family with
    the parameters broadcast (the same numbers as one call per prior, element by element,
    without a call's fixed cost ~60 us per prior). Choice priors are done one by one."""

    def __init__(self, priors: Iterable[Prior]):
        self.priors = list(priors)
        self.choices = [j for j, p in enumerate(self.priors) if p.categorical]
        self.groups = family_groups({j: p._frozen() for j, p in enumerate(self.priors)
                                     if not p.categorical})

    def __call__(self, u: np.ndarray) -> list[Any]:
        out: list[Any] = [None] * len(self.priors)
        for dist, columns, args, named in self.groups:
            block = dist.ppf(u[:, columns], *args, **named)
            for c, j in enumerate(columns):
                out[j] = block[:, c]
        for j in self.choices:
            out[j] = self.priors[j].ppf(u[:, j])
        return out


def point_values(priors: Mapping[str, Prior]) -> dict[str, Any]:
    """Return each key's point value (median, or a choice's mode) for point mode."""
    return {key: prior.point() for key, prior in priors.items()}


def problem(priors: Mapping[str, Prior]) -> dict[str, Any]:
    """Return the priors as a problem description a SALib or scipy.stats.qmc user knows:
    names, families, parameters and bounds (the support; categories for a choice)."""
    return {
        "num_vars": len(priors),
        "names": list(priors),
        "families": [p.family for p in priors.values()],
        "params": [list(p.params) if not p.categorical else list(p.values) for p in priors.values()],
        "bounds": [list(p.support()) if not p.categorical else list(p.values)
                   for p in priors.values()],
        "dists": [p.describe() for p in priors.values()],
    }


# --- a job's inputs, run by run ----------------------------------------------------------


class RunInputs:
    """A scenario's uncertain inputs for a job: drawn per run, written into per-run worlds.

    Built once per worker and scenario; the compiled world is not rebuilt, only the specs an
    uncertain key touches are copied per run (:class:`sim.model.patch.Patcher`).
    """

    def __init__(self, scenario: Any, world: Any, replications: int = 1):
        from .model.patch import Patcher

        self.priors: dict[str, Prior] = dict(scenario.priors)
        self.keys = list(self.priors)
        self.replications = replications
        self.patcher = Patcher(scenario, world, self.keys)
        self.quantiles = Quantiles(self.priors.values())
        self.posterior: Posterior | None = getattr(scenario, "posterior", None)
        #: the posterior's keys the scenario has priors on, and their columns
        self.posterior_keys: dict[str, int] = {}
        if self.posterior is not None:
            self.particles = np.asarray(self.posterior.particles, dtype=float)
            self.posterior_keys = {k: j for j, k in enumerate(self.posterior.keys)
                                   if k in self.priors}

    def draws(self, seed: int, start: int, stop: int,
              words: np.ndarray | None = None) -> dict[str, Any]:
        """Return each key's value for runs ``start`` to ``stop - 1`` (one entry per run).

        Without replications a run's draw is its own: ``words`` (from :func:`seed_words`
        for these runs) then serve both its inputs and its event streams.
        """
        draw = np.arange(start, stop) // self.replications
        unique, index = np.unique(draw, return_inverse=True)
        given = None
        if words is not None and self.replications == 1:
            given = words[:, INPUT_WORDS[0]:INPUT_WORDS[1]]
        values = sample(self.priors, seed, unique.tolist(), words=given,
                        quantiles=self.quantiles)
        if self.posterior is not None and self.posterior_keys:
            words_ = given if given is not None else input_words(seed, unique.tolist())
            chosen = self.posterior.pick(uniforms(words_, POSTERIOR_KEY))
            for key, column in self.posterior_keys.items():
                values[key] = self.particles[chosen, column]
        out: dict[str, Any] = {}
        for key, v in values.items():
            out[key] = np.asarray(v)[index] if not self.priors[key].categorical else [v[k] for k in index]
        return out

    def worlds(self, values: Mapping[str, Any], n: int):
        """Return an iterator over the worlds of ``n`` runs whose inputs are ``values``."""
        return self.patcher.worlds(values, n)

    def columns(self, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Return the experiments-table columns (``input.<key>``) of ``values``."""
        out = {}
        for key, v in values.items():
            if self.priors[key].categorical and not all(_is_number(x) or isinstance(x, bool) for x in v):
                out[COLUMN_PREFIX + key] = np.array([str(x) for x in v], dtype=object)
            else:
                out[COLUMN_PREFIX + key] = np.asarray(v, dtype=np.float64)
        return out


# --- the JSON Schema ---------------------------------------------------------------------

_PAIR = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
PRIOR_SCHEMA: dict[str, Any] = {
    "description": "A prior: a distribution written in place of a value (docs/model.md, "
                   "'Uncertain inputs')",
    "oneOf": [
        {"type": "object", "properties": {"uniform": _PAIR}, "required": ["uniform"],
         "additionalProperties": False},
        {"type": "object", "properties": {"triangular": {**_PAIR, "minItems": 3, "maxItems": 3}},
         "required": ["triangular"], "additionalProperties": False},
        {"type": "object", "properties": {"beta": _PAIR, "low": {"type": "number"},
                                          "high": {"type": "number"}},
         "required": ["beta"], "additionalProperties": False},
        {"type": "object", "properties": {"normal": _PAIR, "low": {"type": "number"},
                                          "high": {"type": "number"}},
         "required": ["normal"], "additionalProperties": False},
        {"type": "object", "properties": {"lognormal": _PAIR}, "required": ["lognormal"],
         "additionalProperties": False},
        {"type": "object", "properties": {"choice": {"type": "array", "minItems": 1},
                                          "weights": {"type": "array",
                                                      "items": {"type": "number"}}},
         "required": ["choice"], "additionalProperties": False},
    ],
}


def schema_with_priors(schema: dict[str, Any]) -> dict[str, Any]:
    """Return the scenario JSON Schema with a prior allowed wherever a number or a category
    is (``Scenario.priors`` is internal: files write priors in place)."""
    schema = dict(schema)
    schema.setdefault("$defs", {})["Prior"] = PRIOR_SCHEMA
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in ("priors", "posterior")}
    skip = {"runs", "seed", "horizon_days", "start"}

    def widen(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("type") in ("number", "integer") or "enum" in node:
                return {"anyOf": [node, {"$ref": "#/$defs/Prior"}]}
            return {k: widen(v) for k, v in node.items()}
        if isinstance(node, list):
            return [widen(v) for v in node]
        return node

    for name, definition in list(schema["$defs"].items()):
        if name != "Prior":
            schema["$defs"][name] = widen(definition)
    schema["properties"] = {k: (v if k in skip else widen(v))
                            for k, v in schema["properties"].items()}
    return schema
