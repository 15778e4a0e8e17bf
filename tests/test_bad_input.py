"""Bad input through the command line: every bad scenario, --set or facts file is exit code 2
with a message naming the file, line and dotted path, never a traceback, never accepted.

Most tests use click's CliRunner (in process, fast); those where a missing check would hang
(a named pipe, a billion laughs) run ``sim`` in a subprocess with a timeout.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import MINIMAL_YAML
from helpers_results import SCENARIOS, assert_clean_error, sim_cli

from sim.cli import main
from sim.errors import InputError
from sim.hindcast import load_facts
from sim.scenario import Scenario, ScenarioError, dump_scenario, load_scenario
from sim.scenario.loading import MAX_DEPTH, MAX_EXTENDS, MAX_FILE_BYTES

SHIPPED = sorted(SCENARIOS.glob("*.yaml"))
FACTS = SCENARIOS / "facts" / "hindcast_2025.yaml"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of ``text`` containing ``needle``."""
    for n, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in text")


def sim(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(result: Result, *needles: str) -> str:
    """Assert a clean refusal (exit 2, no traceback) whose output has every needle."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)
    return result.output


def validate_text(tmp_path: Path, text: str) -> tuple[Path, Result]:
    """Write ``text`` to a scenario file and run ``sim validate`` on it."""
    path = write(tmp_path, "bad.yaml", text)
    return path, sim("validate", path)


def test_the_minimal_scenario_is_valid(tmp_path):
    # every test below breaks one thing in it
    _, result = validate_text(tmp_path, MINIMAL_YAML)
    assert result.exit_code == 0, result.output


# --- 1. YAML that asks too much of the loader -------------------------------------------


def laughs(levels: int, width: int) -> str:
    """A 'billion laughs' document: each level is ``width`` aliases of the one before."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_line_where_it_goes_off(tmp_path):
    # 7 levels of 6: 6^7 = 280,000 values from 7 lines; level l6 crosses the limit
    text = MINIMAL_YAML + laughs(7, 6)
    path, result = validate_text(tmp_path, text)
    refused(result, f"{path}:{line_of(text, 'l6: &l6')}: l6: more than 100,000 values once "
                    "aliases are expanded")


def test_billion_laughs_is_refused_quickly(tmp_path):
    path = write(tmp_path, "bomb.yaml", MINIMAL_YAML + laughs(10, 10))  # 10^10 values
    proc = sim_cli("validate", str(path), timeout=60)
    assert_clean_error(proc)
    assert "once aliases are expanded" in proc.stderr


def test_deep_nesting_is_refused_before_the_composer_recurses(tmp_path):
    # PyYAML's composer recurses once per level: 10,000 levels used to be a RecursionError
    text = MINIMAL_YAML + "description: " + "[" * 10_000 + "]" * 10_000 + "\n"
    path, result = validate_text(tmp_path, text)
    refused(result, f"{path}:{line_of(text, 'description')}: nested more than 64 levels deep")


def test_nesting_up_to_the_limit_is_not_refused_for_depth(tmp_path):
    depth = MAX_DEPTH - 1  # plus the top-level mapping
    text = MINIMAL_YAML + "description: " + "[" * depth + "]" * depth + "\n"
    _, result = validate_text(tmp_path, text)
    output = refused(result, "description: Input should be a valid string")
    assert "nested more than" not in output


def test_nesting_through_aliases_is_counted(tmp_path):
    # each anchor is shallow, but every use nests the one before: 8 x 10 levels
    lines = ["n0: &n0 " + "[" * 10 + "]" * 10]
    lines += [f"n{i}: &n{i} " + "[" * 9 + f"*n{i - 1}" + "]" * 9 for i in range(1, 8)]
    text = MINIMAL_YAML + "\n".join(lines) + "\n"
    path, result = validate_text(tmp_path, text)
    refused(result, f"{path}:", "nested more than 64 levels deep through aliases")


def test_an_anchor_used_inside_itself_is_refused(tmp_path):
    text = MINIMAL_YAML + "loop: &loop [*loop]\n"
    path, result = validate_text(tmp_path, text)
    refused(result, f"{path}:{line_of(text, 'loop:')}: nested more than 64 levels deep")


def test_an_override_of_one_use_of_an_anchor_does_not_change_the_others(tmp_path):
    text = MINIMAL_YAML.replace("  t:\n", "  t: &talks\n") + "  u: *talks\n"
    path = write(tmp_path, "anchors.yaml", text)
    s = load_scenario(path, overrides=["tracks.t.cancel_prob=0.5"])
    assert (s.tracks["t"].cancel_prob, s.tracks["u"].cancel_prob) == (0.5, 0.0)


# --- 2. files that are not scenario files ----------------------------------------------


def non_regular_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Paths that are not regular files, with what the error says about each."""
    loop = tmp_path / "loop_a.yaml"
    loop.symlink_to(tmp_path / "loop_b.yaml")
    (tmp_path / "loop_b.yaml").symlink_to(loop)
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    return {"symlink-loop": (loop, "Too many levels of symbolic links"),
            "fifo": (fifo, "it is a named pipe, not a regular file"),
            "dev-zero": (Path("/dev/zero"), "it is a character device, not a regular file"),
            "directory": (folder, "it is a directory, not a regular file")}


KINDS = ["symlink-loop", "fifo", "dev-zero", "directory"]
needs_posix = pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(),
                                 reason="needs named pipes and /dev/zero")


@needs_posix
@pytest.mark.parametrize("kind", KINDS)
def test_extends_of_a_non_regular_file_is_refused_without_opening_it(tmp_path, kind):
    target, reason = non_regular_files(tmp_path)[kind]
    child = write(tmp_path, "child.yaml", f"name: child\nextends: {target}\n")
    proc = sim_cli("validate", str(child), timeout=60)  # opening the pipe would block
    assert_clean_error(proc)
    assert f"{target}: cannot read scenario file: {reason}" in proc.stderr
    assert f"named by extends: in {child}:2" in proc.stderr


@needs_posix
@pytest.mark.parametrize("kind", ["symlink-loop", "fifo", "dev-zero"])
def test_a_scenario_path_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    target, reason = non_regular_files(tmp_path)[kind]
    proc = sim_cli("validate", str(target), timeout=60)
    assert_clean_error(proc)
    assert f"{target}: cannot read scenario file: {reason}" in proc.stderr


@needs_posix
@pytest.mark.parametrize("kind", KINDS)
def test_a_facts_path_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    target, reason = non_regular_files(tmp_path)[kind]
    if kind != "directory":  # click refuses a directory itself, before sim sees it
        proc = sim_cli("hindcast", "--facts", str(target), "--runs", "10", "--out",
                       str(tmp_path / "hc"), timeout=60)
        assert_clean_error(proc)
        assert f"{target}: cannot read facts file: {reason}" in proc.stderr
        assert not (tmp_path / "hc").exists()
    with pytest.raises(InputError, match=f"cannot read facts file: {reason}"):
        load_facts(target)


def test_an_extends_chain_longer_than_the_limit_is_refused(tmp_path):
    write(tmp_path, f"p{MAX_EXTENDS + 1}.yaml", MINIMAL_YAML)
    for i in range(MAX_EXTENDS + 1):
        write(tmp_path, f"p{i}.yaml", f"extends: p{i + 1}.yaml\n")
    refused(sim("validate", tmp_path / "p0.yaml"),
            f"{tmp_path / f'p{MAX_EXTENDS}.yaml'}:1: extends: more than 16 parent files")
    # one fewer is fine
    write(tmp_path, f"p{MAX_EXTENDS}.yaml", MINIMAL_YAML)
    assert sim("validate", tmp_path / "p0.yaml").exit_code == 0


def test_a_file_larger_than_the_limit_is_refused(tmp_path):
    text = MINIMAL_YAML + "description: " + "x" * MAX_FILE_BYTES + "\n"
    path, result = validate_text(tmp_path, text)
    refused(result, f"{path}: cannot read scenario file: larger than 5 MB")


@pytest.mark.parametrize("where", ["scenario", "parent"])
def test_non_utf8_bytes_are_refused_with_their_line(tmp_path, where):
    raw = MINIMAL_YAML.replace("label: Topic X", "label: Caf\xe9").encode("latin-1")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(raw)
    path = bad if where == "scenario" else write(tmp_path, "child.yaml", "extends: latin1.yaml\n")
    refused(sim("validate", path),
            f"{bad}:{line_of(MINIMAL_YAML, 'Topic X')}: cannot read scenario file: not UTF-8 "
            "text (byte 0xe9)")


# --- 3. duplicate keys ------------------------------------------------------------------


def test_duplicate_keys_are_all_reported_at_their_second_line(tmp_path):
    text = (MINIMAL_YAML
            .replace("horizon_days: 365\n", "horizon_days: 365\nhorizon_days: 30\n")
            .replace("climate:\n", "  b:\n    label: Beta again\n    topics: {}\nclimate:\n"))
    path, result = validate_text(tmp_path, text)
    output = refused(result,
                     f"{path}:4: horizon_days: duplicate key (first written at line 3)",
                     f"{path}:{line_of(text, 'Beta again') - 1}: sides.b: duplicate key (first "
                     f"written at line {line_of(text, '  b:')})",
                     "2 problems found")
    assert "Beta again" not in output


def test_a_duplicate_key_in_a_flow_mapping_is_refused(tmp_path):
    text = MINIMAL_YAML.replace("ideal: 1.0", "ideal: 1.0\n        x2: {a: 1, a: 2}")
    path, result = validate_text(tmp_path, text)
    refused(result, f"{path}:{line_of(text, 'x2:')}: sides.a.topics.x.x2.a: duplicate key")


# --- 4. values of the wrong type ----------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "path", "message"), [
    ("horizon_days: 365", "horizon_days: yes", "horizon_days",
     "true is a boolean (yes/no, true/false, on/off), not a number"),
    ("cadence_days: 30", "cadence_days: 30\n    cancel_prob: true", "tracks.t.cancel_prob",
     "true is a boolean"),
    ("horizon_days: 365", 'horizon_days: "30"', "horizon_days",
     "'30' is text, not a number (write it without quotes)"),
    ("ideal: 1.0", "ideal: '1.0'", "sides.a.topics.x.ideal", "'1.0' is text, not a number"),
    ("cadence_days: 30", "cadence_days: 30\n    linkage: 1", "tracks.t.linkage",
     "1 is not a boolean (write true or false)"),
    ("cadence_days: 30", "cadence_days: 30\n    linkage: 'yes'", "tracks.t.linkage",
     "'yes' is not a boolean"),
    ("start: 2026-01-01", "start: 1767225600", "start", "1767225600 is not a date"),
], ids=["horizon-yes", "cancel-prob-true", "horizon-text", "ideal-text", "linkage-1",
        "linkage-text", "start-number"])
def test_a_value_of_the_wrong_type_is_refused_not_converted(tmp_path, old, new, path, message):
    text = MINIMAL_YAML.replace(old, new, 1)
    file, result = validate_text(tmp_path, text)
    line = line_of(text, new.splitlines()[-1].strip())
    refused(result, f"{file}:{line}: {path}: {message}")


def test_a_boolean_override_of_a_number_is_refused():
    refused(sim("validate", SCENARIOS / "baseline.yaml", "--set", "runs=on"),
            "--set runs: true is a boolean")


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenarios_survive_the_json_round_trip_of_the_workers(path):
    s = load_scenario(path)
    again = Scenario.model_validate_json(s.model_dump_json())
    assert again == s
    assert isinstance(again.start, dt.date) and again.start == s.start


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenarios_survive_the_yaml_round_trip_of_results_folders(tmp_path, path):
    s = load_scenario(path)
    saved = write(tmp_path, "scenario.yaml", dump_scenario(s))  # as Results.save writes it
    assert load_scenario(saved) == s


# --- 5. impossible and far dates -----------------------------------------------------------


def with_deadline(date: str) -> str:
    return MINIMAL_YAML.replace(
        "      high: everything\n",
        f"      high: everything\n    deadline:\n      date: {date}\n      default: 0.0\n")


def test_impossible_dates_are_all_refused_with_their_lines(tmp_path):
    text = with_deadline("2026-13-01").replace("start: 2026-01-01", "start: 2025-02-30")
    path, result = validate_text(tmp_path, text)
    refused(result,
            f"{path}:2: start: 2025-02-30 is not a valid date (day is out of range for month)",
            f"{path}:{line_of(text, '2026-13-01')}: topics.x.deadline.date: 2026-13-01 is not "
            "a valid date (month must be in 1..12)")


def test_an_impossible_date_in_an_override_names_the_override():
    refused(sim("validate", SCENARIOS / "baseline.yaml", "--set", "start=2025-02-30"),
            "--set start: 2025-02-30 is not a valid date")


@pytest.mark.parametrize(("start", "deadline", "path", "value"), [
    ("9999-01-01", None, "start", "9999-01-01"),
    ("1899-12-31", None, "start", "1899-12-31"),
    ("2026-01-01", "9999-12-31", "topics.x.deadline.date", "9999-12-31"),
])
def test_dates_outside_the_sane_range_are_refused(tmp_path, start, deadline, path, value):
    text = with_deadline(deadline) if deadline else MINIMAL_YAML
    text = text.replace("start: 2026-01-01", f"start: {start}")
    file, result = validate_text(tmp_path, text)
    refused(result, f"{file}:{line_of(text, value)}: {path}: {value} is outside "
                    "1900-01-01 .. 2200-12-31")


def test_a_far_start_is_refused_for_the_trace_too(tmp_path):
    # start + horizon used to overflow datetime.date deep inside the run
    path = write(tmp_path, "far.yaml", MINIMAL_YAML.replace("start: 2026-01-01", "start: 9999-06-01"))
    refused(sim("trace", path), f"{path}:2: start: 9999-06-01 is outside")


# --- 6. YAML tags and keys ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "tag"), [
    ("!!binary aGVsbG8=", "!!binary"),
    ("!!set {a, b}", "!!set"),
    ("!!omap [a: 1]", "!!omap"),
    ("!!pairs [a: 1]", "!!pairs"),
    ("!!python/name:os.system", "!!python/name:os.system"),
], ids=["binary", "set", "omap", "pairs", "python"])
def test_tags_that_construct_objects_are_refused(tmp_path, value, tag):
    text = MINIMAL_YAML + f"venues:\n  v:\n    label: {value}\n"
    path, result = validate_text(tmp_path, text)
    refused(result, f"{path}:{line_of(text, value)}: venues.v.label: YAML tag {tag} is not "
                    "allowed")


def test_a_binary_venue_name_is_not_accepted(tmp_path):
    # !!binary used to become bytes, and bytes passed as a name
    text = MINIMAL_YAML.replace("authority: [x]", "authority: [x]\n    venues: [!!binary dg==]")
    text += "venues:\n  v: {label: V}\n"
    path, result = validate_text(tmp_path, text)
    refused(result, f"{path}:{line_of(text, 'dg==')}: tracks.t.venues.0: YAML tag !!binary")


@pytest.mark.parametrize(("key", "kind"), [("3", "an integer"), ("yes", "a boolean"),
                                           ("2026-01-01", "a date"), ("~", "null")])
def test_mapping_keys_that_are_not_names_are_refused_with_their_line(tmp_path, key, kind):
    text = MINIMAL_YAML.replace("    label: Alpha\n", f"    label: Alpha\n    {key}: 1\n")
    path, result = validate_text(tmp_path, text)
    refused(result, f"{path}:{line_of(text, f'{key}: 1')}: sides.a: the key '{key}' is read as "
                    f"{kind}, not a name")


def test_a_list_as_a_mapping_key_is_refused(tmp_path):
    text = MINIMAL_YAML + "? [a, b]\n: 1\n"
    path, result = validate_text(tmp_path, text)
    refused(result, f"{path}:{line_of(text, '? [a, b]')}: a mapping key must be a name")


@pytest.mark.parametrize("value", ["!!binary aGVsbG8=", "!!str mini", "!!int 3", "!custom x",
                                   "[a, !!str b]"])
def test_any_tag_in_an_override_is_refused_and_names_the_override(value):
    refused(sim("validate", SCENARIOS / "baseline.yaml", "--set", f"name={value}"),
            "--set name: YAML tag", "is not allowed in a --set value")


def test_an_override_value_that_is_not_yaml_is_taken_as_text():
    s = load_scenario(SCENARIOS / "baseline.yaml", overrides=["description=[unclosed"])
    assert s.description == "[unclosed"


# --- 7. problems caused by --set name the --set ------------------------------------------------


def test_an_out_of_range_override_names_the_override_not_the_file_line():
    output = refused(sim("validate", SCENARIOS / "baseline.yaml",
                         "--set", "tracks.summit.cancel_prob=1.5"),
                     "error: --set tracks.summit.cancel_prob: 1.5 is above 1.0")
    assert "baseline.yaml" not in output


def test_keys_below_an_override_that_replaced_a_mapping_name_the_override():
    output = refused(sim("validate", SCENARIOS / "baseline.yaml",
                         "--set", "tracks.summit={label: Summit, cadence_days: 0}"),
                     "--set tracks.summit.kind: required key is missing",
                     "--set tracks.summit.cadence_days: 0 is below 1.0")
    assert "baseline.yaml" not in output


def test_keys_missing_from_a_mapping_an_override_created_name_the_override():
    output = refused(sim("validate", SCENARIOS / "baseline.yaml",
                         "--set", "tracks.extra.label=Extra"),
                     "--set tracks.extra.kind: required key is missing")
    assert "baseline.yaml" not in output


def test_an_override_into_a_null_value_is_not_lost(tmp_path):
    text = MINIMAL_YAML.replace("authority: [x]", "authority: [x]\n    requires:")
    path = write(tmp_path, "null.yaml", text)
    s = load_scenario(path, overrides=["tracks.t.requires.convergence=0.5",
                                       "tracks.t.requires.topics=[x]"])
    assert s.tracks["t"].requires is not None and s.tracks["t"].requires.convergence == 0.5


def test_an_override_with_an_empty_key_part_is_refused():
    refused(sim("validate", SCENARIOS / "baseline.yaml", "--set", "tracks..summit=1"),
            "--set tracks..summit: not a dotted key path")


# --- 8. every problem at once -----------------------------------------------------------------


def test_structural_and_consistency_problems_are_reported_together_once(tmp_path):
    text = (with_deadline("2025-06-01")
            .replace("horizon_days: 365", "horizon_days: lots")
            .replace("        ideal: 1.0\n        reservation: 0.3\n",
                     "        ideal: 0.6\n        reservation: 0.8\n")
            .replace("        ideal: 0.0\n        reservation: 0.7\n",
                     "        ideal: 0.0\n        opening: 0.9\n        reservation: 0.7\n"))
    path, result = validate_text(tmp_path, text)
    output = refused(
        result,
        f"{path}:3: horizon_days: 'lots' is text, not a number",
        f"{path}:{line_of(text, 'reservation: 0.8')}: sides.a.topics.x.reservation: 0.8 is "
        "better than the ideal 0.6",
        f"{path}:{line_of(text, 'opening: 0.9')}: sides.b.topics.x.opening: 0.9 is worse than "
        "the reservation 0.7",
        f"{path}:{line_of(text, 'date: 2025')}: topics.x.deadline.date: 2025-06-01 is not after "
        "the scenario start 2026-01-01",
        "4 problems found")
    for needle in ("horizon_days:", "better than the ideal", "worse than", "not after"):
        assert output.count(needle) == 1, needle


# --- 9. fields without an effect are not in the language -----------------------------------------


def test_an_agenda_is_refused_with_what_to_write_instead(tmp_path):
    text = MINIMAL_YAML.replace("    authority: [x]\n", "    agenda: [x]\n    authority: [x]\n")
    path, result = validate_text(tmp_path, text)
    output = refused(result, f"{path}:{line_of(text, 'agenda')}: tracks.t.agenda: removed: list "
                             "the topics this track can settle in 'authority'",
                     "1 problem found")
    assert "unknown key" not in output


def test_no_shipped_scenario_has_an_agenda():
    for path in SHIPPED:
        assert "agenda:" not in path.read_text(encoding="utf-8"), path.name


# --- 10. names that cannot become file names ------------------------------------------------------


LONG = "n" * 65


@pytest.mark.parametrize(("old", "new", "path"), [
    ("name: mini", f"name: {LONG}", "name"),
    ("  x:\n    label: Topic X", f"  {LONG}:\n    label: Topic X", f"topics.{LONG}"),
    ("  b:\n", f"  {LONG}:\n", f"sides.{LONG}"),
    ("  t:\n", f"  {LONG}:\n", f"tracks.{LONG}"),
    ("authority: [x]", "authority: [x]\nvenues:\n  " + LONG + ": {label: V}", f"venues.{LONG}"),
    ("authority: [x]", "authority: [x]\nshocks:\n  " + LONG
     + ": {label: S, rate_per_year: 1, tension: 0.1}", f"shocks.{LONG}"),
], ids=["scenario", "topic", "side", "track", "venue", "shock"])
def test_a_name_longer_than_the_limit_is_refused(tmp_path, old, new, path):
    text = MINIMAL_YAML.replace(old, new, 1)
    file, result = validate_text(tmp_path, text)
    refused(result, f"{file}:{line_of(text, LONG)}: {path}: ", "is longer than 64 characters")


def test_a_name_of_64_characters_is_fine(tmp_path):
    _, result = validate_text(tmp_path, MINIMAL_YAML.replace("name: mini", "name: " + "n" * 64))
    assert result.exit_code == 0, result.output


# --- 11. facts files ------------------------------------------------------------------------------


def hindcast(tmp_path: Path, facts_text: str | bytes) -> tuple[Path, str]:
    facts = tmp_path / "facts.yaml"
    if isinstance(facts_text, bytes):
        facts.write_bytes(facts_text)
    else:
        facts.write_text(facts_text, encoding="utf-8")
    out = tmp_path / "hc"
    result = CliRunner().invoke(main, ["hindcast", str(SCENARIOS / "hindcast_2025.yaml"),
                                       "--facts", str(facts), "--runs", "10", "--out", str(out)])
    output = refused(result)
    assert not out.exists(), "the facts are read before anything runs"
    return facts, output


def test_every_problem_in_a_facts_file_is_reported_with_its_line(tmp_path):
    text = ("facts:\n"
            "  - {label: a, kind: guessed, topic: start}\n"
            "  - {label: b, track: calls, count: held, by: 2025-03-01, observed: yes}\n"
            "  - {label: c, topic: start, state: agreed, by: 2025-03-01, colour: red}\n"
            "  - {label: d, topic: start, by: 2025-03-01}\n")
    facts, output = hindcast(tmp_path, text)
    for line, message in ((2, "facts.0.kind: 'guessed': the dated format has no kind"),
                          (3, "facts.1.observed: true is not a count"),
                          (4, "facts.2.colour: unknown key"),
                          (5, "facts.3: a topic item needs one of state: or value_above:")):
        assert f"{facts}:{line}: {message}" in output


def test_duplicate_keys_in_a_facts_file_are_refused(tmp_path):
    text = "facts:\n  - label: a\n    kind: agreed\n    kind: not_agreed\n    topic: start\n"
    facts, output = hindcast(tmp_path, text)
    assert f"{facts}:4: facts.0.kind: duplicate key (first written at line 3)" in output


def test_malformed_yaml_in_a_facts_file_is_refused_with_its_line(tmp_path):
    facts, output = hindcast(tmp_path, "facts:\n  - {label: a, kind: agreed}\n\t- x\n")
    assert f"{facts}:3: malformed YAML: found character '\\t' that cannot start any token" in output


def test_non_utf8_facts_are_refused_with_their_line(tmp_path):
    facts, output = hindcast(tmp_path, b"facts:\n  - {label: caf\xe9, kind: agreed, topic: x}\n")
    assert f"{facts}:2: cannot read facts file: not UTF-8 text (byte 0xe9)" in output


def test_a_facts_file_that_is_not_a_mapping_is_refused(tmp_path):
    facts, output = hindcast(tmp_path, "- {label: a, kind: agreed, topic: start}\n")
    assert f"{facts}:1: a facts file is a mapping with the key 'facts'" in output


def test_the_shipped_facts_still_load():
    assert len(load_facts(FACTS)) == 14


def test_the_library_raises_one_scenario_error_with_located_problems(tmp_path):
    # the library API behind the CLI: one exception listing every problem
    path = write(tmp_path, "dup.yaml", MINIMAL_YAML + "name: again\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    (p,) = exc.value.problems
    assert (p.file, p.path) == (str(path), "name")
    assert p.line == line_of(MINIMAL_YAML + "name: again\n", "name: again")


def test_a_facts_file_larger_than_the_limit_is_refused(tmp_path):
    facts, output = hindcast(tmp_path, "facts: []\n# " + "x" * MAX_FILE_BYTES + "\n")
    assert f"{facts}: cannot read facts file: larger than 5 MB (the limit)" in output
