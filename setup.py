"""Build the package; the model's hot modules are compiled to C extensions with mypyc.

The metadata lives in pyproject.toml. This file only adds the extension modules: the model
(one replication's event loop, its compiled scenario and the bargaining functions) compiled
by mypyc from the same Python sources, which give bit-identical results either way
(tests/test_build.py checks that). If mypyc or a C compiler is missing, or
``SIM_PURE_PYTHON=1`` is set, the package installs as pure Python, whose runs take about 1.6x
as long.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

#: The modules compiled by mypyc: the per-event work of a run.
COMPILED_MODULES = [
    "sim/model/bargaining.py",
    "sim/model/compiled.py",
    "sim/model/world.py",
]


def _warn(message: str) -> None:
    print(f"\nWARNING: {message}; installing the pure-Python model\n", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """Build the extensions, or none of them: a partial build would break the imports."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, missing headers, ...
            _warn(f"compiling the model failed ({exc})")
            for path in self.get_outputs():
                if os.path.exists(path):
                    os.remove(path)
            self.extensions = []


def extensions() -> list:
    if os.environ.get("SIM_PURE_PYTHON") == "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypyc is not installed")
        return []
    try:
        return mypycify(COMPILED_MODULES, opt_level="3", group_name="sim_model")
    except (Exception, SystemExit) as exc:  # mypy reports type errors with SystemExit
        _warn(f"mypyc could not compile the model ({exc})")
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
