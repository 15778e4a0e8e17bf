"""Dask against the process pool: a job of baseline runs on a local Dask cluster vs the pool.

Each measurement times the whole ``sim.montecarlo.run(scenario, runs=R, workers=w,
executor=..., progress=False)`` call, start-up included: for ``process`` forking the pool,
running, tallying and gathering the in-memory results, and shutting the pool down; for
``dask`` starting a ``LocalCluster`` (its scheduler and ``w`` worker processes), the worker
processes' imports and first compile, the runs, and closing the cluster. The scenario
(the shipped baseline, with its priors) is loaded once beforehand. The two are timed
alternately, in each repeat one after the other: the pool first in repeats 1, 3, 5, ...,
Dask first in repeats 2, 4, ... The ratio is that of each repeat's two wall times.

Target: Dask's speed / the pool's speed (pool wall / Dask wall) >= 0.9 with 2 workers. The
machine has 2 cores: run nothing else meanwhile (the script reports how busy the CPUs were).

    python benchmarks/dask_executor.py [--runs 100000] [--workers 2] [--repeat 3]
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BASELINE, Contention, Report, check_repeat, header, parser, timed_run

TARGET_RATIO = 0.9


def digest(results) -> str:
    """Return a hash of every outcome column (the bytes of its values, and its dtype), in run
    order; a categorical column by its categories and codes."""
    h = hashlib.sha256()
    df = results.outcomes
    for name in df.columns:
        column = df[name]
        h.update(f"{name}:{column.dtype}:".encode())
        if column.dtype == "category":
            h.update(repr(list(column.cat.categories)).encode())
            column = column.cat.codes
        h.update(column.to_numpy().tobytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0], repeat=3)
    p.add_argument("--runs", type=int, default=100000, help="runs per job (default 100000)")
    p.add_argument("--workers", type=int, default=2,
                   help="workers of the pool and of the Dask cluster (default 2)")
    p.add_argument("--scenario", type=Path, default=BASELINE)
    args = p.parse_args(argv)
    check_repeat(args.repeat)
    try:
        import distributed
    except ImportError:
        sys.exit("dask_executor.py needs the 'dask' extra: pip install 'negotiation-sim[dask]'")

    from sim.montecarlo import run
    from sim.scenario import load_scenario

    header(f"dask_executor: {args.runs:,} runs, {args.workers} workers, process pool vs "
           f"local Dask cluster (distributed {distributed.__version__})")
    scenario = load_scenario(args.scenario)
    run(scenario, runs=200, workers=1, executor="local")  # warm-up: imports, caches

    def one_repeat(k: int):
        if k % 2:  # every other repeat Dask goes first, so that neither always runs second
            t_dask, on_dask = timed_run(scenario, args.runs, args.workers, "dask")
            t_pool, pooled = timed_run(scenario, args.runs, args.workers, "process")
        else:
            t_pool, pooled = timed_run(scenario, args.runs, args.workers, "process")
            t_dask, on_dask = timed_run(scenario, args.runs, args.workers, "dask")
        return t_pool, t_dask, pooled, on_dask

    watch = Contention(args.wait_idle, args.retries)
    pool_t, dask_t = [], []
    meta = {}
    for k in range(args.repeat):
        t_pool, t_dask, pooled, on_dask = watch.measure(lambda k=k: one_repeat(k))
        pool_t.append(t_pool)
        dask_t.append(t_dask)
        if k == 0:  # same records whichever executor ran them (outside the timing)
            if pooled.runs != on_dask.runs or digest(pooled) != digest(on_dask):
                raise SystemExit("process and dask results differ")
            meta = on_dask.metadata
        del pooled, on_dask

    r = Report("dask_executor", args.repeat)
    r.info("runs", "runs per job", f"{args.runs:,}")
    r.info("chunk_size", "chunk size (automatic)", meta.get("chunk_size"))
    r.info("dask_workers", "Dask workers", meta.get("workers"))
    r.info("identical", "process and dask records identical", "yes (checked, all columns)")
    r.figure("process_s", f"{args.workers} workers, process: wall s", pool_t, "s", "{:.2f}")
    r.figure("dask_s", f"{args.workers} workers, dask: wall s", dask_t, "s", "{:.2f}")
    r.figure("process_runs_per_s", "process: runs/s", [args.runs / t for t in pool_t],
             "runs/s", "{:,.0f}")
    r.figure("dask_runs_per_s", "dask: runs/s", [args.runs / t for t in dask_t], "runs/s",
             "{:,.0f}")
    ratio = r.figure("ratio", "ratio dask speed / process speed",
                     [p / d for p, d in zip(pool_t, dask_t)], "x", "{:.3f}")
    watch.report(r)
    r.target("dask speed / process speed", ratio, ">=", TARGET_RATIO, "x")
    r.write(args.json)
    return r


if __name__ == "__main__":  # Dask's workers are spawned: they import this file as __mp_main__
    main()
