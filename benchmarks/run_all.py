"""Run every benchmark with modest defaults and print a table of targets met and missed.

Each script runs in its own interpreter, one after another (never two at once: the machine's
cores are part of what is measured). Modest defaults, about 2 minutes on 2 cores:

* events.py       --runs 300     --repeat 5
* scaling.py      --runs 20000   --repeat 3
* memory.py       --runs 200000  --repeat 1   (not the 1,000,000 of its own default: --full)
* cli_startup.py                 --repeat 10
* inputs.py       --runs 6000    --repeat 3
* discovery.py                   --repeat 3

    python benchmarks/run_all.py [--repeat N] [--full] [--wait-idle S] [--only NAME ...]

``--repeat`` replaces every script's repeat count; ``--full`` runs memory.py at 1,000,000
runs (several minutes more); ``--json PATH`` writes all figures to one file. Exit status 1
if a target was missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS = {
    "events": ["--runs", "300", "--repeat", "5"],
    "scaling": ["--runs", "20000", "--repeat", "3"],
    "memory": ["--runs", "200000", "--repeat", "1"],
    "cli_startup": ["--repeat", "10"],
    "inputs": ["--runs", "6000", "--repeat", "3"],
    "discovery": ["--repeat", "3"],
}


def _replace(args: list[str], flag: str, value: str) -> list[str]:
    args = list(args)
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    return args


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=None, help="repeat count for every script")
    p.add_argument("--full", action="store_true", help="memory.py at 1,000,000 runs")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="passed on: wait for idle CPUs before each measurement")
    p.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=None)
    p.add_argument("--json", type=Path, default=None, metavar="PATH")
    args = p.parse_args(argv)

    collected = {}
    with tempfile.TemporaryDirectory(prefix="sim-bench-") as tmp:
        for name, extra in BENCHMARKS.items():
            if args.only and name not in args.only:
                continue
            if args.repeat is not None:
                extra = _replace(extra, "--repeat", str(args.repeat))
            if name == "memory" and args.full:
                extra = _replace(extra, "--runs", "1000000")
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(HERE / f"{name}.py"), *extra,
                   "--wait-idle", str(args.wait_idle), "--json", str(out)]
            print(f"\n$ {' '.join(['python', f'benchmarks/{name}.py', *extra])}", flush=True)
            done = subprocess.run(cmd, check=False)
            if done.returncode != 0 or not out.exists():
                collected[name] = {"error": f"exit code {done.returncode}"}
                continue
            collected[name] = json.loads(out.read_text(encoding="utf-8"))

    print("\n== targets")
    missed = False
    for name, data in collected.items():
        if "error" in data:
            print(f"  {name:<12} FAILED TO RUN ({data['error']})")
            missed = True
            continue
        for t in data["targets"]:
            verdict = "met   " if t["met"] else "MISSED"
            missed |= not t["met"]
            print(f"  {name:<12} {verdict} {t['what']} {t['op']} {t['limit']:g} {t['unit']}: "
                  f"{t['value']:.3g} {t['unit']}")
    if args.json is not None:
        args.json.write_text(json.dumps(collected, indent=2) + "\n", encoding="utf-8")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
