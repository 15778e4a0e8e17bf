"""Uncertain inputs' cost: the baseline with its priors against the same scenario in point mode.

Each repeat times ``sim.montecarlo.run(scenario, runs=R, workers=1, executor="local")`` twice,
alternately: with the priors drawn run by run (``inputs="sample"``) and with every prior at
its point value (``inputs="point"``). Both include compiling, tallying and gathering the
in-memory results. The two runs differ in what happens as well as in the sampling: drawn
inputs change how many meetings and shocks a run has, so the script also prints the SimPy
events per run of each and the sampling's own cost (drawing the inputs and building the
per-run worlds, timed alone).

Target: runs/s with priors / runs/s in point mode >= 0.85.

    python benchmarks/inputs.py [--runs 6000] [--repeat 5] [--scenario PATH]
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BASELINE, Contention, Report, check_repeat, header, parser

from sim.inputs import RunInputs
from sim.model import compile_scenario
from sim.montecarlo import run
from sim.scenario import load_scenario

TARGET_RATIO = 0.85


def timed(scenario, runs: int, inputs: str):
    gc.collect()
    t0 = time.perf_counter()
    results = run(scenario, runs=runs, workers=1, executor="local", inputs=inputs)
    return time.perf_counter() - t0, results


def sampling_cost(scenario, runs: int) -> float:
    """Return microseconds per run spent drawing inputs and building per-run worlds."""
    world = compile_scenario(scenario)
    inputs = RunInputs(scenario, world)
    t0 = time.perf_counter()
    for start in range(0, runs, 1000):
        stop = min(start + 1000, runs)
        for _ in inputs.worlds(inputs.draws(scenario.seed, start, stop), stop - start):
            pass
    return (time.perf_counter() - t0) / runs * 1e6


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=6000, help="runs per job (default 6000)")
    p.add_argument("--scenario", type=Path, default=BASELINE)
    args = p.parse_args(argv)
    check_repeat(args.repeat)

    scenario = load_scenario(args.scenario)
    header(f"inputs: {args.runs:,} runs of {scenario.name} with its {len(scenario.priors)} "
           "priors vs point mode, one core")
    if not scenario.priors:
        raise SystemExit(f"{args.scenario} has no priors: nothing to measure")
    run(scenario, runs=200, workers=1, executor="local")  # warm-up: imports, caches

    def one_repeat():
        t_sample, sampled = timed(scenario, args.runs, "sample")
        t_point, point = timed(scenario, args.runs, "point")
        events = (sampled.summary()["events.mean"].estimate, point.summary()["events.mean"].estimate)
        return t_sample, t_point, events, sampling_cost(scenario, min(args.runs, 3000))

    watch = Contention(args.wait_idle, args.retries)
    sample_t, point_t, costs = [], [], []
    events = (0.0, 0.0)
    for _ in range(args.repeat):
        t_sample, t_point, events, cost = watch.measure(one_repeat)
        sample_t.append(t_sample)
        point_t.append(t_point)
        costs.append(cost)

    r = Report("inputs", args.repeat)
    r.info("priors", "uncertain inputs", len(scenario.priors))
    r.figure("sample_runs_per_s", "with priors: runs/s", [args.runs / t for t in sample_t],
             "runs/s", "{:,.0f}")
    r.figure("point_runs_per_s", "point mode: runs/s", [args.runs / t for t in point_t],
             "runs/s", "{:,.0f}")
    r.info("events_sample", "SimPy events per run, with priors", f"{events[0]:.1f}")
    r.info("events_point", "SimPy events per run, point mode", f"{events[1]:.1f}")
    r.figure("sampling_us", "drawing inputs + per-run worlds", costs, "us/run", "{:.1f}")
    ratio = r.figure("ratio", "runs/s ratio (priors / point)",
                     [b / a for a, b in zip(sample_t, point_t)], "x", "{:.3f}")
    watch.report(r)
    r.target("runs/s with priors / point mode", ratio, ">=", TARGET_RATIO, "x")
    r.write(args.json)
    return r


if __name__ == "__main__":
    main()
