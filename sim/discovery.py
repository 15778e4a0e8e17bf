"""What drives an outcome: scenario discovery and a ranking of the unknowns, from the runs.

A job whose scenario has priors keeps each run's sampled inputs beside its outcomes (the
experiments table, :attr:`~sim.results.Results.inputs`). This module asks that table two
questions, with no special design of runs:

* **Where does an outcome concentrate?** :func:`discover` runs PRIM, the patient rule
  induction method of scenario discovery, in EMA Workbench's implementation, on the inputs
  and a yes/no outcome written as a small expression over the outcome columns
  (:func:`parse_condition`). Each box is taken at one point of its peeling trajectory: the
  point with the most coverage whose density reaches a threshold. A shallow classification
  tree (scikit-learn) gives a second opinion as a few rules.
* **Which unknowns matter?** :func:`importance` ranks the inputs for each headline outcome
  by an extra-trees feature score, as EMA Workbench's feature scoring does, with bootstrap
  intervals.

Coverage is the share of the runs where the outcome holds that fall in the box, density the
share of the box's runs where it holds, mass the share of all runs in the box.

EMA Workbench and scikit-learn are imported inside the functions that use them, so importing
this module is cheap.
"""

from __future__ import annotations

import ast
import difflib
import json
import math
import operator
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from .results import Results

__all__ = [
    "DEFAULT_THRESHOLD",
    "Box",
    "Condition",
    "Discovery",
    "Rule",
    "discover",
    "evaluate_outcome",
    "headline_outcomes",
    "importance",
    "parse_condition",
    "plot_box_limits",
    "plot_trajectory",
    "render_discovery",
    "render_importance",
    "save_discovery",
]

#: The density a box's chosen peeling point must reach unless ``threshold`` says otherwise
#: (EMA Workbench's examples use 0.8).
DEFAULT_THRESHOLD = 0.8
#: PRIM looks for at most this many boxes, each in the runs the earlier ones left.
MAX_BOXES = 5
#: The classification tree: its depth, its smallest leaf as a share of the runs, its seed.
TREE_DEPTH = 3
TREE_LEAF_SHARE = 0.02
SEED = 20251101
#: Extra-trees scores: bootstrap resamples, trees per resample, runs per resample at most,
#: and the smallest leaf as a share of a resample's runs.
RESAMPLES = 20
TREES = 20
IMPORTANCE_RUNS = 20_000
IMPORTANCE_LEAF_SHARE = 0.01
Z = 1.959963984540054  # two-sided 95% normal quantile

#: How :func:`importance` scores the inputs, as printed under its table.
METHOD = (
    "Extra-trees feature scores (scikit-learn, as EMA Workbench's feature scoring): each "
    f"input's share of the trees' impurity decrease, the mean over {RESAMPLES} forests of "
    f"{TREES} trees with leaves of at least {IMPORTANCE_LEAF_SHARE:.0%} of the runs, each "
    f"forest grown on a bootstrap resample of at most {IMPORTANCE_RUNS:,} runs (fixed seed); "
    "+/- is 1.96 standard deviations over the resamples. Choice inputs are scored as ordinal "
    "codes, in the order their prior lists them."
)

#: The files :func:`save_discovery` writes into a results folder (or ``--out``).
FILES = ("discovery.json", "discovery_trajectory.png", "discovery_limits.png")


# --- the outcome expression ------------------------------------------------------------

_GRAMMAR = ("an outcome is a condition: comparisons (==, !=, <, <=, >, >=) of outcome columns, "
            "numbers and 'strings', joined with and, or, not and parentheses, e.g. "
            "\"start.outcome == 'agreement' and start.day < 365\"")

_OPERATORS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
              ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}

#: What the refused kinds of syntax are called in error messages.
_REFUSED = {
    ast.Call: "calls are", ast.Subscript: "indexing is", ast.Lambda: "lambda is",
    ast.BinOp: "arithmetic is", ast.IfExp: "if-else is", ast.NamedExpr: "assignment (:=) is",
    ast.ListComp: "a comprehension is", ast.SetComp: "a comprehension is",
    ast.DictComp: "a comprehension is", ast.GeneratorExp: "a comprehension is",
    ast.List: "a list is", ast.Tuple: "a tuple is", ast.Set: "a set is", ast.Dict: "a dict is",
    ast.JoinedStr: "an f-string is", ast.Starred: "a starred value is", ast.Await: "await is",
    ast.Yield: "yield is", ast.YieldFrom: "yield is", ast.Slice: "a slice is",
}

MAX_EXPRESSION = 2000  # characters: an outcome is a short condition, not a program


class Condition:
    """A yes/no outcome: an expression over outcome columns, checked once when parsed."""

    def __init__(self, text: str, tree: ast.Expression, columns: tuple[str, ...]):
        self.text = text
        self.tree = tree
        self.columns = columns

    def evaluate(self, frame: pd.DataFrame) -> np.ndarray:
        """Return whether the condition holds in each row of ``frame`` (a boolean array)."""
        return _Evaluator(self.text, frame).condition(self.tree.body)

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


