"""Scenario files to validated scenarios: YAML, ``extends:``, ``--set`` overrides, errors.

Everything wrong with the input is found here, at load time, before anything runs or is
written: a file that cannot be read, YAML that is malformed or asks too much of the loader,
values of the wrong type, undefined references and inconsistent positions. Each problem is a
:class:`Problem` with its file, line and dotted path, and all of them are raised together as
one :class:`ScenarioError`.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .models import Scenario
from .priors import inline, order_problems, support_problems, take_priors

#: Limits on what one input may ask of the loader (docs/model.md, §13).
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_EXTENDS = 16  # parent files in one extends: chain
MAX_DEPTH = 64  # nesting of mappings and lists, aliases included
MAX_NODES = 100_000  # YAML nodes once aliases are expanded

#: The ``file`` of a problem caused by a command-line override.
OVERRIDE = "--set"

#: Keys the scenario language no longer has, by dotted pattern, and what to write instead.
_REMOVED = {
    ("tracks", "*", "agenda"): "removed: list the topics this track can settle in 'authority'",
}

Lines = dict[str, tuple[str, int | None]]

_PRIORS_IN_PLACE = ("not a key of its own: write each prior in place of the value it is "
                    "about, e.g. cancel_prob: {uniform: [0.05, 0.3]}")
#: Scenario fields a file may not set, and why.
_INTERNAL = {
    "priors": _PRIORS_IN_PLACE,
    "posterior": ("not a key of a scenario file: runs draw from a calibration's posterior "
                  "with sim run --inputs-from CALIBRATION"),
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario: where it is and what is wrong."""

    path: str
    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.file == OVERRIDE:
            return f"--set {self.path}: {self.message}" if self.path else f"--set: {self.message}"
        if self.file is None:
            return f"{self.path or '(top level)'}: {self.message}"
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ScenarioError(ValueError):
    """A scenario could not be loaded; ``problems`` lists every reason at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class _Source:
    """Raw mapping of one resolved scenario plus where each dotted key was written."""

    data: dict[str, Any]
    lines: Lines = field(default_factory=dict)


def load_scenario(
    path: str | Path, overrides: Mapping[str, Any] | Iterable[str] | None = None
) -> Scenario:
    """Return the validated scenario in ``path``, with ``extends:`` resolved and overrides set.

    ``overrides`` maps dotted keys to values, or is a list of ``"dotted.key=value"`` strings
    (values parsed as YAML, as on the command line). Raises :class:`ScenarioError` listing
    every problem found.
    """
    source = _read(Path(path), chain=())
    problems: list[Problem] = []
    for internal, why in _INTERNAL.items():
        if internal in source.data:
            problems.append(_located(internal, why, source.lines))
            source.data.pop(internal)
    for key, value in _normalise_overrides(overrides, problems):
        if key.split(".")[0] in _INTERNAL:
            problems.append(Problem(key, _INTERNAL[key.split(".")[0]], OVERRIDE))
            continue
        try:
            _set_dotted(source.data, key, value)
        except _OverrideError as exc:
            problems.append(Problem(key, str(exc), OVERRIDE))
        else:
            _claim_lines(source.lines, key)
    try:
        scenario = validate(source.data, source.lines)
    except ScenarioError as exc:
        raise ScenarioError(problems + exc.problems) from None
    if problems:
        raise ScenarioError(problems)
    return scenario


def parse_scenario(text: str, name: str = "<string>") -> Scenario:
    """Return the validated scenario written in YAML ``text`` (no ``extends:``)."""
    data, lines = _parse_mapping(text, name)
    for internal, why in _INTERNAL.items():
        if internal in data:
            raise ScenarioError([_located(internal, why, lines)])
    if "extends" in data:
        raise ScenarioError([Problem("extends", "not allowed in a scenario given as text", name)])
    return validate(data, lines)


def validate(
    data: Mapping[str, Any], lines: Mapping[str, tuple[str, int | None]] | None = None
) -> Scenario:
    """Return ``data`` validated as a :class:`Scenario`, or raise with every problem found."""
    if not isinstance(data, Mapping):
        raise ScenarioError([Problem("", "a scenario must be a mapping of keys")])
    lines = lines or {}
    # priors are taken out and their point values put in their place (see .priors)
    data, priors, found = take_priors(data)
    try:
        scenario: Scenario | None = Scenario.model_validate(data)
        errors: list[Any] = []
    except ValidationError as exc:
        scenario, errors = None, exc.errors(include_url=False)
    problems = validation_problems(_prior_errors(errors, priors, {k for k, _ in found}), lines)
    found += _reference_problems(data) + _consistency_problems(data)
    if scenario is not None and priors:  # the whole support, once the point values pass
        found += support_problems(data, priors) + order_problems(data, priors)
    problems += [_located(path, msg, lines) for path, msg in found]
    if problems or scenario is None:
        raise ScenarioError(_dedupe(problems))
    return scenario.model_copy(update={"priors": priors}) if priors else scenario


def _prior_errors(errors: list[Any], priors: Mapping[str, Any], bad: set[str]) -> list[Any]:
    """Return pydantic's errors with those at a prior's key said in terms of the prior.

    A malformed prior (in ``bad``) is reported already; its placeholder's error is dropped.
    """
    out = []
    for err in errors:
        key = _dotted(err["loc"])
        if key in bad:
            continue
        value = err.get("input")
        if isinstance(value, Mapping) and len(value) >= 1 and isinstance(next(iter(value.values())), list):
            from ..inputs import FAMILIES

            err = {**err, "type": "value_error", "msg": (
                f"{_short(value)} is neither a value nor a prior: a prior's family is one of "
                f"{', '.join(FAMILIES)}")}
        elif key in priors:
            prior = priors[key]
            if err["type"] == "int_from_float":
                text = f"takes whole numbers: write its prior as a choice (got {prior.describe()})"
            else:
                text = f"the prior {prior.describe()} has the point value {_short(err.get('input'))}: {_message(err)}"
            err = {**err, "type": "value_error", "msg": text}
        out.append(err)
    return out


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """Return the scenario as plain YAML-ready data, every default filled in."""
    return scenario.model_dump(mode="json", exclude={"posterior"})


def dump_scenario(scenario: Scenario) -> str:
    """Return the resolved scenario as YAML text that loads back to the same scenario
    (priors written in place of their values, as in a scenario file)."""
    data = inline(scenario_to_dict(scenario), scenario.priors)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def read_yaml_file(path: Path, what: str, via: str = "") -> tuple[Any, Lines]:
    """Return the data in YAML file ``path`` and the line of each dotted key.

    ``what`` names the file in messages ("scenario file"); ``via`` says who named it. Raises
    :class:`ScenarioError` for a file that is not a readable regular UTF-8 file of at most
    :data:`MAX_FILE_BYTES`, and for YAML that is malformed or refused by :class:`_Loader`.
    """
    return _parse_yaml(_read_text(path, what, via), str(path))


def validation_problems(errors: Iterable[Any], lines: Mapping[str, tuple[str, int | None]],
                        file: str | None = None) -> list[Problem]:
    """Return pydantic's ``errors`` as problems, each at its line (or in ``file``)."""
    out = []
    for err in errors:
        problem = _located(_dotted(err["loc"]), _message(err), lines)
        if problem.file is None and file is not None:
            problem = Problem(problem.path, problem.message, file)
        out.append(problem)
    return out


