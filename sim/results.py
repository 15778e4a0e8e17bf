"""The results store: one folder per job, written chunk by chunk and atomically.

Layout of ``results/<name>/``::

    job.json             what the job is (seed, runs, scenario hash): written first
    scenario.yaml        the resolved scenario exactly as run
    outcomes/            per-run outcomes, a Parquet dataset of one file per chunk
    tally.npz            streaming sufficient statistics of all runs
    summary.json         headline estimates with standard errors and 95% intervals
    metadata.json        seed, runs, version, scenario hash, executor, workers, wall time,
                         model build (compiled or pure Python)
    plots/               the default plots (PNG; SVG on request)

Every file is written to a temporary name and moved into place, so a killed job leaves
whole files only, and ``--resume`` finishes it from the chunks on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .errors import InputError
from .model.compiled import CATEGORIES, compile_scenario
from .scenario import Scenario, dump_scenario, load_scenario
from .tally import Layout, Tally

if TYPE_CHECKING:
    import pandas as pd

    from .summary import Summary

Chunk = tuple[int, int]

_UMASK = os.umask(0)
os.umask(_UMASK)


def scenario_hash(scenario: Scenario) -> str:
    """Return a SHA-256 of the scenario's model content (runs and seed excluded)."""
    data = scenario.model_dump(mode="json", exclude={"runs", "seed"})
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through ``write(tmp)`` on a temporary name, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default) + "\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


