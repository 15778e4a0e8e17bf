"""Many runs: chunks of run indices on an executor, streamed into a tally and the store.

Run ``i`` with seed ``s`` draws from streams seeded by ``SeedSequence(s, spawn_key=(i,))``
(see :mod:`sim.model.streams`), so a run's record does not depend on which worker ran it, the
chunk it was in, or the executor: results are bit-identical for any of them.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .inputs import RunInputs, seed_words
from .model.compiled import World, compile_scenario
from .model.streams import StreamPool
from .model.world import run_world
from .results import Results, ResultsStore, scenario_hash
from .scenario import Scenario, load_scenario
from .tally import Layout, Tally

Chunk = tuple[int, int]

_FLOAT_SUFFIXES = (".day", ".value", ".interim_day")
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


def simulate_chunk(world: World, seed: int, start: int, stop: int,
                   inputs: RunInputs | None = None) -> dict[str, np.ndarray]:
    """Return the outcome records of runs ``start`` to ``stop - 1`` as typed columns.

    With ``inputs`` each run first draws its uncertain inputs and runs in its own world;
    the draws join the record as ``input.<key>`` columns (the experiments table).
    """
    pool = StreamPool()
    runs = range(start, stop)
    if inputs is None or not inputs.keys:
        records = [run_world(world, seed, i, pool=pool)[0] for i in runs]
        drawn: dict[str, np.ndarray] = {}
    else:
        words = seed_words(seed, runs) if inputs.replications == 1 else None
        values = inputs.draws(seed, start, stop, words)
        records = []
        for r, (i, w) in enumerate(zip(runs, inputs.worlds(values, stop - start))):
            if words is not None:  # the run's seed words are made already: not twice
                pool.preset(seed, i, words[r].tolist())
            records.append(run_world(w, seed, i, pool=pool)[0])
        drawn = inputs.columns(values)
    matrix = np.array(records, dtype=np.float64)
    columns = {"run": np.arange(start, stop, dtype=np.int64)}
    for j, (name, dtype) in enumerate(list(column_types(world.fields).items())[1:]):
        columns[name] = matrix[:, j].astype(dtype)
    columns.update(drawn)
    return columns


# --- executors -----------------------------------------------------------------------------
# An executor runs tasks (scenario key, seed, chunk) and gives back (task, columns) pairs in
# completion order; jobs put them back in run order. Scenarios travel once per worker, as
# JSON keyed by their hash, and are compiled there on first use.

#: (job index, scenario key, seed, chunk, replications): the job index keeps jobs that share
#: a scenario and seed (a sweep's repeated design points) apart; replications is how many
#: runs play each input draw.
Task = tuple[int, str, int, Chunk, int]

#: The most runs one job may ask for (the scenario language's limit too).
MAX_RUNS = 100_000_000

_WORKER_SCENARIOS: dict[str, str] = {}
_WORKER_WORLDS: dict[str, World] = {}
_WORKER_INPUTS: dict[str, RunInputs | None] = {}


def _inputs_for(key: str, replications: int) -> RunInputs | None:
    """Return the uncertain inputs of scenario ``key``, or None if it has none."""
    cache_key = f"{key}/{replications}"
    if cache_key not in _WORKER_INPUTS:
        scenario = Scenario.model_validate_json(_WORKER_SCENARIOS[key])
        _WORKER_INPUTS[cache_key] = (RunInputs(scenario, _world_for(key), replications)
                                     if scenario.priors else None)
    return _WORKER_INPUTS[cache_key]


def _world_for(key: str) -> World:
    """Return the compiled world of scenario ``key``, compiled once per worker process."""
    world = _WORKER_WORLDS.get(key)
    if world is None:
        world = compile_scenario(Scenario.model_validate_json(_WORKER_SCENARIOS[key]))
        _WORKER_WORLDS[key] = world
    return world


def _install(payloads: dict[str, str]) -> None:
    if set(payloads) != set(_WORKER_SCENARIOS):
        _WORKER_WORLDS.clear()
        _WORKER_INPUTS.clear()
    _WORKER_SCENARIOS.clear()
    _WORKER_SCENARIOS.update(payloads)


def _start_worker(payloads: dict[str, str] | None = None) -> None:
    """Set up a worker process, of the pool or of a Dask cluster this process started.

    Ctrl-C is this process's to handle (it keeps what finished and shuts the workers down),
    so a worker ignores it instead of printing a traceback. What the worker inherited
    (modules, the scenarios) lives as long as it does: it is kept out of the garbage
    collector's full passes, which per-run allocations would trigger (unfrozen they took
    3.5 % of the runs' time).
    """
    import gc
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if payloads is not None:
        _install(payloads)
    gc.freeze()


def _start_dask_worker() -> None:
    """Set up a worker of the Dask cluster this process started (its scenarios come with
    the tasks): as a pool worker, and quiet about the tasks Ctrl-C or an error cancels."""
    import logging

    logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)
    _start_worker()


def _run_task(task: Task) -> tuple[Task, dict[str, np.ndarray]]:
    _, key, seed, chunk, replications = task
    return task, simulate_chunk(_world_for(key), seed, *chunk,
                                inputs=_inputs_for(key, replications))


def _dask_task(payloads: dict[str, str], task: Task) -> tuple[Task, bytes]:
    """Run ``task`` on a Dask worker; its columns come back pickled into one buffer."""
    if task[1] not in _WORKER_SCENARIOS:
        _install(payloads)
    task, columns = _run_task(task)
    # Dask would send each of the ~200 arrays as a message frame of its own, and read and
    # deserialise them one by one in this process's event loop: one buffer costs a copy
    import pickle

    return task, pickle.dumps(columns, protocol=pickle.HIGHEST_PROTOCOL)


class LocalExecutor:
    """Runs tasks one after another in this process."""

    name = "local"

    def __init__(self, payloads: dict[str, str]):
        _install(payloads)
        self.workers = 1

    def imap(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, dict]]:
        for task in tasks:
            yield _run_task(task)

    def map_unordered(self, fn: Callable[[Any], Any], items: list) -> Iterator[tuple[int, Any]]:
        """Yield (index, fn(item)) for every item, as they finish (here: in order)."""
        for i, item in enumerate(items):
            yield i, fn(item)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """A pool of worker processes; scenarios are sent once per worker, runs go in chunks."""

    name = "process"

    def __init__(self, payloads: dict[str, str], workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        # fork starts workers in milliseconds and needs no __main__ guard in scripts; the
        # pool is made before any progress-bar thread exists
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                        initializer=_start_worker, initargs=(payloads,))

    def imap(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, dict]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        pending = iter(tasks)
        # a bounded window keeps finished-but-unwritten chunks, and so memory, small
        in_flight = {self.pool.submit(_run_task, t) for t in _take(pending, 2 * self.workers)}
        while in_flight:
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                in_flight |= {self.pool.submit(_run_task, t) for t in _take(pending, 1)}

    def map_unordered(self, fn: Callable[[Any], Any], items: list) -> Iterator[tuple[int, Any]]:
        """Yield (index, fn(item)) for every item, as they finish; what is left is
        cancelled when the caller stops early."""
        from concurrent.futures import as_completed

        futures = {self.pool.submit(fn, item): i for i, item in enumerate(items)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


#: Dask settings of the local cluster that the Dask executor starts itself (an existing
#: cluster, given by its scheduler's address, keeps its owner's). On 2 cores every CPU-second
#: that the cluster's own machinery takes is one the runs do not get, so its background work
#: is made rarer: no statistical profiler in the workers (it samples their stacks every
#: 10 ms), event-loop health ticks every second instead of every 20 ms, and the system and
#: memory monitors every 5 s and 1 s instead of 500 ms and 100 ms.
_LOCAL_DASK_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


class DaskExecutor:
    """Tasks on a Dask cluster: an existing scheduler, or a local one made here."""

    name = "dask"

    def __init__(self, payloads: dict[str, str], workers: int, scheduler: str | None):
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - depends on the install
            raise InputError(
                "the Dask executor needs the 'dask' extra: pip install 'negotiation-sim[dask]'"
            ) from None
        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="10s")
            except (OSError, ValueError, TypeError) as exc:  # unreachable, or not an address
                raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        else:
            import multiprocessing

            config = dict(_LOCAL_DASK_CONFIG)
            # as for the pool: fork starts the workers in milliseconds, with this process's
            # imports, where spawn starts new interpreters that import Dask and the model
            if "fork" in multiprocessing.get_all_start_methods():
                config["distributed.worker.multiprocessing-method"] = "fork"
            with dask.config.set(config):
                self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                            processes=True, dashboard_address=":0")  # any port
                try:
                    # all its workers are on this machine: fetch results from them directly,
                    # not through the scheduler
                    self.client = Client(self.cluster, direct_to_workers=True)
                except BaseException:
                    self.cluster.close()
                    raise
        try:
            if self.cluster is not None:
                # not on a cluster that is not ours: its workers keep their owner's set-up
                self.client.run(_start_dask_worker)
            self.workers = len(self.client.scheduler_info().get("workers", {})) or workers
            self.payloads = self.client.scatter(payloads, broadcast=True)
        except BaseException:  # Ctrl-C or a failure while setting up: leave nothing running
            self.close()
            raise

    def imap(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, dict]]:
        import pickle

        from distributed import as_completed

        pending = iter(tasks)
        # results are fetched by the client's event loop as tasks finish, not when asked for
        window = as_completed(with_results=True)

        def submit(task: Task) -> None:
            window.add(self.client.submit(_dask_task, self.payloads, task, pure=False))

        for task in _take(pending, 2 * self.workers):
            submit(task)
        for future, result in window:
            if future.status != "finished":  # cancelled, or lost with its worker: raise that
                future.result()
            future.release()
            task, blob = result
            yield task, pickle.loads(blob)
            for more in _take(pending, 1):
                submit(more)

    def map_unordered(self, fn: Callable[[Any], Any], items: list) -> Iterator[tuple[int, Any]]:
        """Yield (index, fn(item)) for every item, as they finish; what is left is
        cancelled when the caller stops early."""
        from distributed import as_completed

        futures = {self.client.submit(fn, item, pure=False): i for i, item in enumerate(items)}
        try:
            for future in as_completed(list(futures)):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _take(iterator: Iterator, n: int) -> list:
    out = []
    for _ in range(n):
        item = next(iterator, None)
        if item is None:
            break
        out.append(item)
    return out


def make_executor(payloads: dict[str, str], executor: str, workers: int, scheduler: str | None):
    """Return the executor named ``executor`` ("local", "process" or "dask")."""
    if scheduler or executor == "dask":
        return DaskExecutor(payloads, workers, scheduler)
    if executor == "process":
        return ProcessExecutor(payloads, workers)
    if executor == "local":
        return LocalExecutor(payloads)
    raise InputError(f"unknown executor '{executor}': choose local, process or dask")


# --- jobs ------------------------------------------------------------------------------------


@dataclass
class JobSpec:
    """One Monte Carlo job: a scenario, how many runs with which seed, and where they go."""

    scenario: Scenario
    runs: int
    seed: int
    out: Path | None = None
    resume: bool = False
    force: bool = False
    target_se: float | None = None
    #: lock the folder (a sweep locks its own folder instead of each point's)
    lock: bool = True
    #: recorded in metadata.json as given, e.g. the --set overrides
    notes: dict[str, Any] | None = None
    #: "sample" draws each run's uncertain inputs from their priors; "point" runs them all
    #: at their point values (median, or a choice's mode)
    inputs: str = "sample"
    #: runs that play each input draw (with their own event streams)
    replications: int = 1
    #: keep the folder locked after the job, until ``Results.release()``
    keep_lock: bool = False


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
    overrides: Iterable[str] = (),
    inputs: str = "sample",
    replications: int = 1,
    keep_lock: bool = False,
    inputs_from: str | Path | None = None,
) -> Results:
    """Return the results of a Monte Carlo job of ``runs`` runs of ``scenario``.

    ``workers`` defaults to all cores; ``executor`` is "local" (in this process), "process"
    (a pool), "dask" (a local cluster, or the one at ``scheduler``) or "auto" (local for one
    worker or small jobs, else process). With ``out`` the runs stream to that folder as they
    finish (see :class:`~sim.results.ResultsStore`); ``resume`` finishes an interrupted job
    there (as many runs as it asked for, unless ``runs`` says more), ``force`` replaces a
    folder this tool wrote. ``target_se`` stops at the first block of runs after which every
    headline probability's standard error is below it. ``overrides`` (the ``--set`` strings
    the scenario was loaded with) are recorded in ``metadata.json``.

    A scenario's priors are drawn run by run (``inputs="sample"``) or all set to their point
    values (``inputs="point"``); with ``replications`` R, each input draw is played by R runs
    with their own event streams, so that the spread due to the unknowns can be told from
    the spread due to events (:mod:`sim.uncertainty`). With ``keep_lock`` the results folder
    stays locked until ``results.release()`` (for outputs written after the job).

    ``inputs_from`` (a calibration folder written by :func:`sim.calibration.calibrate`)
    draws each input draw's calibrated inputs from that posterior, one weighted particle per
    draw through the inputs stream; the scenario's other priors stay as they are, and the
    posterior's keys the scenario has no prior on are reported in ``metadata.json``.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    calibration = None
    if inputs_from is not None:
        from .calibration import attach, load_posterior

        if inputs == "point":
            raise InputError("--inputs point and --inputs-from exclude each other: point mode "
                             "runs every prior at its median")
        scenario, calibration = attach(scenario, load_posterior(inputs_from))
    folder = Path(out) if out is not None else None
    if resume and folder is not None:  # finish the job as it was started, unless told
        settings = ResultsStore(folder).job_settings()
        runs = settings.get("runs") if runs is None else runs
        target_se = settings.get("target_se") if target_se is None else target_se
    notes = {"overrides": list(overrides)} if overrides else {}
    if calibration is not None:
        notes["calibration"] = calibration
    notes = notes or None
    job = JobSpec(scenario, scenario.runs if runs is None else runs,
                  scenario.seed if seed is None else seed, folder, resume, force, target_se,
                  notes=notes, inputs=inputs, replications=replications, keep_lock=keep_lock)
    return run_jobs([job], workers=workers, executor=executor, scheduler=scheduler,
                    chunk_size=chunk_size, progress=progress)[0]


