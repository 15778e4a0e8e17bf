"""Calibration to the record: the posterior of a scenario's uncertain inputs given dated facts.

``sim calibrate SCENARIO --facts FILE`` fits the priors of the chosen inputs to the facts by
approximate Bayesian computation with sequential Monte Carlo (ABC-SMC, :mod:`pyabc`):

* **Data.** One simulated data set is one run of the scenario, read at every fact's date
  exactly as :mod:`sim.facts` reads it (a count by its date, a topic's state on its date).
  The run's other uncertain inputs (those not calibrated) are drawn from their priors, so
  they are integrated over, not fixed.
* **Summary statistics.** The facts' quantities themselves: a count is a number, a yes/no
  item is 1 or 0.
* **Distance.** A weighted L1 distance, ``d(s, o) = sum_i w_i |s_i - o_i|``, with weights
  ``w_i = 1 / RMSD_i``, the root mean square deviation of quantity ``i`` from its observed
  value among the previous generation's simulations (pyabc's ``AdaptivePNormDistance`` with
  ``root_mean_square_deviation`` scales, re-fitted every generation, Prangle 2017). A
  quantity the simulations always match gets no weight: it cannot tell particles apart.
* **Schedule.** Each generation's tolerance is the median of the previous generation's
  distances (pyabc's ``QuantileEpsilon``); proposals are perturbed with a multivariate
  normal kernel fitted to the last population. It stops after ``generations`` generations,
  when the acceptance rate falls below ``min_acceptance``, or when ``max_simulations`` are
  spent, whichever comes first.

Reproducibility: particle ``i`` of generation ``t`` is sampled from its own random stream
(``SeedSequence(seed, spawn_key=(CALIBRATION_STREAM, t + 1, i))``), retrying until one
proposal is accepted; tasks of several particles go to the project's executors (a process
pool, or Dask), and the population is put together in particle order. So a calibration is
the same whatever the worker count or executor. pyabc keeps every generation in an SQLite
database in the folder: an interrupted calibration is resumed from its last complete
generation (``--resume``), or that generation is written out as the posterior as it is.

The folder (``results/<scenario>-calibration`` by default) holds ``posterior.parquet`` (one
column per calibrated input and a ``weight`` column), ``generations.csv`` (epsilon,
acceptance rate, effective sample size, simulations), a prior-against-posterior plot per
input in ``plots/``, ``check.json``/``check.txt`` (the posterior predictive check: every fact
scored as ``sim score`` scores it, from runs whose inputs come from the posterior) and
``calibration.json`` (the settings and what was found). ``sim run --inputs-from FOLDER``
draws each run's inputs from the posterior.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import math
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .facts import FactsFile, Item, check_fits, horizons, item_values, load_facts
from .inputs import Posterior, Prior, Quantiles, family_groups
from .scenario import Scenario, load_scenario

#: Spawn-key namespace of the calibration's random streams (apart from the runs' streams).
CALIBRATION_STREAM = 0xCA1B
#: Files a calibration folder holds (see :data:`sim.outputs.CALIBRATION`).
POSTERIOR_FILE = "posterior.parquet"
DATABASE = "calibration.db"
SETTINGS_FILE = "calibration.json"
WEIGHT = "weight"
#: More inputs than this and ABC needs more simulations than a calibration should take.
MAX_INPUTS = 20
MAX_POPULATION = 1_000_000
MAX_CHECK_RUNS = 100_000_000


@dataclass
class Settings:
    """What a calibration is: its inputs, facts, seed and ABC-SMC schedule."""

    population: int = 400
    generations: int = 8
    min_acceptance: float = 0.02
    max_simulations: int = 200_000
    seed: int = 0
    #: particles per task sent to a worker
    batch: int = 10
    #: runs of the posterior predictive check
    check_runs: int = 2000

    def check(self) -> None:
        for name, low in (("population", 20), ("generations", 1), ("max_simulations", 1),
                          ("batch", 1), ("check_runs", 10)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"{name.replace('_', '-')}: {value!r} must be a whole "
                                 f"number of at least {low}")
        if self.population > MAX_POPULATION:
            raise InputError(f"population: {self.population:,} is more particles than a "
                             f"calibration may hold ({MAX_POPULATION:,})")
        if self.max_simulations < self.population:
            raise InputError(f"max-simulations: {self.max_simulations:,} is fewer than one "
                             f"generation's population ({self.population:,})")
        if self.check_runs > MAX_CHECK_RUNS:
            raise InputError(f"check-runs: {self.check_runs:,} is more than one job may hold "
                             f"({MAX_CHECK_RUNS:,})")
        if (isinstance(self.min_acceptance, bool) or not isinstance(self.min_acceptance, (int, float))
                or not 0.0 <= self.min_acceptance < 1.0):
            raise InputError(f"min-acceptance: {self.min_acceptance!r} must be in [0, 1)")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"seed: {self.seed} must be between 0 and 2**63 - 1")


# --- choosing what to calibrate ------------------------------------------------------------


def choose_inputs(scenario: Scenario, patterns: Iterable[str]) -> list[str]:
    """Return the scenario's uncertain keys matched by ``patterns`` (all without patterns).

    A pattern is a dotted key or a shell-style pattern (``tracks.*.cancel_prob``). A pattern
    that matches no prior, a choice prior, and more than :data:`MAX_INPUTS` inputs are errors.
    """
    patterns = list(patterns)
    keys = list(scenario.priors)
    if not keys:
        raise InputError(f"{scenario.name} has no uncertain inputs (priors) to calibrate")
    if patterns:
        chosen: list[str] = []
        for pattern in patterns:
            found = [k for k in keys if fnmatch.fnmatchcase(k, pattern)]
            if not found:
                close = [k for k in keys if pattern.split(".")[-1] in k][:3]
                hint = f"; uncertain keys like it: {', '.join(close)}" if close else ""
                raise InputError(f"--input {pattern}: no uncertain input of {scenario.name} "
                                 f"matches it{hint}")
            chosen += [k for k in found if k not in chosen]
    else:
        chosen = keys
    choice = [k for k in chosen if scenario.priors[k].categorical]
    if choice:
        raise InputError(f"--input: {', '.join(choice)} has a choice prior; calibration takes "
                         "numbers only (fix it, or leave it to its prior)")
    if len(chosen) > MAX_INPUTS:
        raise InputError(f"{len(chosen)} inputs to calibrate; ABC-SMC needs too many "
                         f"simulations beyond {MAX_INPUTS}: choose the inputs the facts speak "
                         "to with --input KEY (repeatable, patterns allowed)")
    return chosen


def observed(items: list[Item]) -> dict[str, float]:
    """The facts' observed quantities (yes/no as 1/0): the observed summary statistics."""
    return {item.label: float(item.observed) for item in items}


