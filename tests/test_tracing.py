"""One run's trace: the tension printed at held meetings, and the kinds ``sim trace --kind`` knows."""

from __future__ import annotations

import ast
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BASELINE, REPO, lines_of, scenario_of, traces

from sim.cli import main
from sim.errors import InputError
from sim.model import compile_scenario, simulate
from sim.model.world import run_world
from sim.scenario import load_scenario
from sim.tracing import TRACE_KINDS, check_kinds, render_trace

SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
WORLD_PY = REPO / "sim" / "model" / "world.py"
_TENSION = re.compile(r"\(tension (\d\.\d\d)\)$")


def _held_tensions(trace) -> list[float]:
    values = []
    for event in lines_of(trace, "held"):
        m = _TENSION.search(event.text)
        assert m, f"a held meeting without its tension: {event.text!r}"
        values.append(float(m.group(1)))
    return values


# --- the tension at held meetings ----------------------------------------------------------


def test_held_meetings_show_the_tension_at_the_meeting_before_its_relief(minimal):
    # tension starts at its equilibrium 0.6; each meeting takes 0.1 off, and the deviation
    # halves in the 30 days to the next meeting: 0.60, 0.55, 0.525, ...
    s = scenario_of(minimal, climate__initial_tension=0.6, climate__equilibrium=0.6,
                    climate__meeting_relief=0.1, climate__reversion_half_life_days=30.0,
                    tracks__t__max_meetings=6)
    (trace,) = traces(s, 1)
    shown = _held_tensions(trace)
    expected, deviation = [], 0.0
    for _ in range(6):
        expected.append(0.6 - deviation)
        deviation = (deviation + 0.1) / 2
    assert shown == pytest.approx(expected, abs=0.005 + 1e-9)
    assert lines_of(trace, "held")[0].text == "Talks: meeting held (tension 0.60)"


def test_held_meetings_with_a_venue_show_it_before_the_tension():
    out = simulate(load_scenario(BASELINE), run=3, trace=True)
    texts = [e.text for e in lines_of(out.trace, "held")]
    assert any(re.search(r": meeting held in [^(]+ \(tension \d\.\d\d\)$", t) for t in texts)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_held_meeting_shows_a_tension_within_the_runs_range(path):
    s = load_scenario(path)
    for run in range(20):
        out = simulate(s, run=run, trace=True)
        for value in _held_tensions(out.trace):
            assert 0.0 <= value <= out["tension_peak"] + 0.005


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_tracing_changes_no_bit_of_the_outcome_record(path):
    # the trace reads tension at held meetings: that must move no draw and no state
    s = load_scenario(path)
    world = compile_scenario(s)
    for run in range(60):
        plain, no_trace = run_world(world, s.seed, run)
        traced, trace = run_world(world, s.seed, run, trace=True)
        assert no_trace is None and trace
        # pickles compare floats bit for bit, NaN included
        assert pickle.dumps(plain) == pickle.dumps(traced), f"{path.name}, run {run}"


# --- the known kinds -----------------------------------------------------------------------


def _note_kinds() -> tuple[set[str], int]:
    """Return the literal kinds of the note() calls in world.py and how many are not literals."""
    literal, other = set(), 0
    for node in ast.walk(ast.parse(WORLD_PY.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "note"):
            kind = node.args[1]
            if isinstance(kind, ast.Constant) and isinstance(kind.value, str):
                literal.add(kind.value)
            else:
                other += 1
    return literal, other


def test_trace_kinds_are_the_kinds_world_py_writes():
    literal, other = _note_kinds()
    assert len(TRACE_KINDS) == len(set(TRACE_KINDS))
    assert literal <= set(TRACE_KINDS)
    # the one computed kind is a disrupted meeting's fate: "cancelled" or "derailed"
    assert other == 1
    assert set(TRACE_KINDS) == literal | {"derailed"}


def test_every_kind_traced_runs_of_the_shipped_scenarios_emit_is_known():
    seen: set[str] = set()
    for path in SCENARIOS:
        s = load_scenario(path)
        for trace in traces(s, 40, seed=s.seed):
            kinds = {e.kind for e in trace}
            assert kinds <= set(TRACE_KINDS), (path.name, kinds - set(TRACE_KINDS))
            seen |= kinds
    assert seen == set(TRACE_KINDS)  # and every known kind does occur


def test_check_kinds():
    assert check_kinds(()) is None
    assert check_kinds(["held", "not ready", "held"]) == {"held", "not ready"}
    with pytest.raises(InputError, match=r"--kind 'nope': unknown event kind; the kinds are"):
        check_kinds(["held", "nope"])


def test_render_trace_keeps_only_the_kinds_asked_for():
    s = load_scenario(BASELINE)
    out = simulate(s, run=3, trace=True)
    text = render_trace(s, out, seed=s.seed, run=3, kinds={"held", "veto"})
    timeline = text.split("\n\n")[1].splitlines()
    assert timeline and all(re.search(r"  (held|veto) +  ", line) for line in timeline)


# --- sim trace --kind ----------------------------------------------------------------------


def _trace(*args: str):
    return CliRunner().invoke(main, ["trace", str(BASELINE), "--run", "3", *args])


def test_trace_kind_shows_only_those_events():
    result = _trace("--kind", "held", "--kind", "not ready")
    assert result.exit_code == 0, result.output
    timeline = result.stdout.split("\n\n")[1].splitlines()
    kinds = {re.split(r"\s{2,}", line)[2] for line in timeline}
    assert kinds == {"held", "not ready"}
    assert all("(tension " in line for line in timeline if "  held  " in line)


@pytest.mark.parametrize("kinds", [["helld"], ["held", "meeting"], ["nope", "Held"]])
def test_trace_unknown_kind_exits_2_listing_the_known_kinds(kinds):
    args = [a for k in kinds for a in ("--kind", k)]
    result = _trace(*args)
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # not an uncaught error
    assert "Traceback" not in result.output
    assert result.stdout == ""  # no timeline at all
    message = result.stderr
    assert message.startswith("error: --kind ")
    unknown = sorted(set(kinds) - set(TRACE_KINDS))
    assert all(repr(k) in message.split("; the kinds are")[0] for k in unknown)
    listed = message.split("the kinds are", 1)[1]
    for kind in TRACE_KINDS:
        assert repr(kind) in listed


def test_trace_help_lists_the_known_kinds():
    result = CliRunner().invoke(main, ["trace", "--help"])
    assert result.exit_code == 0
    help_text = " ".join(result.output.split())
    assert "Event kinds for --kind: " + ", ".join(TRACE_KINDS) + "." in help_text


def test_trace_unknown_kind_exits_2_from_the_installed_command(tmp_path):
    sim = Path(sys.executable).parent / "sim"
    proc = subprocess.run([str(sim), "trace", str(BASELINE), "--kind", "bogus"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert "'bogus'" in proc.stderr and "'not ready'" in proc.stderr
