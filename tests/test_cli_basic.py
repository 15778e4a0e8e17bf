"""The ``sim`` command line, run as a user would: exit codes, output, no tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import BASELINE, MINIMAL_YAML, REPO


def sim(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_help_lists_the_commands():
    proc = sim("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("validate", "schema", "trace"):
        assert command in proc.stdout


def test_validate_accepts_the_baseline():
    proc = sim("validate", "scenarios/baseline.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "valid scenario 'baseline'" in proc.stdout


def test_validate_rejects_a_bad_file_with_path_and_line_and_exit_code_2(tmp_path):
    text = MINIMAL_YAML.replace("        ideal: 1.0\n", "        ideal: 1.4\n").replace(
        "horizon_days: 365\n", "horizon_days: 365\ncolour: blue\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    proc = sim("validate", str(bad))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"{bad}:16: sides.a.topics.x.ideal: 1.4 is above 1.0" in proc.stderr
    assert f"{bad}:4: colour: unknown key" in proc.stderr
    assert "2 problems found" in proc.stderr


def test_validate_reports_a_bad_override_as_bad_input():
    proc = sim("validate", str(BASELINE), "--set", "tracks.summit.cancel_prob=2")
    assert proc.returncode == 2
    assert "tracks.summit.cancel_prob" in proc.stderr and "Traceback" not in proc.stderr


def test_validate_reports_a_missing_file_without_a_traceback(tmp_path):
    proc = sim("validate", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2
    assert "cannot read scenario file" in proc.stderr and "Traceback" not in proc.stderr


def test_schema_prints_the_json_schema_of_scenarios():
    proc = sim("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert "properties" in schema
    assert {"topics", "sides", "tracks", "climate"} <= set(schema["properties"])


def test_trace_prints_a_dated_timeline_and_the_outcome_by_topic():
    proc = sim("trace", "scenarios/baseline.yaml", "--run", "2")
    assert proc.returncode == 0, proc.stderr
    dated = [line for line in proc.stdout.splitlines() if re.match(r"\d{4}-\d{2}-\d{2}  ", line)]
    assert len(dated) > 10
    assert "Outcome by topic" in proc.stdout
    assert "run 2" in proc.stdout.splitlines()[0]


@pytest.mark.slow
def test_trace_is_the_same_twice_and_differs_between_runs():
    first = sim("trace", "scenarios/baseline.yaml", "--run", "2").stdout
    assert sim("trace", "scenarios/baseline.yaml", "--run", "2").stdout == first
    assert sim("trace", "scenarios/baseline.yaml", "--run", "3").stdout != first