def run_jobs(jobs: list[JobSpec], *, workers: int | None = None, executor: str = "auto",
             scheduler: str | None = None, chunk_size: int | None = None,
             progress: bool = False) -> list[Results]:
    """Return the results of several jobs run on one executor, with one progress bar."""
    for spec in jobs:
        if isinstance(spec.runs, bool) or not isinstance(spec.runs, (int, np.integer)):
            raise InputError(f"runs: {spec.runs!r} must be a whole number")
        if spec.runs <= 0:
            raise InputError(f"runs: {spec.runs} must be greater than 0")
        if spec.runs > MAX_RUNS:
            raise InputError(f"runs: {spec.runs} is more than one job may hold ({MAX_RUNS:,}); "
                             "split it into several jobs with different seeds")
        if not 0 <= spec.seed < 2**63:
            raise InputError(f"seed: {spec.seed} must be between 0 and 2**63 - 1")
        if spec.target_se is not None and not 0.0 < spec.target_se < 0.5:
            raise InputError(f"target-se: {spec.target_se} must be between 0 and 0.5")
        if spec.inputs not in INPUT_MODES:
            raise InputError(f"inputs: '{spec.inputs}' is not one of {', '.join(INPUT_MODES)}")
        if (isinstance(spec.replications, bool) or not isinstance(spec.replications, int)
                or not 1 <= spec.replications <= spec.runs):
            raise InputError(f"replications: {spec.replications!r} must be a whole number "
                             f"from 1 to the runs ({spec.runs})")
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise InputError(f"workers: {workers} must be at least 1")
    total = sum(spec.runs for spec in jobs)
    if executor == "auto":
        executor = "local" if workers == 1 or total < 400 else "process"
    if chunk_size is None:
        chunk_size = max(50, min(1000, math.ceil(total / (workers * 8))))
    if chunk_size < 1:
        raise InputError(f"chunk-size: {chunk_size} must be at least 1")

    scenarios = [spec.scenario.model_copy(update={"runs": spec.runs, "seed": spec.seed})
                 for spec in jobs]
    # what the workers run: in point mode the scenario's point values, without its priors
    dispatched = [s.model_copy(update={"priors": {}, "posterior": None}) if spec.inputs == "point" else s
                  for spec, s in zip(jobs, scenarios)]
    payloads = {scenario_hash(s): s.model_dump_json() for s in dispatched}
    # a cluster that cannot be reached fails the job before any folder is touched
    engine = None
    if not all(spec.resume for spec in jobs):
        engine = make_executor(payloads, executor, workers, scheduler)
    states: list[_Job] = []
    started = time.perf_counter()
    try:
        tasks = []
        for index, (spec, scenario) in enumerate(zip(jobs, scenarios)):
            store = ResultsStore(spec.out, lock=spec.lock) if spec.out is not None else None
            done: set[Chunk] = set()
            if store is not None:
                done = store.prepare(scenario, seed=spec.seed, runs=spec.runs,
                                     resume=spec.resume, force=spec.force,
                                     target_se=spec.target_se, settings=_settings(spec))
            layout = Layout.from_fields(compile_scenario(scenario).fields, scenario.horizon_days)
            states.append(_Job(scenario, layout, store, spec.runs, spec.target_se, done))
            key = scenario_hash(dispatched[index])
            tasks.append([(index, key, spec.seed, c, spec.replications)
                          for c in _chunks_to_run(spec.runs, chunk_size, done)])
        # interleave the jobs' chunks so that a sweep's points finish together
        order = [t for group in itertools.zip_longest(*tasks) for t in group if t is not None]
        if order and engine is None:
            engine = make_executor(payloads, executor, workers, scheduler)
        if not order and engine is not None:
            engine.close()
            engine = None
        started = time.perf_counter()
        _execute(engine, order, states, total, progress)
    except BaseException as exc:
        for state in states:
            if state.store is not None:
                state.store.release()
                if state.new_runs == 0 and not isinstance(exc, KeyboardInterrupt):
                    state.store.discard_if_empty()  # nothing ran: leave no folder behind
        raise
    finally:
        if engine is not None:
            engine.close()
    wall = time.perf_counter() - started
    new_runs = sum(state.new_runs for state in states)
    info = {
        "executor": engine.name if engine else "none (all runs already done)",
        "workers": engine.workers if engine else 0,
        "chunk_size": chunk_size,
        "wall_seconds": wall,
        "runs_per_second": new_runs / wall if wall > 0 and new_runs else None,
    }
    try:
        finished = [state.finish(spec.seed, {**info, "target_se": spec.target_se,
                                             "stopped_at_target": state.stopped,
                                             "priors": {k: p.describe()
                                                        for k, p in spec.scenario.priors.items()},
                                             **_settings(spec), **(spec.notes or {})},
                                 keep_lock=spec.keep_lock)
                    for spec, state in zip(jobs, states)]
    except BaseException:
        for state in states:
            if state.store is not None:
                state.store.release()
        raise
    return finished