def parse_condition(text: str, columns: Iterable[str]) -> Condition:
    """Return ``text`` parsed as a :class:`Condition` over ``columns``.

    Only comparisons, ``and``, ``or``, ``not``, numbers, quoted strings and column names
    (dotted, as in ``start.outcome``) are accepted; anything else (calls, attribute access on
    what is not a column, indexing, lambdas, arithmetic) raises :class:`InputError`, as does
    an unknown column, with the closest column names. Nothing is ever evaluated as code.
    """
    source = str(text).strip()
    if not source:
        raise InputError(f"the outcome is empty; {_GRAMMAR}")
    if len(source) > MAX_EXPRESSION:
        raise InputError(f"the outcome is {len(source):,} characters long, more than the "
                         f"{MAX_EXPRESSION:,} a condition may take")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        where = f" at character {exc.offset}" if exc.offset else ""
        raise InputError(f"outcome {source!r}: not a valid expression ({exc.msg}{where}); "
                         f"{_GRAMMAR}") from None
    except (ValueError, RecursionError, MemoryError):  # NUL bytes, absurd nesting
        raise InputError(f"outcome {source!r}: not a valid expression; {_GRAMMAR}") from None
    checker = _Checker(source, set(columns))
    checker.condition(tree.body)
    return Condition(source, tree, tuple(dict.fromkeys(checker.used)))


def evaluate_outcome(results: Results | pd.DataFrame, outcome: str | Condition) -> np.ndarray:
    """Return, run by run, whether ``outcome`` (an expression or a :class:`Condition`) holds."""
    frame = _outcomes(results)
    condition = outcome if isinstance(outcome, Condition) else parse_condition(outcome, frame.columns)
    return condition.evaluate(frame)


def _dotted(node: ast.AST) -> str | None:
    """Return the dotted name a Name/Attribute chain spells, or None for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


class _Checker:
    """Walks a parsed expression and refuses every node outside the outcome language."""

    def __init__(self, source: str, columns: set[str]):
        self.source = source
        self.columns = columns
        self.used: list[str] = []

    def fail(self, node: ast.AST, what: str) -> InputError:
        segment = ast.get_source_segment(self.source, node) or self.source
        return InputError(f"outcome {self.source!r}: {what} not allowed (in {segment!r}); "
                          f"{_GRAMMAR}")

    def refuse(self, node: ast.AST) -> InputError:
        what = next((name for cls, name in _REFUSED.items() if isinstance(node, cls)), None)
        return self.fail(node, what or f"{type(node).__name__} is")

    def condition(self, node: ast.AST) -> None:
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self.condition(value)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.condition(node.operand)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _OPERATORS:
                    raise self.fail(node, f"'{_op_word(op)}' is")
            for operand in (node.left, *node.comparators):
                self.value(operand)
        elif isinstance(node, (ast.Name, ast.Attribute, ast.Constant)):
            self.value(node)  # a bad name is reported as such before the missing comparison
            raise InputError(f"outcome {self.source!r}: {ast.unparse(node)!r} is a value, not a "
                             f"condition: compare it, e.g. summits_held >= 1; {_GRAMMAR}")
        else:
            raise self.refuse(node)

    def value(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float, str)):
                raise self.fail(node, f"the constant {node.value!r} is")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            if not (isinstance(node.operand, ast.Constant)
                    and type(node.operand.value) in (int, float)):
                raise self.fail(node, "a sign on anything but a number is")
        elif isinstance(node, (ast.Name, ast.Attribute)):
            self.column(node)
        elif isinstance(node, (ast.Compare, ast.BoolOp)) or (
                isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)):
            raise self.fail(node, "comparing a condition with a value is")
        else:
            raise self.refuse(node)

    def column(self, node: ast.Name | ast.Attribute) -> None:
        name = _dotted(node)
        if name is None:  # an attribute of something else: a call's result, an index, ...
            inner: ast.expr = node
            while isinstance(inner, ast.Attribute):
                inner = inner.value
            raise self.refuse(inner)
        if "__" in name:
            raise InputError(f"outcome {self.source!r}: {name!r} is not allowed: a double "
                             "underscore never names a column, and a dot only joins the parts "
                             f"of a column's name; {_GRAMMAR}")
        if name not in self.columns:
            raise InputError(f"outcome {self.source!r}: no outcome column {name!r}"
                             f"{_suggestions(name, self.columns)}")
        self.used.append(name)


def _op_word(op: ast.cmpop) -> str:
    return {ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}.get(
        type(op), type(op).__name__)


def _suggestions(name: str, columns: set[str]) -> str:
    """Return '; did you mean ...' with the columns closest to ``name``, or a few examples."""
    close = difflib.get_close_matches(name, sorted(columns), n=5, cutoff=0.6)
    head = name.split(".")[0] + "."
    close += [c for c in sorted(columns) if c.startswith(head) and c not in close][: 6 - len(close)]
    if close:
        return "; did you mean " + ", ".join(close) + "?"
    examples = [c for c in sorted(columns) if not c.startswith("input.")][:6]
    return "; outcome columns are e.g. " + ", ".join(examples)


@dataclass(frozen=True)
class _Value:
    """One operand of a comparison: its data (array or scalar), what it is, whether text."""

    data: Any
    label: str
    text: bool
    known: tuple[Any, ...] | None = None  # the values a text column takes


class _Evaluator:
    """Evaluates a checked expression over a DataFrame of outcomes, vectorised with numpy."""

    def __init__(self, source: str, frame: pd.DataFrame):
        self.source = source
        self.frame = frame
        self.n = len(frame)

    def condition(self, node: ast.AST) -> np.ndarray:
        if isinstance(node, ast.BoolOp):
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = self.condition(node.values[0])
            for value in node.values[1:]:
                out = combine(out, self.condition(value))
            return out
        if isinstance(node, ast.UnaryOp):  # not: the checker allows no other here
            return ~self.condition(node.operand)
        assert isinstance(node, ast.Compare)
        operands = [self.value(n) for n in (node.left, *node.comparators)]
        out = np.ones(self.n, dtype=bool)
        for op, a, b in zip(node.ops, operands, operands[1:]):
            out &= self.compare(op, a, b)
        return out

    def value(self, node: ast.AST) -> _Value:
        if isinstance(node, ast.Constant):
            return _Value(node.value, repr(node.value), isinstance(node.value, str))
        if isinstance(node, ast.UnaryOp):
            number = node.operand.value  # type: ignore[attr-defined]
            number = -number if isinstance(node.op, ast.USub) else number
            return _Value(number, repr(number), False)
        return self.column(_dotted(node) or "")

    def column(self, name: str) -> _Value:
        import pandas as pd

        series = self.frame[name]
        if isinstance(series.dtype, pd.CategoricalDtype):
            known = tuple(series.cat.categories)
            return _Value(series.astype(object).to_numpy(), name, True, known)
        if _is_number(series):
            return _Value(series.to_numpy(dtype=float), name, False)
        data = series.astype(object).to_numpy()
        return _Value(data, name, True, tuple(pd.unique(data)))

    def compare(self, op: ast.cmpop, a: _Value, b: _Value) -> np.ndarray:
        func = _OPERATORS[type(op)]
        if a.text != b.text:
            text, number = (a, b) if a.text else (b, a)
            raise InputError(f"outcome {self.source!r}: {text.label} is text and {number.label} "
                             "a number; they cannot be compared")
        if a.text:
            if not isinstance(op, (ast.Eq, ast.NotEq)):
                raise InputError(f"outcome {self.source!r}: text ({a.label}, {b.label}) is "
                                 "compared with == or != only")
            self._check_known(a, b)
            self._check_known(b, a)
            return np.broadcast_to(np.asarray(func(a.data, b.data), dtype=bool), (self.n,)).copy()
        x = np.asarray(a.data, dtype=float)
        y = np.asarray(b.data, dtype=float)
        with np.errstate(invalid="ignore"):
            out = func(x, y) & ~(np.isnan(x) | np.isnan(y))  # a missing day compares as false
        return np.broadcast_to(out, (self.n,)).copy()

    def _check_known(self, column: _Value, other: _Value) -> None:
        if column.known is None or not isinstance(other.data, str):
            return
        if other.data not in column.known:
            values = ", ".join(repr(v) for v in column.known)
            raise InputError(f"outcome {self.source!r}: {column.label} is never "
                             f"{other.data!r}; it takes {values}")


# --- the experiments table -------------------------------------------------------------


def _outcomes(results: Results | pd.DataFrame) -> pd.DataFrame:
    """Return the outcomes table: a job's, or the DataFrame given in its place."""
    return results if _is_frame(results) else results.outcomes


