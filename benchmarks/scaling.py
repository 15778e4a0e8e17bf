"""Parallel speedup: a job of baseline runs on 1 worker (local) vs 2 workers (process pool).

Each measurement times the whole ``sim.montecarlo.run(scenario, runs=R, workers=w,
executor=..., progress=False)`` call: compiling, starting the pool (fork), running, tallying
and gathering the in-memory results, and shutting the pool down. The scenario is loaded once
beforehand. The two are timed alternately in each repeat.

Target: speedup (local wall / process wall) >= 1.7 with 2 workers. The machine has 2 cores:
run nothing else meanwhile (the script reports how busy the CPUs were before each call).

    python benchmarks/scaling.py [--runs 20000] [--workers 2] [--repeat 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BASELINE, Contention, Report, check_repeat, header, parser, timed_run

from sim.montecarlo import run
from sim.scenario import load_scenario

TARGET_SPEEDUP = 1.7



def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20000, help="runs per job (default 20000)")
    p.add_argument("--workers", type=int, default=2, help="workers of the pool (default 2)")
    p.add_argument("--scenario", type=Path, default=BASELINE)
    args = p.parse_args(argv)
    check_repeat(args.repeat)

    header(f"scaling: {args.runs:,} runs, 1 worker (local) vs {args.workers} workers (process)")
    scenario = load_scenario(args.scenario)
    run(scenario, runs=200, workers=1, executor="local")  # warm-up: imports, caches

    def one_repeat():
        t_local, local = timed_run(scenario, args.runs, 1, "local")
        t_pool, pooled = timed_run(scenario, args.runs, args.workers, "process")
        return t_local, t_pool, local, pooled

    watch = Contention(args.wait_idle, args.retries)
    local_t, pool_t = [], []
    meta = {}
    for k in range(args.repeat):
        t_local, t_pool, local, pooled = watch.measure(one_repeat)
        local_t.append(t_local)
        pool_t.append(t_pool)
        if k == 0:  # same records whichever executor ran them (outside the timing)
            for name in ("events", "summits_held", "tension_end"):
                if not (local.column(name) == pooled.column(name)).all():
                    raise SystemExit(f"local and process results differ in column {name}")
            meta = pooled.metadata
        del local, pooled

    r = Report("scaling", args.repeat)
    r.info("runs", "runs per job", f"{args.runs:,}")
    r.info("chunk_size", "chunk size (automatic)", meta.get("chunk_size"))
    r.info("identical", "local and process records identical", "yes (checked)")
    r.figure("local_s", "1 worker, local: wall s", local_t, "s", "{:.2f}")
    r.figure("process_s", f"{args.workers} workers, process: wall s", pool_t, "s", "{:.2f}")
    r.figure("local_runs_per_s", "1 worker: runs/s", [args.runs / t for t in local_t], "runs/s",
             "{:,.0f}")
    r.figure("process_runs_per_s", f"{args.workers} workers: runs/s",
             [args.runs / t for t in pool_t], "runs/s", "{:,.0f}")
    speedup = r.figure("speedup", "speedup (local / process)",
                       [a / b for a, b in zip(local_t, pool_t)], "x", "{:.2f}")
    watch.report(r)
    r.target(f"speedup with {args.workers} workers", speedup, ">=", TARGET_SPEEDUP, "x")
    r.write(args.json)
    return r


if __name__ == "__main__":
    main()