# --- reading files -------------------------------------------------------------------

_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def _read(path: Path, chain: tuple[Path, ...], via: str = "") -> _Source:
    data, lines = read_yaml_file(path, "scenario file", via)
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ScenarioError([Problem("", "a scenario must be a mapping of keys", str(path), 1)])
    if "extends" not in data:
        return _Source(data, lines)
    parent_ref = data.pop("extends")
    if not isinstance(parent_ref, str) or not parent_ref.strip():
        raise ScenarioError([_located("extends", "must be a file path", lines)])
    if len(chain) >= MAX_EXTENDS:
        raise ScenarioError([_located(
            "extends", f"more than {MAX_EXTENDS} parent files in one extends: chain (the limit)",
            lines)])
    resolved, parent_path = _resolve(path), path.parent / parent_ref
    if _resolve(parent_path) in (*chain, resolved):
        cycle = " -> ".join(p.name for p in (*chain, resolved, _resolve(parent_path)))
        raise ScenarioError([_located("extends", f"cycle in extends: {cycle}", lines)])
    _, line = lines.get("extends", (str(path), None))
    parent = _read(parent_path, (*chain, resolved), via=f" (named by extends: in {path}:{line})")
    return _Source(_deep_merge(parent.data, data), {**parent.lines, **lines})


