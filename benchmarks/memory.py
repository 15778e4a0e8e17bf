"""Peak memory of a big job streamed to disk, and the size of its outcomes on disk.

Runs ``sim run SCENARIO --runs N --out TMPDIR/out --force --no-plots -q --workers W`` as a
subprocess and, every ``--interval`` seconds, sums the resident memory (VmRSS) of its whole
process tree (the CLI, the pool's workers, multiprocessing's helper). It reports:

* peak of that sum (RSS counts the pages that forked workers share with the parent once per
  process, so it overstates the memory really used; the target is judged on it anyway);
* peak sum of PSS (shared pages divided among the processes that share them), the fairer
  figure for a fork tree;
* the largest single process: ``ru_maxrss`` from ``wait4`` on the CLI (the max over it and
  every descendant it reaped), and the highest VmHWM seen while polling.

Target: peak summed RSS under 500 MB (MB = 10^6 bytes here). Also reports wall time, runs/s
and the size of the ``outcomes/`` Parquet dataset. The full 1,000,000-run job takes several
minutes on 2 cores (``run_all.py`` uses 200,000 runs).

    python benchmarks/memory.py [--runs 1000000] [--workers 2] [--repeat 5] [--interval 0.2]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BASELINE,
    REPO,
    Contention,
    Report,
    check_repeat,
    display_path,
    header,
    parser,
    sim_command,
)

TARGET_MB = 500.0
MB = 1e6


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: fields follow the last ')'
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    children = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _status_kb(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line[:5]] = int(line.split()[1])
    except OSError:
        pass
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(cmd: list[str], interval: float, pss: bool) -> dict[str, float]:
    """Run ``cmd``; return its wall time and peak memory figures (bytes)."""
    peak_rss = peak_pss = peak_hwm = 0
    most_procs = 0
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            tree = process_tree(proc.pid)
            most_procs = max(most_procs, len(tree))
            rss = 0
            for p in tree:
                kb = _status_kb(p)
                rss += kb.get("VmRSS", 0)
                peak_hwm = max(peak_hwm, kb.get("VmHWM", 0))
            peak_rss = max(peak_rss, rss)
            if pss:
                peak_pss = max(peak_pss, sum(_pss_kb(p) for p in tree))
            time.sleep(interval)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}:\n{err}")
    return {"wall": wall, "peak_rss": peak_rss * 1024.0, "peak_pss": peak_pss * 1024.0,
            "peak_hwm": peak_hwm * 1024.0, "ru_maxrss": usage.ru_maxrss * 1024.0,
            "processes": most_procs}


def disk_usage(folder: Path) -> tuple[int, int, int]:
    """Return (bytes of file contents, bytes allocated on disk, file count) under ``folder``."""
    size = blocks = files = 0
    for path in folder.rglob("*"):
        if path.is_file():
            st = path.stat()
            size += st.st_size
            blocks += st.st_blocks * 512
            files += 1
    return size, blocks, files


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1_000_000, help="runs of the job (default 1,000,000)")
    p.add_argument("--workers", type=int, default=2, help="--workers of sim run (default 2)")
    p.add_argument("--interval", type=float, default=0.2, help="polling interval, s (default 0.2)")
    p.add_argument("--no-pss", action="store_true", help="do not read smaps_rollup for PSS")
    p.add_argument("--tmpdir", type=Path, default=None, help="where the job writes (default: TMPDIR)")
    p.add_argument("--scenario", type=Path, default=BASELINE)
    p.set_defaults(retries=0)  # the memory figures hardly depend on other load; wall time does
    args = p.parse_args(argv)
    check_repeat(args.repeat)

    header(f"memory: {args.runs:,} runs streamed to disk with {args.workers} workers")
    watch = Contention(args.wait_idle, args.retries)
    results, sizes = [], None
    for _ in range(args.repeat):
        tmp = Path(tempfile.mkdtemp(prefix="sim-bench-memory-", dir=args.tmpdir))
        try:
            out = tmp / "out"
            cmd = [*sim_command(), "run", str(args.scenario.resolve()), "--runs", str(args.runs),
                   "--out", str(out), "--force", "--no-plots", "-q", "--workers", str(args.workers)]
            results.append(watch.measure(
                lambda cmd=cmd: measure(cmd, args.interval, not args.no_pss)))
            if sizes is None:
                sizes = disk_usage(out / "outcomes"), disk_usage(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    r = Report("memory", args.repeat)
    shown = ["sim", *cmd[len(sim_command()):]]
    shown[2] = display_path(args.scenario)
    r.info("command", "command", " ".join(shown).replace(str(tmp), "TMPDIR"))
    r.figure("wall_s", "wall time", [x["wall"] for x in results], "s", "{:.1f}")
    r.figure("runs_per_s", "runs/s (whole command)", [args.runs / x["wall"] for x in results],
             "runs/s", "{:,.0f}")
    r.info("processes", "processes in the tree (max seen)", max(x["processes"] for x in results))
    peak = r.figure("peak_rss_mb", "peak RSS, whole tree (sum)", [x["peak_rss"] / MB for x in results],
                    "MB", "{:.0f}")
    if not args.no_pss:
        r.figure("peak_pss_mb", "peak PSS, whole tree (sum)", [x["peak_pss"] / MB for x in results],
                 "MB", "{:.0f}")
    r.figure("ru_maxrss_mb", "largest single process (wait4 ru_maxrss)",
             [x["ru_maxrss"] / MB for x in results], "MB", "{:.0f}")
    r.figure("vmhwm_mb", "largest single process (VmHWM seen)",
             [x["peak_hwm"] / MB for x in results], "MB", "{:.0f}")
    (o_size, o_alloc, o_files), (all_size, _, _) = sizes
    r.info("outcomes_mb", "outcomes/ on disk (file bytes)", f"{o_size / MB:.1f}", "MB")
    r.info("outcomes_alloc_mb", "outcomes/ on disk (allocated)", f"{o_alloc / MB:.1f}", "MB")
    r.info("outcomes_files", "outcomes/ Parquet files", o_files)
    r.info("bytes_per_run", "outcomes bytes/run", f"{o_size / args.runs:.1f}")
    r.info("folder_mb", "whole results folder (file bytes)", f"{all_size / MB:.1f}", "MB")
    watch.report(r)
    r.target("peak summed RSS", peak, "<", TARGET_MB, "MB")
    r.write(args.json)
    return r


if __name__ == "__main__":
    main()
