"""Build the package; the model's hot modules are compiled to C extensions with mypyc.

The metadata lives in pyproject.toml. This file only adds the extension modules: the model
(one replication's event loop, its compiled scenario and the bargaining functions) compiled
by mypyc from the same Python sources, which give bit-identical results either way
(tests/test_build.py checks that).

- A type error in those modules fails the build: mypyc would compile what mypy rejects.
- If mypyc is not installed or the C compiler fails, or ``SIM_PURE_PYTHON=1`` is set, the
  package installs as pure Python, whose runs take about 1.6x as long, and any extensions
  an earlier build left in the source tree are removed so that they cannot shadow the
  sources.
- A successful build writes ``_build.json`` beside the extensions: the SHA-256 of each
  source, so that ``sim.model`` can warn when a source changed after it was compiled.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError, LinkError, PlatformError

HERE = Path(__file__).resolve().parent
#: The modules compiled by mypyc (sim.model.COMPILED_MODULES names the same three).
COMPILED_MODULES = ["sim/model/bargaining.py", "sim/model/compiled.py", "sim/model/world.py"]
GROUP = "sim_model"  # the name of the shared library holding the compiled code
BUILD_INFO = "_build.json"


def _warn(message: str) -> None:
    print(f"\nWARNING: {message}; installing the pure-Python model\n", file=sys.stderr)


def _remove_built_files() -> None:
    """Remove extensions and build records that an earlier build left in the source tree."""
    model = HERE / "sim" / "model"
    stale = [model / BUILD_INFO, *HERE.glob(f"{GROUP}__mypyc*")]
    for source in COMPILED_MODULES:
        stale += [*model.glob(f"{Path(source).stem}.*.so"), *model.glob(f"{Path(source).stem}.*.pyd")]
    for path in stale:
        if path.is_file():
            path.unlink()


class BuildExt(build_ext):
    """Build the extensions, or none of them: a partial build would break the imports."""

    def run(self) -> None:
        if not self.extensions:
            return
        try:
            super().run()
        except (CCompilerError, CompileError, ExecError, LinkError, PlatformError, OSError) as exc:
            _warn(f"compiling the model failed ({exc})")
            for path in self.get_outputs():
                if os.path.exists(path):
                    os.remove(path)
            _remove_built_files()
            self.extensions = []
            return
        digests = {Path(m).stem: hashlib.sha256((HERE / m).read_bytes()).hexdigest()
                   for m in COMPILED_MODULES}
        target = Path(self.get_ext_fullpath("sim.model.world")).parent / BUILD_INFO
        target.write_text(json.dumps(digests, indent=1) + "\n")


def extensions() -> list:
    # metadata-only steps of a pip install need no extensions (and mypyc takes seconds)
    if sys.argv[1:2] in (["egg_info"], ["dist_info"]):
        return []
    if os.environ.get("SIM_PURE_PYTHON") == "1":
        _remove_built_files()
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypyc is not installed")
        _remove_built_files()
        return []
    return mypycify(COMPILED_MODULES, opt_level="3", group_name=GROUP)


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