class ResultsStore:
    """A results folder being written by a job."""

    def __init__(self, path: Path):
        self.path = path
        self.parts = path / "outcomes"

    def prepare(self, scenario: Scenario, *, seed: int, runs: int, resume: bool,
                force: bool) -> set[Chunk]:
        """Make the folder ready; return the chunks already on disk when resuming."""
        if self.path.is_file():
            raise InputError(f"{self.path} is a file, not a results folder")
        exists = self.path.exists() and any(self.path.iterdir())
        digest = scenario_hash(scenario)
        if exists and resume:
            job = self._read_job()
            if job.get("scenario_hash") != digest or job.get("seed") != seed:
                raise InputError(
                    f"{self.path} holds a job with another scenario or seed; "
                    "resume it with the same scenario and --seed, or start over with --force"
                )
            for tmp in self.parts.glob(".*.tmp"):  # left by a job killed mid-write
                tmp.unlink()
            done = self.done_parts()
            held = max((b for _, b in done), default=0)
            if held > runs:
                raise InputError(f"{self.path} already holds {held} runs, more than the {runs} "
                                 f"asked for; resume with --runs {held} or more")
            return done
        if exists and not force:
            raise InputError(
                f"{self.path} already holds results; use --force to replace them "
                "or --resume to finish an interrupted job"
            )
        if exists:
            shutil.rmtree(self.path)
        self.parts.mkdir(parents=True)
        job = {"scenario": scenario.name, "scenario_hash": digest, "seed": seed, "runs": runs,
               "version": __version__}
        write_text_atomic(self.path / "job.json", _json(job))
        write_text_atomic(self.path / "scenario.yaml", dump_scenario(scenario))
        return set()

    def _read_job(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "job.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputError(f"{self.path} is not a results folder of this tool (no job.json)") from None

    def done_parts(self) -> set[Chunk]:
        done = set()
        for file in self.parts.glob("part-*.parquet"):
            _, a, b = file.stem.split("-")
            done.add((int(a), int(b)))
        return done

    def _part_path(self, chunk: Chunk) -> Path:
        return self.parts / f"part-{chunk[0]:010d}-{chunk[1]:010d}.parquet"

    def write_part(self, chunk: Chunk, columns: dict[str, np.ndarray]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(columns)
        write_atomic(self._part_path(chunk), lambda tmp: pq.write_table(table, tmp))

    def read_part(self, chunk: Chunk) -> dict[str, np.ndarray]:
        import pyarrow.parquet as pq

        table = pq.read_table(self._part_path(chunk))
        return {name: table.column(name).to_numpy() for name in table.column_names}

    def truncate(self, runs: int) -> None:
        """Keep runs below ``runs`` only (where ``--target-se`` stopped the job)."""
        for chunk in self.done_parts():
            if chunk[0] >= runs:
                self._part_path(chunk).unlink()
            elif chunk[1] > runs:
                columns = {k: v[: runs - chunk[0]] for k, v in self.read_part(chunk).items()}
                self.write_part((chunk[0], runs), columns)
                self._part_path(chunk).unlink()

    def finish(self, scenario: Scenario, tally: Tally, meta: dict[str, Any]) -> Results:
        import datetime as dt
        import platform

        from .model import COMPILED

        meta = {
            "scenario": scenario.name,
            "scenario_hash": scenario_hash(scenario),
            "version": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "model_build": "compiled (mypyc)" if COMPILED else "pure Python",
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **meta,
        }
        write_atomic(self.path / "tally.npz", tally.save)
        results = Results(scenario, tally, meta, path=self.path)
        write_text_atomic(self.path / "summary.json", _json(results.summary().to_dict()))
        write_text_atomic(self.path / "metadata.json", _json(meta))
        return results


class Results:
    """The results of one Monte Carlo job: outcomes, tally, summary, scenario and metadata."""

    def __init__(self, scenario: Scenario, tally: Tally, metadata: dict[str, Any], *,
                 path: Path | None = None, columns: list[dict[str, np.ndarray]] | None = None):
        self.scenario = scenario
        self.tally = tally
        self.metadata = metadata
        self.path = path
        self._columns = columns
        self._outcomes: pd.DataFrame | None = None
        self._label: str | None = None

    @classmethod
    def from_memory(cls, scenario: Scenario, columns: list[dict[str, np.ndarray]], tally: Tally,
                    metadata: dict[str, Any]) -> Results:
        return cls(scenario, tally, metadata, columns=columns)

    @classmethod
    def load(cls, path: str | Path) -> Results:
        """Return the results saved in folder ``path``."""
        path = Path(path)
        for name in ("scenario.yaml", "metadata.json", "tally.npz"):
            if not (path / name).is_file():
                raise InputError(f"{path} is not a finished results folder (no {name})")
        scenario = load_scenario(path / "scenario.yaml")
        metadata = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
        layout = Layout.from_fields(compile_scenario(scenario).fields, scenario.horizon_days)
        return cls(scenario, Tally.load(path / "tally.npz", layout), metadata, path=path)

    @property
    def name(self) -> str:
        """The label of these results in tables and plots: the scenario name unless set."""
        return self._label or self.scenario.name

    @name.setter
    def name(self, label: str) -> None:
        self._label = label

    @property
    def runs(self) -> int:
        return self.tally.n

    @property
    def seed(self) -> int:
        return self.metadata["seed"]

    @property
    def outcomes(self) -> pd.DataFrame:
        """One row per run, sorted by run; topic outcomes as categories."""
        if self._outcomes is None:
            self._outcomes = self._read_outcomes()
        return self._outcomes

    def _read_outcomes(self, columns: list[str] | None = None) -> pd.DataFrame:
        import pandas as pd

        if self._columns is not None:
            frames = [pd.DataFrame(c) for c in self._columns]
            df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        else:
            df = pd.read_parquet(self.path / "outcomes", columns=columns)
        df = df.sort_values("run", kind="stable").reset_index(drop=True)
        for col in df.columns:
            if col.endswith(".outcome"):
                df[col] = pd.Categorical.from_codes(df[col].astype("int64"), categories=CATEGORIES)
        return df

    def column(self, name: str) -> np.ndarray:
        """Return one outcome column in run order (codes for topic outcomes)."""
        import pandas as pd

        if self._columns is not None or self._outcomes is not None:
            series = self.outcomes[name]
        else:
            series = self._read_outcomes(columns=["run", name])[name]
        if isinstance(series.dtype, pd.CategoricalDtype):
            return series.cat.codes.to_numpy()
        return series.to_numpy()

    def summary(self) -> Summary:
        """Return the headline estimates with standard errors and 95% intervals."""
        from .summary import summarize

        return summarize(self)

    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write these results to folder ``path`` in the store's layout and return it."""
        if self.path is not None and Path(path).resolve() == self.path.resolve():
            raise InputError(f"{path} is where these results are stored already")
        df = self.outcomes.copy()
        store = ResultsStore(Path(path))
        store.prepare(self.scenario, seed=self.seed, runs=self.runs, resume=False, force=force)
        for col in df.columns:
            if col.endswith(".outcome"):
                df[col] = df[col].cat.codes.astype(np.int8)
        columns = {c: df[c].to_numpy() for c in df.columns}
        store.write_part((0, self.runs), columns)
        store.finish(self.scenario, self.tally, dict(self.metadata))
        self.path = store.path
        return store.path

    def to_csv(self, path: str | Path) -> Path:
        """Write the per-run outcomes as CSV (streamed chunk by chunk from disk)."""
        path = Path(path)
        if self.path is None or self._columns is not None:
            write_atomic(path, lambda tmp: self.outcomes.to_csv(tmp, index=False))
            return path
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        store = ResultsStore(self.path)

        import pyarrow as pa
        import pyarrow.compute as pc

        labels = pa.array(CATEGORIES)

        def write(tmp: Path) -> None:
            writer = None
            try:
                for chunk in sorted(store.done_parts()):
                    table = pq.read_table(store._part_path(chunk))
                    for k, name in enumerate(table.column_names):
                        if name.endswith(".outcome"):  # codes to labels, as in .outcomes
                            table = table.set_column(k, name, pc.take(labels, table.column(name)))
                    if writer is None:
                        writer = pacsv.CSVWriter(str(tmp), table.schema)
                    writer.write_table(table)
            finally:
                if writer is not None:
                    writer.close()

        write_atomic(path, write)
        return path

    def __repr__(self) -> str:
        return f"Results({self.name!r}, runs={self.runs}, seed={self.metadata.get('seed')})"
