"""README.md's commands, typed in order by a user in a fresh folder, all succeed.

Every line of the README's ```sh blocks and its ```python block is run as written, in README
order, in a temporary copy of ``scenarios/``, with only these changes so the whole takes
seconds rather than hours: run counts become :data:`RUNS` (``--runs N`` rewritten, ``--runs``
added to ``sim run``, ``sim hindcast`` and ``sim sweep`` lines that have none, ``runs=N`` in
the Python block), an example scheduler address becomes that of a real local Dask cluster,
and ``make`` and ``pip install`` lines are skipped (they install the project: the suite runs
inside that install).

Typed in order, lines that write a results folder an earlier line wrote fail (exit 2, "already
holds results"): the second test runs each job line in a folder of its own as well, so that a
line broken in itself is told apart from one broken only by the order of the README.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO

README = REPO / "README.md"
SIM = Path(sys.executable).parent / "sim"
#: Runs per job (per point for sweeps) in place of the README's.
RUNS = 60
#: Longest a single command may take before the test gives up on it.
TIMEOUT = 300
#: Commands with run counts: --runs is added when the README line has none.
COUNTED = {"run", "hindcast", "sweep"}

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


@dataclass
class Step:
    """One README command: as written, and what the test runs."""

    lang: str  # "sh" or "python"
    written: str
    run: list[str] | str  # argv for sh, source code for python
    stdout_to: str | None = None  # `> file` on an sh line


def readme_blocks(text: str) -> Iterator[tuple[str, str]]:
    """Yield (language, body) of each fenced block, in order."""
    for m in _FENCE.finditer(text):
        yield m.group(1), m.group(2)


def sh_lines(body: str) -> Iterator[str]:
    """Yield the logical lines of an sh block: continuations joined, blank lines skipped."""
    for line in re.sub(r"\\\n\s*", " ", body).splitlines():
        if line.strip():
            yield line.strip()


def _set_option(argv: list[str], names: tuple[str, ...], value: str) -> bool:
    """Set the value of option ``names`` in ``argv`` in place; return whether it was there."""
    found = False
    for k, arg in enumerate(argv):
        if arg in names and k + 1 < len(argv):
            argv[k + 1] = value
            found = True
        elif any(arg.startswith(f"{n}=") for n in names if n.startswith("--")):
            argv[k] = f"{arg.split('=', 1)[0]}={value}"
            found = True
    return found


def sh_step(line: str, scheduler: str | None) -> Step | None:
    """Return the step a README sh line becomes, or None for lines the test skips."""
    argv = shlex.split(line, comments=True)
    if not argv or argv[0] == "make" or argv[:2] == ["pip", "install"]:
        return None
    assert argv[0] == "sim", f"a README command the test does not know how to run: {line}"
    stdout_to = None
    if ">" in argv:
        k = argv.index(">")
        argv, stdout_to = argv[:k], argv[k + 1]
    argv = [str(SIM), *argv[1:]]
    if len(argv) > 1 and argv[1] in COUNTED:
        if not _set_option(argv, ("--runs", "-n"), str(RUNS)):
            argv += ["--runs", str(RUNS)]
    if "--scheduler" in argv:
        assert scheduler is not None
        _set_option(argv, ("--scheduler",), scheduler)
    return Step("sh", line, argv, stdout_to)


def python_step(body: str) -> Step:
    return Step("python", body, re.sub(r"\bruns=\d+", f"runs={RUNS}", body))


def readme_steps(scheduler: str | None) -> list[Step]:
    steps: list[Step] = []
    for lang, body in readme_blocks(README.read_text(encoding="utf-8")):
        if lang == "sh":
            steps += filter(None, (sh_step(line, scheduler) for line in sh_lines(body)))
        elif lang == "python":
            steps.append(python_step(body))
    return steps


def _needs_scheduler() -> bool:
    return "--scheduler" in README.read_text(encoding="utf-8")


def _execute(step: Step, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    if step.lang == "python":
        return subprocess.run([sys.executable, "-c", step.run], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
    proc = subprocess.run(step.run, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    if step.stdout_to is not None and proc.returncode == 0:
        (cwd / step.stdout_to).write_text(proc.stdout, encoding="utf-8")
    return proc


def _shown(step: Step) -> str:
    if step.lang == "python":
        return "the README's python block"
    ran = shlex.join(["sim", *step.run[1:]])
    return f"{step.written}\n    ran as: {ran}" + (f" > {step.stdout_to}" if step.stdout_to else "")


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A fresh folder holding a copy of the repo's scenarios/, as the current directory."""
    shutil.copytree(REPO / "scenarios", tmp_path / "scenarios")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cluster():
    """A real local Dask cluster (two one-thread workers) when the README names a scheduler."""
    if not _needs_scheduler():
        yield None
        return
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        yield cluster


