"""The model's cost per SimPy event, against bare SimPy dispatching the same events.

Model: ``run_world(world, seed, i)`` for runs 0..R-1 of the scenario (compiled once, outside
the timing; with a reused ``StreamPool``, as its workers do); each record's
``events`` field is the number of events scheduled in that run (SimPy's event id counter,
including process start and end events and the ``until`` event).

Bare SimPy: for each of those runs, a new ``simpy.Environment`` with as many processes as the
model starts in a run (tracks, shocks with a finite rate, deadlines inside the horizon), each
doing ``yield env.timeout(1)`` while a shared budget lasts, run with ``until`` like the model,
so that it schedules exactly the same number of events as the model run (checked). Creating
the environments and processes is timed for both.

Figures: us/event of each and their ratio (target: model at most 3x bare SimPy), runs/s on one
core, events/run, and the per-run cost of seeding the random streams. Model and bare SimPy are
timed in this one process, alternating every ``--slice`` runs so that both see the same
machine.

    python benchmarks/events.py [--runs 300] [--repeat 5] [--slice 25] [--scenario PATH]
"""

from __future__ import annotations

import gc
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import simpy
from _common import BASELINE, Contention, Report, check_repeat, display_path, header, parser

from sim.model import COMPILED
from sim.model.compiled import World, compile_scenario
from sim.model.streams import STREAM_NAMES, StreamPool, Streams
from sim.model.world import run_world
from sim.scenario import load_scenario


def _pool_kwargs() -> dict:
    """Return the arguments that make run_world reuse generators as a worker does."""
    return {"pool": StreamPool()}

TARGET_RATIO = 3.0


def model_processes(world: World) -> int:
    """Return the number of SimPy processes the model starts in one run (see _Run.play)."""
    return (sum(1 for t in world.tracks if t.max_meetings != 0)
            + sum(1 for s in world.shocks if math.isfinite(s.mean_gap))
            + sum(1 for t in world.topics if t.deadline < world.horizon))


def time_model(world: World, seed: int, runs: range, events_at: int) -> tuple[float, list[int]]:
    kwargs = _pool_kwargs()  # made outside the timing, as a worker makes it once per chunk
    events = []
    t0 = time.perf_counter()
    for i in runs:
        events.append(run_world(world, seed, i, **kwargs)[0][events_at])
    return time.perf_counter() - t0, events


def _ticker(env: simpy.Environment, budget: list[int]):
    timeout = env.timeout
    while budget[0] > 0:
        budget[0] -= 1
        yield timeout(1)


def bare_run(events: int, processes: int, horizon: float, overhead: int) -> int:
    """Schedule exactly ``events`` SimPy events, as the model does in a run; return the count.

    ``overhead`` is the count of events that are not timeouts: see :func:`bare_overhead`.
    """
    env = simpy.Environment()
    budget = [events - overhead]
    for _ in range(processes):
        env.process(_ticker(env, budget))
    env.run(until=horizon)
    return next(env._eid)


def bare_overhead(processes: int, horizon: float) -> int:
    """Return the events a bare run schedules besides its timeouts.

    Each process schedules a start and an end event; ``env.run(until=...)`` schedules its
    ``until`` event and, when that stops the simulation, schedules it once more (SimPy 4.1).
    """
    return bare_run(0, processes, horizon, 0)


def time_bare(events: list[int], processes: int, horizon: float,
              overhead: int) -> tuple[float, list[int]]:
    counts = []
    t0 = time.perf_counter()
    for n in events:
        counts.append(bare_run(n, processes, horizon, overhead))
    return time.perf_counter() - t0, counts


