"""The Dask executor gives the same records as one process, on its own cluster or an existing one.

tests/test_montecarlo.py checks the pinned baseline (no priors) on Dask; these run the shipped
baseline with its priors drawn run by run, in small chunks so that several tasks are in
flight on each worker, on a local cluster the executor starts (forked workers, tuned
settings, results fetched directly from the workers) and on an existing cluster given by its
address (which is used as it is). Each run of a job owns its random streams, so the records must be
bit-identical to those of ``executor="local"`` whichever worker ran which chunk.
"""

from __future__ import annotations

import gc
import multiprocessing
from pathlib import Path

import pandas.testing as pdt
import pytest
from conftest import ctrl_c_after_parts

from sim.montecarlo import run
from sim.scenario import load_scenario

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "scenarios" / "baseline.yaml"  # with its priors
RUNS = 600
CHUNK = 40  # 15 chunks: more than the 4 tasks the executor keeps in flight on 2 workers


def assert_same_results(a, b) -> None:
    """Bit-identical per-run outcomes (and drawn inputs), and identical summaries."""
    pdt.assert_frame_equal(a.outcomes, b.outcomes, check_exact=True)
    assert a.summary().to_dict() == b.summary().to_dict()


@pytest.fixture(scope="module")
def shipped():
    scenario = load_scenario(SHIPPED)
    assert scenario.priors, "the shipped baseline is meant to have uncertain inputs"
    return scenario


@pytest.fixture(scope="module")
def reference(shipped):
    return run(shipped, runs=RUNS, workers=1, executor="local", chunk_size=CHUNK)


@pytest.fixture(scope="module")
def cluster():
    """An existing cluster, as a user would start one: two one-thread worker processes."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c:
        yield c


def test_the_reference_has_the_drawn_inputs(reference):
    assert any(name.startswith("input.") for name in reference.outcomes.columns)
    assert reference.runs == RUNS


def test_own_local_cluster_gives_the_same_records_as_one_process(shipped, reference):
    before = set(multiprocessing.active_children())
    on_dask = run(shipped, runs=RUNS, workers=2, executor="dask", chunk_size=CHUNK)
    assert on_dask.metadata["executor"] == "dask"
    assert on_dask.metadata["workers"] == 2
    assert_same_results(on_dask, reference)
    # the cluster it started is gone with the job: no worker process is left behind
    assert set(multiprocessing.active_children()) <= before


def test_own_local_cluster_in_point_mode_and_with_replications(shipped):
    for kwargs in ({"inputs": "point"}, {"replications": 3}):
        local = run(shipped, runs=240, workers=1, executor="local", chunk_size=30, **kwargs)
        on_dask = run(shipped, runs=240, workers=2, executor="dask", chunk_size=30, **kwargs)
        assert_same_results(on_dask, local)


def test_existing_cluster_by_address_gives_the_same_records(shipped, reference, cluster):
    on_dask = run(shipped, runs=RUNS, scheduler=cluster.scheduler_address, chunk_size=CHUNK)
    assert on_dask.metadata["executor"] == "dask"
    assert on_dask.metadata["workers"] == 2
    assert_same_results(on_dask, reference)


def _worker_state() -> tuple:
    import dask

    return (gc.get_freeze_count(), gc.isenabled(),
            dask.config.get("distributed.worker.profile.enabled"))


def test_existing_cluster_is_left_as_it_was(shipped, reference, cluster):
    """A cluster that is not ours is only used: its workers keep their settings and their
    garbage collector, and it serves the next job (here: the same one again) as well."""
    with distributed.Client(cluster.scheduler_address) as client:
        before = client.run(_worker_state)
    again = run(shipped, runs=RUNS, scheduler=cluster.scheduler_address, chunk_size=CHUNK)
    assert_same_results(again, reference)
    with distributed.Client(cluster.scheduler_address) as client:
        assert client.run(_worker_state) == before
        assert len(client.scheduler_info()["workers"]) == 2


@pytest.mark.slow
def test_ctrl_c_on_own_cluster_stops_at_once_and_the_job_resumes_exactly(tmp_path):
    """Ctrl-C reaches every process of the terminal's group, the cluster's workers too: they
    leave it to the job, which keeps the finished chunks, closes the cluster and exits 130
    without a traceback or Dask's warnings about the cancelled tasks; --resume then gives
    the records of an uninterrupted job."""
    import json
    import subprocess
    import sys
    import time

    import pandas as pd

    def sim(*args):
        return [sys.executable, "-m", "sim", "run", str(SHIPPED), "--runs", "6000",
                "--chunk-size", "100", "--workers", "2", "-q", "--no-plots", *args]

    proc = subprocess.Popen(sim("--executor", "dask", "--out", "job"), cwd=tmp_path,
                            stdin=subprocess.DEVNULL, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    ctrl_c_after_parts(proc, tmp_path / "job" / "outcomes", 3)
    started = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 20, "the first Ctrl-C should stop the job"
    assert "--resume" in err
    assert "Traceback" not in err and "WARNING" not in err and "CancelledError" not in err
    assert not (tmp_path / "job" / "metadata.json").exists()

    resumed = subprocess.run(sim("--executor", "dask", "--out", "job", "--resume"),
                             cwd=tmp_path, text=True, capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    whole = subprocess.run(sim("--executor", "local", "--workers", "1", "--out", "whole"),
                           cwd=tmp_path, text=True, capture_output=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    assert json.loads((tmp_path / "job" / "metadata.json").read_text())["runs"] == 6000
    pdt.assert_frame_equal(pd.read_parquet(tmp_path / "job" / "outcomes"),
                           pd.read_parquet(tmp_path / "whole" / "outcomes"), check_exact=True)