# --- one simulated data set ---------------------------------------------------------------


class FactsModel:
    """The model pyabc calls: one run with the given inputs, read at every fact's date.

    Picklable and light: it carries the scenario as JSON and builds (once per process) the
    compiled world and the per-run patcher. Randomness comes from numpy's global generator,
    which the sampler seeds for every particle (see :class:`ReproducibleSampler`).
    """

    def __init__(self, scenario: Scenario, items: list[Item], keys: list[str]):
        self.scenario_json = scenario.model_dump_json()
        self.items_json = [item.model_dump_json(by_alias=True) for item in items]
        self.keys = list(keys)
        self.digest = hashlib.sha256(
            "\n".join([self.scenario_json, *self.items_json, *self.keys]).encode()).hexdigest()

    def __call__(self, pars: Any) -> dict[str, float]:
        return _simulator(self).simulate({k: float(pars[k]) for k in self.keys})


_SIMULATORS: dict[str, _Simulator] = {}


def _simulator(model: FactsModel) -> _Simulator:
    sim = _SIMULATORS.get(model.digest)
    if sim is None:
        _SIMULATORS.clear()
        sim = _SIMULATORS[model.digest] = _Simulator(model)
    return sim


class _Simulator:
    def __init__(self, model: FactsModel):
        from .facts import Item
        from .inputs import RunInputs
        from .model import compile_scenario
        from .model.streams import StreamPool

        scenario = Scenario.model_validate_json(model.scenario_json)
        self.scenario = scenario
        self.items = [Item.model_validate_json(text) for text in model.items_json]
        self.horizons = horizons(scenario, self.items)
        world = compile_scenario(scenario.model_copy(update={"horizon_days": max(self.horizons)}))
        self.fields = {name: j for j, name in enumerate(world.fields)}
        self.inputs = RunInputs(scenario, world)
        self.keys = model.keys
        self.others = [(k, p) for k, p in scenario.priors.items() if k not in set(model.keys)]
        self.quantiles = Quantiles([p for _, p in self.others])
        self.pool = StreamPool()

    def simulate(self, values: dict[str, float]) -> dict[str, float]:
        from .model.world import run_world

        drawn: dict[str, Any] = dict(values)
        if self.others:
            u = np.random.random(len(self.others))
            for (key, _), column in zip(self.others, self.quantiles(u[None, :])):
                drawn[key] = column[0]
        world = self.inputs.patcher.world_for(drawn)
        seed = int(np.random.randint(0, 2**62))
        records = {}
        for h in self.horizons:
            object.__setattr__(world, "horizon", float(h))
            records[h] = run_world(world, seed, 0, pool=self.pool)[0]
        at = _RecordsAt(records, self.fields)
        return {item.label: float(item_values(item, self.scenario, at, 1)[0])
                for item in self.items}


class _RecordsAt:
    """``at(horizon)`` for :func:`sim.facts.item_values`: one run's record at each horizon."""

    def __init__(self, records: dict[int, tuple], fields: dict[str, int]):
        self.records, self.fields, self.h = records, fields, 0

    def __call__(self, h: int) -> _RecordsAt:
        self.h = h
        return self

    def column(self, name: str) -> np.ndarray:
        return np.array([self.records[self.h][self.fields[name]]])