def _is_frame(value: Any) -> bool:
    import pandas as pd

    return isinstance(value, pd.DataFrame)


def _experiments(results: Results | pd.DataFrame) -> pd.DataFrame:
    """Return the inputs that vary between runs, one row per run (index 0..n-1)."""
    from .inputs import COLUMN_PREFIX

    frame = _outcomes(results)
    cols = [c for c in frame.columns if c.startswith(COLUMN_PREFIX)]
    x = frame[cols].rename(columns=lambda c: c[len(COLUMN_PREFIX):]).reset_index(drop=True)
    if x.empty:
        raise InputError(f"{_where(results)} has no uncertain inputs: run a scenario with "
                         "priors, e.g. sim run SCENARIO --set 'KEY={uniform: [lo, hi]}'")
    varying = [c for c in x.columns if x[c].nunique(dropna=False) > 1]
    if not varying:
        raise InputError(f"{_where(results)}: no uncertain input varies between runs "
                         "(were they run with --inputs point?)")
    x = x[varying].copy()
    for col in varying:
        if _is_number(x[col]):
            if x[col].dtype.kind in "iu":
                x[col] = x[col].astype(np.int64)  # EMA's pasting mishandles int32
        else:
            x[col] = x[col].astype(object)  # str, bool, mixed: a set of categories
    return x


def _where(results: Results | pd.DataFrame) -> str:
    if _is_frame(results):
        return "the outcomes table"
    return str(results.path) if results.path is not None else f"results '{results.name}'"


def _is_number(series: pd.Series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def _categories(results: Results | pd.DataFrame, x: pd.DataFrame) -> dict[str, list[Any]]:
    """Return each categorical input's values: in its prior's order, then any others seen."""
    priors = {} if _is_frame(results) else results.scenario.priors
    out = {}
    for col in x.columns:
        if _is_number(x[col]):
            continue
        seen = list(dict.fromkeys(x[col]))
        listed = list(priors[col].values) if col in priors else []
        out[col] = [v for v in listed if v in seen] + sorted((v for v in seen if v not in listed),
                                                             key=str)
    return out


def _encode(x: pd.DataFrame, categories: Mapping[str, list[Any]]) -> pd.DataFrame:
    """Return the inputs as numbers: categorical ones as ordinal codes in ``categories``' order."""
    codes = x.copy()
    for col, values in categories.items():
        codes[col] = x[col].map({v: float(i) for i, v in enumerate(values)}).astype(float)
    return codes.astype(float)


def _ranges(x: pd.DataFrame, categories: Mapping[str, list[Any]]) -> dict[str, Any]:
    """Return each input's full range: (min, max), or its tuple of categories."""
    return {col: tuple(categories[col]) if col in categories
            else (_plain(x[col].min()), _plain(x[col].max())) for col in x.columns}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --- PRIM ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """One PRIM box at its chosen peeling point: the limits on the inputs it restricts.

    ``limits`` maps each restricted input to ``(low, high)``, or to the tuple of values it
    allows for a categorical input; ``qp`` to the quasi-p value of that restriction (Bryant
    and Lempert 2010: a one-sided binomial test; above 0.05 the restriction may be chance).
    ``trajectory`` holds the box's peeling (and pasting) trajectory; ``chosen`` its row.
    """

    limits: dict[str, Any]
    coverage: float
    density: float
    mass: float
    runs: int
    qp: dict[str, float]
    trajectory: pd.DataFrame
    chosen: int

    def to_dict(self) -> dict[str, Any]:
        return {"limits": _limits_json(self.limits), "coverage": self.coverage,
                "density": self.density, "mass": self.mass, "runs": self.runs}


def _import_prim():
    """Return EMA Workbench's ``prim`` module, imported without its optional-extra warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ipyparallel not installed", "altair ... not available"
        from ema_workbench.analysis import prim
    return prim


def _prim_boxes(x: pd.DataFrame, y: np.ndarray, threshold: float,
                categories: Mapping[str, list[Any]], max_boxes: int = MAX_BOXES) -> list[Box]:
    """Return PRIM's boxes, each at its chosen peeling point, until one misses the threshold."""
    prim = _import_prim()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"ema_workbench\.")  # its pandas deprecations
        return _find_boxes(prim.Prim(x, y.astype(int), threshold=threshold), threshold,
                           categories, max_boxes)


