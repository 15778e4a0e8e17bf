"""Scenario files to validated scenarios: YAML, ``extends:``, ``--set`` overrides, errors."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .models import Scenario


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario: where it is and what is wrong."""

    path: str
    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        return f"{where}{self.path or '(top level)'}: {self.message}"


class ScenarioError(ValueError):
    """A scenario could not be loaded; ``problems`` lists every reason at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class _Source:
    """Raw mapping of one resolved scenario plus where each dotted key was written."""

    data: dict[str, Any]
    lines: dict[str, tuple[str, int]] = field(default_factory=dict)


def load_scenario(
    path: str | Path, overrides: Mapping[str, Any] | Iterable[str] | None = None
) -> Scenario:
    """Return the validated scenario in ``path``, with ``extends:`` resolved and overrides set.

    ``overrides`` maps dotted keys to values, or is a list of ``"dotted.key=value"`` strings
    (values parsed as YAML scalars, as on the command line). Raises :class:`ScenarioError`
    listing every problem found.
    """
    source = _read(Path(path), chain=())
    problems: list[Problem] = []
    for key, value in _normalise_overrides(overrides, problems):
        try:
            _set_dotted(source.data, key, value)
        except _OverrideError as exc:
            problems.append(Problem(key, str(exc), "--set"))
        else:
            source.lines[key] = ("--set", None)  # type: ignore[assignment]
    try:
        scenario = validate(source.data, source.lines)
    except ScenarioError as exc:
        raise ScenarioError(problems + exc.problems) from None
    if problems:
        raise ScenarioError(problems)
    return scenario


def parse_scenario(text: str, name: str = "<string>") -> Scenario:
    """Return the validated scenario written in YAML ``text`` (no ``extends:``)."""
    data, lines = _parse_yaml(text, name)
    if "extends" in data:
        raise ScenarioError([Problem("extends", "not allowed in a scenario given as text", name)])
    return validate(data, lines)


def validate(data: Mapping[str, Any], lines: Mapping[str, tuple[str, int]] | None = None) -> Scenario:
    """Return ``data`` validated as a :class:`Scenario`, or raise with every problem found."""
    lines = lines or {}
    problems = [
        _located(_dotted(err["loc"]), _message(err), lines)
        for err in _pydantic_errors(data)
    ]
    problems += [_located(path, msg, lines) for path, msg in _reference_problems(data)]
    if problems:
        raise ScenarioError(_dedupe(problems))
    scenario = Scenario.model_validate(data)
    problems = [_located(path, msg, lines) for path, msg in _consistency_problems(scenario)]
    if problems:
        raise ScenarioError(problems)
    return scenario


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """Return the scenario as plain YAML-ready data, every default filled in."""
    return scenario.model_dump(mode="json")


def dump_scenario(scenario: Scenario) -> str:
    """Return the resolved scenario as YAML text that loads back to the same scenario."""
    return yaml.safe_dump(scenario_to_dict(scenario), sort_keys=False, allow_unicode=True)


# --- reading files -------------------------------------------------------------------


def _read(path: Path, chain: tuple[Path, ...]) -> _Source:
    resolved = path.resolve()  # a cycle is caught at the extends: key that closes it, below
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScenarioError([Problem("", f"cannot read scenario file: {reason}", str(path))]) from None
    data, lines = _parse_yaml(text, str(path))
    parent_ref = data.pop("extends", None)
    if parent_ref is None:
        return _Source(data, lines)
    if not isinstance(parent_ref, str):
        raise ScenarioError([_located("extends", "must be a file path", lines)])
    parent_path = path.parent / parent_ref
    if parent_path.resolve() in (*chain, resolved):
        cycle = " -> ".join(p.name for p in (*chain, resolved, parent_path.resolve()))
        raise ScenarioError([_located("extends", f"cycle in extends: {cycle}", lines)])
    parent = _read(parent_path, (*chain, resolved))
    merged = _deep_merge(parent.data, data)
    return _Source(merged, {**parent.lines, **lines})


def _parse_yaml(text: str, name: str) -> tuple[dict[str, Any], dict[str, tuple[str, int]]]:
    try:
        loader = yaml.SafeLoader(text)  # one parse: the node tree gives lines, then the data
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        if "could not determine a constructor" in str(exc):
            problem = "YAML tags that construct objects are not allowed"
        raise ScenarioError([Problem("", f"malformed YAML: {problem}", name, line)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError([Problem("", "a scenario must be a mapping of keys", name, 1)])
    lines: dict[str, tuple[str, int]] = {}
    _collect_lines(node, "", name, lines)
    return data, lines


def _collect_lines(node: yaml.Node | None, prefix: str, name: str, out: dict) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            out[key] = (name, key_node.start_mark.line + 1)
            _collect_lines(value_node, key, name, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            key = f"{prefix}.{i}"
            out[key] = (name, item.start_mark.line + 1)
            _collect_lines(item, key, name, out)


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``update``: mappings merge key by key, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# --- overrides -----------------------------------------------------------------------


class _OverrideError(ValueError):
    pass


def _normalise_overrides(
    overrides: Mapping[str, Any] | Iterable[str] | None, problems: list[Problem]
) -> list[tuple[str, Any]]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    pairs = []
    for item in overrides:
        key, sep, raw = str(item).partition("=")
        if not sep or not key.strip():
            problems.append(Problem(str(item), "an override is written key.path=value", "--set"))
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        pairs.append((key.strip(), value))
    return pairs


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[_list_index(part, node, parts[: i + 1])]
            continue
        if not isinstance(node, dict):
            raise _OverrideError(f"'{'.'.join(parts[:i])}' is not a mapping")
        node = node.setdefault(part, {})
        if node is None:
            node = {}
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(last, node, parts)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise _OverrideError(f"'{'.'.join(parts[:-1])}' is not a mapping")


def _list_index(part: str, node: list, parts: list[str]) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise _OverrideError(f"'{'.'.join(parts)}' is not an index of the list")
    return int(part)


# --- errors --------------------------------------------------------------------------


def _pydantic_errors(data: Mapping[str, Any]) -> list[Any]:
    try:
        Scenario.model_validate(data)
    except ValidationError as exc:
        return exc.errors(include_url=False)
    return []


def _dotted(loc: tuple) -> str:
    # pydantic adds the validator's name for unions and model validators; drop those parts
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
    return ".".join(parts)


def _message(err: dict) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    shown = _short(value)
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "greater_than_equal":
        return f"{shown} is below {ctx['ge']}"
    if kind == "greater_than":
        return f"{shown} must be greater than {ctx['gt']}"
    if kind == "less_than_equal":
        return f"{shown} is above {ctx['le']}"
    if kind == "less_than":
        return f"{shown} must be less than {ctx['lt']}"
    if kind == "literal_error":
        return f"{shown} is not one of {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        return f"{shown} is not a valid name (lower case letters, digits and _)"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    return f"{msg} (got {shown})" if kind not in ("value_error", "assertion_error") else msg


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _located(path: str, message: str, lines: Mapping[str, tuple[str, int]]) -> Problem:
    probe = path
    while probe:
        if probe in lines:
            file, line = lines[probe]
            return Problem(path, message, file, line)
        probe = probe.rpartition(".")[0]
    return Problem(path, message)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: dict[tuple[str, str], Problem] = {}
    for p in problems:
        seen.setdefault((p.path, p.message), p)
    return list(seen.values())


def _consistency_problems(scenario: Scenario) -> list[tuple[str, str]]:
    """Return problems in how the two signatories' positions on each topic fit together."""
    out = []
    for name, topic in scenario.topics.items():
        if topic.deadline is not None:
            out += _deadline_problems(
                name, scenario.start, topic.deadline.date, scenario.horizon_days
            )
    a, b = scenario.signatories
    for name in scenario.topics:
        pa, pb = scenario.sides[a].topics[name], scenario.sides[b].topics[name]
        high, low = (a, b) if pa.ideal >= pb.ideal else (b, a)
        for side, wants in ((high, "high"), (low, "low")):
            pos = scenario.sides[side].topics[name]
            path = f"sides.{side}.topics.{name}"
            sign = 1.0 if wants == "high" else -1.0
            if pos.reservation is None:  # reported by the reference checks
                continue
            if sign * (pos.ideal - pos.reservation) < 0:
                out.append((f"{path}.reservation",
                            f"{pos.reservation} is better than the ideal {pos.ideal} for a side "
                            f"wanting {wants} values on this topic"))
            if pos.opening is not None and sign * (pos.opening - pos.reservation) < 0:
                out.append((f"{path}.opening",
                            f"{pos.opening} is worse than the reservation {pos.reservation}"))
    return out