@pytest.fixture
def scheduler(cluster) -> str | None:
    """The address the README's ``--scheduler`` example is replaced with."""
    return None if cluster is None else cluster.scheduler_address


def _env() -> dict[str, str]:
    return {**os.environ, "MPLBACKEND": "Agg"}


def test_the_readme_commands_are_parsed_as_expected():
    # a guard against a README layout the parser misses, which would make the test vacuous
    steps = readme_steps("tcp://127.0.0.1:1")
    sh = [s for s in steps if s.lang == "sh"]
    commands = [s.run[1] for s in sh]
    assert {"validate", "trace", "run", "schema", "compare", "report", "sweep"} <= set(commands)
    assert sum(s.lang == "python" for s in steps) == 1
    for s in sh:
        assert s.run[0] == str(SIM)
        if s.run[1] in COUNTED:
            assert s.run[s.run.index("--runs") + 1] == str(RUNS), s.written
    (sobol,) = [s for s in sh if "--design" in s.run]  # the continued line is joined
    assert "--sensitivity" in sobol.run
    (schema,) = [s for s in sh if s.run[1] == "schema"]
    assert schema.stdout_to == "scenario.schema.json"
    (remote,) = [s for s in sh if "--scheduler" in s.run]
    assert remote.run[remote.run.index("--scheduler") + 1] == "tcp://127.0.0.1:1"
    python = next(s for s in steps if s.lang == "python")
    assert "runs=2000" not in python.run and f"runs={RUNS}" in python.run


@pytest.mark.slow
def test_every_readme_command_runs_in_order_in_a_fresh_folder(workdir, scheduler):
    env = _env()
    failures = []
    for step in readme_steps(scheduler):
        start = time.monotonic()
        proc = _execute(step, workdir, env)
        print(f"$ {_shown(step)}\n  -> exit {proc.returncode} in {time.monotonic() - start:.1f} s")
        if proc.returncode != 0:
            failures.append(f"{_shown(step)}\n  exit {proc.returncode}\n"
                            f"  stdout:\n{_tail(proc.stdout)}\n  stderr:\n{_tail(proc.stderr)}")
    assert not failures, (f"{len(failures)} README command(s) failed when typed in order:\n\n"
                          + "\n\n".join(failures))
    json.loads((workdir / "scenario.schema.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_each_readme_run_and_sweep_line_works_on_its_own(tmp_path, cluster, scheduler):
    # typed in order, several lines meet a results folder an earlier line wrote (see the test
    # above): here each job line runs in a fresh folder of its own, as if typed first, and the
    # three executors give the same runs
    import pandas as pd

    env = _env()
    steps = [s for s in readme_steps(scheduler) if s.lang == "sh" and s.run[1] in COUNTED]
    assert steps
    failures, baselines = [], {}
    for k, step in enumerate(steps):
        cwd = tmp_path / f"line{k}"
        shutil.copytree(REPO / "scenarios", cwd / "scenarios")
        remote = "--scheduler" in step.run
        before = set(cluster.scheduler.task_prefixes) if remote else set()
        start = time.monotonic()
        proc = _execute(step, cwd, env)
        print(f"$ {_shown(step)}\n  -> exit {proc.returncode} in {time.monotonic() - start:.1f} s")
        if proc.returncode != 0:
            failures.append(f"{_shown(step)}\n  exit {proc.returncode}\n"
                            f"  stdout:\n{_tail(proc.stdout)}\n  stderr:\n{_tail(proc.stderr)}")
            continue
        if remote:  # the runs went to the test's cluster, not to one the command made
            assert set(cluster.scheduler.task_prefixes) - before, step.written
        args = step.run[3:]
        out = args[args.index("--out") + 1] if "--out" in args else "results/baseline"
        rest = [a for i, a in enumerate(args) if a != "--out" and (i == 0 or args[i - 1] != "--out")]
        plain = {"--runs", str(RUNS), "--executor", "dask", "--scheduler", scheduler}
        if step.run[1:3] == ["run", "scenarios/baseline.yaml"] and set(rest) <= plain:
            meta = json.loads((cwd / out / "metadata.json").read_text())
            frame = pd.read_parquet(cwd / out / "outcomes")
            baselines[meta["executor"] + (" (scheduler)" if remote else "")] = (
                frame.sort_values("run").reset_index(drop=True))
    print("same runs compared across:", ", ".join(baselines))
    first, *others = baselines.values()
    assert len(first) == RUNS
    for other in others:  # (checked before the failures, which it does not depend on)
        pd.testing.assert_frame_equal(other, first, check_exact=True)
    assert not failures, (f"{len(failures)} README job line(s) failed on their own:\n\n"
                          + "\n\n".join(failures))
    assert len(baselines) == 3, sorted(baselines)  # the plain line, and the two Dask lines