#: How a job treats its uncertain inputs (see :class:`JobSpec`).
INPUT_MODES = ("sample", "point")


def _settings(spec: JobSpec) -> dict[str, Any]:
    """Return what, beside scenario and seed, makes a job the job it is (for job.json)."""
    return {"inputs": spec.inputs if spec.scenario.priors else "none",
            "replications": spec.replications}


def _execute(engine, order: list[Task], states: list[_Job], total: int, progress: bool) -> None:
    """Run the tasks in ``order`` on ``engine``, handing each chunk to its job."""
    bar = _Progress(total, already=total - sum(t[3][1] - t[3][0] for t in order)) if progress else None
    # chunks of a job that reached its --target-se are not started at all
    pending = (t for t in order if not states[t[0]].stopped)
    try:
        if engine is not None:
            for task, columns in engine.imap(pending):
                state = states[task[0]]
                if not state.stopped:
                    state.receive(task[3], columns)
                if bar is not None:
                    bar.advance(task[3][1] - task[3][0])
                if all(s.stopped for s in states):
                    break
    finally:
        if bar is not None:
            bar.close()


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

    def finish(self, seed: int, info: dict[str, Any], keep_lock: bool = False) -> Results:
        self._drain()
        if not self.stopped:
            self._tally_blocks(final=True)
        runs_done = self.tally.n
        if self.stopped and self.store is not None:
            self.store.truncate(runs_done)
        meta = {"seed": seed, "runs": runs_done, "runs_requested": self.runs, **info}
        if self.store is not None:
            return self.store.finish(self.scenario, self.tally, meta, keep_lock=keep_lock)
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
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

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
