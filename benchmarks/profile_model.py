"""Profile the model's runs with cProfile: top functions by own time, and time by area.

Not a benchmark (no target, not in run_all.py): a reproducible profile for when events.py
misses its target. cProfile's per-call overhead inflates small functions, so shares are
rougher than a sampling profiler's (``py-spy record -f raw`` gives unbiased ones).

cProfile sees the compiled model (mypyc) only as opaque calls; to profile the model's own
functions, run its Python sources:

    SIM_PURE_PYTHON=1 python benchmarks/profile_model.py [--runs 3000] [--top 25] [--scenario PATH]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BASELINE, header

from sim.model import COMPILED
from sim.model.compiled import compile_scenario
from sim.model.streams import StreamPool
from sim.model.world import run_world
from sim.scenario import load_scenario


def area(filename: str) -> str:
    if filename == "~":
        return "C built-ins (heapq, math.exp, generator send, list ops)"
    if "simpy" in filename:
        return "SimPy"
    if "streams.py" in filename or "numpy" in filename:
        return "random streams (streams.py, numpy)"
    if "sim/model" in filename:
        return f"model ({Path(filename).name})"
    return "other"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3000)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--scenario", type=Path, default=BASELINE)
    args = p.parse_args(argv)

    header(f"profile_model: cProfile of {args.runs:,} runs")
    if COMPILED:
        print("  the model is compiled: its functions show as opaque calls "
              "(SIM_PURE_PYTHON=1 profiles its Python sources)\n")
    scenario = load_scenario(args.scenario)
    world = compile_scenario(scenario)
    kwargs = {"pool": StreamPool()}
    for i in range(50):  # warm-up
        run_world(world, scenario.seed, i, **kwargs)
    profile = cProfile.Profile()
    profile.enable()
    for i in range(args.runs):
        run_world(world, scenario.seed, i, **kwargs)
    profile.disable()

    stats = pstats.Stats(profile)
    by_area: Counter[str] = Counter()
    for (filename, _, _), (_, _, own, _, _) in stats.stats.items():
        by_area[area(filename)] += own
    total = sum(by_area.values())
    print(f"  own time by area (total {total:.2f} s under cProfile):")
    for name, t in by_area.most_common():
        print(f"    {t / total:6.1%}  {name}")
    print()
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
