"""Nothing the user did not ask to delete is deleted, and output folders are never mixed.

``--force`` replaces only a folder this tool wrote (it carries the tool's marker and nothing
else), never the working directory, a parent of it, the home directory, a symlink, a file,
or a folder holding foreign files. Every test here puts foreign files in place and checks
they are still there, byte for byte, after the command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ctrl_c_after_parts

from sim.errors import InputError
from sim.montecarlo import run
from sim.outputs import MARKER

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "scenarios" / "baseline.yaml"
FACTS = REPO / "scenarios" / "facts" / "hindcast_2025.yaml"
HINDCAST = REPO / "scenarios" / "hindcast_2025.yaml"


def sim(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120):
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


def assert_refused(proc, *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    for word in words:
        assert word in proc.stderr, proc.stderr


def plant(folder: Path) -> dict[str, bytes]:
    """Put a user's files in ``folder`` and return them by relative path."""
    files = {"notes.txt": b"my notes\n", "sub/thesis.tex": b"\\documentclass{article}\n"}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return files


def assert_intact(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        assert (folder / name).read_bytes() == data, name


RUN = ("run", str(BASELINE), "--runs", "40", "--no-plots", "-q")


@pytest.fixture
def own_results(tmp_path):
    """A finished results folder of this tool's, and the working directory holding it."""
    folder = tmp_path / "results" / "mine"
    run(BASELINE, runs=40, workers=1, out=folder)
    return tmp_path, folder


# --- --force on folders that are not ours ------------------------------------------------


def test_force_refuses_a_folder_of_foreign_files_and_deletes_nothing(tmp_path):
    files = plant(tmp_path / "mydata")
    proc = sim(*RUN, "--out", "mydata", "--force", cwd=tmp_path)
    assert_refused(proc, "mydata", "not written by sim")
    assert_intact(tmp_path / "mydata", files)
    assert sorted(p.name for p in (tmp_path / "mydata").iterdir()) == ["notes.txt", "sub"]


def test_force_refuses_the_working_directory(tmp_path):
    files = plant(tmp_path)
    proc = sim(*RUN, "--out", ".", "--force", cwd=tmp_path)
    assert_refused(proc, "working directory")
    assert_intact(tmp_path, files)


def test_force_refuses_the_working_directory_even_when_it_is_a_results_folder(own_results):
    _, folder = own_results
    before = sorted(p.name for p in folder.iterdir())
    proc = sim(*RUN, "--out", ".", "--force", cwd=folder)
    assert_refused(proc, "working directory")
    assert sorted(p.name for p in folder.iterdir()) == before


def test_force_refuses_a_parent_of_the_working_directory(tmp_path):
    files = plant(tmp_path)
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    proc = sim(*RUN, "--out", "../..", "--force", cwd=work)
    assert_refused(proc, "working directory")
    assert_intact(tmp_path, files)


def test_force_refuses_the_home_directory(tmp_path):
    home = tmp_path / "home"
    files = plant(home)
    work = tmp_path / "work"
    work.mkdir()
    proc = sim(*RUN, "--out", str(home), "--force", cwd=work, env={"HOME": str(home)})
    assert_refused(proc, "home directory")
    assert_intact(home, files)


def test_force_refuses_a_symlink_even_to_a_results_folder(own_results):
    cwd, folder = own_results
    link = cwd / "link"
    link.symlink_to(folder)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    proc = sim(*RUN, "--out", "link", "--force", cwd=cwd)
    assert_refused(proc, "symbolic link")
    assert link.is_symlink()
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_force_refuses_a_file(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    proc = sim(*RUN, "--out", "data.csv", "--force", cwd=tmp_path)
    assert_refused(proc, "is a file")
    assert (tmp_path / "data.csv").read_text() == "a,b\n1,2\n"


@pytest.mark.parametrize("where", ["notes.txt", "plots/mine.png", "outcomes/extra.parquet"])
def test_force_refuses_our_folder_once_it_holds_a_foreign_file(own_results, where):
    cwd, folder = own_results
    (folder / where).parent.mkdir(exist_ok=True)
    (folder / where).write_bytes(b"precious")
    parts = sorted((folder / "outcomes").glob("part-*.parquet"))
    proc = sim(*RUN, "--out", str(folder), "--force", cwd=cwd)
    assert_refused(proc, "did not write", Path(where).name)
    assert (folder / where).read_bytes() == b"precious"
    assert sorted((folder / "outcomes").glob("part-*.parquet")) == parts
    assert (folder / "metadata.json").is_file()


def test_force_replaces_our_own_folder(own_results):
    cwd, folder = own_results
    proc = sim(*RUN, "--out", str(folder), "--force", "--seed", "5", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((folder / "metadata.json").read_text())["seed"] == 5
    assert (folder / MARKER).is_file()


def test_a_folder_of_foreign_files_is_not_written_into_without_force(tmp_path):
    files = plant(tmp_path / "mydata")
    proc = sim(*RUN, "--out", "mydata", cwd=tmp_path)
    assert_refused(proc, "mydata")
    assert_intact(tmp_path / "mydata", files)
    assert not (tmp_path / "mydata" / MARKER).exists()


def test_an_empty_existing_folder_is_used(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = sim(*RUN, "--out", "empty", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "empty" / "metadata.json").is_file()


def test_results_save_refuses_a_foreign_folder(tmp_path):
    results = run(BASELINE, runs=30, workers=1)
    files = plant(tmp_path / "mydata")
    with pytest.raises(InputError, match="not written by sim"):
        results.save(tmp_path / "mydata", force=True)
    assert_intact(tmp_path / "mydata", files)


# --- sweeps and hindcasts ------------------------------------------------------------------


@pytest.mark.slow
def test_sweep_force_refuses_a_foreign_folder(tmp_path):
    files = plant(tmp_path / "mydata")
    proc = sim("sweep", str(BASELINE), "-p", "climate.equilibrium=0.4,0.6", "--runs", "20",
               "--out", "mydata", "--force", "-q", cwd=tmp_path)
    assert_refused(proc, "not written by sim")
    assert_intact(tmp_path / "mydata", files)


@pytest.mark.slow
def test_sweep_force_replaces_its_own_folder(tmp_path):
    args = ("sweep", str(BASELINE), "-p", "climate.equilibrium=0.4,0.6", "--runs", "20",
            "--out", "sw", "-q")
    first = sim(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = sim(*args, cwd=tmp_path)
    assert_refused(again, "--force")
    forced = sim(*args, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr


@pytest.mark.slow
def test_hindcast_force_refuses_a_foreign_folder(tmp_path):
    files = plant(tmp_path / "mydata")
    proc = sim("hindcast", str(HINDCAST), "--facts", str(FACTS), "--runs", "20", "--out",
               "mydata", "--force", cwd=tmp_path)
    assert_refused(proc, "not written by sim")
    assert_intact(tmp_path / "mydata", files)


# --- reports and comparisons ---------------------------------------------------------------


@pytest.fixture
def two_results(tmp_path):
    a, b = tmp_path / "results" / "a", tmp_path / "results" / "b"
    run(BASELINE, runs=40, workers=1, out=a)
    run(BASELINE, runs=40, workers=1, out=b, overrides=["tracks.summit.cancel_prob=0.5"])
    return tmp_path, a, b


@pytest.mark.slow
def test_report_never_replaces_a_file_it_did_not_write(two_results):
    cwd, a, _ = two_results
    target = cwd / "baseline.yaml"
    target.write_bytes(BASELINE.read_bytes())
    proc = sim("report", str(a), "--out", str(target), cwd=cwd)
    assert_refused(proc, "not a report written by sim")
    assert target.read_bytes() == BASELINE.read_bytes()


@pytest.mark.slow
def test_report_replaces_its_own_report(two_results):
    cwd, a, b = two_results
    for _ in range(2):
        proc = sim("report", str(a), str(b), "--out", "r.html", cwd=cwd)
        assert proc.returncode == 0, proc.stderr
    assert "<html" in (cwd / "r.html").read_text()


@pytest.mark.slow
def test_compare_refuses_a_foreign_folder_even_with_force(two_results):
    cwd, a, b = two_results
    files = plant(cwd / "mydata")
    for extra in ((), ("--force",)):
        proc = sim("compare", str(a), str(b), "--out", "mydata", "-q", *extra, cwd=cwd)
        assert_refused(proc, "mydata")
        assert_intact(cwd / "mydata", files)


@pytest.mark.slow
def test_forced_comparison_replaces_its_whole_folder(two_results):
    cwd, a, b = two_results
    first = sim("compare", str(a), str(b), "--out", "cmp", "-q", cwd=cwd)
    assert first.returncode == 0, first.stderr
    assert (cwd / "cmp" / "forest_means.png").is_file()
    again = sim("compare", str(a), str(b), "--out", "cmp", "-q", cwd=cwd)
    assert_refused(again, "--force")
    # only probabilities this time: the old plot of means must not survive
    forced = sim("compare", str(a), str(b), "--out", "cmp", "-q", "--force",
                 "--metric", "summits.p_any", cwd=cwd)
    assert forced.returncode == 0, forced.stderr
    assert not (cwd / "cmp" / "forest_means.png").exists()
    assert (cwd / "cmp" / "forest_probabilities.png").is_file()


# --- a job that fails before any run leaves no folder -------------------------------------


@pytest.mark.slow
def test_an_unreachable_scheduler_leaves_no_folder(tmp_path):
    proc = sim(*RUN, "--scheduler", "tcp://127.0.0.1:9", "--out", "job", cwd=tmp_path,
               timeout=120)
    assert_refused(proc, "scheduler")
    assert not (tmp_path / "job").exists()


def test_zero_runs_leaves_no_folder(tmp_path):
    proc = sim("run", str(BASELINE), "--runs", "0", "--out", "job", cwd=tmp_path)
    assert_refused(proc, "runs")
    assert not (tmp_path / "job").exists()


def test_runs_too_many_to_tally_are_refused(tmp_path):
    proc = sim("run", str(BASELINE), "--runs", str(10**12), "--out", "job", cwd=tmp_path)
    assert_refused(proc, "runs")
    assert not (tmp_path / "job").exists()


def test_hindcast_with_facts_the_scenario_lacks_leaves_no_folder(tmp_path):
    facts = tmp_path / "facts.yaml"
    facts.write_text("facts:\n  - label: nothing\n    kind: count\n    column: nosuch.held\n"
                     "    observed: 1\n")
    proc = sim("hindcast", str(HINDCAST), "--facts", str(facts), "--runs", "20", "--out", "job",
               cwd=tmp_path)
    assert_refused(proc, "nosuch.held")
    assert not (tmp_path / "job").exists()


def test_a_failed_job_in_an_existing_empty_folder_keeps_the_folder_empty(tmp_path):
    (tmp_path / "job").mkdir()
    with pytest.raises(InputError):
        run(BASELINE, runs=40, workers=1, executor="nonsense", out=tmp_path / "job")
    assert list((tmp_path / "job").iterdir()) == []


# --- where the output goes ---------------------------------------------------------------


def test_an_output_folder_below_a_file_is_a_clean_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    proc = sim(*RUN, "--out", "afile/sub", cwd=tmp_path)
    assert_refused(proc, "afile")
    assert (tmp_path / "afile").read_text() == "x"


def test_results_being_a_file_is_a_clean_error(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    proc = sim(*RUN, cwd=tmp_path)
    assert_refused(proc, "results")
    assert (tmp_path / "results").read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_clean_error(tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    try:
        proc = sim(*RUN, "--out", "ro/job", cwd=tmp_path)
        assert_refused(proc, "permission denied")
    finally:
        (tmp_path / "ro").chmod(0o755)


def test_a_name_longer_than_a_file_name_is_a_clean_error(tmp_path):
    proc = sim(*RUN, "--out", "x" * 300, cwd=tmp_path)
    assert_refused(proc, "longer than a file name")


# --- one job per folder at a time ---------------------------------------------------------


@pytest.mark.slow
def test_a_second_job_on_a_folder_in_use_is_refused_and_mixes_nothing(tmp_path):
    pinned = REPO / "tests" / "data" / "pinned" / "baseline.yaml"  # fixed numbers: loads fast
    args = [sys.executable, "-m", "sim", "run", str(pinned), "--runs", "20000",
            "--chunk-size", "100", "--workers", "1", "--out", "job", "-q", "--no-plots"]
    first = subprocess.Popen(args, cwd=tmp_path, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list((tmp_path / "job" / "outcomes").glob("part-*.parquet")):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        for extra in ((), ("--resume",), ("--force",)):
            second = sim("run", str(pinned), "--runs", "20000", "--out", "job", "-q",
                         "--no-plots", "--seed", "3", *extra, cwd=tmp_path)
            assert_refused(second, "in use by another sim job")
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    meta = json.loads((tmp_path / "job" / "metadata.json").read_text())
    assert meta["seed"] != 3 and meta["runs"] == 20000  # the first job alone wrote it


# --- corrupt results folders --------------------------------------------------------------


class _Touch:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_tally_holding_pickled_objects_is_refused_and_never_unpickled(own_results):
    cwd, folder = own_results
    proof = cwd / "unpickled"
    with open(folder / "tally.npz", "wb") as fh:
        np.savez(fh, n=np.int64(40), summit_any=np.array([_Touch(str(proof))], dtype=object))
    for args in (("compare", str(folder), str(folder), "--out", "c", "-q"),
                 ("report", str(folder))):
        proc = sim(*args, cwd=cwd)
        assert_refused(proc, "tally")
    assert not proof.exists()


@pytest.mark.parametrize("damage", ["truncated part", "metadata", "job"])
def test_a_damaged_results_folder_is_a_clean_error(own_results, damage):
    cwd, folder = own_results
    if damage == "truncated part":
        part = sorted((folder / "outcomes").glob("part-*.parquet"))[0]
        part.write_bytes(part.read_bytes()[:100])
    elif damage == "metadata":
        (folder / "metadata.json").write_text("{not json")
    else:
        (folder / "job.json").write_text("[1, 2")
        (folder / "metadata.json").unlink()  # an unfinished job, to resume
    if damage == "job":
        proc = sim(*RUN, "--out", str(folder), "--resume", cwd=cwd)
    else:
        proc = sim("compare", str(folder), str(folder), "--out", "c", "-q", cwd=cwd)
    assert_refused(proc)
    assert "damaged" in proc.stderr


def test_resume_refuses_a_truncated_part(own_results):
    cwd, folder = own_results
    (folder / "metadata.json").unlink()
    part = sorted((folder / "outcomes").glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:100])
    proc = sim(*RUN, "--out", str(folder), "--resume", cwd=cwd)
    assert_refused(proc, part.name)


# --- what a run records ------------------------------------------------------------------


def test_overrides_are_recorded_and_printed(tmp_path):
    proc = sim("run", str(BASELINE), "--runs", "30", "--no-plots", "--out", "job",
               "--set", "tracks.summit.cancel_prob=0.4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((tmp_path / "job" / "metadata.json").read_text())
    assert meta["overrides"] == ["tracks.summit.cancel_prob=0.4"]
    assert "--set tracks.summit.cancel_prob=0.4" in proc.stdout


@pytest.mark.slow
def test_ctrl_c_keeps_the_finished_runs_and_says_how_to_resume(tmp_path):
    args = [sys.executable, "-m", "sim", "run", str(BASELINE), "--runs", "20000",
            "--chunk-size", "100", "--workers", "2", "--out", "job", "-q", "--no-plots"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdin=subprocess.DEVNULL, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    ctrl_c_after_parts(proc, tmp_path / "job" / "outcomes", 2, timeout=60)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert not (tmp_path / "job" / "metadata.json").exists()
    resumed = sim("run", str(BASELINE), "--runs", "3000", "--out", "job", "-q", "--no-plots",
                  "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr  # fewer runs than asked, as --runs says
    assert json.loads((tmp_path / "job" / "metadata.json").read_text())["runs"] == 3000


# --- found by an adversarial review ------------------------------------------------------


@pytest.mark.parametrize("sub", ["plots", "outcomes"])
def test_resume_never_writes_through_a_link_in_the_folder(own_results, sub):
    cwd, folder = own_results
    (folder / "metadata.json").unlink()  # an unfinished job, to resume
    target = cwd / "thesis" / "figures"
    target.mkdir(parents=True)
    (target / "meetings.png").write_bytes(b"MY FIGURE")
    if (folder / sub).exists():
        import shutil

        shutil.rmtree(folder / sub) if sub == "plots" else None
    if sub == "plots":
        (folder / sub).symlink_to(target)
    else:
        (folder / "outcomes").rename(cwd / "moved")
        (folder / "outcomes").symlink_to(target)
    proc = sim(*RUN, "--runs", "80", "--out", str(folder), "--resume", cwd=cwd)
    assert_refused(proc, "--resume will not write")
    assert sorted(p.name for p in target.iterdir()) == ["meetings.png"]
    assert (target / "meetings.png").read_bytes() == b"MY FIGURE"


def test_a_file_that_mentions_the_report_tag_is_not_a_report(two_results_light):
    cwd, a = two_results_light
    notes = cwd / "notes.md"
    notes.write_text('My notes on <meta name="generator" content="negotiation-sim">.\nKEEP\n')
    proc = sim("report", str(a), "--out", str(notes), cwd=cwd)
    assert_refused(proc, "not a report written by sim")
    assert notes.read_text().endswith("KEEP\n")


def test_a_report_is_never_written_inside_a_results_folders_data(two_results_light):
    cwd, a = two_results_light
    for target in (a / "outcomes" / "x.html", a / "plots" / "x.html", a / "notes.html"):
        proc = sim("report", str(a), "--out", str(target), cwd=cwd)
        assert_refused(proc, "inside a results folder")
        assert not target.exists()
    ok = sim("report", str(a), cwd=cwd)  # <results>/report.html is its place
    assert ok.returncode == 0, ok.stderr


@pytest.fixture
def two_results_light(tmp_path):
    folder = tmp_path / "a"
    run(BASELINE, runs=30, workers=1, out=folder)
    return tmp_path, folder


def test_an_out_path_that_looks_like_a_uri_is_a_local_folder(tmp_path):
    other = sim(*RUN, "--out", "other", "--set", "climate.initial_tension=0.95", cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    uri = f"file:{tmp_path}/other"
    proc = sim(*RUN, "--out", uri, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    mine = json.loads((tmp_path / uri / "summary.json").read_text())
    theirs = json.loads((tmp_path / "other" / "summary.json").read_text())
    assert mine != theirs  # its own runs, not the folder the URI names
    for odd in ("run:2", "s3:bucket"):
        assert sim(*RUN, "--out", odd, cwd=tmp_path).returncode == 0


def test_resume_refuses_a_part_that_lacks_a_column(own_results):
    import pyarrow.parquet as pq

    cwd, folder = own_results
    (folder / "metadata.json").unlink()
    part = sorted((folder / "outcomes").glob("part-*.parquet"))[0]
    table = pq.read_table(part)
    pq.write_table(table.drop([table.column_names[2]]), part)
    proc = sim(*RUN, "--runs", "80", "--out", str(folder), "--resume", cwd=cwd)
    assert_refused(proc, "lacks the column")


def test_a_sweep_of_categories_and_repeated_keys(tmp_path):
    ok = sim("sweep", str(BASELINE), "--runs", "20", "-q", "--out", "swt",
             "-p", "sides.russia.topics.flights.tactic=linear,boulware", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "swt" / "sweep.csv").is_file()
    twice = sim("sweep", str(BASELINE), "--runs", "20", "-q", "--out", "sw2",
                "-p", "climate.equilibrium=0.3,0.5", "-p", "climate.equilibrium=0.4", cwd=tmp_path)
    assert_refused(twice, "more than once")
    grid_points = sim("sweep", str(BASELINE), "--runs", "20", "-q", "--points", "5",
                      "-p", "climate.equilibrium=0.3,0.5", cwd=tmp_path)
    assert_refused(grid_points, "--points")


def test_no_job_writes_inside_another_sim_folder(tmp_path):
    """A folder inside a results folder would be an entry that folder's job did not write
    (--force and --resume would refuse it; its dataset could read the new files as its own):
    refused before anything is written, for runs and comparisons alike."""
    first = sim(*RUN, "--out", "job", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "job").rglob("*")
              if p.is_file()}
    for inner in ("job/outcomes/more", "job/plots/more", "job/other"):
        for args in ([*RUN, "--out", inner], ["compare", "job", "job", "--out", inner, "-q"]):
            proc = sim(*args, cwd=tmp_path)
            assert_refused(proc, "inside")
            assert not (tmp_path / inner).exists()
    after = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "job").rglob("*")
             if p.is_file()}
    assert after == before
    again = sim(*RUN, "--out", "job", "--force", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
