"""CLI start-up: ``sim --help`` and ``sim validate`` wall time, and the heavy imports of sim.cli.

Each command runs as a fresh subprocess (after one untimed warm-up run), timed from spawn to
exit; ``python -c pass`` with the same interpreter is the floor. Then, in fresh interpreters,
lists which heavy modules (numpy, scipy, pandas, pyarrow, matplotlib, simpy, pydantic) are in
``sys.modules`` after ``import sim.cli``, and after ``sim validate`` has run, and shows the
slowest imports of ``import sim.cli`` (``python -X importtime``).

Target: ``sim --help`` under 0.5 s.

    python benchmarks/cli_startup.py [--repeat 5] [--scenario scenarios/baseline.yaml]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BASELINE, REPO, Contention, Report, check_repeat, header, parser, sim_command

TARGET_HELP_S = 0.5
HEAVY = ("numpy", "scipy", "pandas", "pyarrow", "matplotlib", "simpy", "pydantic")
LIGHTER = ("yaml", "rich", "click")  # also listed, not counted as heavy

_LIST_AFTER_IMPORT = """
import json, sys
import sim.cli
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""

_LIST_AFTER_VALIDATE = """
import json, sys
from sim.cli import main
try:
    main(["validate", "-q", {scenario!r}], standalone_mode=False)
finally:
    print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    t = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.decode()}")
    return t


def python_out(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"python -c failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def slowest_imports(module: str, n: int = 8) -> list[tuple[int, int, str]]:
    """Return the ``n`` top-level-ish imports of ``module`` with the largest cumulative time."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line.split(":", 1)[1].split("|", 2)
        rows.append((int(cumulative), int(own), name.rstrip()))
    return sorted(rows, reverse=True)[:n]


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0], repeat=5)
    p.add_argument("--scenario", type=Path, default=BASELINE.relative_to(REPO))
    args = p.parse_args(argv)
    check_repeat(args.repeat)

    header("cli_startup: sim --help and sim validate vs python -c pass")
    sim = sim_command()
    commands = {
        "python_pass": [sys.executable, "-c", "pass"],
        "import_sim_cli": [sys.executable, "-c", "import sim.cli"],
        "sim_help": [*sim, "--help"],
        "sim_validate": [*sim, "validate", str(args.scenario)],
    }
    for cmd in commands.values():
        wall(cmd)  # warm-up: page cache, .pyc files
    watch = Contention(args.wait_idle, args.retries)
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(args.repeat):
        one = watch.measure(lambda: {key: wall(cmd) for key, cmd in commands.items()})
        for key, t in one.items():
            times[key].append(t)

    r = Report("cli_startup", args.repeat)
    r.info("sim", "sim command", " ".join(sim))
    r.figure("python_pass_s", "python -c pass", times["python_pass"], "s", "{:.3f}")
    r.figure("import_sim_cli_s", "python -c 'import sim.cli'", times["import_sim_cli"], "s",
             "{:.3f}")
    help_s = r.figure("sim_help_s", "sim --help", times["sim_help"], "s", "{:.3f}")
    r.figure("sim_help_over_python_s", "sim --help minus python -c pass",
             [a - b for a, b in zip(times["sim_help"], times["python_pass"])], "s", "{:.3f}")
    r.figure("sim_validate_s", f"sim validate {args.scenario}", times["sim_validate"], "s",
             "{:.3f}")
    checked = HEAVY + LIGHTER
    after_import = json.loads(python_out(_LIST_AFTER_IMPORT.format(heavy=checked)))
    after_validate = json.loads(python_out(
        _LIST_AFTER_VALIDATE.format(heavy=checked, scenario=str(args.scenario))))
    for key, label, loaded in (("after_import", "after import sim.cli", after_import),
                               ("after_validate", "after sim validate", after_validate)):
        r.info(f"heavy_{key}", f"heavy modules {label}",
               ", ".join(m for m in loaded if m in HEAVY) or "none")
        r.info(f"lighter_{key}", f"  (yaml, rich, click {label})",
               ", ".join(m for m in loaded if m in LIGHTER) or "none")
    print("  slowest imports of 'import sim.cli' (cumulative us, self us, module):")
    for cumulative, own, name in slowest_imports("sim.cli"):
        print(f"    {cumulative:>8} {own:>8}  {name}")
    watch.report(r)
    r.target("sim --help wall time", help_s, "<", TARGET_HELP_S, "s")
    r.write(args.json)
    return r


if __name__ == "__main__":
    main()
