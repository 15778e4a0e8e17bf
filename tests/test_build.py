"""The installed model is compiled by mypyc, and it gives what its Python sources give."""

from __future__ import annotations

import importlib.machinery
import json
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

import sim.model
from sim.model import COMPILED_MODULES

PURE = os.environ.get("SIM_PURE_PYTHON") == "1"

#: Records of runs 0..RUNS-1 of every shipped scenario and the traces of three runs each,
#: pickled to the path given as argv[1], with the build that made them.
RECORDS = textwrap.dedent("""
    import pickle, sys
    from pathlib import Path
    import sim.model
    from sim.model import compile_scenario
    from sim.model.streams import StreamPool
    from sim.model.world import run_world
    from sim.scenario import load_scenario

    out = {"compiled": sim.model.COMPILED}
    for path in sorted(Path(sys.argv[2]).glob("*.yaml")):
        scenario = load_scenario(path)
        world = compile_scenario(scenario)
        pool = StreamPool()
        records = [run_world(world, scenario.seed, i, pool=pool)[0] for i in range(int(sys.argv[3]))]
        traces = [[(e.day, e.date, e.source, e.kind, e.text)
                   for e in run_world(world, scenario.seed, i, trace=True)[1]]
                  for i in (0, 1, 2)]
        out[path.name] = (records, traces)
    Path(sys.argv[1]).write_bytes(pickle.dumps(out))
""")
RUNS = 400


def _records(tmp_path, name: str, pure: bool) -> dict:
    env = dict(os.environ)
    env.pop("SIM_PURE_PYTHON", None)
    if pure:
        env["SIM_PURE_PYTHON"] = "1"
    out = tmp_path / f"{name}.pickle"
    subprocess.run([sys.executable, "-c", RECORDS, str(out), str(REPO / "scenarios"), str(RUNS)],
                   env=env, check=True, cwd=tmp_path)
    return pickle.loads(out.read_bytes())


@pytest.mark.skipif(PURE, reason="SIM_PURE_PYTHON=1 asks for the Python sources")
def test_the_installed_model_is_compiled():
    # a build that fell back to pure Python would pass every other test, only slower
    assert sim.model.COMPILED
    for module in COMPILED_MODULES:
        path = sys.modules[f"sim.model.{module}"].__file__
        assert path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), path


def test_pure_python_switch_imports_the_sources(tmp_path):
    code = ("import sys, sim.model; print(sim.model.COMPILED, "
            "*(sys.modules['sim.model.' + m].__file__ for m in sim.model.COMPILED_MODULES))")
    env = {**os.environ, "SIM_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tmp_path,
                         capture_output=True, text=True).stdout.split()
    assert out[0] == "False"
    assert out[1:] == [str(REPO / "sim" / "model" / f"{m}.py") for m in COMPILED_MODULES]


@pytest.mark.slow
@pytest.mark.skipif(PURE or not sim.model.COMPILED, reason="needs the compiled model")
def test_compiled_and_pure_python_models_give_bit_identical_runs(tmp_path):
    compiled = _records(tmp_path, "compiled", pure=False)
    pure = _records(tmp_path, "pure", pure=True)
    assert compiled.pop("compiled") is True and pure.pop("compiled") is False
    assert sorted(compiled) == sorted(pure) and len(compiled) >= 6
    for name in compiled:
        (records_c, traces_c), (records_p, traces_p) = compiled[name], pure[name]
        assert len(records_c) == len(records_p) == RUNS
        # pickles compare floats bit for bit (NaN included), which == on tuples does not
        for i, (c, p) in enumerate(zip(records_c, records_p)):
            assert pickle.dumps(c) == pickle.dumps(p), f"{name}, run {i}: {c} != {p}"
        assert traces_c == traces_p, name
        assert any(traces_c), name


@pytest.mark.parametrize("pure", [False, True])
def test_sim_run_records_which_model_build_ran(tmp_path, pure):
    if not pure and (PURE or not sim.model.COMPILED):
        pytest.skip("needs the compiled model")
    env = dict(os.environ)
    env.pop("SIM_PURE_PYTHON", None)
    if pure:
        env["SIM_PURE_PYTHON"] = "1"
    out = tmp_path / "job"
    done = subprocess.run([sys.executable, "-m", "sim", "run", str(REPO / "scenarios" / "baseline.yaml"),
                           "--runs", "200", "--workers", "1", "--no-plots", "--out", str(out)],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["model_build"] == ("pure Python" if pure else "compiled (mypyc)")
    assert ("pure-Python model" in done.stdout) is pure