def _find_boxes(finder: Any, threshold: float, categories: Mapping[str, list[Any]],
                max_boxes: int = MAX_BOXES) -> list[Box]:
    """Return the boxes an EMA ``Prim`` finds, each selected at its chosen peeling point."""
    boxes: list[Box] = []
    for _ in range(max_boxes):
        box = finder.find_box()
        if box is None:  # no runs left
            break
        chosen = _peeling_point(box.peeling_trajectory, threshold)
        if chosen is None:  # EMA's "dump box": the remaining runs miss the threshold
            break
        limits = _restrictions(box.box_lims[chosen], finder.box_init, categories)
        if not limits:  # the remaining runs meet the threshold without any restriction
            break
        box.select(chosen)  # so that the next box is sought in the runs outside this one
        boxes.append(_box(box, chosen, limits))
    return boxes


def _peeling_point(trajectory: pd.DataFrame, threshold: float) -> int | None:
    """Return the row with the most coverage among those of density >= threshold, or None."""
    density = trajectory["density"].to_numpy(dtype=float)
    coverage = trajectory["coverage"].to_numpy(dtype=float)
    ok = np.flatnonzero(density >= threshold - 1e-12)
    if ok.size == 0:
        return None
    return int(max(ok, key=lambda i: (coverage[i], density[i], -i)))


def _restrictions(box_lim: pd.DataFrame, box_init: pd.DataFrame,
                  categories: Mapping[str, list[Any]]) -> dict[str, Any]:
    """Return the limits of the inputs a box restricts (numbers as (low, high), sets as tuples)."""
    limits: dict[str, Any] = {}
    for col in box_init.columns:
        if col in categories:
            allowed = box_lim[col].iloc[0]
            if set(allowed) != set(box_init[col].iloc[0]):
                limits[col] = tuple(v for v in categories[col] if v in allowed)
        else:
            low, high = (_plain(v) for v in box_lim[col].iloc[:2])
            if (low, high) != tuple(_plain(v) for v in box_init[col].iloc[:2]):
                limits[col] = (low, high)
    return limits


def _box(box: Any, chosen: int, limits: dict[str, Any]) -> Box:
    """Return a :class:`Box` from an EMA ``PrimBox`` and its chosen trajectory row."""
    raw = box.peeling_trajectory.reset_index(drop=True)
    trajectory = raw[["coverage", "density", "mass", "n", "res_dim"]].rename(
        columns={"n": "runs", "res_dim": "restricted"}).astype(
        {"coverage": float, "density": float, "mass": float, "runs": int, "restricted": int})
    row = trajectory.iloc[chosen]
    qp = {}
    for key, sides in (box.qp[chosen] or {}).items():
        valid = [float(v) for v in sides if v is not None and v >= 0]
        if key in limits and valid:
            qp[key] = max(valid)
    return Box(limits, float(row["coverage"]), float(row["density"]), float(row["mass"]),
               int(row["runs"]), qp, trajectory, chosen)


def _limits_json(limits: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {key: [_plain(v) for v in value] for key, value in limits.items()}


# --- the classification tree -----------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One leaf of the classification tree that predicts the outcome, as its conditions."""

    conditions: tuple[str, ...]
    limits: dict[str, Any]
    coverage: float
    density: float
    mass: float
    runs: int

    @property
    def text(self) -> str:
        return " and ".join(self.conditions) or "every run"

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.text, "limits": _limits_json(self.limits),
                "coverage": self.coverage, "density": self.density, "mass": self.mass,
                "runs": self.runs}


def _tree_rules(codes: pd.DataFrame, y: np.ndarray, ranges: Mapping[str, Any],
                categories: Mapping[str, list[Any]]) -> list[Rule]:
    """Return the rules of a shallow tree's leaves where the outcome is the majority."""
    from sklearn.tree import DecisionTreeClassifier

    leaf = max(1, round(TREE_LEAF_SHARE * len(y)))
    tree = DecisionTreeClassifier(max_depth=TREE_DEPTH, min_samples_leaf=leaf, random_state=SEED)
    tree.fit(codes.to_numpy(), y)
    leaves = tree.apply(codes.to_numpy())
    total = int(y.sum())
    rules = []
    for node, bounds in _leaf_bounds(tree.tree_, list(codes.columns)).items():
        inside = leaves == node
        n, k = int(inside.sum()), int(y[inside].sum())
        if n == 0 or 2 * k <= n:
            continue
        conditions, limits = _describe_bounds(bounds, ranges, categories)
        rules.append(Rule(conditions, limits, k / total, k / n, n / len(y), n))
    return sorted(rules, key=lambda r: (-r.coverage, -r.density))