def _resolve(path: Path) -> Path:
    """Return the absolute real path, or the absolute path if it cannot be resolved."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # 3.11 raises RuntimeError for symlink loops
        return Path(os.path.abspath(path))


def _read_text(path: Path, what: str, via: str = "") -> str:
    """Return the text of ``path``: a regular file, at most MAX_FILE_BYTES, in UTF-8.

    The file is stat'ed before it is opened: opening a named pipe blocks until someone writes
    to it, and a device can be endless. It is then opened non-blocking and checked again, in
    case it was swapped in between.
    """

    def refuse(reason: str, line: int | None = None) -> ScenarioError:
        return ScenarioError([Problem("", f"cannot read {what}: {reason}{via}", str(path), line)])

    try:
        problem = _file_problem(os.stat(path))  # follows symlinks; a symlink loop is ELOOP
        if not problem:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as f:
                problem = _file_problem(os.fstat(f.fileno()))
                raw = b"" if problem else f.read(MAX_FILE_BYTES + 1)  # it may have grown
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise refuse(reason) from None
    if problem:
        raise refuse(problem)
    if len(raw) > MAX_FILE_BYTES:
        raise refuse(_TOO_BIG)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise refuse(f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", line) from None


_TOO_BIG = f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB (the limit)"


def _file_problem(info: os.stat_result) -> str:
    """Return why a file with this status is not read, or "" if it is."""
    for test, kind in _FILE_KINDS:
        if test(info.st_mode):
            return f"it is {kind}, not a regular file"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    return _TOO_BIG if info.st_size > MAX_FILE_BYTES else ""


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``update``: mappings merge key by key, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# --- YAML ------------------------------------------------------------------------------

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
#: Exceptions that mean "this text is not YAML": a --set value like that is taken as text.
_SYNTAX_ERRORS = (yaml.reader.ReaderError, yaml.scanner.ScannerError, yaml.parser.ParserError,
                  yaml.composer.ComposerError)


class _Refused(yaml.MarkedYAMLError):
    """Input the loader refuses although it is valid YAML; reported like PyYAML's errors."""

    def __init__(self, problem: str, mark: Any, path: str = ""):
        super().__init__(problem=problem, problem_mark=mark)
        self.path = path


class _Loader(yaml.SafeLoader):
    """SafeLoader that builds only text, numbers, booleans, dates, lists and mappings.

    It counts nesting from the parse events, before the (recursive) composer descends, so a
    deeply nested document is refused instead of raising RecursionError. With ``allow_tags``
    false (``--set`` values) any explicit tag is refused.
    """

    def __init__(self, text: str, allow_tags: bool = True):
        super().__init__(text)
        self._depth = 0
        self._allow_tags = allow_tags
        #: (node, message) of each value refused while constructing; all are reported at once
        self.refused: list[tuple[yaml.Node, str]] = []

    def refuse(self, node: yaml.Node, message: str) -> None:
        self.refused.append((node, message))

    def get_event(self) -> Any:
        event = super().get_event()
        if isinstance(event, yaml.CollectionStartEvent):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested more than {MAX_DEPTH} levels deep (the limit)",
                               event.start_mark)
        elif isinstance(event, yaml.CollectionEndEvent):
            self._depth -= 1
        tag = getattr(event, "tag", None)
        if not self._allow_tags and tag is not None:
            raise _Refused(f"YAML tag {_short_tag(tag)} is not allowed in a --set value",
                           event.start_mark)
        return event


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _refuse_tag(loader: _Loader, node: yaml.Node) -> None:
    # !!binary would make bytes, !!set a set, !!omap and !!pairs lists of pairs: none is
    # anything a scenario holds, and bytes would even pass as a name
    loader.refuse(node, f"YAML tag {_short_tag(node.tag)} is not allowed: tags that construct "
                  "objects are not allowed")


