"""The results store: one folder per job, typed Parquet outcomes, atomic files, safe reruns.

A job run with ``out=`` writes ``outcomes/`` (a Parquet dataset), ``scenario.yaml``,
``metadata.json``, ``summary.json`` and ``tally.npz``; :meth:`Results.load` reads it back to
the same outcomes and summary. An existing folder is replaced only with ``force``, finished
only with ``resume``.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

import sim
from sim.errors import InputError
from sim.model import TRACK_COUNTERS
from sim.montecarlo import run
from sim.outputs import MARKER, record
from sim.results import Results, scenario_hash
from sim.scenario import load_scenario
from sim.tally import Tally

BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"

RUNS = 600
SEED = 424242


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def temporaries(folder: Path) -> list[Path]:
    """Files a write left behind: every dotfile but the folder's own marker, and *.tmp."""
    return [p for p in folder.rglob("*")
            if (p.name.startswith(".") and p.name != MARKER) or p.suffix == ".tmp"]


def assert_same_outcomes(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pdt.assert_frame_equal(a, b, check_exact=True)


@pytest.fixture(scope="module")
def in_memory():
    return run(BASELINE, runs=RUNS, seed=SEED, workers=1)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """The same job on a process pool, streamed to a results folder in chunks of 100."""
    folder = tmp_path_factory.mktemp("store") / "job"
    return run(BASELINE, runs=RUNS, seed=SEED, workers=2, executor="process", chunk_size=100,
               out=folder)


@pytest.fixture
def small(tmp_path):
    """A finished folder of 120 runs that a test may modify."""
    folder = tmp_path / "small"
    run(BASELINE, runs=120, workers=1, chunk_size=40, out=folder)
    return folder


# --- what a job writes ------------------------------------------------------------------


def test_a_job_writes_the_documented_files_and_no_temporaries(stored):
    folder = stored.path
    assert stored.path is not None and folder.is_dir()
    for name in ("scenario.yaml", "metadata.json", "summary.json", "tally.npz"):
        assert (folder / name).is_file(), name
    assert (folder / "outcomes").is_dir()
    assert list((folder / "outcomes").glob("*.parquet"))
    assert temporaries(folder) == []


def test_outcomes_are_a_typed_parquet_dataset_with_one_row_per_run(stored):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(stored.path / "outcomes")
    assert table.num_rows == RUNS
    runs = table.column("run").to_pylist()
    assert sorted(runs) == list(range(RUNS))  # each run once
    schema = table.schema
    assert schema.field("run").type == pa.int64()
    names = set(schema.names)
    topics = [n[: -len(".outcome")] for n in names if n.endswith(".outcome")]
    assert len(topics) == 8
    for topic in topics:
        assert schema.field(f"{topic}.outcome").type == pa.int8()
        assert schema.field(f"{topic}.day").type == pa.float64()
        assert schema.field(f"{topic}.value").type == pa.float64()
    counters = [n for n in names if n.endswith(tuple(f".{c}" for c in TRACK_COUNTERS))]
    counters += [n for n in names if n.startswith("shocks.")] + ["summits_held", "events"]
    assert len(counters) > 30
    for name in counters:
        assert schema.field(name).type == pa.int32(), name
    for name in ("first_summit_day", "tension_end", "tension_peak"):
        assert schema.field(name).type == pa.float64(), name
    for name in names:  # days and values of every kind are floats (NaN where none)
        if name.endswith(("_day", ".day", ".value")):
            assert schema.field(name).type == pa.float64(), name
    assert {str(t) for t in schema.types} <= {"int8", "int32", "int64", "double"}
    codes = np.concatenate([table.column(f"{t}.outcome").to_numpy() for t in topics])
    assert set(np.unique(codes)) <= {0, 1, 2, 3}


def test_scenario_yaml_loads_back_to_the_scenario_as_run(stored):
    saved = load_scenario(stored.path / "scenario.yaml")
    expected = load_scenario(BASELINE).model_copy(update={"runs": RUNS, "seed": SEED})
    assert saved == expected
    assert (saved.runs, saved.seed) == (RUNS, SEED)
    assert scenario_hash(saved) == scenario_hash(load_scenario(BASELINE))


def test_metadata_json_records_the_job(stored):
    meta = json.loads((stored.path / "metadata.json").read_text())
    assert meta["seed"] == SEED
    assert meta["runs"] == RUNS
    assert meta["version"] == sim.__version__
    assert meta["scenario_hash"] == scenario_hash(load_scenario(BASELINE))
    assert len(meta["scenario_hash"]) == 64 and int(meta["scenario_hash"], 16) >= 0
    assert meta["executor"] == "process"
    assert meta["workers"] == 2
    assert meta["wall_seconds"] > 0
    assert meta["runs_per_second"] == pytest.approx(RUNS / meta["wall_seconds"], rel=1e-9)
    assert meta == stored.metadata


def test_summary_json_is_the_summary_of_the_runs(stored, in_memory):
    saved = json.loads((stored.path / "summary.json").read_text())
    assert saved == json.loads(json.dumps(stored.summary().to_dict()))
    # where the runs were stored changes nothing in the estimates
    assert saved == json.loads(json.dumps(in_memory.summary().to_dict()))
    assert saved["runs"] == RUNS
    start = saved["estimates"]["start.p_agreement"]
    assert start["n"] == RUNS and start["low"] < start["estimate"] < start["high"]


def test_tally_npz_holds_the_job_tally(stored):
    loaded = Tally.load(stored.path / "tally.npz", stored.tally.layout)
    assert loaded.n == RUNS == stored.tally.n
    assert loaded.summit_any == stored.tally.summit_any
    for name, value in vars(stored.tally).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(loaded, name), value, err_msg=name)


