"""The scenario language: loading, ``extends:``, overrides, and errors that say where."""

from __future__ import annotations

import copy
import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import BASELINE, MINIMAL_YAML, scenario_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.scenario import (
    Problem,
    Scenario,
    ScenarioError,
    dump_scenario,
    load_scenario,
    parse_scenario,
    validate,
)


def problems_of(exc_info: pytest.ExceptionInfo[ScenarioError]) -> dict[str, Problem]:
    return {p.path: p for p in exc_info.value.problems}


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of ``text`` containing ``needle``."""
    for n, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in text")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- what loads ----------------------------------------------------------------------


def test_baseline_loads_with_two_signatories_and_every_reference_resolved():
    s = load_scenario(BASELINE)
    assert s.name == "baseline"
    assert s.signatories == ["russia", "united_states"]
    assert s.start == dt.date(2025, 11, 1) and s.horizon_days == 730
    assert s.topics["start"].deadline.date == dt.date(2026, 2, 5)
    assert set(s.tracks["summit"].venues) <= set(s.venues)


def test_minimal_fixture_is_valid(minimal):
    s = validate(minimal)
    assert isinstance(s, Scenario)
    assert s.signatories == ["a", "b"]


def test_minimal_yaml_parses_and_fills_defaults(minimal_yaml):
    s = parse_scenario(minimal_yaml)
    assert s.tracks["t"].cadence == "exponential"  # the default
    assert s.tracks["t"].first_day is None
    assert s.bargaining.protocol == "concession"
    assert s.sides["a"].topics["x"].opening is None
    assert s.sides["a"].topics["x"].beta == 1.0  # tactic linear


def test_dumped_scenario_loads_back_to_the_same_scenario():
    s = load_scenario(BASELINE)
    assert parse_scenario(dump_scenario(s)) == s


def test_tactic_names_stand_for_faratin_betas_unless_concession_is_given(minimal):
    for tactic, beta in (("boulware", 0.2), ("linear", 1.0), ("conceder", 5.0)):
        s = scenario_of(minimal, sides__a__topics__x__tactic=tactic)
        assert s.sides["a"].topics["x"].beta == beta
    s = scenario_of(minimal, sides__a__topics__x__tactic="boulware",
                    sides__a__topics__x__concession=3.0)
    assert s.sides["a"].topics["x"].beta == 3.0


# --- problems, each with its dotted path ---------------------------------------------


def test_unknown_key_is_reported_at_its_path(minimal):
    minimal["tracks"]["t"]["colour"] = "red"
    with pytest.raises(ScenarioError) as exc:
        validate(minimal)
    p = problems_of(exc)["tracks.t.colour"]
    assert p.message == "unknown key"


def test_out_of_range_number_names_path_value_and_bound(minimal):
    minimal["sides"]["a"]["topics"]["x"]["ideal"] = 1.4
    with pytest.raises(ScenarioError) as exc:
        validate(minimal)
    problem = problems_of(exc)["sides.a.topics.x.ideal"]
    assert str(problem) == "sides.a.topics.x.ideal: 1.4 is above 1.0"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("tracks.t.cancel_prob", -0.1, "-0.1 is below 0.0"),
        ("tracks.t.cadence_days", 0, "0 is below 1.0"),
        ("sides.b.discount", 1.0, "1.0 must be less than 1.0"),
        ("tracks.t.kind", "dinner", "'dinner' is not one of"),
        ("horizon_days", "long", "'long' is text, not a number"),
        ("horizon_days", 30.5, "Input should be a valid integer"),
    ],
)
def test_bad_values_are_reported_at_their_path(minimal, path, value, message):
    data = copy.deepcopy(minimal)
    node = data
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    with pytest.raises(ScenarioError) as exc:
        validate(data)
    assert message in problems_of(exc)[path].message


def test_missing_required_key_is_reported(minimal):
    del minimal["climate"]["initial_tension"]
    with pytest.raises(ScenarioError) as exc:
        validate(minimal)
    assert problems_of(exc)["climate.initial_tension"].message == "required key is missing"


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        (lambda d: d["tracks"]["t"]["authority"].append("nope"),
         "tracks.t.authority.1", "'nope' is not a defined topic"),
        (lambda d: d["tracks"]["t"].update(venues=["atlantis"]),
         "tracks.t.venues.0", "'atlantis' is not a defined venue"),
        (lambda d: d.update(venues={"v": {"label": "V", "acceptability": {"zed": 0.5}}}),
         "venues.v.acceptability.zed", "'zed' is not a defined signatory side"),
        (lambda d: d.update(shocks={"s": {"label": "S", "rate_per_year": 1, "tension": 0.1,
                                          "source": "zed"}}),
         "shocks.s.source", "'zed' is not a defined side"),
        (lambda d: d["sides"]["a"]["topics"].update(q={"ideal": 0.5, "reservation": 0.5}),
         "sides.a.topics.q", "'q' is not a defined topic"),
        (lambda d: d["tracks"]["t"].update(requires={"convergence": 0.5, "topics": ["q"]}),
         "tracks.t.requires.topics.0", "'q' is not a defined topic"),
        (lambda d: d["sides"]["a"]["topics"]["x"].pop("reservation"),
         "sides.a.topics.x.reservation", "a signatory needs a reservation point"),
        (lambda d: d["sides"]["b"].update(topics={}),
         "sides.b.topics", "no position on topic 'x'"),
    ],
    ids=["topic", "venue", "venue-side", "shock-side", "position-topic", "requires-topic",
         "no-reservation", "no-position"],
)
def test_undefined_references_are_reported_at_their_path(minimal, edit, path, message):
    edit(minimal)
    with pytest.raises(ScenarioError) as exc:
        validate(minimal)
    assert problems_of(exc)[path].message == message


def test_influence_on_a_side_that_is_not_a_signatory_is_refused(minimal):
    minimal["sides"]["c"] = {"label": "C", "role": "influencer",
                             "topics": {"x": {"ideal": 0.5, "influence": {"d": 0.3}}}}
    with pytest.raises(ScenarioError) as exc:
        validate(minimal)
    assert problems_of(exc)["sides.c.topics.x.influence.d"].message == (
        "'d' is not a defined signatory side")


def test_exactly_two_signatories_are_required(minimal):
    minimal["sides"]["c"] = {"label": "C", "topics": {"x": {"ideal": 0.5, "reservation": 0.5}}}
    with pytest.raises(ScenarioError) as exc:
        validate(minimal)
    assert any("exactly two sides" in p.message for p in exc.value.problems)


def test_reservation_better_than_ideal_is_inconsistent(minimal):
    # a wants high values (ideal 1.0 > b's 0.0); a reservation above its ideal makes no sense
    minimal["sides"]["a"]["topics"]["x"].update(ideal=0.6, reservation=0.8)
    with pytest.raises(ScenarioError) as exc:
        validate(minimal)
    assert "better than the ideal" in problems_of(exc)["sides.a.topics.x.reservation"].message


def test_opening_worse_than_reservation_is_inconsistent(minimal):
    minimal["sides"]["b"]["topics"]["x"]["opening"] = 0.9  # b wants low; 0.9 > reservation 0.7
    with pytest.raises(ScenarioError) as exc:
        validate(minimal)
    assert "worse than the reservation" in problems_of(exc)["sides.b.topics.x.opening"].message


@pytest.mark.parametrize("date", ["2025-06-01", "2026-01-01"])
def test_deadline_not_after_the_start_is_refused(minimal_yaml, date):
    text = minimal_yaml.replace(
        "      high: everything\n",
        f"      high: everything\n    deadline:\n      date: {date}\n      default: 0.0\n")
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(text)
    p = problems_of(exc)["topics.x.deadline.date"]
    assert p.message == f"{date} is not after the scenario start 2026-01-01"
    assert p.line == line_of(text, "date: 20")


@pytest.mark.parametrize("date", ["2027-01-01", "2027-06-01"])
def test_deadline_at_or_after_the_end_of_the_horizon_is_allowed(minimal_yaml, date):
    text = minimal_yaml.replace(
        "      high: everything\n",
        f"      high: everything\n    deadline:\n      date: {date}\n      default: 0.0\n")
    assert parse_scenario(text).topics["x"].deadline.date == dt.date.fromisoformat(date)


def test_deadline_before_start_is_refused_when_dates_are_strings(minimal):
    # dicts from JSON or quoted YAML carry dates as strings; the check must not depend on it
    minimal["topics"]["x"]["deadline"] = {"date": "2025-06-01", "default": 0.0}
    with pytest.raises(ScenarioError) as exc:
        validate(minimal)
    assert "is not after the scenario start" in problems_of(exc)["topics.x.deadline.date"].message


def test_start_with_a_time_of_day_is_a_scenario_error_not_a_crash(minimal_yaml):
    text = minimal_yaml.replace(
        "start: 2026-01-01",
        "start: 2026-01-01 10:00:00").replace(
        "      high: everything\n",
        "      high: everything\n    deadline:\n      date: 2026-06-01\n      default: 0.0\n")
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(text)
    assert "start" in problems_of(exc)


def test_several_problems_in_one_file_are_all_reported_with_their_lines(tmp_path):
    text = (MINIMAL_YAML
            .replace("horizon_days: 365\n", "horizon_days: 365\ncolour: blue\n")
            .replace("        ideal: 1.0\n", "        ideal: 1.4\n")
            .replace("    authority: [x]\n", "    authority: [x, y]\n    venues: [atlantis]\n"))
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    found = problems_of(exc)
    expected = {
        "colour": line_of(text, "colour: blue"),
        "sides.a.topics.x.ideal": line_of(text, "ideal: 1.4"),
        "tracks.t.authority.1": line_of(text, "authority: [x, y]"),
        "tracks.t.venues.0": line_of(text, "venues: [atlantis]"),
    }
    assert set(found) == set(expected)
    for path_, line in expected.items():
        assert found[path_].line == line, path_
        assert found[path_].file == str(path)
    # the message lists every problem, each prefixed by file and line
    assert str(exc.value).count(str(path)) == 4


def test_malformed_yaml_is_reported_with_its_line(tmp_path):
    path = write(tmp_path, "broken.yaml", "name: mini\nstart: [2026-01-01\nhorizon_days: 3\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    (p,) = exc.value.problems
    assert p.message.startswith("malformed YAML")
    assert p.file == str(path) and p.line == 3


def test_yaml_tags_that_construct_python_objects_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    text = f'name: mini\nstart: !!python/object/apply:os.system ["touch {marker}"]\n'
    path = write(tmp_path, "evil.yaml", text)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    (p,) = exc.value.problems
    assert "tags that construct objects are not allowed" in p.message
    assert p.line == 2
    assert not marker.exists()
    with pytest.raises(ScenarioError):
        parse_scenario(text)


def test_a_scenario_must_be_a_mapping(tmp_path):
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(tmp_path, "list.yaml", "- a\n- b\n"))
    assert "must be a mapping" in exc.value.problems[0].message


def test_missing_file_is_a_scenario_error(tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    (p,) = exc.value.problems
    assert p.file == str(path)
    assert "cannot read scenario file" in p.message


def test_undecodable_file_is_a_scenario_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert "cannot read scenario file" in exc.value.problems[0].message


def test_directory_instead_of_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError) as exc:
        load_scenario(tmp_path)
    assert "cannot read scenario file" in exc.value.problems[0].message


# --- extends and overrides -------------------------------------------------------------


def test_extends_inherits_and_overrides_key_by_key(tmp_path):
    write(tmp_path, "base.yaml", MINIMAL_YAML)
    (tmp_path / "variants").mkdir()
    child = write(tmp_path, "variants/child.yaml",
                  "extends: ../base.yaml\nname: child\ntracks:\n  t:\n    cancel_prob: 0.4\n")
    s = load_scenario(child)
    base = load_scenario(tmp_path / "base.yaml")
    assert s.name == "child"
    assert s.tracks["t"].cancel_prob == 0.4
    # everything else of t is inherited, not replaced by the child's mapping
    assert s.tracks["t"].cadence_days == base.tracks["t"].cadence_days == 30
    assert s.tracks["t"].authority == ["x"]
    assert s.sides == base.sides and s.topics == base.topics


def test_extends_chain_of_three_applies_nearest_last(tmp_path):
    write(tmp_path, "base.yaml", MINIMAL_YAML)
    write(tmp_path, "mid.yaml", "extends: base.yaml\nhorizon_days: 200\nseed: 5\n")
    leaf = write(tmp_path, "leaf.yaml", "extends: mid.yaml\nseed: 9\n")
    s = load_scenario(leaf)
    assert (s.horizon_days, s.seed, s.name) == (200, 9, "mini")


def test_problem_in_an_inherited_file_points_to_that_file_and_line(tmp_path):
    text = MINIMAL_YAML.replace("        reservation: 0.7\n", "        reservation: 7\n")
    base = write(tmp_path, "base.yaml", text)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nname: child\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(child)
    p = problems_of(exc)["sides.b.topics.x.reservation"]
    assert p.file == str(base)
    assert p.line == line_of(text, "reservation: 7")


def test_cycle_in_extends_is_reported_at_the_extends_that_closes_it(tmp_path):
    write(tmp_path, "one.yaml", "extends: two.yaml\nname: one\n")
    two = write(tmp_path, "two.yaml", "name: two\nextends: one.yaml\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(tmp_path / "one.yaml")
    (p,) = exc.value.problems
    assert p.path == "extends"
    assert "cycle in extends: one.yaml -> two.yaml -> one.yaml" in p.message
    assert p.file == str(two) and p.line == 2


def test_a_file_extending_itself_is_a_cycle(tmp_path):
    path = write(tmp_path, "self.yaml", "extends: self.yaml\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert "cycle in extends" in exc.value.problems[0].message


def test_extends_of_a_missing_file_is_reported(tmp_path):
    path = write(tmp_path, "orphan.yaml", "extends: gone.yaml\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    (p,) = exc.value.problems
    assert p.file == str(tmp_path / "gone.yaml")
    assert "cannot read scenario file" in p.message


def test_extends_is_not_allowed_in_text(minimal_yaml):
    with pytest.raises(ScenarioError) as exc:
        parse_scenario("extends: base.yaml\n" + minimal_yaml)
    assert exc.value.problems[0].path == "extends"


def test_overrides_as_mapping_set_dotted_keys():
    s = load_scenario(BASELINE, overrides={"tracks.summit.cancel_prob": 0.4, "seed": 7})
    assert s.tracks["summit"].cancel_prob == 0.4 and s.seed == 7


def test_overrides_as_strings_are_parsed_as_yaml_scalars():
    s = load_scenario(BASELINE, overrides=[
        "tracks.summit.cancel_prob=0.4", "tracks.summit.linkage=false",
        "tracks.summit.venues=[riyadh, istanbul]", "description=a b = c",
    ])
    assert s.tracks["summit"].cancel_prob == 0.4
    assert s.tracks["summit"].linkage is False
    assert s.tracks["summit"].venues == ["riyadh", "istanbul"]
    assert s.description == "a b = c"


def test_override_out_of_range_is_reported_as_from_the_command_line():
    with pytest.raises(ScenarioError) as exc:
        load_scenario(BASELINE, overrides=["tracks.summit.cancel_prob=1.5"])
    p = problems_of(exc)["tracks.summit.cancel_prob"]
    assert p.file == "--set" and p.message == "1.5 is above 1.0"


def test_malformed_and_impossible_overrides_are_all_reported():
    with pytest.raises(ScenarioError) as exc:
        load_scenario(BASELINE, overrides=["no_equals_sign", "name.sub=1", "climate.colour=1"])
    found = problems_of(exc)
    assert found["no_equals_sign"].message == "an override is written key.path=value"
    assert "is not a mapping" in found["name.sub"].message
    assert found["climate.colour"].message == "unknown key"


def test_override_into_a_list_by_index():
    s = load_scenario(BASELINE, overrides=["tracks.summit.venues.0=riyadh"])
    assert s.tracks["summit"].venues[0] == "riyadh"
    with pytest.raises(ScenarioError) as exc:
        load_scenario(BASELINE, overrides=["tracks.summit.venues.99=riyadh"])
    assert "is not an index of the list" in exc.value.problems[0].message


# --- property: any mangled scenario is a Scenario or a ScenarioError ------------------

_BASELINE_DATA = yaml.safe_load(BASELINE.read_text(encoding="utf-8"))


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


_ALL_PATHS = _paths(_BASELINE_DATA)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e308, -1e-308, 0.5, 2**63]),
    st.text(max_size=12),
    st.sampled_from(["", "russia", "united_states", "ukraine", "start", "riyadh", "summit",
                     "signatory", "influencer", "fixed", "boulware", "rubinstein"]),
    st.dates(),
    st.datetimes(),
)
_keys = st.one_of(st.text(max_size=10), st.integers(-3, 3),
                  st.sampled_from(["label", "ideal", "reservation", "topics", "russia", "x"]))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=8,
)


def _parent(data: Any, path: tuple) -> Any | None:
    node = data
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node if isinstance(node, (dict, list)) else None


@st.composite
def mutated_baselines(draw) -> dict:
    data = copy.deepcopy(_BASELINE_DATA)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_ALL_PATHS))
        parent = _parent(data, path)
        if parent is None:
            continue
        key = path[-1]
        if isinstance(parent, dict) and key not in parent:
            continue
        if isinstance(parent, list) and key >= len(parent):
            continue
        action = draw(st.sampled_from(["delete", "set", "rename"]))
        if action == "delete":
            del parent[key]
        elif action == "set":
            parent[key] = draw(_values)
        elif isinstance(parent, dict):
            parent[draw(_keys)] = parent.pop(key)
    return data


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_baselines())
def test_any_mutation_of_the_baseline_validates_or_raises_scenario_error(data):
    try:
        result = validate(data)
    except ScenarioError as exc:
        assert exc.problems, "a ScenarioError must list at least one problem"
        assert all(isinstance(p, Problem) and isinstance(p.path, str) for p in exc.problems)
    else:
        assert isinstance(result, Scenario)


def test_non_string_topic_names_are_a_scenario_error(minimal):
    # YAML allows integer keys; the reference checks must not try to sort them with strings
    minimal["topics"][3] = {"label": "Three", "scale": {"low": "l", "high": "h"}}
    del minimal["sides"]["b"]["topics"]
    with pytest.raises(ScenarioError) as exc:
        validate(minimal)
    assert "topics.3" in problems_of(exc)
