"""Parameter sweeps and global sensitivity over dotted scenario keys.

A design is a plain list of points, each a mapping of dotted keys to values: a full grid of
given values, or a Latin hypercube or scrambled Sobol' sample of ranges (``scipy.stats.qmc``).
Every point runs the same run indices with the same seed (common random numbers), so the
differences between points are the parameters' doing, not noise.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError
from .montecarlo import JobSpec, run_jobs
from .outputs import FolderLock, claim, is_ours
from .results import Results, write_atomic, write_text_atomic
from .scenario import Scenario, ScenarioError, load_scenario, scenario_to_dict, validate
from .scenario.loading import Problem, _OverrideError, _set_dotted

if TYPE_CHECKING:
    import pandas as pd

DESIGNS = ("grid", "lhs", "sobol")


def design_points(params: Mapping[str, Any], design: str = "grid", points: int | None = None,
                  seed: int = 0) -> list[dict[str, Any]]:
    """Return the design: a list of points, each mapping every dotted key to a value.

    ``grid`` takes a list of values per key and returns their Cartesian product; ``lhs`` and
    ``sobol`` take a ``(low, high)`` range per key and draw ``points`` points (a power of 2
    for Sobol'). Ranges whose bounds are both integers give integer values.
    """
    if not params:
        raise InputError("a sweep needs at least one parameter")
    keys = list(params)
    if design == "grid":
        values = []
        for key in keys:
            v = params[key]
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or len(v) == 0:
                raise InputError(f"{key}: a grid needs a non-empty list of values")
            values.append(list(v))
        return [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    if design not in DESIGNS:
        raise InputError(f"unknown design '{design}': choose grid, lhs or sobol")
    bounds = []
    for key in keys:
        v = params[key]
        if not (isinstance(v, Sequence) and len(v) == 2 and all(_is_number(x) for x in v)
                and v[0] < v[1]):
            raise InputError(f"{key}: {design} needs a range (low, high) with low < high")
        bounds.append((v[0], v[1]))
    if points is None or points < 1:
        raise InputError(f"a {design} design needs points >= 1")
    from scipy.stats import qmc

    lows = np.array([b[0] for b in bounds], float)
    highs = np.array([b[1] for b in bounds], float)
    if design == "lhs":
        unit = qmc.LatinHypercube(d=len(keys), rng=np.random.default_rng(seed)).random(points)
    else:
        m = int(round(math.log2(points)))
        if 2**m != points:
            raise InputError(f"a sobol design needs a power of 2 points, not {points}")
        unit = qmc.Sobol(d=len(keys), scramble=True, rng=np.random.default_rng(seed)).random_base2(m)
    sample = qmc.scale(unit, lows, highs)
    out = []
    for row in sample:
        point = {}
        for key, (lo, hi), x in zip(keys, bounds, row):
            point[key] = int(round(x)) if isinstance(lo, int) and isinstance(hi, int) else float(x)
        out.append(point)
    return out


def _typed_ranges(scenario: Scenario, params: dict[str, Any]) -> dict[str, Any]:
    """Return ranges typed like the scenario's values: integer keys get integer bounds, the
    rest float bounds (so ``climate.initial_tension=0:1`` samples the interval, not 0 or 1)."""
    base = scenario_to_dict(scenario)
    out = {}
    for key, value in params.items():
        current: Any = base
        for part in key.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_is_number, value)):
            integer = isinstance(current, int) and not isinstance(current, bool)
            value = [int(v) for v in value] if integer else [float(v) for v in value]
        out[key] = value
    return out


def _plain(x: Any) -> Any:
    """Return numpy scalars as the Python values they hold (for YAML, JSON and pydantic)."""
    return x.item() if isinstance(x, np.generic) else x


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def scenarios_for(scenario: Scenario, points: list[dict[str, Any]]) -> list[Scenario]:
    """Return one validated scenario per design point, or raise with every problem found.

    A swept key's prior, if it has one, is set aside: the key takes the point's value, and
    the other priors stay uncertain.
    """
    base = scenario_to_dict(scenario)
    out, problems = [], []
    for index, point in enumerate(points):
        data = copy.deepcopy(base)
        bad = False
        for key, value in point.items():
            try:
                _set_dotted(data, key, value)
            except _OverrideError as exc:
                problems.append(Problem(key, str(exc), f"sweep point {index}"))
                bad = True
            data.get("priors", {}).pop(key, None)  # a swept key is fixed at each point
        if bad:
            continue
        try:
            out.append(validate(data))
        except ScenarioError as exc:
            problems += [Problem(p.path, p.message, f"sweep point {index}") for p in exc.problems]
    if problems:
        unique: dict[tuple[str, str], Problem] = {}
        for p in problems:
            unique.setdefault((p.path, p.message), p)
        raise ScenarioError(list(unique.values()))
    return out


def known_metrics(scenario: Scenario) -> list[str]:
    """Return every metric a sweep or a sensitivity analysis can report for ``scenario``."""
    from .model.compiled import TRACK_COUNTERS

    names = headline_metrics(scenario)
    names += [f"{t}.{c}.mean" for t in scenario.tracks for c in TRACK_COUNTERS]
    names += ["tension_peak.mean", "events.mean"] + [f"shocks.{s}.mean" for s in scenario.shocks]
    return list(dict.fromkeys(names))


def check_sensitivity(scenario: Scenario, metric: str, n: int, inputs: int = 2) -> None:
    """Raise :class:`InputError` unless ``metric`` exists, ``n`` is a power of 2 and there
    are at least two inputs (one input explains all of the variance by definition)."""
    if metric not in known_metrics(scenario):
        raise InputError(f"unknown metric '{metric}': choose one of "
                         f"{', '.join(headline_metrics(scenario))} (or a track counter's mean)")
    if n < 1 or n & (n - 1):
        raise InputError(f"sensitivity n: {n} must be a power of 2")
    if inputs < 2:
        raise InputError("Sobol' sensitivity needs at least two parameters")


def headline_metrics(scenario: Scenario) -> list[str]:
    """Return the summary metrics a sweep tabulates, in order."""
    names = []
    for name, topic in scenario.topics.items():
        names.append(f"{name}.p_agreement")
        if topic.deadline is not None:
            names.append(f"{name}.p_agreement_before_deadline")
            names.append(f"{name}.p_default")
            if topic.deadline.interim is not None:
                names.append(f"{name}.p_interim_taken")
    names += ["summits.p_any", "summits_held.mean", "tension_end.mean"]
    names += [f"{t}.held.mean" for t in scenario.tracks]
    return names


@dataclass
class _SweepPlan:
    scenario: Scenario
    params: dict[str, Any]
    design: str
    points: list[dict[str, Any]]
    runs: int
    seed: int

    def manifest(self) -> dict[str, Any]:
        from .results import scenario_hash

        return {"scenario": self.scenario.name, "scenario_hash": scenario_hash(self.scenario),
                "params": self.params, "design": self.design, "points": self.points,
                "runs": self.runs, "seed": self.seed}


def sweep(
    scenario: Scenario | str | Path,
    params: Mapping[str, Any],
    *,
    design: str = "grid",
    points: int | None = None,
    runs: int = 200,
    seed: int | None = None,
    workers: int | None = None,
    executor: str = "auto",
    scheduler: str | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Return one row per design point: its parameter values and each headline metric
    with its Monte Carlo standard error (``<metric>_se``).

    ``params`` maps dotted scenario keys to lists of values (grid) or ``(low, high)`` ranges
    (lhs, sobol). All points share ``seed`` and run indices (common random numbers). Every
    point is validated before anything runs. With ``out`` each point streams to
    ``out/points/NNNN/`` and the table is written as ``sweep.parquet`` and ``sweep.csv``;
    ``resume`` finishes an interrupted sweep there.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    seed = scenario.seed if seed is None else seed
    params = {k: ([_plain(x) for x in v] if isinstance(v, (list, tuple, np.ndarray)) else v)
              for k, v in params.items()}
    if design != "grid":
        params = _typed_ranges(scenario, params)
    plan = _SweepPlan(scenario, params, design, design_points(params, design, points, seed),
                      runs, seed)
    variants = scenarios_for(scenario, plan.points)
    folder = Path(out) if out is not None else None
    lock = _prepare_sweep_folder(folder, plan, resume=resume, force=force) if folder else None
    try:
        # a swept seed or run count is the point's own; the others share the sweep's
        jobs = [JobSpec(s, s.runs if "runs" in params else runs,
                        s.seed if "seed" in params else seed,
                        folder / "points" / f"{i:04d}" if folder else None, resume, lock=False)
                for i, s in enumerate(variants)]
        results = run_jobs(jobs, workers=workers, executor=executor, scheduler=scheduler,
                           progress=progress)
        table = sweep_table(plan.points, results)
        table.attrs.update({"design": design, "params": list(params), "runs": runs,
                            "seed": seed, "scenario": scenario.name})
        if folder is not None:
            write_atomic(folder / "sweep.parquet", lambda tmp: table.to_parquet(tmp, index=False))
            write_atomic(folder / "sweep.csv", lambda tmp: table.to_csv(tmp, index=False))
    finally:
        if lock is not None:
            lock.release()
    return table


def _prepare_sweep_folder(folder: Path, plan: _SweepPlan, *, resume: bool,
                          force: bool) -> FolderLock | None:
    """Make the sweep's folder ready and locked (see :mod:`sim.outputs`); return its lock."""
    manifest = json.loads(json.dumps(plan.manifest(), default=str))
    path = folder / "sweep.json"
    if resume and is_ours(folder, "sweep") and path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            raise InputError(f"{path} is not valid JSON; the sweep folder is damaged") from None
        if old != manifest:
            raise InputError(f"{folder} holds a different sweep; use --force to replace it")
    lock, _ = claim(folder, "sweep", force=force, resume=resume)
    try:
        if not path.is_file():
            write_text_atomic(path, json.dumps(manifest, indent=2) + "\n")
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return lock


def sweep_table(points: list[dict[str, Any]], results: list[Results]) -> pd.DataFrame:
    """Return the tidy table of a sweep: parameters, then each metric and its standard error."""
    import pandas as pd

    metrics = headline_metrics(results[0].scenario)
    rows = []
    for i, (point, res) in enumerate(zip(points, results)):
        summary = res.summary()
        row: dict[str, Any] = {"point": i, **point}
        for m in metrics:
            est = summary[m]
            row[m] = est.estimate
            row[f"{m}_se"] = est.se
        row["runs"] = res.runs
        rows.append(row)
    return pd.DataFrame(rows)


def parse_param(text: str, design: str) -> tuple[str, Any]:
    """Return (key, values or range) from a command-line ``key=lo:hi:n`` or ``key=a,b,c``."""
    import yaml

    key, sep, spec = text.partition("=")
    key = key.strip()
    if not sep or not key or not spec:
        raise InputError(f"--param {text}: write key=lo:hi:n, key=lo:hi or key=a,b,c")

    def number(s: str) -> float | int:
        value = yaml.safe_load(s)
        if not _is_number(value):
            raise InputError(f"--param {text}: '{s}' is not a number")
        return value

    if ":" in spec:
        parts = spec.split(":")
        if design == "grid":
            if len(parts) != 3:
                raise InputError(f"--param {text}: a grid range is lo:hi:n")
            lo, hi, n = number(parts[0]), number(parts[1]), number(parts[2])
            if not isinstance(n, int) or n < 1:
                raise InputError(f"--param {text}: n must be a positive integer")
            values = np.linspace(lo, hi, n)
            if isinstance(lo, int) and isinstance(hi, int) and np.all(values == np.round(values)):
                return key, [int(v) for v in values]
            return key, [float(v) for v in values]
        if len(parts) != 2:
            raise InputError(f"--param {text}: a {design} design takes a range lo:hi "
                             "(lo:hi:n is a grid's)")
        return key, (number(parts[0]), number(parts[1]))
    values = [yaml.safe_load(v) for v in spec.split(",")]
    if design != "grid":
        raise InputError(f"--param {text}: {design} designs need a range lo:hi")
    return key, values


# --- global sensitivity ----------------------------------------------------------------------


@dataclass
class Sensitivity:
    """Sobol' first-order and total indices of one output, with bootstrap 95% intervals."""

    names: list[str]
    first_order: np.ndarray
    total_order: np.ndarray
    first_low: np.ndarray
    first_high: np.ndarray
    total_low: np.ndarray
    total_high: np.ndarray
    evaluations: int
    metric: str = "output"

    def table(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({
            "parameter": self.names, "first_order": self.first_order,
            "first_low": self.first_low, "first_high": self.first_high,
            "total_order": self.total_order, "total_low": self.total_low,
            "total_high": self.total_high,
        })


def sobol_sensitivity(func: Callable[[np.ndarray], np.ndarray], bounds: Mapping[str, tuple[float, float]],
                      *, n: int = 256, seed: int = 0, n_resamples: int = 999,
                      metric: str = "output") -> Sensitivity:
    """Return the Sobol' indices of ``func`` over independent uniform inputs in ``bounds``.

    ``func`` takes an array of shape (d, m) (one column per evaluation) and returns m values.
    Uses ``scipy.stats.sobol_indices`` (Saltelli 2010 estimators, n (d + 2) evaluations) and
    its bootstrap for the intervals.
    """
    from scipy import stats

    names = list(bounds)
    if len(names) < 2:
        raise InputError("Sobol' sensitivity needs at least two parameters")
    dists = [stats.uniform(loc=lo, scale=hi - lo) for lo, hi in bounds.values()]
    evaluations = 0

    def wrapped(x: np.ndarray) -> np.ndarray:
        nonlocal evaluations
        evaluations += x.shape[1]
        return np.asarray(func(x), dtype=float).reshape(1, -1)

    result = stats.sobol_indices(func=wrapped, n=n, dists=dists, rng=np.random.default_rng(seed))
    boot = result.bootstrap(confidence_level=0.95, n_resamples=n_resamples)
    return Sensitivity(
        names=names,
        first_order=np.asarray(result.first_order).ravel(),
        total_order=np.asarray(result.total_order).ravel(),
        first_low=np.asarray(boot.first_order.confidence_interval.low).ravel(),
        first_high=np.asarray(boot.first_order.confidence_interval.high).ravel(),
        total_low=np.asarray(boot.total_order.confidence_interval.low).ravel(),
        total_high=np.asarray(boot.total_order.confidence_interval.high).ravel(),
        evaluations=evaluations,
        metric=metric,
    )


def model_sensitivity(scenario: Scenario | str | Path, params: Mapping[str, tuple[float, float]],
                      metric: str, *, n: int = 32, runs: int = 200, seed: int | None = None,
                      workers: int | None = None, executor: str = "auto",
                      progress: bool = False, n_resamples: int = 999) -> Sensitivity:
    """Return the Sobol' indices of a headline ``metric`` (e.g. "start.p_agreement") to
    the dotted ``params``, each uniform on its range.

    Each evaluation is a Monte Carlo job of ``runs`` runs; all share the seed and run
    indices, so the model output is a fixed function of the parameters.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    seed = scenario.seed if seed is None else seed
    check_sensitivity(scenario, metric, n)
    keys = list(params)
    integer = [isinstance(params[k][0], int) and isinstance(params[k][1], int) for k in keys]
    scenarios_for(scenario, [{k: params[k][0] for k in keys}, {k: params[k][1] for k in keys}])
    check_sensitivity(scenario, metric, n, len(keys))

    def evaluate(x: np.ndarray) -> np.ndarray:
        points = [{k: int(round(v)) if is_int else float(v)
                   for k, v, is_int in zip(keys, column, integer)} for column in x.T]
        variants = scenarios_for(scenario, points)
        jobs = [JobSpec(s, runs, seed) for s in variants]
        results = run_jobs(jobs, workers=workers, executor=executor, progress=progress)
        return np.array([r.summary()[metric].estimate for r in results])

    return sobol_sensitivity(evaluate, params, n=n, seed=seed, n_resamples=n_resamples,
                             metric=metric)
