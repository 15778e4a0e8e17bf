"""Scenario discovery and the importance ranking on a large experiments table.

A synthetic outcomes table stands in for a job (the analysis reads only the table): N runs
(default 100,000) with D uncertain inputs (default 40: every fourth a choice of three values,
the rest uniform on [0, 1]) as ``input.<key>`` columns, and one topic ``t`` agreed exactly when

    k00 > 0.6  and  k01 < 0.7  and  c03 != 'c'        (then 5% of runs flipped at random)

so the answer is known. One repeat times what ``sim discover`` computes for that outcome:
:func:`sim.discovery.discover` (PRIM boxes until one misses the default threshold, and the
classification tree) and :func:`sim.discovery.importance` (extra-trees scores with bootstrap
intervals), each on its own. Importing EMA Workbench and scikit-learn is timed once, apart.
It also checks that the first box restricts k00, k01 and c03 alone, near the rule's limits,
and that those three inputs rank first.

    python benchmarks/discovery.py [--runs 100000] [--inputs 40] [--repeat 3]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
from _common import Contention, Report, check_repeat, header, parser

from sim import discovery
from sim.inputs import COLUMN_PREFIX
from sim.model.compiled import CATEGORIES

TARGET_SECONDS = 30.0
OUTCOME = "t.outcome == 'agreement'"
RULE = {"k00": (0.6, None), "k01": (None, 0.7), "c03": {"a", "b"}}


def synthetic_table(runs: int, inputs: int, seed: int = 1) -> pd.DataFrame:
    """Return an outcomes table with ``inputs`` input columns and the known rule's outcome."""
    rng = np.random.default_rng(seed)
    columns = {"run": np.arange(runs)}
    for j in range(inputs):
        if j % 4 == 3:
            columns[f"{COLUMN_PREFIX}c{j:02d}"] = rng.choice(np.array(["a", "b", "c"], dtype=object), runs)
        else:
            columns[f"{COLUMN_PREFIX}k{j:02d}"] = rng.random(runs)
    frame = pd.DataFrame(columns)
    agreed = ((frame[f"{COLUMN_PREFIX}k00"] > 0.6) & (frame[f"{COLUMN_PREFIX}k01"] < 0.7)
              & (frame[f"{COLUMN_PREFIX}c03"] != "c")).to_numpy().copy()
    agreed ^= rng.random(runs) < 0.05
    codes = np.where(agreed, CATEGORIES.index("agreement"), CATEGORIES.index("none"))
    frame["t.outcome"] = pd.Categorical.from_codes(codes, categories=CATEGORIES)
    frame["t.day"] = np.where(agreed, rng.uniform(0, 365, runs), np.nan)
    return frame


def check_answer(found: discovery.Discovery, ranking: pd.DataFrame, r: Report) -> None:
    """Note whether the first box and the top of the ranking are the rule's."""
    box = found.prim_boxes[0] if found.prim_boxes else None
    if box is None or set(box.limits) != set(RULE):
        r.note(f"the first box restricts {sorted(box.limits) if box else 'nothing'}, "
               f"not {sorted(RULE)}")
    else:
        r.info("box_limits", "first box", f"k00 >= {box.limits['k00'][0]:.3f}, "
               f"k01 <= {box.limits['k01'][1]:.3f}, c03 in {set(box.limits['c03'])}")
        r.info("box_stats", "first box coverage / density",
               f"{box.coverage:.3f} / {box.density:.3f}")
    top = set(ranking["input"].head(len(RULE)))
    if top != set(RULE):
        r.note(f"the top of the ranking is {sorted(top)}, not {sorted(RULE)}")


def main() -> None:
    p = parser(__doc__.splitlines()[0], repeat=3)
    p.add_argument("--runs", type=int, default=100_000)
    p.add_argument("--inputs", type=int, default=40)
    args = p.parse_args()
    check_repeat(args.repeat)
    header(f"discovery: PRIM, tree and importance on {args.runs:,} runs x {args.inputs} inputs")
    r = Report("discovery", args.repeat)
    table = synthetic_table(args.runs, args.inputs)

    t0 = time.perf_counter()
    discovery._import_prim()
    import sklearn.ensemble  # noqa: F401
    import sklearn.tree  # noqa: F401
    r.info("import_seconds", "importing EMA Workbench and scikit-learn",
           f"{time.perf_counter() - t0:.2f}", "s")

    contention = Contention(args.wait_idle, args.retries)
    prim_s, importance_s, total_s = [], [], []
    found = ranking = None
    for _ in range(args.repeat):
        def once():
            a = time.perf_counter()
            d = discovery.discover(table, OUTCOME)
            b = time.perf_counter()
            imp = discovery.importance(table, [OUTCOME])
            return d, imp, b - a, time.perf_counter() - b

        found, ranking, t_prim, t_imp = contention.measure(once)
        prim_s.append(t_prim)
        importance_s.append(t_imp)
        total_s.append(t_prim + t_imp)
    r.figure("discover_seconds", "discover (PRIM boxes + tree)", prim_s, "s", "{:.2f}")
    r.figure("importance_seconds", "importance (extra trees, 20 resamples)", importance_s, "s",
             "{:.2f}")
    total = r.figure("total_seconds", "discover + importance", total_s, "s", "{:.2f}")
    r.info("boxes", "boxes found", len(found.prim_boxes))
    check_answer(found, ranking, r)
    contention.report(r)
    r.target(f"discover + importance on {args.runs:,} runs x {args.inputs} inputs", total, "<",
             TARGET_SECONDS, "s")
    r.write(args.json)


if __name__ == "__main__":
    main()