def _checked_scalar(tag: str, what: str) -> None:
    """Make SafeLoader's constructor for ``tag`` report bad values instead of crashing.

    PyYAML raises a plain ValueError (or KeyError) for ``2025-02-30``, ``!!int x`` or an
    integer too long for Python to convert.
    """
    construct = yaml.SafeLoader.yaml_constructors[tag]

    def checked(loader: _Loader, node: yaml.Node) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, KeyError, OverflowError) as exc:
            reason = f" ({exc})" if what == "date" else ""
            text = node.value if len(node.value) <= 60 else node.value[:57] + "..."
            loader.refuse(node, f"{text} is not a valid {what}{reason}")
            return None

    _Loader.add_constructor(tag, checked)


for _tag in ("binary", "set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag)
_Loader.add_constructor(None, _refuse_tag)  # any unknown tag, e.g. !!python/object
for _tag, _what in (("int", "integer"), ("float", "number"), ("bool", "boolean"),
                    ("timestamp", "date")):
    _checked_scalar(f"tag:yaml.org,2002:{_tag}", _what)


def _parse_mapping(text: str, name: str) -> tuple[dict[str, Any], Lines]:
    data, lines = _parse_yaml(text, name)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError([Problem("", "a scenario must be a mapping of keys", name, 1)])
    return data, lines


def _parse_yaml(text: str, name: str) -> tuple[Any, Lines]:
    try:
        data, lines, problems = _load_yaml(text, name)
    except yaml.YAMLError as exc:
        raise ScenarioError([_yaml_problem(exc, name, text)]) from None
    if problems:
        raise ScenarioError(problems)
    return data, lines


def _load_yaml(text: str, name: str, allow_tags: bool = True
               ) -> tuple[Any, Lines, list[Problem]]:
    """Return (data, lines, problems with keys) of one YAML document; raise yaml.YAMLError."""
    loader = _Loader(text, allow_tags=allow_tags)
    try:
        node = loader.get_single_node()  # one parse: the node tree gives lines, then the data
        if node is None:
            return None, {}, []
        _check_size(node)
        walk = _Walk(name)
        walk.visit(node, "")
        if walk.problems:
            return None, walk.lines, walk.problems
        data = loader.construct_document(node)
        refused = [Problem(walk.paths.get(id(n), ""), message, name, n.start_mark.line + 1)
                   for n, message in loader.refused]
        return (None, walk.lines, refused) if refused else (_unshared(data), walk.lines, [])
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError, name: str, text: str) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
    if isinstance(exc, _Refused):
        return Problem(exc.path, str(exc.problem), name, line)
    problem = getattr(exc, "problem", None) or str(exc)
    return Problem("", f"malformed YAML: {problem}", name, line)


def _check_size(root: yaml.Node) -> None:
    """Refuse a node graph too big or too deep once aliases are expanded.

    An alias reuses a node, so a few lines can stand for billions of values ("billion
    laughs"), and an anchor used inside itself never ends; everything after this (the line
    walk, pydantic) walks the expanded tree. Memoised by node id: one visit per distinct node,
    and the recursion stops at MAX_DEPTH.
    """
    seen: dict[int, tuple[int, int]] = {}  # node id -> (expanded size, nesting height)

    def too_deep(node: yaml.Node) -> _Refused:  # the line says where; the path would be long
        return _Refused(f"nested more than {MAX_DEPTH} levels deep through aliases (the limit)",
                        node.start_mark)

    def visit(node: yaml.Node, level: int, path: str) -> tuple[int, int]:
        known = seen.get(id(node))
        if known is None:
            if level >= MAX_DEPTH and not isinstance(node, yaml.ScalarNode):
                raise too_deep(node)
            size, height = 1, 0
            for key, child in _children(node):
                child_size, child_height = visit(child, level + 1, _join(path, key))
                size, height = size + child_size, max(height, child_height + 1)
            if size > MAX_NODES:
                raise _Refused(f"more than {MAX_NODES:,} values once aliases are expanded "
                               "(the limit)", node.start_mark, path)
            known = seen[id(node)] = (size, height)
        if level + known[1] > MAX_DEPTH:
            raise too_deep(node)
        return known

    visit(root, 0, "")


