"""``sim run``: a results folder with a summary table and plots; clean errors; resumable.

Every test runs the real command in a subprocess (``python -m sim run``), so exit codes,
stdout and stderr are what a user sees.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest

from sim.montecarlo import run
from sim.results import Results

BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"
PLOTS = ("agreement_curves", "outcome_categories", "meetings", "agreed_values")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sim_run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``sim run BASELINE *args`` in ``cwd``; stdout and stderr are pipes, not a TTY."""
    env = dict(os.environ, COLUMNS="120")
    return subprocess.run([sys.executable, "-m", "sim", "run", str(BASELINE), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)


def assert_clean_error(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip(), "an error says what is wrong"


# --- a whole run -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """``sim run baseline.yaml --runs 200 --csv --svg`` in an empty folder."""
    cwd = tmp_path_factory.mktemp("cli")
    proc = sim_run("--runs", "200", "--workers", "1", "--csv", "--svg", cwd=cwd)
    return cwd, proc


@pytest.mark.slow
def test_run_exits_0_and_prints_the_summary_and_where_results_are(default_run):
    _, proc = default_run
    assert proc.returncode == 0, proc.stderr
    assert "P(agreement)" in proc.stdout
    assert "P(deadline default)" in proc.stdout
    assert "Ukraine settlement" in proc.stdout
    assert "200 runs" in proc.stdout
    assert "results/baseline" in proc.stdout  # the default folder is results/<scenario name>
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_no_progress_bar_when_stderr_is_not_a_terminal(default_run):
    _, proc = default_run
    assert "runs/s" not in proc.stderr
    assert "\u2501" not in proc.stderr  # the bar's line character
    assert "\x1b[" not in proc.stderr  # no cursor control


@pytest.mark.slow
def test_run_writes_the_results_folder(default_run):
    cwd, _ = default_run
    folder = cwd / "results" / "baseline"
    for name in ("scenario.yaml", "metadata.json", "summary.json", "tally.npz"):
        assert (folder / name).is_file(), name
    results = Results.load(folder)
    assert results.runs == 200 == len(results.outcomes)
    assert json.loads((folder / "metadata.json").read_text())["runs"] == 200
    assert [p for p in folder.rglob("*") if p.name.startswith(".") and p.name != ".sim-output"] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", PLOTS)
def test_run_writes_the_default_plots_as_png_and_svg(default_run, name):
    cwd, _ = default_run
    plots = cwd / "results" / "baseline" / "plots"
    png = (plots / f"{name}.png").read_bytes()
    assert png.startswith(PNG_MAGIC)
    assert len(png) > 10_000  # a drawn figure, not an empty canvas
    svg = (plots / f"{name}.svg").read_text(encoding="utf-8")
    assert "<svg" in svg[:1000] and svg.rstrip().endswith("</svg>")
    assert len(svg) > 10_000


@pytest.mark.slow
def test_csv_flag_writes_one_row_per_run(default_run):
    cwd, _ = default_run
    folder = cwd / "results" / "baseline"
    df = pd.read_csv(folder / "outcomes.csv")
    assert len(df) == 200
    assert list(df["run"]) == list(range(200))
    assert list(df.columns) == list(Results.load(folder).outcomes.columns)


def test_quiet_prints_nothing_and_no_plots_skips_plots(tmp_path):
    proc = sim_run("--runs", "120", "--workers", "1", "--out", "q", "--quiet", "--no-plots",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "runs/s" not in proc.stderr
    assert Results.load(tmp_path / "q").runs == 120
    assert not (tmp_path / "q" / "plots").exists()


def test_target_se_reports_where_it_stopped(tmp_path):
    proc = sim_run("--runs", "2000", "--target-se", "0.02", "--workers", "2", "--out", "t",
                   "--no-plots", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((tmp_path / "t" / "metadata.json").read_text())
    assert meta["stopped_at_target"] is True and meta["runs"] < 2000
    assert f"target SE 0.02 reached after {meta['runs']:,} runs" in proc.stdout


# --- bad input: exit 2, a message, no traceback, nothing written ------------------------------


def test_unknown_set_key_exits_2_naming_the_dotted_path_and_writes_nothing(tmp_path):
    proc = sim_run("--runs", "50", "--set", "tracks.summit.cancel_probability=0.4",
                   cwd=tmp_path)
    assert_clean_error(proc)
    assert "tracks.summit.cancel_probability" in proc.stderr
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no results/ folder


def test_bad_set_value_exits_2_and_writes_nothing(tmp_path):
    proc = sim_run("--runs", "50", "--set", "tracks.summit.cancel_prob=1.7", "--out", "o",
                   cwd=tmp_path)
    assert_clean_error(proc)
    assert "tracks.summit.cancel_prob" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_force_and_resume_together_exit_2(tmp_path):
    proc = sim_run("--runs", "50", "--force", "--resume", "--out", "o", cwd=tmp_path)
    assert_clean_error(proc)
    assert "--force" in proc.stderr and "--resume" in proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("option, value", [
    ("--workers", "0"),
    ("--workers", "-2"),
    ("--runs", "0"),
    ("--chunk-size", "0"),
    ("--target-se", "0.7"),
])
def test_bad_job_options_exit_2_without_traceback(tmp_path, option, value):
    proc = sim_run("--runs", "50", option, value, "--out", "o", "-q", "--no-plots",
                   cwd=tmp_path)
    assert_clean_error(proc)
    assert option.lstrip("-").split("-")[0] in proc.stderr
    assert not (tmp_path / "o").exists()


def test_negative_seed_exits_2_without_traceback_and_writes_nothing(tmp_path):
    proc = sim_run("--runs", "50", "--seed", "-1", "--out", "o", "-q", "--no-plots",
                   cwd=tmp_path)
    assert_clean_error(proc)
    assert "seed" in proc.stderr
    assert not (tmp_path / "o").exists()


# --- resume after SIGKILL --------------------------------------------------------------------


def wait_for_parts(proc: subprocess.Popen, parts: Path, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = len(list(parts.glob("part-*.parquet"))) if parts.is_dir() else 0
        if found >= count:
            return found
        if proc.poll() is not None:
            pytest.fail(f"sim run ended (exit {proc.returncode}) before {count} parts were written")
        time.sleep(0.01)
    pytest.fail(f"fewer than {count} parts after {timeout} s")


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    job = tmp_path / "job"
    args = ["--runs", "6000", "--chunk-size", "200", "--out", str(job), "-q"]
    proc = subprocess.Popen([sys.executable, "-m", "sim", "run", str(BASELINE), *args],
                            cwd=tmp_path, start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_parts(proc, job / "outcomes", 3, timeout=60)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole session: the pool workers too
        except ProcessLookupError:  # already gone; wait_for_parts says why
            pass
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (job / "metadata.json").exists(), "the job finished before it was killed"
    parts = sorted(p.name for p in (job / "outcomes").glob("part-*.parquet"))
    assert 3 <= len(parts) < 30

    again = sim_run(*args, cwd=tmp_path)
    assert_clean_error(again)
    assert "--resume" in again.stderr

    for change in (["--seed", "7"], ["--set", "tracks.summit.cancel_prob=0.4"]):
        refused = sim_run(*args, "--resume", *change, cwd=tmp_path)
        assert_clean_error(refused)
        assert not (job / "metadata.json").exists()

    resumed = sim_run(*args, "--resume", "--no-plots", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr

    whole = run(BASELINE, runs=6000, workers=2, executor="process", chunk_size=1000,
                out=tmp_path / "whole")
    done = Results.load(job)
    assert done.runs == 6000
    pdt.assert_frame_equal(done.outcomes, Results.load(tmp_path / "whole").outcomes,
                           check_exact=True)
    assert done.outcomes.equals(whole.outcomes)
    summary = json.loads((job / "summary.json").read_text())
    reference = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert summary["estimates"] == reference["estimates"]
    assert summary == reference


# --- a real progress bar ------------------------------------------------------------------


def read_pty_until_exit(proc: subprocess.Popen, master: int, timeout: float) -> bytes:
    import select

    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the other side closed
                break
            if not data:
                break
            out += data
        elif proc.poll() is not None:
            break
    return out


def test_progress_bar_on_a_terminal_shows_runs_per_second(tmp_path):
    pty = pytest.importorskip("pty")
    try:
        master, slave = pty.openpty()
    except OSError:
        pytest.skip("no pseudo-terminal available")
    env = dict(os.environ, COLUMNS="120", LINES="40", TERM="xterm")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "run", str(BASELINE), "--runs", "300", "--workers", "1",
         "--chunk-size", "50", "--out", "p", "--no-plots"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    try:
        err = read_pty_until_exit(proc, master, timeout=120)
        stdout = proc.stdout.read()
        proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == 0, err.decode(errors="replace")
    assert b"runs/s" in err
    assert b"300/300" in err
    assert b"P(agreement)" in stdout  # the table still goes to stdout