def time_streams(seed: int, runs: int) -> float:
    """Time the per-run setup of the random streams alone: part of the model's cost.

    ``Streams(seed, run)`` (with a reused generator pool where sim has one) and one draw from
    each stream (which fills its first buffer); a run of the baseline draws from every stream.
    """
    kwargs = _pool_kwargs()
    t0 = time.perf_counter()
    for i in range(runs):
        streams = Streams(seed, i, **kwargs)
        for name in STREAM_NAMES:
            getattr(streams, name).random()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=300, help="baseline runs per repeat (default 300)")
    p.add_argument("--slice", type=int, default=25,
                   help="runs timed at a stretch before switching model <-> bare (default 25)")
    p.add_argument("--scenario", type=Path, default=BASELINE)
    args = p.parse_args(argv)
    check_repeat(args.repeat)

    header("events: model cost per SimPy event vs bare SimPy")
    scenario = load_scenario(args.scenario)
    world = compile_scenario(scenario)
    seed = scenario.seed
    at = world.fields.index("events")
    procs = model_processes(world)
    # the horizon of the bare runs is far enough out that every process ends on its budget
    _, events = time_model(world, seed, range(min(args.runs, 20)), at)  # warm-up
    _, events = time_model(world, seed, range(args.runs), at)
    horizon = float(max(events) + 10)
    overhead = bare_overhead(procs, horizon)
    time_bare(events[:20], procs, horizon, overhead)  # warm-up

    def one_repeat() -> tuple[float, float, float]:
        # model and bare alternate every --slice runs, so that drifts in the machine's speed
        # fall on both alike
        gc.collect()
        t_model = t_bare = 0.0
        for a in range(0, args.runs, args.slice):
            runs = range(a, min(a + args.slice, args.runs))
            t, ev = time_model(world, seed, runs, at)
            assert ev == events[a:runs.stop], "model event counts changed between repeats"
            t_model += t
            t, counts = time_bare(events[a:runs.stop], procs, horizon, overhead)
            if counts != events[a:runs.stop]:
                raise SystemExit("bare SimPy did not schedule the same events as the model")
            t_bare += t
        return t_model, t_bare, time_streams(seed, args.runs)

    watch = Contention(args.wait_idle, args.retries)
    model_t, bare_t, streams_t = [], [], []
    for _ in range(args.repeat):
        t_model, t_bare, t_streams = watch.measure(one_repeat)
        model_t.append(t_model)
        bare_t.append(t_bare)
        streams_t.append(t_streams)

    total = sum(events)
    r = Report("events", args.repeat)
    r.info("scenario", "scenario", display_path(args.scenario))
    r.info("runs", "runs per repeat", args.runs)
    r.info("processes", "SimPy processes per run", procs)
    r.info("pool", "generators reused across runs (StreamPool)", "yes")
    r.info("build", "model build", "compiled by mypyc" if COMPILED else
           "pure Python (SIM_PURE_PYTHON=1 or not compiled)")
    r.info("events_total", "events per repeat (model = bare, checked)", total)
    r.info("events_per_run", "events/run (mean)", f"{total / args.runs:.1f}")
    r.figure("model_us_per_event", "model us/event", [t / total * 1e6 for t in model_t],
                        "us", "{:.2f}")
    r.figure("bare_us_per_event", "bare SimPy us/event",
                       [t / total * 1e6 for t in bare_t], "us", "{:.2f}")
    ratio = r.figure("ratio", "ratio model / bare", [m / b for m, b in zip(model_t, bare_t)],
                     "x", "{:.2f}")
    r.figure("runs_per_s", "model runs/s (one core)", [args.runs / t for t in model_t], "runs/s",
             "{:,.0f}")
    r.figure("model_us_per_run", "model us/run", [t / args.runs * 1e6 for t in model_t], "us",
             "{:,.0f}")
    r.figure("streams_us_per_run", "of which RNG setup (4 streams) us/run",
             [t / args.runs * 1e6 for t in streams_t], "us", "{:,.0f}")
    watch.report(r)
    r.target("model us/event / bare SimPy us/event", ratio, "<=", TARGET_RATIO, "x")
    r.write(args.json)
    return r


if __name__ == "__main__":
    main()