def _children(node: yaml.Node) -> list[tuple[Any, yaml.Node]]:
    """Return (key or index, node) for every node directly below ``node``, keys included."""
    if isinstance(node, yaml.MappingNode):
        out = []
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            out += [(key, key_node), (key, value_node)]
        return out
    if isinstance(node, yaml.SequenceNode):
        return list(enumerate(node.value))
    return []


class _Walk:
    """One walk over a checked node tree: the line and node of each dotted key, and
    problems with keys (not text, or written twice), each reported once per node."""

    def __init__(self, name: str):
        self.name = name
        self.lines: Lines = {}
        self.paths: dict[int, str] = {}
        self.problems: list[Problem] = []
        self._reported: set[int] = set()

    def visit(self, node: yaml.Node, path: str) -> None:
        self.paths.setdefault(id(node), path)
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines[_join(path, i)] = (self.name, item.start_mark.line + 1)
                self.visit(item, _join(path, i))
        elif isinstance(node, yaml.MappingNode):
            self._mapping(node, path)

    def _mapping(self, node: yaml.MappingNode, path: str) -> None:
        report = id(node) not in self._reported  # an aliased mapping is checked once
        self._reported.add(id(node))
        first_line: dict[str, int] = {}
        # merged keys (<<: *anchor) first: the mapping's own keys override them
        for key_node, value_node in sorted(node.value, key=lambda kv: kv[0].tag != _MERGE_TAG):
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for item in merged:
                    self.visit(item, path)
                continue
            if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == _STR_TAG):
                if report:
                    self.problems.append(Problem(path, _key_problem(key_node), self.name, line))
                continue
            key = _join(path, key_node.value)
            if key_node.value in first_line and report:
                self.problems.append(Problem(
                    key, f"duplicate key (first written at line {first_line[key_node.value]})",
                    self.name, line))
            first_line.setdefault(key_node.value, line)
            self.lines[key] = (self.name, line)
            self.visit(value_node, key)


def _key_problem(key_node: yaml.Node) -> str:
    if not isinstance(key_node, yaml.ScalarNode):
        return "a mapping key must be a name, not a list or mapping"
    kind = _KINDS.get(key_node.tag.rpartition(":")[2], "something else")
    return f"the key {key_node.value!r} is read as {kind}, not a name; quote it or rename it"


_KINDS = {"int": "an integer", "float": "a number", "bool": "a boolean", "null": "null",
          "timestamp": "a date"}


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _unshared(value: Any) -> Any:
    """Return ``value`` with every alias its own copy, so that an override or merge into one
    use of an anchor does not silently change the others."""
    if isinstance(value, dict):
        return {k: _unshared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshared(v) for v in value]
    return value


# --- overrides -----------------------------------------------------------------------


class _OverrideError(ValueError):
    pass