# --- reading back ------------------------------------------------------------------------


def test_load_round_trips_outcomes_summary_and_metadata(stored, in_memory):
    loaded = Results.load(stored.path)
    assert loaded.runs == RUNS and loaded.seed == SEED
    assert_same_outcomes(loaded.outcomes, in_memory.outcomes)
    assert_same_outcomes(loaded.outcomes, stored.outcomes)
    assert loaded.summary().to_dict() == in_memory.summary().to_dict()
    assert loaded.metadata == stored.metadata
    assert loaded.scenario == stored.scenario


def test_load_of_an_unfinished_folder_is_an_input_error(small):
    (small / "metadata.json").unlink()
    with pytest.raises(InputError, match="metadata.json"):
        Results.load(small)


def test_save_of_in_memory_results_loads_back_equal(in_memory, tmp_path):
    path = in_memory.save(tmp_path / "saved")
    assert path == tmp_path / "saved"
    loaded = Results.load(path)
    assert_same_outcomes(loaded.outcomes, in_memory.outcomes)
    assert loaded.summary().to_dict() == in_memory.summary().to_dict()
    assert (loaded.runs, loaded.seed) == (RUNS, SEED)
    assert load_scenario(path / "scenario.yaml") == in_memory.scenario
    assert temporaries(path) == []


def test_to_csv_writes_one_row_per_run(stored, in_memory, tmp_path):
    for results, name in ((stored, "stored.csv"), (in_memory, "memory.csv")):
        path = results.to_csv(tmp_path / name)
        df = pd.read_csv(path)
        assert len(df) == RUNS, name
        assert list(df.columns) == list(in_memory.outcomes.columns), name
        np.testing.assert_array_equal(df["run"].to_numpy(), np.arange(RUNS))
        np.testing.assert_array_equal(df["calls.held"].to_numpy(),
                                      in_memory.outcomes["calls.held"].to_numpy())
        np.testing.assert_allclose(df["tension_end"].to_numpy(),
                                   in_memory.outcomes["tension_end"].to_numpy(), rtol=1e-12)
    assert temporaries(tmp_path) == []


def test_to_csv_is_the_same_whether_results_are_in_memory_or_on_disk(stored, in_memory, tmp_path):
    from_disk = pd.read_csv(stored.to_csv(tmp_path / "disk.csv"))
    from_memory = pd.read_csv(in_memory.to_csv(tmp_path / "memory.csv"))
    assert from_memory["start.outcome"].isin(["none", "agreement", "interim", "default"]).all()
    pdt.assert_frame_equal(from_disk, from_memory)


# --- never overwrite without --force -------------------------------------------------------


def test_a_finished_folder_is_not_overwritten_without_force(small, in_memory):
    before = snapshot(small)
    with pytest.raises(InputError, match="--force"):
        run(BASELINE, runs=60, seed=1, workers=1, out=small)
    with pytest.raises(InputError, match="--force"):
        in_memory.save(small)
    assert snapshot(small) == before