# --- the sampler: reproducible, on the project's executors ---------------------------------

_SIMULATE: dict[str, Any] = {}


def sample_particles(blob: bytes, digest: str, seed: int, t: int, indices: list[int],
                     max_tries: int) -> list[tuple[Any, int]]:
    """Sample particles ``indices`` of generation ``t``, each from its own stream: for each,
    proposals until one is accepted (or ``max_tries``), as (pyabc Sample, proposals made)."""
    fn = _SIMULATE.get(digest)
    if fn is None:
        import cloudpickle

        _SIMULATE.clear()
        fn = _SIMULATE[digest] = cloudpickle.loads(blob)
    simulate_one, factory = fn
    out = []
    for i in indices:
        state = np.random.SeedSequence(seed, spawn_key=(CALIBRATION_STREAM, t + 1, i))
        words = state.generate_state(8)
        np.random.seed(words)
        random.seed(int(words[0]))
        sample = factory()
        tries = 0
        while tries < max_tries:
            particle = simulate_one()
            tries += 1
            sample.append(particle)
            if particle.accepted:
                break
        out.append((sample, tries))
    return out


def _sample_task(args: tuple) -> list[tuple[Any, int]]:
    return sample_particles(*args)


class ReproducibleSampler:
    """A pyabc sampler whose population does not depend on how the work is spread.

    Built as a subclass of :class:`pyabc.sampler.Sampler` by :func:`make_sampler` (pyabc is
    imported only when a calibration runs).
    """


def make_sampler(engine: Any, seed: int, batch: int, max_simulations: int,
                 progress: Progress | None):
    from pyabc.sampler import Sampler

    class _Sampler(Sampler):
        def __init__(self):
            super().__init__()
            self.spent = 0

        def sample_until_n_accepted(self, n, simulate_one, t, *, max_eval=np.inf,
                                    all_accepted=False, ana_vars=None):
            import cloudpickle

            blob = cloudpickle.dumps((simulate_one, self.sample_factory))
            digest = hashlib.sha256(blob).hexdigest()
            # a particle may not spend more than what is left of the budget
            left = max(1, max_simulations - self.spent)
            max_tries = int(min(left, max_eval if math.isfinite(max_eval) else left))
            tasks = [(blob, digest, seed, t, list(range(i, min(i + batch, n))), max_tries)
                     for i in range(0, n, batch)]
            if progress is not None:
                progress.generation(t, n)
            results: dict[int, list] = {}
            for index, result in _map(engine, _sample_task, tasks):
                if STOP.requested:  # Ctrl-C: stop here, between tasks, not inside pyabc's
                    raise KeyboardInterrupt  # database writes
                results[index] = result
                if progress is not None:
                    progress.advance(len(result), sum(k for _, k in result))
            sample = self._create_empty_sample()
            evaluations = 0
            for index in range(len(tasks)):
                for part, tries in results[index]:
                    sample += part
                    evaluations += tries
            self.nr_evaluations_ = evaluations
            self.spent += evaluations
            if sample.n_accepted < n:
                sample.ok = False
            return sample

    return _Sampler()


def _map(engine: Any, fn: Any, items: list) -> Iterator[tuple[int, Any]]:
    """Yield (index, fn(item)) for every item, on the executor ``engine``, as they finish."""
    return engine.map_unordered(fn, items)


# --- Ctrl-C --------------------------------------------------------------------------------


class _Stop:
    requested = False


#: Set by the first Ctrl-C of a calibration; the sampler stops at its next task.
STOP = _Stop()


