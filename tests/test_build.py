"""The installed model is compiled by mypyc, and it gives what its Python sources give."""

from __future__ import annotations

import importlib.machinery
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

import sim.model
from sim.model import COMPILED_MODULES
from sim.scenario import load_scenario

PURE = os.environ.get("SIM_PURE_PYTHON") == "1"

#: Records of runs 0..RUNS-1 and traces of three runs of every shipped scenario and of
#: variants that reach what the shipped ones do not (the Rubinstein protocol, no noise, no
#: linkage, exponential cadences), pickled to argv[1] with the build that made them; the
#: objects a user may pickle or copy are round-tripped on the way.
RECORDS = textwrap.dedent("""
    import copy, pickle, sys
    from pathlib import Path
    import sim.model
    from sim.model import compile_scenario, simulate
    from sim.model.streams import StreamPool
    from sim.model.world import run_world
    from sim.scenario import load_scenario

    VARIANTS = {
        "": {},
        "rubinstein": {"bargaining.protocol": "rubinstein"},
        "calm": {"bargaining.noise": 0.0, "climate.cancel_sensitivity": 0.0,
                 "tracks.calls.cadence": "fixed", "tracks.irritants.linkage": False},
    }
    out = {"compiled": sim.model.COMPILED}
    for path in sorted(Path(sys.argv[2]).glob("*.yaml")):
        for variant, overrides in VARIANTS.items():
            if variant and path.name != "baseline.yaml":
                continue
            scenario = load_scenario(path, overrides)
            world = compile_scenario(scenario)
            # (compared as pickles: NaN fields are never == to themselves once copied)
            frozen = pickle.dumps(world)
            assert pickle.dumps(pickle.loads(frozen)) == frozen == pickle.dumps(copy.deepcopy(world))
            pool = StreamPool()
            records = [run_world(world, scenario.seed, i, pool=pool)[0]
                       for i in range(int(sys.argv[3]))]
            traces = [run_world(world, scenario.seed, i, trace=True)[1] for i in (0, 1, 2)]
            outcome = simulate(world, seed=scenario.seed, run=1, trace=True)
            again = pickle.loads(pickle.dumps(outcome))
            assert again.values.keys() == outcome.values.keys() and again.trace == outcome.trace
            out[path.stem + (f"+{variant}" if variant else "")] = (records, traces)
    # the baseline with its priors drawn run by run: per-run worlds written by the compiled
    # writers in one build, from Python in the other
    from sim.inputs import RunInputs
    from sim.montecarlo import simulate_chunk
    scenario = load_scenario(Path(sys.argv[2]) / "baseline.yaml")
    world = compile_scenario(scenario)
    inputs = RunInputs(scenario, world)
    assert inputs.keys
    columns = simulate_chunk(world, scenario.seed, 0, int(sys.argv[3]), inputs=inputs)
    records = list(zip(*(columns[k].tolist() for k in sorted(columns))))
    values = inputs.draws(scenario.seed, 0, 3)
    traces = [run_world(w, scenario.seed, i, trace=True)[1]
              for i, w in enumerate(inputs.worlds(values, 3))]
    out["baseline+drawn inputs"] = (records, traces)
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
@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")),
                    reason="no C compiler: the build falls back to pure Python")
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
    model = Path(sim.model.__file__).parent
    assert out[1:] == [str(model / f"{m}.py") for m in COMPILED_MODULES]


@pytest.mark.slow
@pytest.mark.skipif(PURE or not sim.model.COMPILED, reason="needs the compiled model")
def test_compiled_and_pure_python_models_give_bit_identical_runs(tmp_path):
    compiled = _records(tmp_path, "compiled", pure=False)
    pure = _records(tmp_path, "pure", pure=True)
    assert compiled.pop("compiled") is True and pure.pop("compiled") is False
    assert sorted(compiled) == sorted(pure) and len(compiled) >= 8
    assert any(
        any(e.kind == "agreement" and "alternating offers" in e.text for t in traces for e in t)
        for traces in (compiled[name][1] for name in compiled if name.endswith("+rubinstein"))
    ), "the Rubinstein variant never reached its settlement"
    for name in compiled:
        (records_c, traces_c), (records_p, traces_p) = compiled[name], pure[name]
        assert len(records_c) == len(records_p) == RUNS
        # pickles compare floats bit for bit (NaN included), which == on tuples does not
        for i, (c, p) in enumerate(zip(records_c, records_p)):
            assert pickle.dumps(c) == pickle.dumps(p), f"{name}, run {i}: {c} != {p}"
        assert pickle.dumps(traces_c) == pickle.dumps(traces_p), name
        assert all(traces_c), name


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


def test_the_three_lists_of_compiled_modules_agree():
    setup_py = (REPO / "setup.py").read_text()
    makefile = (REPO / "Makefile").read_text()
    listed = re.search(r"COMPILED_MODULES = \[(.*?)\]", setup_py).group(1)
    assert re.findall(r'"sim/model/(\w+)\.py"', listed) == list(COMPILED_MODULES)
    build = re.search(r"^BUILD\s*:=(.*)$", makefile, re.M).group(1)
    assert sorted(re.findall(r"sim/model/(\w+)\.py", build)) == sorted(COMPILED_MODULES)


@pytest.mark.skipif(PURE or not sim.model.COMPILED, reason="needs the compiled model")
def test_an_edited_source_makes_the_compiled_model_warn(tmp_path, monkeypatch):
    model = Path(sim.model.__file__).parent
    for m in COMPILED_MODULES:
        shutil.copy(model / f"{m}.py", tmp_path / f"{m}.py")
    monkeypatch.setattr(sim.model, "_HERE", tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sim.model._warn_if_stale()  # the sources it was built from: silent
    with open(tmp_path / "world.py", "a") as f:
        f.write("\n# edited\n")
    with pytest.warns(UserWarning, match=r"world\.py changed after it was compiled"):
        sim.model._warn_if_stale()
    (tmp_path / "world.py").unlink()  # a sourceless install: nothing to compare, no error
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sim.model._warn_if_stale()


def test_simulate_takes_numpy_integers_and_truthy_trace():
    world = sim.model.compile_scenario(load_scenario(REPO / "scenarios" / "baseline.yaml"))
    plain = sim.model.simulate(world, seed=7, run=3, trace=True)
    numpy = sim.model.simulate(world, seed=np.int64(7), run=np.uint32(3), trace=1)
    assert pickle.dumps(plain.values) == pickle.dumps(numpy.values)
    assert numpy.trace == plain.trace and numpy.trace
    assert sim.model.simulate(world, seed=7, run=3, trace=0).trace is None
