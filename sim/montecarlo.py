"""Many runs: chunks of run indices on an executor, streamed into a tally and the store.

Run ``i`` with seed ``s`` draws from ``SeedSequence(s, spawn_key=(i, k))`` (see
:mod:`sim.model.streams`), so a run's record does not depend on which worker ran it, the
chunk it was in, or the executor: results are bit-identical for any of them.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .model.compiled import World, compile_scenario
from .model.world import run_world
from .results import Results, ResultsStore, scenario_hash
from .scenario import Scenario, load_scenario
from .tally import Layout, Tally

Chunk = tuple[int, int]

_FLOAT_SUFFIXES = (".day", ".value")
_FLOAT_FIELDS = {"first_summit_day", "tension_end", "tension_peak"}


def column_types(fields: Iterable[str]) -> dict[str, np.dtype]:
    """Return the dtype of each outcome column: categories int8, days and values float64."""
    types = {"run": np.dtype(np.int64)}
    for f in fields:
        if f.endswith(".outcome"):
            types[f] = np.dtype(np.int8)
        elif f.endswith(_FLOAT_SUFFIXES) or f in _FLOAT_FIELDS:
            types[f] = np.dtype(np.float64)
        else:
            types[f] = np.dtype(np.int32)
    return types


def simulate_chunk(world: World, seed: int, start: int, stop: int) -> dict[str, np.ndarray]:
    """Return the outcome records of runs ``start`` to ``stop - 1`` as typed columns."""
    matrix = np.array([run_world(world, seed, i)[0] for i in range(start, stop)], dtype=np.float64)
    columns = {"run": np.arange(start, stop, dtype=np.int64)}
    for j, (name, dtype) in enumerate(list(column_types(world.fields).items())[1:]):
        columns[name] = matrix[:, j].astype(dtype)
    return columns


# --- executors -----------------------------------------------------------------------------
# Each gives back (chunk, columns) pairs in completion order; the job puts them in order.

_WORKER_WORLDS: dict[str, World] = {}


def _world_for(key: str, scenario_json: str) -> World:
    """Return the compiled world of a scenario, compiled once per worker process."""
    world = _WORKER_WORLDS.get(key)
    if world is None:
        world = compile_scenario(Scenario.model_validate_json(scenario_json))
        _WORKER_WORLDS.clear()
        _WORKER_WORLDS[key] = world
    return world


def _pool_init(key: str, scenario_json: str) -> None:
    _world_for(key, scenario_json)


def _pool_task(key: str, seed: int, chunk: Chunk) -> tuple[Chunk, dict[str, np.ndarray]]:
    return chunk, simulate_chunk(_WORKER_WORLDS[key], seed, *chunk)


def _dask_task(payload: tuple[str, str], seed: int, chunk: Chunk) -> tuple[Chunk, dict]:
    return chunk, simulate_chunk(_world_for(*payload), seed, *chunk)


class LocalExecutor:
    """Runs chunks one after another in this process."""

    name = "local"

    def __init__(self, scenario: Scenario, seed: int):
        self.world = compile_scenario(scenario)
        self.seed = seed
        self.workers = 1

    def imap(self, chunks: list[Chunk]) -> Iterator[tuple[Chunk, dict]]:
        for chunk in chunks:
            yield chunk, simulate_chunk(self.world, self.seed, *chunk)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """A pool of worker processes; the scenario is sent once per worker, runs go in chunks."""

    name = "process"

    def __init__(self, scenario: Scenario, seed: int, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.seed = seed
        self.workers = workers
        self.key = scenario_hash(scenario)
        # fork starts workers in milliseconds and needs no __main__ guard in scripts; the
        # pool is made before any progress-bar thread exists
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        self.pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_pool_init,
            initargs=(self.key, scenario.model_dump_json()),
        )

    def imap(self, chunks: list[Chunk]) -> Iterator[tuple[Chunk, dict]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        pending = iter(chunks)
        in_flight = set()
        # a bounded window keeps finished-but-unwritten chunks, and so memory, small
        for chunk in _take(pending, 2 * self.workers):
            in_flight.add(self.pool.submit(_pool_task, self.key, self.seed, chunk))
        while in_flight:
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                for chunk in _take(pending, 1):
                    in_flight.add(self.pool.submit(_pool_task, self.key, self.seed, chunk))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Chunks as Dask tasks on a cluster: an existing scheduler, or a local one."""

    name = "dask"

    def __init__(self, scenario: Scenario, seed: int, workers: int, scheduler: str | None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - depends on the install
            raise InputError(
                "the Dask executor needs the 'dask' extra: pip install 'negotiation-sim[dask]'"
            ) from None
        self.seed = seed
        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="10s")
            except OSError as exc:
                raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None)
            self.client = Client(self.cluster)
        self.workers = len(self.client.scheduler_info().get("workers", {})) or workers
        payload = (scenario_hash(scenario), scenario.model_dump_json())
        self.payload = self.client.scatter(payload, broadcast=True)

    def imap(self, chunks: list[Chunk]) -> Iterator[tuple[Chunk, dict]]:
        from distributed import as_completed

        pending = iter(chunks)
        window = as_completed()
        for chunk in _take(pending, 2 * self.workers):
            window.add(self.client.submit(_dask_task, self.payload, self.seed, chunk, pure=False))
        for future in window:
            yield future.result()
            future.release()
            for chunk in _take(pending, 1):
                window.add(self.client.submit(_dask_task, self.payload, self.seed, chunk, pure=False))

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _take(iterator: Iterator[Chunk], n: int) -> list[Chunk]:
    out = []
    for _ in range(n):
        item = next(iterator, None)
        if item is None:
            break
        out.append(item)
    return out