def test_a_folder_of_other_files_is_not_overwritten_or_resumed(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious")
    with pytest.raises(InputError):
        run(BASELINE, runs=60, workers=1, out=folder)
    with pytest.raises(InputError, match="not a results folder"):
        run(BASELINE, runs=60, workers=1, out=folder, resume=True)
    assert snapshot(folder) == {"notes.txt": b"precious"}


def test_an_empty_existing_folder_is_used(tmp_path):
    (tmp_path / "empty").mkdir()
    r = run(BASELINE, runs=60, workers=1, out=tmp_path / "empty")
    assert Results.load(tmp_path / "empty").runs == 60 == r.runs


def test_force_replaces_the_whole_folder(small):
    (small / "plots").mkdir()
    (small / "plots" / "old_topic.png").write_bytes(b"a plot of an earlier job")
    record(small, [small / "plots" / "old_topic.png"])  # as sim run lists the plots it writes
    (small / "outcomes.csv").write_text("run\n0\n")
    r = run(BASELINE, runs=50, seed=7, workers=1, chunk_size=50, out=small, force=True)
    assert not (small / "plots").exists() and not (small / "outcomes.csv").exists()
    loaded = Results.load(small)
    assert loaded.runs == 50 and loaded.seed == 7
    assert len(loaded.outcomes) == 50  # no parts of the old 120-run job remain
    assert_same_outcomes(loaded.outcomes, r.outcomes)
    assert temporaries(small) == []


def test_saving_loaded_results_back_onto_their_own_folder_keeps_them(small):
    expected = Results.load(small).outcomes
    loaded = Results.load(small)
    try:
        loaded.save(small, force=True)
    except InputError:
        pass  # refusing is as good as saving, as long as nothing is lost
    assert_same_outcomes(Results.load(small).outcomes, expected)


def test_out_naming_a_file_is_an_input_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="file"):
        run(BASELINE, runs=10, workers=1, out=tmp_path / "file")


def test_results_files_get_the_usual_permissions(stored, tmp_path):
    ordinary = tmp_path / "ordinary"
    ordinary.write_text("x")
    expected = stat.S_IMODE(ordinary.stat().st_mode)  # what the umask gives a new file
    files = [p for p in stored.path.rglob("*") if p.is_file()]
    modes = {str(p.relative_to(stored.path)): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert modes == {name: expected for name in modes}


# --- resume ---------------------------------------------------------------------------------


def interrupt(source: Path, into: Path, lost_parts: list[str]) -> Path:
    """Copy a finished folder as a killed job would have left it, without some parts."""
    shutil.copytree(source, into)
    for name in ("metadata.json", "summary.json", "tally.npz"):
        (into / name).unlink()
    for part in lost_parts:
        (into / "outcomes" / part).unlink()
    return into


def test_resume_runs_only_the_missing_chunks_and_matches_an_uninterrupted_job(
        stored, in_memory, tmp_path):
    parts = sorted(p.name for p in (stored.path / "outcomes").glob("*.parquet"))
    assert len(parts) == RUNS // 100
    lost = [parts[2], parts[-1]]
    folder = interrupt(stored.path, tmp_path / "job", lost)
    kept = {p: (folder / "outcomes" / p).read_bytes() for p in parts if p not in lost}
    with pytest.raises(InputError, match="--resume"):
        run(BASELINE, runs=RUNS, seed=SEED, workers=1, out=folder)
    resumed = run(BASELINE, runs=RUNS, seed=SEED, workers=1, chunk_size=33, out=folder,
                  resume=True)
    for name, data in kept.items():  # runs on disk are reused, not run again
        assert (folder / "outcomes" / name).read_bytes() == data
    loaded = Results.load(folder)
    assert loaded.runs == RUNS == len(loaded.outcomes)
    assert_same_outcomes(loaded.outcomes, in_memory.outcomes)
    assert_same_outcomes(resumed.outcomes, in_memory.outcomes)
    assert json.loads((folder / "summary.json").read_text()) == \
        json.loads((stored.path / "summary.json").read_text())
    assert temporaries(folder) == []


def test_resume_of_a_finished_folder_changes_no_outcome(small):
    before = Results.load(small)
    again = run(BASELINE, runs=120, workers=1, out=small, resume=True)
    assert_same_outcomes(again.outcomes, before.outcomes)
    assert again.summary().to_dict() == before.summary().to_dict()


@pytest.mark.parametrize("change", ["seed", "scenario"])
def test_resume_with_another_seed_or_scenario_is_refused(stored, tmp_path, change):
    folder = interrupt(stored.path, tmp_path / "job", [])
    before = snapshot(folder)
    if change == "seed":
        kwargs = {"scenario": BASELINE, "seed": SEED + 1}
    else:
        kwargs = {"scenario": load_scenario(BASELINE,
                                            overrides=["tracks.summit.cancel_prob=0.4"]),
                  "seed": SEED}
    with pytest.raises(InputError, match="seed"):
        run(runs=RUNS, workers=1, out=folder, resume=True, **kwargs)
    assert snapshot(folder) == before