def _leaf_bounds(tree: Any, names: list[str]) -> dict[int, dict[str, list[float]]]:
    """Return, for each leaf of a fitted sklearn tree, the (low, high] bounds on its path."""
    out: dict[int, dict[str, list[float]]] = {}
    stack: list[tuple[int, dict[str, list[float]]]] = [(0, {})]
    while stack:
        node, bounds = stack.pop()
        left, right = tree.children_left[node], tree.children_right[node]
        if left == right:  # a leaf
            out[node] = bounds
            continue
        name, cut = names[tree.feature[node]], float(tree.threshold[node])
        low, high = bounds.get(name, [-math.inf, math.inf])
        stack.append((left, {**bounds, name: [low, min(high, cut)]}))
        stack.append((right, {**bounds, name: [max(low, cut), high]}))
    return out


def _describe_bounds(bounds: Mapping[str, list[float]], ranges: Mapping[str, Any],
                     categories: Mapping[str, list[Any]]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Return a leaf's bounds as readable conditions and as limits in the inputs' own terms."""
    conditions, limits = [], {}
    for name, (low, high) in bounds.items():
        if name in categories:
            allowed = tuple(v for i, v in enumerate(categories[name]) if low < i <= high)
            conditions.append(f"{name} in {{{', '.join(map(str, allowed))}}}")
            limits[name] = allowed
            continue
        lo, hi = ranges[name]
        if low > -math.inf and high < math.inf:
            conditions.append(f"{_num(low)} < {name} <= {_num(high)}")
        elif low > -math.inf:
            conditions.append(f"{name} > {_num(low)}")
        else:
            conditions.append(f"{name} <= {_num(high)}")
        limits[name] = (max(lo, low), min(hi, high))
    return tuple(conditions), limits


# --- discovery -------------------------------------------------------------------------


class Discovery:
    """Scenario discovery for one outcome: the PRIM boxes and the tree's rules.

    ``boxes`` and ``rules`` are tables (one row per box, or per rule); ``limits`` lists each
    box's restrictions one per row; :meth:`to_dict` gives what ``discovery.json`` holds.
    """

    def __init__(self, outcome: str, base_rate: float, runs: int, threshold: float,
                 prim_boxes: list[Box], tree_rules: list[Rule], ranges: dict[str, Any],
                 categories: dict[str, list[Any]]):
        self.outcome = outcome
        self.base_rate = base_rate
        self.runs = runs
        self.threshold = threshold
        self.prim_boxes = prim_boxes
        self.tree_rules = tree_rules
        self.ranges = ranges  # each input's full range: (min, max), or its categories
        self.categories = categories  # the categorical inputs' values, in order

    @property
    def boxes(self) -> pd.DataFrame:
        """One row per PRIM box: its statistics, how many inputs it restricts, its limits."""
        import pandas as pd

        rows = [{"box": i, "coverage": b.coverage, "density": b.density, "mass": b.mass,
                 "runs": b.runs, "restricted": len(b.limits), "limits": b.limits}
                for i, b in enumerate(self.prim_boxes, 1)]
        return pd.DataFrame(rows, columns=["box", "coverage", "density", "mass", "runs",
                                           "restricted", "limits"])

    @property
    def limits(self) -> pd.DataFrame:
        """One row per restriction of each box: low and high, or the values allowed; its qp."""
        import pandas as pd

        rows = []
        for i, b in enumerate(self.prim_boxes, 1):
            for key, value in b.limits.items():
                categorical = key in self.categories
                rows.append({"box": i, "input": key,
                             "low": None if categorical else value[0],
                             "high": None if categorical else value[1],
                             "values": list(value) if categorical else None,
                             "qp": b.qp.get(key, math.nan)})
        return pd.DataFrame(rows, columns=["box", "input", "low", "high", "values", "qp"])

    @property
    def rules(self) -> pd.DataFrame:
        """One row per tree leaf predicting the outcome: the rule, coverage, density, runs."""
        import pandas as pd

        rows = [{"rule": r.text, "coverage": r.coverage, "density": r.density, "mass": r.mass,
                 "runs": r.runs, "limits": r.limits} for r in self.tree_rules]
        return pd.DataFrame(rows, columns=["rule", "coverage", "density", "mass", "runs", "limits"])

    def to_dict(self) -> dict[str, Any]:
        """Return what ``discovery.json`` holds: outcome, base rate, boxes and tree rules."""
        return {"outcome": self.outcome, "base_rate": self.base_rate,
                "boxes": [b.to_dict() for b in self.prim_boxes],
                "tree": [r.to_dict() for r in self.tree_rules]}

    def __repr__(self) -> str:
        return (f"Discovery({self.outcome!r}, base_rate={self.base_rate:.3f}, "
                f"boxes={len(self.prim_boxes)}, rules={len(self.tree_rules)})")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(render_discovery(self))


def discover(results: Results | pd.DataFrame, outcome: str, threshold: float | None = None,
             *, max_boxes: int = MAX_BOXES, tree: bool = True) -> Discovery:
    """Return the PRIM boxes (and a tree's rules) of the input space where ``outcome`` holds.

    ``outcome`` is a condition over the outcome columns (:func:`parse_condition`), such as
    ``"start.outcome == 'agreement'"``; ``threshold`` the least density of each box's chosen
    peeling point (default :data:`DEFAULT_THRESHOLD`). PRIM (EMA Workbench, its default
    lenient objective, peel and paste alpha 0.05, minimum mass 0.05) finds one box at a time,
    each in the runs the earlier boxes left, at most ``max_boxes`` (:data:`MAX_BOXES`), and
    stops at the first whose peeling trajectory never reaches the threshold (the first boxes
    do not depend on how many are sought); ``tree=False`` leaves out the tree's rules.
    ``results`` may also be an outcomes table (a DataFrame with ``input.<key>`` columns)
    from elsewhere.
    """
    threshold = _check_threshold(threshold)
    if isinstance(max_boxes, bool) or not isinstance(max_boxes, int) or max_boxes < 1:
        raise InputError(f"max_boxes: {max_boxes!r} must be a whole number of at least 1")
    frame = _outcomes(results)
    condition = parse_condition(outcome, frame.columns)
    x = _experiments(results)
    y = condition.evaluate(frame)
    categories = _categories(results, x)
    ranges = _ranges(x, categories)
    boxes: list[Box] = []
    rules: list[Rule] = []
    if 0 < y.sum() < len(y):  # an outcome in every run, or none, has nowhere to concentrate
        boxes = _prim_boxes(x, y, threshold, categories, max_boxes)
        if tree:
            rules = _tree_rules(_encode(x, categories), y, ranges, categories)
    return Discovery(condition.text, float(y.mean()), len(y), threshold, boxes, rules, ranges,
                     categories)


def _check_threshold(threshold: float | None) -> float:
    if threshold is None:
        return DEFAULT_THRESHOLD
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
            0.0 < threshold <= 1.0):
        raise InputError(f"threshold: {threshold!r} must be a density above 0 and at most 1")
    return float(threshold)


# --- which unknowns matter -------------------------------------------------------------


def headline_outcomes(results: Results) -> dict[str, str]:
    """Return the headline outcomes as conditions, keyed by their summary metric's name.

    Each topic's agreement by the horizon (``<topic>.p_agreement``), its agreement before the
    deadline for a topic with one (``<topic>.p_agreement_before_deadline``: agreed on a day
    before the deadline's date) and at least one summit held (``summits.p_any``).
    """
    scenario = results.scenario
    out = {}
    for name, topic in scenario.topics.items():
        out[f"{name}.p_agreement"] = f"{name}.outcome == 'agreement'"
        if topic.deadline is not None:
            day = (topic.deadline.date - scenario.start).days
            out[f"{name}.p_agreement_before_deadline"] = f"{name}.day < {day}"
    out["summits.p_any"] = "summits_held >= 1"
    return out


def importance(results: Results | pd.DataFrame,
               outcomes: str | Sequence[str] | Mapping[str, str] | None = None) -> pd.DataFrame:
    """Return the uncertain inputs ranked by how much each outcome depends on them.

    ``outcomes`` is a condition, a list of them, a mapping of names to conditions, or None
    for :func:`headline_outcomes`; an outcome that holds in every run or in none is left out.
    One row per (outcome, input), ranked within each outcome: ``score`` is the input's
    extra-trees feature score (:data:`METHOD`), ``conf`` the half-width of its 95% interval
    and ``low``/``high`` the interval. Choice inputs are scored as ordinal codes (``kind``).
    The method is in the table's ``attrs["method"]``.

    Extra trees, not SALib: SALib's delta fits kernel densities to the output, which for a
    yes/no outcome skips every input class where the outcome is constant, so the input that
    decides an outcome scores lowest (and it took 24 s for 5,000 runs of 4 inputs); its PAWN
    gives no intervals and, bootstrapped, took 1.3 s a resample at 10,000 runs of 40 inputs.
    """
    import pandas as pd

    named = _named_outcomes(results, outcomes)
    frame = _outcomes(results)
    x = _experiments(results)
    categories = _categories(results, x)
    codes = _encode(x, categories).to_numpy()
    kinds = ["choice (ordinal codes)" if c in categories else "number" for c in x.columns]
    rows: list[dict[str, Any]] = []
    for name, text in named.items():
        y = parse_condition(text, frame.columns).evaluate(frame)
        if 0 < y.sum() < len(y):
            rows += _ranking(name, text, list(x.columns), kinds, _forest_scores(codes, y))
    table = pd.DataFrame(rows, columns=["outcome", "expression", "rank", "input", "score",
                                        "conf", "low", "high", "kind"])
    table.attrs["method"] = METHOD
    return table


def _named_outcomes(results: Results | pd.DataFrame, outcomes: Any) -> dict[str, str]:
    if outcomes is None:
        if _is_frame(results):
            raise InputError("the headline outcomes come from a job's scenario: pass a "
                             "Results, or name the outcomes")
        return headline_outcomes(results)
    if isinstance(outcomes, str):
        return {outcomes: outcomes}
    if isinstance(outcomes, Mapping):
        return {str(k): str(v) for k, v in outcomes.items()}
    return {str(o): str(o) for o in outcomes}


def _forest_scores(codes: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return extra-trees feature scores, one row per bootstrap resample of the runs."""
    from sklearn.ensemble import ExtraTreesClassifier

    rng = np.random.default_rng(SEED)
    n = len(y)
    size = min(n, IMPORTANCE_RUNS)
    # EMA's default leaf, sqrt(runs / 1000), grows trees on noise at a few thousand runs (every
    # input then scores about the same); leaves of 1% keep the scores of inputs that do nothing
    # near zero and still resolve sharp thresholds
    leaf = max(1, round(IMPORTANCE_LEAF_SHARE * size))
    features = max(1, round(codes.shape[1] / 3))  # Jaxa-Rozen & Kwakkel (2018), as in EMA
    scores = np.empty((RESAMPLES, codes.shape[1]))
    for b in range(RESAMPLES):
        rows = rng.integers(0, n, size=size)
        forest = ExtraTreesClassifier(n_estimators=TREES, max_features=features,
                                      min_samples_leaf=leaf, random_state=SEED + b, n_jobs=-1)
        forest.fit(codes[rows], y[rows])
        scores[b] = forest.feature_importances_
    return scores


def _ranking(name: str, text: str, inputs: list[str], kinds: list[str],
             scores: np.ndarray) -> list[dict[str, Any]]:
    """Return one outcome's rows of the importance table, best-scoring input first."""
    mean = scores.mean(axis=0)
    conf = Z * scores.std(axis=0, ddof=1)
    order = sorted(range(len(inputs)), key=lambda j: (-mean[j], inputs[j]))
    return [{"outcome": name, "expression": text, "rank": rank, "input": inputs[j],
             "score": float(mean[j]), "conf": float(conf[j]),
             "low": float(max(0.0, mean[j] - conf[j])), "high": float(min(1.0, mean[j] + conf[j])),
             "kind": kinds[j]} for rank, j in enumerate(order, 1)]


# --- text ------------------------------------------------------------------------------


def _num(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def _limit_text(key: str, value: Any, d: Discovery) -> str:
    if key in d.categories:
        return f"{{{', '.join(map(str, value))}}} of {{{', '.join(map(str, d.ranges[key]))}}}"
    lo, hi = d.ranges[key]
    return f"{_num(value[0])} .. {_num(value[1])}  (of {_num(lo)} .. {_num(hi)})"


def render_discovery(d: Discovery) -> str:
    """Return the discovery as text: base rate, threshold, each box's limits, the tree's rules."""
    k = round(d.base_rate * d.runs)
    lines = [f"Outcome: {d.outcome}",
             f"Base rate: {d.base_rate:.3f} ({k:,} of {d.runs:,} runs)"]
    if k in (0, d.runs):
        lines.append("It holds in " + ("no run" if k == 0 else "every run")
                     + ": there is nothing to discover.")
        return "\n".join(lines)
    lines.append(f"PRIM boxes at the peeling point with the most coverage whose density is at "
                 f"least {d.threshold:g} (--threshold; default {DEFAULT_THRESHOLD:g}):")
    if not d.prim_boxes:
        lines.append("  no box reaches that density"
                     + (" without restricting anything: the base rate already does; raise "
                        "--threshold" if d.base_rate >= d.threshold else "; lower --threshold"))
    for i, b in enumerate(d.prim_boxes, 1):
        lines.append(f"  Box {i}: coverage {b.coverage:.3f}, density {b.density:.3f}, "
                     f"mass {b.mass:.3f}, {b.runs:,} runs")
        width = max(len(key) for key in b.limits)
        for key, value in b.limits.items():
            qp = f"   qp {b.qp[key]:.2g}" if key in b.qp else ""
            lines.append(f"    {key:<{width}}  {_limit_text(key, value, d)}{qp}")
    lines.append(f"Classification tree (depth {TREE_DEPTH}, leaves of at least "
                 f"{TREE_LEAF_SHARE:.0%} of the runs), leaves where the outcome is the majority:")
    if not d.tree_rules:
        lines.append("  none: in no leaf does the outcome hold in more than half the runs")
    for r in d.tree_rules:
        lines.append(f"  {r.text}: coverage {r.coverage:.3f}, density {r.density:.3f}, "
                     f"{r.runs:,} runs")
    lines.append(_agreement(d))
    return "\n".join(line for line in lines if line)


def _agreement(d: Discovery) -> str:
    """Return a line saying whether PRIM's first box and the tree's best rule agree."""
    if not d.prim_boxes or not d.tree_rules:
        return ""
    prim, tree = set(d.prim_boxes[0].limits), set(d.tree_rules[0].limits)
    if prim == tree:
        return f"PRIM's first box and the tree's best rule restrict the same inputs: {', '.join(sorted(prim))}."
    return ("PRIM's first box and the tree's best rule disagree: the box restricts "
            f"{', '.join(sorted(prim))}; the rule {', '.join(sorted(tree))}.")


def render_importance(table: pd.DataFrame, top: int | None = 10) -> str:
    """Return the importance table as text, ``top`` inputs per outcome, with the method."""
    lines = []
    for name, rows in table.groupby("outcome", sort=False):
        text = rows["expression"].iloc[0]
        title = name if name == text else f"{name} ({text})"
        lines.append(f"Which unknowns matter for {title}:")
        shown = rows if top is None else rows.head(top)
        width = max(len(i) for i in shown["input"])
        for row in shown.itertuples():
            note = "  (ordinal codes)" if row.kind != "number" else ""
            lines.append(f"  {row.rank:>2}. {row.input:<{width}}  {row.score:.3f} "
                         f"+/- {row.conf:.3f}{note}")
        if len(shown) < len(rows):
            lines.append(f"      ... and {len(rows) - len(shown)} more")
    if not lines:
        return "Which unknowns matter: no outcome varies between runs, so nothing to rank."
    lines.append(table.attrs.get("method", METHOD))
    return "\n".join(lines)


# --- plots and files -------------------------------------------------------------------


def plot_trajectory(d: Discovery) -> Figure:
    """Return the peeling trajectory of each box (coverage against density), chosen points marked."""
    import matplotlib.pyplot as plt

    from .plots import _styled

    @_styled
    def draw() -> Figure:
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        for i, b in enumerate(d.prim_boxes, 1):
            t = b.trajectory
            line, = ax.plot(t["coverage"], t["density"], marker="o", ms=3, lw=1, label=f"box {i}")
            ax.plot(b.coverage, b.density, marker="o", ms=11, mfc="none", mew=2,
                    color=line.get_color())
            right = b.coverage < 0.5  # write the label on the side with room for it
            ax.annotate(f"box {i}: coverage {b.coverage:.2f}, density {b.density:.2f}",
                        (b.coverage, b.density), textcoords="offset points",
                        xytext=(10 if right else -10, -14), ha="left" if right else "right",
                        fontsize=8, color=line.get_color())
        ax.axhline(d.threshold, ls="--", color="0.4", lw=1, label=f"threshold {d.threshold:g}")
        ax.axhline(d.base_rate, ls=":", color="0.4", lw=1, label=f"base rate {d.base_rate:.2f}")
        if not d.prim_boxes:
            ax.text(0.5, 0.5, "no box reaches the threshold", ha="center", transform=ax.transAxes)
        ax.set(xlim=(0, 1.03), ylim=(0, 1.03), xlabel="coverage", ylabel="density",
               title=f"PRIM peeling trajectories: {_short(d.outcome)}")
        ax.legend(loc="lower left", fontsize=8)
        return fig

    return draw()


def plot_box_limits(d: Discovery) -> Figure:
    """Return each box's limits drawn on its inputs' full ranges (scaled to 0..1)."""
    import matplotlib.pyplot as plt

    from .plots import _styled

    @_styled
    def draw() -> Figure:
        heights = [max(1, len(b.limits)) for b in d.prim_boxes] or [1]
        fig, axes = plt.subplots(len(heights), 1, squeeze=False,
                                 figsize=(7.4, 0.9 + 0.5 * sum(heights) + 0.5 * len(heights)),
                                 gridspec_kw={"height_ratios": heights})
        for ax, (i, b) in zip(axes[:, 0], enumerate(d.prim_boxes, 1)):
            _draw_limits(ax, b, d)
            ax.set_title(f"Box {i}: coverage {b.coverage:.2f}, density {b.density:.2f}, "
                         f"mass {b.mass:.2f}, {b.runs:,} runs", loc="left")
        if not d.prim_boxes:
            axes[0, 0].text(0.5, 0.5, "no box reaches the threshold", ha="center")
            axes[0, 0].set_axis_off()
        fig.suptitle(f"PRIM box limits: {_short(d.outcome)}", fontsize=10)
        return fig

    return draw()


def _draw_limits(ax: Any, b: Box, d: Discovery) -> None:
    keys = list(b.limits)
    for row, key in enumerate(keys):
        y = len(keys) - 1 - row
        ax.plot([0, 1], [y, y], color="0.85", lw=8, solid_capstyle="butt")
        ax.annotate(_range_text(key, d), (1, y), textcoords="offset points", xytext=(10, 0),
                    va="center", fontsize=7, color="0.35")
        if key in d.categories:
            values = d.ranges[key]
            spots = np.linspace(0, 1, len(values)) if len(values) > 1 else np.array([0.5])
            for spot, value in zip(spots, values):
                inside = value in b.limits[key]
                ax.plot(spot, y, "o", ms=9, color="C0" if inside else "0.6", mfc=None if inside else "white")
                ax.annotate(str(value), (spot, y), textcoords="offset points", xytext=(0, 7),
                            ha="center", fontsize=7)
            continue
        lo, hi = d.ranges[key]
        span = (hi - lo) or 1.0
        a, z = ((v - lo) / span for v in b.limits[key])
        ax.plot([a, z], [y, y], color="C0", lw=8, solid_capstyle="butt")
        ax.annotate(_num(b.limits[key][0]), (a, y), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=7)
        ax.annotate(_num(b.limits[key][1]), (z, y), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=7)
    ax.set_yticks(range(len(keys)), list(reversed(keys)), fontsize=8)
    ax.set_xlim(-0.05, 1.3)
    ax.set_ylim(-0.7, len(keys) - 0.3)
    ax.set_xticks([0, 1], ["range's low", "range's high"], fontsize=8)
    ax.grid(False)


def _range_text(key: str, d: Discovery) -> str:
    if key in d.categories:
        return f"{len(d.categories[key])} values"
    lo, hi = d.ranges[key]
    return f"range {_num(lo)} .. {_num(hi)}"


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def save_discovery(d: Discovery, folder: str | Path) -> list[Path]:
    """Write ``discovery.json`` and the two plots into ``folder``; return the paths written.

    A file of those names is replaced only if sim wrote it; anything else there is refused
    (:class:`InputError`) before anything is written.
    """
    import matplotlib.pyplot as plt

    from .outputs import check_writable_location, record
    from .results import write_atomic, write_text_atomic

    folder = Path(folder)
    check_writable_location(folder)
    paths = [folder / name for name in FILES]
    for path in paths:
        _check_ours(path)
    write_text_atomic(paths[0], json.dumps(d.to_dict(), indent=2, default=_plain) + "\n")
    for path, fig in zip(paths[1:], (plot_trajectory(d), plot_box_limits(d))):
        write_atomic(path, _png_writer(fig))
        plt.close(fig)
    record(folder, paths)  # a results folder lists them as its own, so --force may replace them
    return paths


#: Written into each plot's PNG text chunks, so that sim recognises its own plots.
_PNG_TAG = {"Software": "negotiation-sim discover"}


def _png_writer(fig: Figure) -> Callable[[Path], None]:
    return lambda tmp: fig.savefig(tmp, format="png", metadata=_PNG_TAG)


def _check_ours(path: Path) -> None:
    """Raise :class:`InputError` if ``path`` exists and is not a discovery file sim wrote."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise InputError(f"{path} exists and is not a regular file; choose another --out")
    if not path.exists():
        return
    try:
        head = path.read_bytes() if path.stat().st_size < 50_000_000 else b""
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    if path.suffix == ".png":
        ours = _PNG_TAG["Software"].encode() in head
    else:
        try:
            data = json.loads(head.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            data = None
        ours = isinstance(data, dict) and {"outcome", "base_rate", "boxes"} <= set(data)
    if not ours:
        raise InputError(f"{path} exists and was not written by sim discover; it is kept: "
                         "move it or choose another --out")