def make_executor(scenario: Scenario, seed: int, executor: str, workers: int,
                  scheduler: str | None):
    """Return the executor named ``executor`` ("local", "process" or "dask")."""
    if scheduler or executor == "dask":
        return DaskExecutor(scenario, seed, workers, scheduler)
    if executor == "process":
        return ProcessExecutor(scenario, seed, workers)
    if executor == "local":
        return LocalExecutor(scenario, seed)
    raise InputError(f"unknown executor '{executor}': choose local, process or dask")


# --- the job ---------------------------------------------------------------------------------


def run(
    scenario: Scenario | str | Path,
    *,
    runs: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
    executor: str = "auto",
    scheduler: str | None = None,
    chunk_size: int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    target_se: float | None = None,
    progress: bool = False,
) -> Results:
    """Return the results of a Monte Carlo job of ``runs`` runs of ``scenario``.

    ``workers`` defaults to all cores; ``executor`` is "local" (in this process), "process"
    (a pool), "dask" (a local cluster, or the one at ``scheduler``) or "auto" (local for one
    worker or small jobs, else process). With ``out`` the runs stream to that folder as they
    finish (see :class:`~sim.results.ResultsStore`); ``resume`` finishes an interrupted job
    there, ``force`` replaces an existing one. ``target_se`` stops at the first chunk after
    which every headline probability's standard error is below it.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    runs = scenario.runs if runs is None else runs
    seed = scenario.seed if seed is None else seed
    if runs <= 0:
        raise InputError(f"runs: {runs} must be greater than 0")
    if target_se is not None and not 0.0 < target_se < 0.5:
        raise InputError(f"target-se: {target_se} must be between 0 and 0.5")
    scenario = scenario.model_copy(update={"runs": runs, "seed": seed})
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise InputError(f"workers: {workers} must be at least 1")
    if executor == "auto":
        executor = "local" if workers == 1 or runs < 400 else "process"
    chunk_size = chunk_size or max(50, min(1000, math.ceil(runs / (workers * 8))))
    if chunk_size < 1:
        raise InputError(f"chunk-size: {chunk_size} must be at least 1")

    store = ResultsStore(Path(out)) if out is not None else None
    done: set[Chunk] = set()
    if store is not None:
        done = store.prepare(scenario, seed=seed, runs=runs, resume=resume, force=force)
    chunks = _chunks_to_run(runs, chunk_size, done)
    layout = Layout.from_fields(compile_scenario(scenario).fields, scenario.horizon_days)
    job = _Job(scenario, layout, store, runs, target_se, done)

    started = time.perf_counter()
    engine = make_executor(scenario, seed, executor, workers, scheduler) if chunks else None
    bar = _Progress(runs, already=sum(b - a for a, b in done)) if progress else None
    try:
        if engine is not None:
            for chunk, columns in engine.imap(chunks):
                job.receive(chunk, columns)
                if bar is not None:
                    bar.advance(chunk[1] - chunk[0])
                if job.stopped:
                    break
    finally:
        if engine is not None:
            engine.close()
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - started
    info = {
        "executor": engine.name if engine else "none (all runs already done)",
        "workers": engine.workers if engine else 0,
        "chunk_size": chunk_size,
        "wall_seconds": wall,
        "runs_per_second": job.new_runs / wall if wall > 0 and job.new_runs else None,
        "target_se": target_se,
        "stopped_at_target": job.stopped,
    }
    return job.finish(seed, info)


def _chunks_to_run(runs: int, chunk_size: int, done: set[Chunk]) -> list[Chunk]:
    """Return the chunks covering runs 0..runs-1 that are not done yet."""
    covered = np.zeros(runs, dtype=bool)
    for a, b in done:
        covered[a:min(b, runs)] = True
    chunks = []
    start = 0
    while start < runs:
        if covered[start]:
            start += 1
            continue
        stop = start
        while stop < runs and not covered[stop] and stop - start < chunk_size:
            stop += 1
        chunks.append((start, stop))
        start = stop
    return chunks


#: Runs are tallied in fixed blocks of run indices, whatever the chunks they ran in, so that
#: float sums, and the point where ``--target-se`` stops, never depend on the chunking.
TALLY_BLOCK = 500


class _Job:
    """Puts finished chunks in run order, tallies them by block, writes them, decides to stop."""

    def __init__(self, scenario: Scenario, layout: Layout, store: ResultsStore | None,
                 runs: int, target_se: float | None, done: set[Chunk]):
        self.scenario = scenario
        self.layout = layout
        self.store = store
        self.runs = runs
        self.target_se = target_se
        self.tally = Tally(layout)
        self.memory: list[dict[str, np.ndarray]] = []
        self.waiting: dict[int, tuple[Chunk, dict | None]] = {}
        self.buffer: list[dict[str, np.ndarray]] = []  # drained runs not yet tallied
        self.next_run = 0  # runs below this are drained
        self.new_runs = 0
        self.stopped = False
        for chunk in sorted(done):
            self.waiting[chunk[0]] = (chunk, None)  # on disk already: read when its turn comes

    def receive(self, chunk: Chunk, columns: dict[str, np.ndarray]) -> None:
        if self.store is not None:
            self.store.write_part(chunk, columns)
            self.waiting[chunk[0]] = (chunk, None)
        else:
            self.waiting[chunk[0]] = (chunk, columns)
        self.new_runs += chunk[1] - chunk[0]
        self._drain()

    def _drain(self) -> None:
        while not self.stopped and self.next_run in self.waiting:
            chunk, columns = self.waiting.pop(self.next_run)
            if columns is None:
                columns = self.store.read_part(chunk)
            elif self.store is None:
                self.memory.append(columns)
            self.buffer.append(columns)
            self.next_run = chunk[1]
            self._tally_blocks(final=False)

    def _tally_blocks(self, final: bool) -> None:
        tallied = self.tally.n
        end = self.next_run if final else self.next_run - self.next_run % TALLY_BLOCK
        if end <= tallied:
            return
        joined = _concat(self.buffer)
        for a in range(tallied, end, TALLY_BLOCK):
            b = min(a + TALLY_BLOCK, end)
            self.tally.add({k: v[a - tallied:b - tallied] for k, v in joined.items()})
            if (self.target_se is not None and self.tally.n >= 200
                    and self.tally.headline_standard_errors().max() < self.target_se):
                self.stopped = True
                break
        cut = self.tally.n - tallied
        self.buffer = [{k: v[cut:] for k, v in joined.items()}]

    def finish(self, seed: int, info: dict[str, Any]) -> Results:
        self._drain()
        if not self.stopped:
            self._tally_blocks(final=True)
        runs_done = self.tally.n
        if self.stopped and self.store is not None:
            self.store.truncate(runs_done)
        meta = {"seed": seed, "runs": runs_done, "runs_requested": self.runs, **info}
        if self.store is not None:
            return self.store.finish(self.scenario, self.tally, meta)
        columns = _concat(self.memory)
        columns = {k: v[:runs_done] for k, v in columns.items()}
        return Results.from_memory(self.scenario, [columns], self.tally, meta)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class _Progress:
    """A progress bar on stderr: runs done, runs per second, time left."""

    def __init__(self, total: int, already: int):
        import sys

        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)

        console = Console(file=sys.stderr)
        self.progress = Progress(
            TextColumn("runs"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self.task = self.progress.add_task("runs", total=total, completed=already, rate="")
        self.started = time.perf_counter()
        self.done = 0
        self.progress.start()

    def advance(self, n: int) -> None:
        self.done += n
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        self.progress.update(self.task, advance=n, rate=f"{rate:,.0f} runs/s")

    def close(self) -> None:
        self.progress.stop()