def _reference_problems(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return (dotted path, message) for every reference to something undefined.

    Works on raw data so that reference errors are reported beside structural ones.
    """

    def names(key: str) -> set[str]:
        value = data.get(key)
        return set(value) if isinstance(value, Mapping) else set()

    def mapping(value: Any) -> Mapping[str, Any]:
        return value if isinstance(value, Mapping) else {}

    topics, sides, venues = names("topics"), names("sides"), names("venues")
    roles = {n: mapping(s).get("role", "signatory") for n, s in mapping(data.get("sides")).items()}
    signatories = {n for n, r in roles.items() if r == "signatory"}
    out: list[tuple[str, str]] = []

    def check(path: str, name: Any, known: set[str], what: str) -> None:
        if isinstance(name, str) and name not in known:
            out.append((path, f"'{name}' is not a defined {what}"))

    for side_name, side in mapping(data.get("sides")).items():
        side = mapping(side)
        for topic_name, pos in mapping(side.get("topics")).items():
            path = f"sides.{side_name}.topics.{topic_name}"
            check(path, topic_name, topics, "topic")
            pos = mapping(pos)
            for target in mapping(pos.get("influence")):
                check(f"{path}.influence.{target}", target, signatories, "signatory side")
            if side.get("role", "signatory") == "signatory":
                if pos.get("reservation") is None:
                    out.append((f"{path}.reservation", "a signatory needs a reservation point"))
                if pos.get("influence"):
                    out.append((f"{path}.influence",
                                "only influencers (role: influencer) exert influence"))
        if side.get("role", "signatory") == "signatory":
            for topic_name in sorted(topics - set(mapping(side.get("topics"))), key=str):
                out.append((f"sides.{side_name}.topics", f"no position on topic '{topic_name}'"))
    for venue_name, venue in mapping(data.get("venues")).items():
        for side_name in mapping(mapping(venue).get("acceptability")):
            check(f"venues.{venue_name}.acceptability.{side_name}", side_name, signatories,
                  "signatory side")
    for track_name, track in mapping(data.get("tracks")).items():
        track = mapping(track)
        path = f"tracks.{track_name}"
        for key, known, what in (("agenda", topics, "topic"), ("authority", topics, "topic"),
                                 ("venues", venues, "venue")):
            items = track.get(key)
            if isinstance(items, list):
                for i, item in enumerate(items):
                    check(f"{path}.{key}.{i}", item, known, what)
        agenda, authority = track.get("agenda"), track.get("authority")
        if isinstance(agenda, list) and isinstance(authority, list):
            for i, item in enumerate(authority):
                if isinstance(item, str) and item in topics and item not in agenda:
                    out.append((f"{path}.authority.{i}", f"'{item}' is not on the track's agenda"))
        req = mapping(track.get("requires"))
        if isinstance(req.get("topics"), list):
            for i, item in enumerate(req["topics"]):
                check(f"{path}.requires.topics.{i}", item, topics, "topic")
    for shock_name, shock in mapping(data.get("shocks")).items():
        source = mapping(shock).get("source")
        if source is not None:
            check(f"shocks.{shock_name}.source", source, sides, "side")
    start = data.get("start")
    horizon = data.get("horizon_days")
    for topic_name, topic in mapping(data.get("topics")).items():
        deadline = mapping(mapping(topic).get("deadline"))
        date = deadline.get("date")
        out += _deadline_problems(topic_name, start, date, horizon)
    return out


def _deadline_problems(
    topic_name: str, start: Any, date: Any, horizon: Any
) -> list[tuple[str, str]]:
    """Return problems with a deadline not after the start (plain dates only).

    A deadline at or after the horizon's end is allowed: it never fires in the run, but it
    still sets the sides' concession horizons.
    """

    def is_date(value: Any) -> bool:  # a datetime is a date that cannot be compared with one
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)

    if not (is_date(start) and is_date(date)):
        return []
    path = f"topics.{topic_name}.deadline.date"
    if date <= start:
        return [(path, f"{date} is not after the scenario start {start}")]
    return []