@contextlib.contextmanager
def _deferred_interrupt(display: Progress) -> Iterator[None]:
    """Turn the first Ctrl-C into a request the sampler honours between tasks.

    A KeyboardInterrupt raised wherever the main thread happens to be can land inside
    pyabc's database writes (SQLAlchemy), leaving its history unusable, or in a finaliser,
    which swallows it. The second Ctrl-C interrupts at once.
    """
    import signal
    import threading

    STOP.requested = False
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if STOP.requested:
            raise KeyboardInterrupt
        STOP.requested = True
        display.line("stopping after the tasks under way (Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        STOP.requested = False


# --- progress ------------------------------------------------------------------------------


class Progress:
    """Generations on stderr: particles accepted, acceptance rate so far, time."""

    def __init__(self, population: int, enabled: bool):
        import sys

        from rich.console import Console

        self.console = Console(file=sys.stderr)
        self.enabled = enabled
        self.population = population
        self.bar = None
        self.started = time.perf_counter()

    def generation(self, t: int, n: int) -> None:
        if not self.enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.close()
        label = "prior sample" if t < 0 else f"generation {t}"
        self.bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), console=self.console)
        self.task = self.bar.add_task(label, total=n, info="")
        self.accepted, self.tries, self.t0 = 0, 0, time.perf_counter()
        self.bar.start()

    def advance(self, accepted: int, tries: int) -> None:
        if self.bar is None:
            return
        self.accepted += accepted
        self.tries += tries
        rate = self.accepted / max(self.tries, 1)
        self.bar.update(self.task, advance=accepted,
                        info=f"acceptance {rate:.1%}, {self.tries:,} simulations, "
                             f"{time.perf_counter() - self.t0:.0f} s")

    def line(self, text: str) -> None:
        if self.enabled:
            self.close()
            self.console.print(text, highlight=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


# --- the calibration -----------------------------------------------------------------------


@dataclass
class Calibration:
    """A finished (or interrupted) calibration: its posterior and diagnostics."""

    folder: Path
    scenario: Scenario
    keys: list[str]
    posterior: Posterior
    generations: list[dict[str, Any]]
    simulations: int
    wall_seconds: float
    complete: bool
    notes: list[str] = field(default_factory=list)
    check: Any = None
    facts_path: str = ""
    check_runs: int = 0

    def frame(self):
        """The weighted posterior sample as a DataFrame (one column per input, ``weight``)."""
        import pandas as pd

        df = pd.DataFrame(list(self.posterior.particles), columns=list(self.keys))
        df[WEIGHT] = list(self.posterior.weights)
        return df


def pyabc_prior(scenario: Scenario, keys: list[str]):
    """The priors of ``keys`` as a :class:`pyabc.Distribution` (the same scipy.stats laws),
    whose joint density takes one scipy.stats call per family instead of one per input
    (pyabc evaluates it for every proposal)."""
    import pyabc

    class GroupedDistribution(pyabc.Distribution):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.names = list(self.keys())
            self.groups = family_groups({j: self[k].distribution
                                         for j, k in enumerate(self.names)})

        def pdf(self, x: Any) -> float:
            if sorted(x.keys()) != sorted(self.names):
                return super().pdf(x)
            values = np.array([float(x[k]) for k in self.names])
            density = 1.0
            for dist, columns, args, named in self.groups:
                density *= float(np.prod(dist.pdf(values[columns], *args, **named)))
            return density

    rvs = {}
    for key in keys:
        frozen = scenario.priors[key]._frozen()
        rvs[key] = pyabc.RV(frozen.dist.name, *frozen.args, **frozen.kwds)
    return GroupedDistribution(**rvs)


def calibrate(scenario: Scenario | str | Path, facts: FactsFile | str | Path, *,
              inputs: Iterable[str] = (), settings: Settings | None = None,
              out: str | Path | None = None, force: bool = False, resume: bool = False,
              workers: int | None = None, executor: str = "auto", scheduler: str | None = None,
              progress: bool = False, plots: bool = True) -> Calibration:
    """Calibrate ``scenario``'s uncertain ``inputs`` to ``facts``; write the folder ``out``.

    Everything is checked (scenario, facts, inputs, settings, the folder) before anything
    runs or is written. See the module's docstring for the method.
    """
    import logging
    import os

    from .montecarlo import make_executor
    from .outputs import check_not_nested, claim, discard

    settings = settings or Settings()
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if not isinstance(facts, FactsFile):
        facts = load_facts(facts)
    check_fits(facts, scenario)
    items = facts.facts
    if not items:
        raise InputError("the facts file has no facts with observed values to calibrate to")
    folder = Path(out) if out is not None else Path("results") / f"{scenario.name}-calibration"
    inputs = list(inputs)
    if resume and (folder / SETTINGS_FILE).exists():
        settings, keys = _resumed_settings(folder, settings, inputs, scenario, facts)
    else:
        if resume and (folder / POSTERIOR_FILE).exists():
            raise InputError(f"{folder}: its pyabc history ({DATABASE}) is missing, so it "
                             "cannot be resumed; run it again with --force")
        keys = choose_inputs(scenario, inputs)
    settings.check()
    check_not_nested(folder)  # before the executor starts
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise InputError(f"workers: {workers} must be at least 1")
    if executor == "auto":
        executor = "local" if workers == 1 else "process"
    from .results import scenario_hash

    engine = make_executor({scenario_hash(scenario): scenario.model_dump_json()}, executor,
                           workers, scheduler)
    lock = None
    created = False
    try:
        lock, created = claim(folder, "calibration", force=force, resume=resume)
        _write_settings(folder, scenario, facts, keys, settings, resume)
        return _run(folder, scenario, facts, keys, settings, engine, progress, plots, resume,
                    workers)
    except BaseException:
        # a calibration that never completed a generation leaves nothing behind (so that it
        # can simply be run again); one being resumed keeps what it had
        if lock is not None and not resume and not (folder / POSTERIOR_FILE).exists():
            lock.release()
            lock = None
            discard(folder, "calibration", created)
        raise
    finally:
        if lock is not None:
            lock.release()
        engine.close()
        logging.getLogger("ABC").setLevel(logging.NOTSET)


def _run(folder: Path, scenario: Scenario, facts: FactsFile, keys: list[str],
         settings: Settings, engine: Any, progress: bool, plots: bool, resume: bool,
         workers: int) -> Calibration:
    import logging

    import pyabc

    for name in ("ABC", "Sampler", "History", "Epsilon", "Distance", "Acceptor", "Transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("pyabc").setLevel(logging.WARNING)
    items = facts.facts
    obs = observed(items)
    display = Progress(settings.population, progress)
    sampler = make_sampler(engine, settings.seed, settings.batch, settings.max_simulations,
                           display)
    distance = pyabc.AdaptivePNormDistance(
        p=1, scale_function=pyabc.distance.root_mean_square_deviation)
    abc = pyabc.ABCSMC(FactsModel(scenario, items, keys), pyabc_prior(scenario, keys), distance,
                       population_size=settings.population, sampler=sampler,
                       eps=pyabc.QuantileEpsilon(alpha=0.5))
    db = f"sqlite:///{(folder / DATABASE).absolute()}"
    started = time.perf_counter()
    if resume and (folder / DATABASE).exists():
        try:
            history = abc.load(db, 1)
            history.max_t  # noqa: B018 - reads the database: a damaged one fails here
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy's and pyabc's errors alike
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{folder}: its pyabc history ({DATABASE}) cannot be read "
                             f"({first}); run it again with --force") from None
        done_before = _done_generations(history)
        sampler.spent = int(history.total_nr_simulations)
        display.line(f"resuming after generation {done_before - 1} "
                     f"({sampler.spent:,} simulations so far)")
    else:
        history = abc.new(db, obs)
        done_before = 0
    complete = True
    notes: list[str] = []
    left = settings.generations - done_before
    try:
        with _deferred_interrupt(display):
            if left > 0:
                abc.run(max_nr_populations=left, min_acceptance_rate=settings.min_acceptance,
                        max_total_nr_simulations=settings.max_simulations)
    except KeyboardInterrupt:
        complete = False
        notes.append("interrupted: the posterior is the last complete generation; "
                     "sim calibrate --resume continues")
    finally:
        display.close()
    if complete:
        notes += _stop_reason(history, settings)
    return _finish(folder, scenario, facts, keys, settings, history, started, complete,
                   notes, engine, progress, plots, workers)


def _stop_reason(history: Any, settings: Settings) -> list[str]:
    """Why a calibration stopped where it did, for its notes."""
    generations = _done_generations(history)
    sims = int(history.total_nr_simulations)
    if generations >= settings.generations:
        return [f"stopped after --generations {settings.generations}"]
    last = history.get_all_populations()
    last = last[last["t"] >= 0].iloc[-1]
    rate = settings.population / max(int(last["samples"]), 1)
    if rate < settings.min_acceptance:
        return [f"stopped: generation {generations - 1}'s acceptance rate {rate:.1%} fell below "
                f"--min-acceptance {settings.min_acceptance:g}"]
    if sims >= settings.max_simulations:
        return [f"stopped: {sims:,} simulations reached --max-simulations "
                f"{settings.max_simulations:,} (--resume with a larger one continues)"]
    return [f"stopped after generation {generations - 1}: the tolerance cannot fall further "
            "(the simulations match the facts as closely as they can)"]


def _done_generations(history: Any) -> int:
    try:
        return int(history.max_t) + 1
    except Exception:  # noqa: BLE001 - an empty history
        return 0


def _finish(folder: Path, scenario: Scenario, facts: FactsFile, keys: list[str],
            settings: Settings, history: Any, started: float, complete: bool,
            notes: list[str], engine: Any, progress: bool, plots: bool,
            workers: int) -> Calibration:
    from .results import write_atomic, write_text_atomic

    if _done_generations(history) == 0:
        if not complete:
            raise KeyboardInterrupt  # stopped by the user before anything could be written
        raise InputError("the calibration stopped before its first generation was complete; "
                         "nothing to write (run it again)")
    generations = diagnostics(history)
    df, w = history.get_distribution(m=0, t=history.max_t)
    df = df[keys]
    w = np.asarray(w, dtype=float)
    order = np.lexsort(df.to_numpy().T[::-1])  # a stable order: the particles as data
    particles = df.to_numpy(dtype=float)[order]
    weights = w[order] / w.sum()
    posterior = _posterior(keys, particles, weights, str(folder))
    cal = Calibration(folder, scenario, keys, posterior, generations,
                      int(history.total_nr_simulations), time.perf_counter() - started,
                      complete, notes, facts_path=str(facts.path),
                      check_runs=settings.check_runs)
    table = cal.frame()
    write_atomic(folder / POSTERIOR_FILE, lambda p: table.to_parquet(p, index=False))
    write_text_atomic(folder / "generations.csv", _csv(generations))
    if complete:
        cal.check = posterior_check(cal, facts, settings, workers=workers, engine=engine)
        write_text_atomic(folder / "check.json", json.dumps(cal.check.to_dict(), indent=2) + "\n")
        write_text_atomic(folder / "check.txt", check_text(cal))
    else:  # stopped by the user: write what is done and go; a check of an older posterior goes
        for name in ("check.json", "check.txt"):
            (folder / name).unlink(missing_ok=True)
        cal.notes.append("the posterior predictive check is made when the calibration finishes")
    if plots:
        write_plots(cal)
    _write_summary(cal, settings)
    return cal


def _posterior(keys: list[str], particles: np.ndarray, weights: np.ndarray,
               source: str) -> Posterior:
    rows = tuple(tuple(float(x) for x in row) for row in particles)
    ws = tuple(float(x) for x in weights)
    digest = hashlib.sha256(json.dumps([list(keys), rows, ws]).encode()).hexdigest()[:16]
    return Posterior(keys=tuple(keys), particles=rows, weights=ws, source=source, digest=digest)


def diagnostics(history: Any) -> list[dict[str, Any]]:
    """Per generation: epsilon, simulations, acceptance rate, effective sample size."""
    from pyabc.weighted_statistics import effective_sample_size

    pops = history.get_all_populations()
    pops = pops[pops["t"] >= 0]
    out = []
    for _, row in pops.iterrows():
        t = int(row["t"])
        _, w = history.get_distribution(m=0, t=t)
        n = len(w)
        sims = int(row["samples"])
        out.append({"generation": t, "epsilon": float(row["epsilon"]), "simulations": sims,
                    "accepted": n, "acceptance_rate": n / sims if sims else float("nan"),
                    "ess": float(effective_sample_size(np.asarray(w, dtype=float)))})
    return out


def _csv(rows: list[dict[str, Any]]) -> str:
    head = ["generation", "epsilon", "simulations", "accepted", "acceptance_rate", "ess"]
    lines = [",".join(head)]
    for r in rows:
        lines.append(",".join(f"{r[h]:.6g}" if isinstance(r[h], float) else str(r[h])
                              for h in head))
    return "\n".join(lines) + "\n"


# --- the posterior predictive check ------------------------------------------------------


def posterior_check(cal: Calibration, facts: FactsFile, settings: Settings, *,
                    workers: int, engine: Any):
    """Every fact scored (as ``sim score`` scores it) from runs drawing the posterior."""
    from .hindcast import scorecard

    scenario = cal.scenario.model_copy(update={"posterior": cal.posterior})
    only_facts = FactsFile(facts.path, facts.facts)
    job: dict[str, Any] = {"workers": workers, "executor": engine.name, "progress": False}
    if engine.name == "dask":
        job["scheduler"] = engine.client.scheduler.address
    return scorecard(scenario, only_facts, runs=settings.check_runs, seed=settings.seed, **job)


def check_text(cal: Calibration) -> str:
    from .scoring import render

    head = (f"Posterior predictive check of {cal.scenario.name}: the facts scored from "
            f"{cal.check_runs:,} runs whose calibrated "
            "inputs are drawn from the posterior. In-sample: the same facts made the posterior.\n\n")
    return head + render(cal.check) + "\n"


# --- plots -------------------------------------------------------------------------------


def write_plots(cal: Calibration) -> list[Path]:
    """One plot per input: prior density and the weighted posterior histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .outputs import record
    from .plots import plot_prior_posterior
    from .results import write_atomic

    plots = cal.folder / "plots"
    paths = [plots / f"posterior_{_file_name(key)}.png" for key in cal.keys]
    record(cal.folder, paths)  # listed as ours before they are written
    particles = np.asarray(cal.posterior.particles, dtype=float)
    weights = np.asarray(cal.posterior.weights, dtype=float)
    for j, (key, path) in enumerate(zip(cal.keys, paths)):
        fig = plot_prior_posterior(key, cal.scenario.priors[key], particles[:, j], weights)
        write_atomic(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png"))
        plt.close(fig)
    return paths


def _file_name(key: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in key)


# --- the folder's own records --------------------------------------------------------------


def _write_settings(folder: Path, scenario: Scenario, facts: FactsFile, keys: list[str],
                    settings: Settings, resume: bool) -> None:
    from .results import scenario_hash, write_text_atomic

    if resume and (folder / SETTINGS_FILE).exists():
        return
    data = {"scenario": scenario.name, "scenario_hash": scenario_hash(scenario),
            "inputs": keys, "facts": [item.label for item in facts.facts],
            "settings": settings.__dict__, "observed": observed(facts.facts),
            "priors": {k: scenario.priors[k].describe() for k in keys}}
    write_text_atomic(folder / SETTINGS_FILE, json.dumps(data, indent=2) + "\n")


def _resumed_settings(folder: Path, settings: Settings, patterns: list[str],
                      scenario: Scenario, facts: FactsFile) -> tuple[Settings, list[str]]:
    """The settings and inputs of the calibration in ``folder``, to continue it: the same
    scenario, facts, inputs, population and seed; more generations or simulations may be
    given (the larger of the saved and the given count is taken)."""
    from .results import scenario_hash

    path = folder / SETTINGS_FILE
    try:
        data = json.loads(path.read_text())
        saved = Settings(**data["settings"])
        saved.check()
        saved_keys = [str(k) for k in data["inputs"]]
        same_scenario = data["scenario_hash"] == scenario_hash(scenario)
        same_facts = data["observed"] == observed(facts.facts)
    except InputError as exc:
        raise InputError(f"{folder}: its settings cannot be resumed ({exc})") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{folder}: not a calibration that can be resumed ({exc})") from None
    if not (folder / DATABASE).is_file():
        raise InputError(f"{folder}: its pyabc history ({DATABASE}) is missing, so it cannot "
                         "be resumed; run it again with --force")
    if not same_scenario:
        raise InputError(f"{folder} was calibrated on another scenario (or another version of "
                         f"{scenario.name}); --resume continues the same one")
    if not same_facts:
        raise InputError(f"{folder} was calibrated to other facts (their labels or observed "
                         "values differ); --resume continues against the same ones")
    if patterns and set(choose_inputs(scenario, patterns)) != set(saved_keys):
        raise InputError(f"{folder} calibrates {', '.join(saved_keys)}; --resume takes the "
                         "same inputs (give the same --input options, or none to reuse them)")
    saved.generations = max(saved.generations, settings.generations)
    saved.max_simulations = max(saved.max_simulations, settings.max_simulations)
    return saved, saved_keys


def _write_summary(cal: Calibration, settings: Settings) -> None:
    from .outputs import record
    from .results import write_text_atomic

    path = cal.folder / SETTINGS_FILE
    data = json.loads(path.read_text())
    data.update({
        "complete": cal.complete, "simulations": cal.simulations,
        "wall_seconds": cal.wall_seconds, "generations": cal.generations,
        "posterior_digest": cal.posterior.digest, "notes": cal.notes,
        "posterior_summary": posterior_summary(cal),
    })
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
    record(cal.folder, [])


def posterior_summary(cal: Calibration) -> dict[str, dict[str, float]]:
    """Per input: prior and posterior median and central 90% interval, and their width ratio."""
    particles = np.asarray(cal.posterior.particles, dtype=float)
    weights = np.asarray(cal.posterior.weights, dtype=float)
    out = {}
    for j, key in enumerate(cal.keys):
        prior = cal.scenario.priors[key]._frozen()
        lo, mid, hi = weighted_quantiles(particles[:, j], weights, (0.05, 0.5, 0.95))
        plo, pmid, phi = (float(prior.ppf(q)) for q in (0.05, 0.5, 0.95))
        out[key] = {"prior_median": pmid, "prior_5": plo, "prior_95": phi,
                    "posterior_median": mid, "posterior_5": lo, "posterior_95": hi,
                    "width_ratio": (hi - lo) / (phi - plo) if phi > plo else float("nan")}
    return out


def weighted_quantiles(x: np.ndarray, w: np.ndarray, qs: Iterable[float]) -> list[float]:
    """Quantiles of a weighted sample (the inverse of its weighted empirical CDF)."""
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    cdf = np.cumsum(w) / np.sum(w)
    return [float(x[min(np.searchsorted(cdf, q, side="left"), len(x) - 1)]) for q in qs]


# --- reading a calibration back ------------------------------------------------------------


def load_posterior(folder: str | Path) -> Posterior:
    """Return the posterior a calibration folder holds (exit 2 if it holds none)."""
    from .outputs import marker_kind

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--inputs-from {folder}: no such calibration folder")
    if marker_kind(folder) != "calibration":
        raise InputError(f"--inputs-from {folder}: not a calibration folder of sim's "
                         "(made by sim calibrate)")
    path = folder / POSTERIOR_FILE
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(str(path.absolute()))
    except FileNotFoundError:
        raise InputError(f"--inputs-from {folder}: it holds no posterior yet "
                         f"({POSTERIOR_FILE}); finish it with sim calibrate --resume") from None
    except Exception as exc:  # noqa: BLE001 - any damage to the file
        raise InputError(f"--inputs-from {folder}: {POSTERIOR_FILE} cannot be read ({exc})") from None
    names = table.column_names
    if WEIGHT not in names or len(names) < 2:
        raise InputError(f"--inputs-from {folder}: {POSTERIOR_FILE} needs a '{WEIGHT}' column "
                         "and one column per input")
    keys = [n for n in names if n != WEIGHT]
    try:
        weights = np.asarray(table.column(WEIGHT).to_numpy(), dtype=float)
        particles = np.column_stack([np.asarray(table.column(k).to_numpy(), dtype=float)
                                     for k in keys])
    except (TypeError, ValueError) as exc:
        raise InputError(f"--inputs-from {folder}: {POSTERIOR_FILE} holds non-numbers ({exc})") from None
    if len(weights) and np.all(np.isfinite(weights)) and weights.max() > 0:
        with np.errstate(over="ignore"):
            if not np.isfinite(weights.sum()):
                weights = weights / weights.max()  # so that their sum does not overflow
    if len(weights) == 0 or not np.all(np.isfinite(particles)) or not np.all(np.isfinite(weights)) \
            or np.any(weights < 0) or weights.sum() <= 0:
        raise InputError(f"--inputs-from {folder}: {POSTERIOR_FILE} needs finite values and "
                         "non-negative weights that do not sum to 0")
    return _posterior(keys, particles, weights, str(folder))


def attach(scenario: Scenario, posterior: Posterior) -> tuple[Scenario, dict[str, Any]]:
    """Return the scenario drawing from ``posterior``, and what to record of it.

    Keys of the posterior the scenario has no prior on are reported (not used); the
    scenario's priors the posterior lacks keep their priors. A posterior value outside the
    scenario's prior support is an error.
    """
    used = [k for k in posterior.keys if k in scenario.priors]
    unknown = [k for k in posterior.keys if k not in scenario.priors]
    if not used:
        raise InputError(f"--inputs-from {posterior.source}: none of its inputs "
                         f"({', '.join(posterior.keys)}) is an uncertain input of "
                         f"{scenario.name}")
    from .scenario import scenario_to_dict
    from .scenario.priors import order_problems, support_problems

    # the posterior replaces the scenario's prior for its keys: its values must be ones the
    # scenario's rules allow (a probability in [0, 1], positions in their order), as a prior
    # spanning them would have to be
    particles = np.asarray(posterior.particles, dtype=float)
    spans: dict[str, Prior] = {}
    for key in used:
        column = particles[:, posterior.keys.index(key)]
        lo, hi = float(column.min()), float(column.max())
        spans[key] = (Prior(family="uniform", params=(lo, hi)) if hi > lo
                      else Prior(family="choice", values=(lo,)))
    point = scenario_to_dict(scenario)
    others = {k: p for k, p in scenario.priors.items() if k not in spans}
    problems = support_problems(point, spans) + order_problems(point, {**others, **spans})
    if problems:
        lines = [f"--inputs-from {posterior.source}: {key}: its posterior values break "
                 f"{scenario.name}'s rules ({why.replace('the prior ', 'the values ')})"
                 for key, why in problems]
        raise InputError("\n".join(lines))
    record = {"source": posterior.source, "digest": posterior.digest,
              "particles": len(posterior.weights), "inputs": used, "not_in_scenario": unknown,
              "kept_priors": sum(1 for k in scenario.priors if k not in posterior.keys)}
    return scenario.model_copy(update={"posterior": posterior}), record


def summary_text(cal: Calibration) -> str:
    """What a calibration found, for the terminal: each input's prior and posterior, the
    generations, and the posterior predictive check's totals."""
    import io

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Calibration of {cal.scenario.name}: {len(cal.keys)} inputs, "
                        f"{len(cal.posterior.weights)} particles")
    table.add_column("input", no_wrap=True)
    for name, justify in (("prior", "left"), ("prior 90%", "right"),
                          ("posterior median", "right"), ("posterior 90%", "right"),
                          ("width / prior's", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for key, row in posterior_summary(cal).items():
        table.add_row(key, cal.scenario.priors[key].describe(),
                      f"{row['prior_5']:.3g}-{row['prior_95']:.3g}",
                      f"{row['posterior_median']:.3g}",
                      f"{row['posterior_5']:.3g}-{row['posterior_95']:.3g}",
                      f"{row['width_ratio']:.2f}")
    gens = Table(title="Generations")
    for name in ("generation", "epsilon", "simulations", "acceptance", "ESS"):
        gens.add_column(name, justify="right")
    for g in cal.generations:
        gens.add_row(str(g["generation"]), f"{g['epsilon']:.4g}", f"{g['simulations']:,}",
                     f"{g['acceptance_rate']:.1%}", f"{g['ess']:.0f}")
    buffer = io.StringIO()
    console = Console(file=buffer, width=150, force_terminal=False, color_system=None)
    console.print(table)
    console.print(gens)
    lines = [buffer.getvalue().rstrip()]
    lines.append(f"{cal.simulations:,} simulations in {cal.wall_seconds:.0f} s"
                 + ("" if cal.complete else " (stopped early)"))
    lines += [f"note: {n}" for n in cal.notes]
    if cal.check is not None:
        lines.append(f"Posterior predictive check ({cal.check_runs:,} runs, in-sample): "
                     + cal.check.coverage_line())
    written = ["posterior.parquet", "generations.csv", "calibration.json"]
    if cal.check is not None:
        written += ["check.txt", "check.json"]
    if (cal.folder / "plots").is_dir():
        written.append("plots/")
    lines.append(f"Calibration in {cal.folder}/: {', '.join(written)}")
    lines.append(f"Forecast from it: sim run SCENARIO --inputs-from {cal.folder}")
    return "\n".join(lines)
