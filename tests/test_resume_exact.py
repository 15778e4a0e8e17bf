"""A job killed at any step, then resumed, gives exactly the folder of an uninterrupted job.

The job is really killed (SIGKILL, from inside the process) at every file it moves into place
while setting up (marker, scenario, job description), running (each part) and finishing
(tally, summary, metadata): once just before the move, leaving a temporary file, and once just
after it. ``--resume`` must then finish the job, leave no temporary file, and give the same
outcomes, tally, summary, scenario and job description as a job never interrupted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas.testing as pdt
import pytest

from sim.results import Results

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "scenarios" / "baseline.yaml"
ARGS = ["run", str(BASELINE), "--runs", "300", "--chunk-size", "100", "--workers", "1",
        "--no-plots", "-q", "--out", "job"]

#: Runs ``sim`` in this process, killing it at the Nth ``os.replace`` (before or after it).
KILLER = """
import os, signal, sys
count, target, when = 0, int(sys.argv[1]), sys.argv[2]
real = os.replace
def replace(src, dst):
    global count
    count += 1
    if count == target and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
    if count == target and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from sim.cli import main
main(sys.argv[3:], prog_name="sim")
"""

#: marker, scenario.yaml, job.json, 3 parts, tally.npz, summary.json, metadata.json
MOVES = 9


def sim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def killed_at(step: int, when: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", KILLER, str(step), when, *ARGS], cwd=cwd,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("whole")
    proc = sim(*ARGS, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return cwd / "job"


def same_folder(folder: Path, reference: Path) -> None:
    for name in ("scenario.yaml", "job.json", "summary.json"):
        assert (folder / name).read_bytes() == (reference / name).read_bytes(), name
    a, b = Results.load(folder), Results.load(reference)
    pdt.assert_frame_equal(a.outcomes, b.outcomes, check_exact=True)
    with np.load(folder / "tally.npz") as x, np.load(reference / "tally.npz") as y:
        assert x.files == y.files
        for key in x.files:
            np.testing.assert_array_equal(x[key], y[key])
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["runs"] == meta["runs_requested"] == 300


def test_the_job_moves_exactly_the_files_counted_here(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert killed_at(MOVES + 1, "before", tmp_path / "a").returncode == 0  # never reached
    assert killed_at(MOVES, "after", tmp_path / "b").returncode == -9  # the last move
    assert (tmp_path / "b" / "job" / "metadata.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", range(1, MOVES + 1))
def test_resume_after_a_kill_at_any_step_gives_the_uninterrupted_folder(whole, tmp_path, step,
                                                                        when):
    killed = killed_at(step, when, tmp_path)
    assert killed.returncode == -9, (killed.returncode, killed.stderr)
    folder = tmp_path / "job"
    resumed = sim(*ARGS, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    leftovers = [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    same_folder(folder, whole)


@pytest.mark.slow
def test_resume_without_runs_finishes_the_job_as_it_was_asked_for(whole, tmp_path):
    killed = killed_at(5, "after", tmp_path)  # two of three parts written
    assert killed.returncode == -9
    resumed = sim("run", str(BASELINE), "--workers", "1", "--no-plots", "-q", "--out", "job",
                  "--resume", cwd=tmp_path)  # no --runs: the job's own 300, not the default
    assert resumed.returncode == 0, resumed.stderr
    same_folder(tmp_path / "job", whole)


@pytest.mark.slow
def test_a_folder_killed_before_its_job_description_is_resumed_from_scratch(whole, tmp_path):
    killed = killed_at(3, "before", tmp_path)  # outcomes/ made, job.json not yet in place
    assert killed.returncode == -9
    assert not (tmp_path / "job" / "job.json").exists()
    again = sim(*ARGS, cwd=tmp_path)  # not --resume: still refused, the folder is a job's
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = sim(*ARGS, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    same_folder(tmp_path / "job", whole)


def test_a_job_killed_before_its_marker_leaves_a_folder_a_plain_rerun_takes(whole, tmp_path):
    killed = killed_at(1, "before", tmp_path)
    assert killed.returncode == -9
    leftovers = sorted(p.name for p in (tmp_path / "job").iterdir())
    assert leftovers and all(n.endswith(".tmp") for n in leftovers), leftovers
    proc = sim(*ARGS, cwd=tmp_path)  # no --resume, no --force: nothing of value is there
    assert proc.returncode == 0, proc.stderr
    same_folder(tmp_path / "job", whole)


def test_resuming_a_job_that_stopped_at_its_target_keeps_it_stopped(tmp_path):
    from sim.montecarlo import run

    first = run(BASELINE, runs=20000, target_se=0.02, workers=1, out=tmp_path / "job")
    assert first.runs < 20000  # the target was met early
    again = run(BASELINE, workers=1, out=tmp_path / "job", resume=True)
    assert again.runs == first.runs
    assert again.metadata["target_se"] == 0.02 and again.metadata["stopped_at_target"]
    pdt.assert_frame_equal(again.outcomes, first.outcomes, check_exact=True)
