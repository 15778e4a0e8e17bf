"""Calibration time: the shipped calibration of the 2025 hindcast, start to finish.

Times ``sim.calibration.calibrate(...)`` with the settings of ``make calibration`` (the 12
inputs, population 1000, at most 8 generations, seed 2025) on the process pool with 2
workers, into a temporary folder: the ABC-SMC generations, the posterior predictive check
(2,000 runs to every fact's date), the folder's files and plots. Prints the wall time, the
simulations it took, simulations per second, and checks that the posterior is the one
shipped in scenarios/calibration/hindcast_2025 (reproducible from its seed).

Target: the whole calibration within 15 minutes (900 s) on this 2-core machine.

    python benchmarks/calibration.py [--repeat 1] [--population 1000] [--workers 2]
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Contention, Report, check_repeat, header, parser

from sim.calibration import Settings, calibrate, load_posterior

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "hindcast_2025.yaml"
FACTS = REPO / "scenarios" / "facts" / "hindcast_2025.yaml"
SHIPPED = REPO / "scenarios" / "calibration" / "hindcast_2025"
TARGET_SECONDS = 900.0


def shipped_inputs() -> list[str]:
    """The inputs ``make calibration`` calibrates (read from the Makefile)."""
    text = (REPO / "Makefile").read_text()
    block = re.search(r"^CALIBRATED := (.*?)\n(?=\S)", text, re.M | re.S)
    if block is None:
        raise SystemExit("Makefile: no CALIBRATED list")
    return block.group(1).replace("\\", " ").split()


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0], repeat=1)
    p.add_argument("--population", type=int, default=1000)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    check_repeat(args.repeat)
    inputs = shipped_inputs()
    header(f"calibration: hindcast_2025 over {len(inputs)} inputs, population "
           f"{args.population}, {args.workers} workers (process pool)")
    settings = Settings(population=args.population, generations=args.generations, seed=2025)

    def one_repeat():
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            cal = calibrate(SCENARIO, FACTS, inputs=inputs, settings=settings,
                            out=Path(tmp) / "cal", workers=args.workers, executor="process")
            return time.perf_counter() - t0, cal

    watch = Contention(args.wait_idle, args.retries)
    walls, sims, generations, same = [], [], [], None
    for _ in range(args.repeat):
        wall, cal = watch.measure(one_repeat)
        walls.append(wall)
        sims.append(cal.simulations)
        generations.append(len(cal.generations))
        if (SHIPPED / "posterior.parquet").exists() and args.population == 1000:
            shipped = load_posterior(SHIPPED)
            same = (shipped.particles == cal.posterior.particles
                    and shipped.weights == cal.posterior.weights)

    r = Report("calibration", args.repeat)
    r.info("inputs", "inputs calibrated", len(inputs))
    r.info("generations", "generations run", generations[-1])
    r.info("simulations", "simulations (ABC runs, one run each)", f"{sims[-1]:,}")
    if same is not None:
        r.info("same_as_shipped", "posterior identical to the shipped one", "yes" if same else "NO")
    wall = r.figure("wall_s", "wall time, start to finish", walls, "s", "{:.0f}")
    r.figure("sims_per_s", "simulations per second (whole calibration)",
             [s / w for s, w in zip(sims, walls)], "sims/s", "{:,.0f}")
    watch.report(r)
    r.target("calibration wall time", wall, "<=", TARGET_SECONDS, "s")
    r.write(args.json)
    return r


if __name__ == "__main__":
    main()