def _normalise_overrides(
    overrides: Mapping[str, Any] | Iterable[str] | None, problems: list[Problem]
) -> list[tuple[str, Any]]:
    """Return overrides as (dotted key, value) pairs; problems with any go to ``problems``."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        pairs = [(str(key), value) for key, value in overrides.items()]
    else:
        pairs = []
        for item in overrides:
            key, sep, raw = str(item).partition("=")
            if not sep or not key.strip():
                problems.append(Problem(str(item), "an override is written key.path=value",
                                        OVERRIDE))
                continue
            found: list[Problem] = []
            value = _override_value(key.strip(), raw, found)
            problems += found
            if not found:
                pairs.append((key.strip(), value))
    good = [(key, value) for key, value in pairs if _is_key_path(key)]
    problems += [Problem(key, "not a dotted key path", OVERRIDE) for key, _ in pairs
                 if not _is_key_path(key)]
    return good


def _is_key_path(key: str) -> bool:
    parts = key.split(".")
    return all(parts) and len(parts) <= MAX_DEPTH


def _override_value(key: str, raw: str, problems: list[Problem]) -> Any:
    """Return a --set value parsed as YAML (text that is not YAML stays text)."""
    if not raw.strip():
        return ""
    try:
        value, _, found = _load_yaml(raw, OVERRIDE, allow_tags=False)
    except _SYNTAX_ERRORS:
        return raw
    except yaml.YAMLError as exc:
        found = [_yaml_problem(exc, OVERRIDE, raw)]
    problems += [Problem(_join(key, p.path) if p.path else key, p.message, OVERRIDE)
                 for p in found]
    return value if not found else None


def _claim_lines(lines: Lines, key: str) -> None:
    """Point ``key``, everything below it and the mappings it created at the command line:
    the file's lines under a value an override replaced no longer say where anything was
    written."""
    for below in [k for k in lines if k.startswith(key + ".")]:
        del lines[below]
    lines[key] = (OVERRIDE, None)
    parts = key.split(".")
    for i in range(1, len(parts)):  # a parent no file wrote was created by the override
        lines.setdefault(".".join(parts[:i]), (OVERRIDE, None))


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[_list_index(part, node, parts[: i + 1])]
            continue
        if not isinstance(node, dict):
            raise _OverrideError(f"'{'.'.join(parts[:i])}' is not a mapping")
        if node.get(part) is None:  # absent or null: the override creates the mapping
            node[part] = {}
        node = node[part]
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


def _dotted(loc: tuple) -> str:
    # pydantic adds the validator's name for unions and model validators; drop those parts
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
    return ".".join(parts)


def _message(err: dict) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    shown = _short(value)
    if kind == "extra_forbidden":
        return _removed(err["loc"]) or "unknown key"
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
    if kind == "string_too_long":
        return f"{shown} is longer than {ctx['max_length']} characters (the limit for names)"
    if kind == "bool_type":
        return f"{shown} is not a boolean (write true or false)"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    plain = kind in ("value_error", "assertion_error") or kind.startswith("sim_")
    return msg if plain else f"{msg} (got {shown})"


def _removed(loc: tuple) -> str | None:
    for pattern, message in _REMOVED.items():
        if len(loc) == len(pattern) and all(p in ("*", str(x)) for p, x in zip(pattern, loc)):
            return message
    return None


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _located(path: str, message: str, lines: Mapping[str, tuple[str, int | None]]) -> Problem:
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


# --- cross-checks on raw data ----------------------------------------------------------
# These work on the raw mapping, defensively, so that they are reported beside structural
# problems (a wrong type elsewhere in the file) instead of only once those are fixed.


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _unit(value: Any) -> float | None:
    """Return ``value`` if it is a valid position on a topic's scale (else pydantic says why)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def _date(value: Any) -> dt.date | None:
    """Return ``value`` as a date if it is one (or ISO text, as from JSON), else None."""
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _consistency_problems(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return problems in how the two signatories' positions on each topic fit together,
    and deadlines that do not fall after the start."""
    out = _deadline_problems(data)
    sides = _mapping(data.get("sides"))
    signatories = [n for n, s in sides.items()
                   if _mapping(s).get("role", "signatory") == "signatory"]
    if len(signatories) != 2:  # reported by the model
        return out
    a, b = signatories
    for topic in _mapping(data.get("topics")):
        pa, pb = (_mapping(_mapping(_mapping(sides[s]).get("topics")).get(topic)) for s in (a, b))
        ideal_a, ideal_b = _unit(pa.get("ideal")), _unit(pb.get("ideal"))
        if ideal_a is None or ideal_b is None:  # reported by the model
            continue
        high, low = ((a, pa), (b, pb)) if ideal_a >= ideal_b else ((b, pb), (a, pa))
        for (side, pos), wants in ((high, "high"), (low, "low")):
            out += _position_problems(f"sides.{side}.topics.{topic}", pos, wants)
    return out


def _position_problems(path: str, pos: Mapping[str, Any], wants: str) -> list[tuple[str, str]]:
    ideal, opening = _unit(pos.get("ideal")), _unit(pos.get("opening"))
    reservation = _unit(pos.get("reservation"))
    if ideal is None or reservation is None:  # a missing reservation is a reference problem
        return []
    sign = 1.0 if wants == "high" else -1.0
    out = []
    if sign * (ideal - reservation) < 0:
        out.append((f"{path}.reservation",
                    f"{pos['reservation']} is better than the ideal {pos['ideal']} for a side "
                    f"wanting {wants} values on this topic"))
    if opening is not None and sign * (opening - reservation) < 0:
        out.append((f"{path}.opening",
                    f"{pos['opening']} is worse than the reservation {pos['reservation']}"))
    return out


def _deadline_problems(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return deadlines not after the start.

    A deadline at or after the horizon's end is allowed: it never fires in the run, but it
    still sets the sides' concession horizons.
    """
    start, out = _date(data.get("start")), []
    for name, topic in _mapping(data.get("topics")).items():
        date = _date(_mapping(_mapping(topic).get("deadline")).get("date"))
        if start is not None and date is not None and date <= start:
            out.append((f"topics.{name}.deadline.date",
                        f"{date} is not after the scenario start {start}"))
    return out


def _reference_problems(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return (dotted path, message) for every reference to something undefined."""

    def names(key: str) -> set[str]:
        return set(_mapping(data.get(key)))

    topics, sides, venues = names("topics"), names("sides"), names("venues")
    roles = {n: _mapping(s).get("role", "signatory") for n, s in _mapping(data.get("sides")).items()}
    signatories = {n for n, r in roles.items() if r == "signatory"}
    out: list[tuple[str, str]] = []

    def check(path: str, name: Any, known: set[str], what: str) -> None:
        if isinstance(name, str) and name not in known:
            out.append((path, f"'{name}' is not a defined {what}"))

    for side_name, side in _mapping(data.get("sides")).items():
        side = _mapping(side)
        for topic_name, pos in _mapping(side.get("topics")).items():
            path = f"sides.{side_name}.topics.{topic_name}"
            check(path, topic_name, topics, "topic")
            pos = _mapping(pos)
            for target in _mapping(pos.get("influence")):
                check(f"{path}.influence.{target}", target, signatories, "signatory side")
            if side.get("role", "signatory") == "signatory":
                if pos.get("reservation") is None:
                    out.append((f"{path}.reservation", "a signatory needs a reservation point"))
                if pos.get("influence"):
                    out.append((f"{path}.influence",
                                "only influencers (role: influencer) exert influence"))
        if side.get("role", "signatory") == "signatory":
            for topic_name in sorted(topics - set(_mapping(side.get("topics"))), key=str):
                out.append((f"sides.{side_name}.topics", f"no position on topic '{topic_name}'"))
    for venue_name, venue in _mapping(data.get("venues")).items():
        for side_name in _mapping(_mapping(venue).get("acceptability")):
            check(f"venues.{venue_name}.acceptability.{side_name}", side_name, signatories,
                  "signatory side")
    for track_name, track in _mapping(data.get("tracks")).items():
        track = _mapping(track)
        path = f"tracks.{track_name}"
        for key, known, what in (("authority", topics, "topic"), ("venues", venues, "venue")):
            items = track.get(key)
            if isinstance(items, list):
                for i, item in enumerate(items):
                    check(f"{path}.{key}.{i}", item, known, what)
        req = _mapping(track.get("requires"))
        if isinstance(req.get("topics"), list):
            for i, item in enumerate(req["topics"]):
                check(f"{path}.requires.topics.{i}", item, topics, "topic")
    for shock_name, shock in _mapping(data.get("shocks")).items():
        source = _mapping(shock).get("source")
        if source is not None:
            check(f"shocks.{shock_name}.source", source, sides, "side")
    return out
