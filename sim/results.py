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
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__, outputs
from .errors import InputError
from .model.compiled import CATEGORIES, compile_scenario
from .outputs import FolderLock
from .scenario import Scenario, dump_scenario, load_scenario
from .tally import Layout, Tally

if TYPE_CHECKING:
    import pandas as pd

    from .summary import Summary

Chunk = tuple[int, int]
_PART = re.compile(r"part-(\d{10})-(\d{10})\.parquet")

_UMASK = os.umask(0)
os.umask(_UMASK)


def scenario_hash(scenario: Scenario) -> str:
    """Return a SHA-256 of the scenario's model content (runs and seed excluded)."""
    # a scenario without a posterior hashes as it did before posteriors existed
    # (and one with a posterior hashes its content, not where it was read from)
    exclude: dict[str, Any] = {"runs": True, "seed": True, "posterior": True}
    if scenario.posterior is not None:
        exclude["posterior"] = {"source": True}
    data = scenario.model_dump(mode="json", exclude=exclude)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through ``write(tmp)`` on a temporary name, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                               dir=os.path.abspath(path.parent))
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


def _local(path: Path) -> str:
    """Return ``path`` as an absolute local path: pyarrow reads a relative name that looks
    like a URI (``file:x``, ``s3:x``) as one, and would read or write somewhere else."""
    return os.path.abspath(path)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default) + "\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


class ResultsStore:
    """A results folder being written by a job (see :mod:`sim.outputs` for ownership).

    Setting up writes the marker, ``scenario.yaml``, ``outcomes/`` and, last, ``job.json``:
    a folder without ``job.json`` holds no runs, so resuming it simply sets it up again.
    Finishing writes ``tally.npz``, ``summary.json`` and, last, ``metadata.json``.
    """

    def __init__(self, path: Path, *, lock: bool = True):
        self.path = path
        self.parts = path / "outcomes"
        self._use_lock = lock
        self._lock: FolderLock | None = None
        self.created = False

    def job_settings(self) -> dict[str, Any]:
        """Return what the job in this folder asked for (runs, target_se), or {} if none.

        ``--resume`` takes these unless told otherwise, so that it finishes the job that was
        started, and a job that stopped at its target stays stopped there.
        """
        job = self._read_job(required=False) if (self.path / "job.json").exists() else None
        if not job:
            return {}
        out: dict[str, Any] = {}
        if _is_count(job.get("runs")):
            out["runs"] = job["runs"]
        target = job.get("target_se")
        if isinstance(target, float):
            out["target_se"] = target
        return out

    def prepare(self, scenario: Scenario, *, seed: int, runs: int, resume: bool,
                force: bool, target_se: float | None = None,
                settings: dict[str, Any] | None = None) -> set[Chunk]:
        """Make the folder ready and locked; return the chunks already on disk when resuming."""
        self._lock, self.created = outputs.claim(self.path, "results", force=force,
                                                 resume=resume, lock=self._use_lock)
        try:
            return self._prepare(scenario, seed=seed, runs=runs, resume=resume,
                                 target_se=target_se, settings=settings or {})
        except BaseException:
            self.release()
            raise

    def _prepare(self, scenario: Scenario, *, seed: int, runs: int, resume: bool,
                 target_se: float | None, settings: dict[str, Any]) -> set[Chunk]:
        digest = scenario_hash(scenario)
        job = self._read_job(required=False) if resume else None
        if job is not None:
            if job.get("scenario_hash") != digest or job.get("seed") != seed:
                raise InputError(
                    f"{self.path} holds a job with another scenario or seed; "
                    "resume it with the same scenario and --seed, or start over with --force"
                )
            for name, value in settings.items():
                if job.get(name, {"inputs": "none", "replications": 1}.get(name)) != value:
                    raise InputError(f"{self.path} holds a job with {name} {job.get(name)!r}, "
                                     f"not {value!r}; resume it as it was started")
            done = self.done_parts(check=True, fields=compile_scenario(scenario).fields)
            held = max((b for _, b in done), default=0)
            if held > runs:
                raise InputError(f"{self.path} already holds {held} runs, more than the {runs} "
                                 f"asked for; resume with --runs {held} or more")
            if not (self.path / "scenario.yaml").is_file():  # killed while setting up
                write_text_atomic(self.path / "scenario.yaml", dump_scenario(scenario))
            self.parts.mkdir(exist_ok=True)
            if job.get("runs") != runs or job.get("target_se") != target_se:
                write_text_atomic(self.path / "job.json",
                                  _json({**job, "runs": runs, "target_se": target_se}))
            return done
        if self.parts.is_dir() and any(self.parts.glob("part-*.parquet")):
            raise InputError(f"{self.path} holds runs but no job.json, so what job they belong "
                             "to is unknown; move them away or choose another --out")
        for name in ("scenario.yaml", "tally.npz", "summary.json", "metadata.json"):
            (self.path / name).unlink(missing_ok=True)  # an interrupted set-up: start again
        write_text_atomic(self.path / "scenario.yaml", dump_scenario(scenario))
        self.parts.mkdir(exist_ok=True)
        job = {"scenario": scenario.name, "scenario_hash": digest, "seed": seed, "runs": runs,
               "target_se": target_se, **settings, "version": __version__}
        write_text_atomic(self.path / "job.json", _json(job))
        return set()

    def release(self) -> None:
        """Release the folder's lock (at the end of the job, or when it fails)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def discard_if_empty(self) -> None:
        """Remove the folder set up by a job that failed before any run was written."""
        if not any(self.parts.glob("part-*.parquet")):
            outputs.discard(self.path, "results", self.created)

    def _read_job(self, required: bool = True) -> dict[str, Any] | None:
        try:
            job = json.loads((self.path / "job.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            if not required:
                return None
            raise InputError(f"{self.path} is not a results folder of this tool (no job.json)") from None
        except (OSError, ValueError, UnicodeDecodeError):
            raise InputError(f"{self.path}/job.json is not valid JSON; the folder is damaged") from None
        if not isinstance(job, dict):
            raise InputError(f"{self.path}/job.json is not a job description; the folder is damaged")
        return job

    def done_parts(self, check: bool = False, fields: tuple[str, ...] = ()) -> set[Chunk]:
        """Return the chunks on disk; with ``check``, verify each part's name, row count and
        that it holds the outcome ``fields``."""
        done = set()
        for file in self.parts.glob("part-*.parquet"):
            match = _PART.fullmatch(file.name)
            if match is None:
                raise InputError(f"{file}: not a part this tool writes; move it away")
            chunk = (int(match[1]), int(match[2]))
            if check:
                self._check_part(file, chunk, fields)
            done.add(chunk)
        return done

    @staticmethod
    def _check_part(file: Path, chunk: Chunk, fields: tuple[str, ...]) -> None:
        import pyarrow.parquet as pq

        try:
            meta = pq.read_metadata(_local(file))
            rows, names = meta.num_rows, set(meta.schema.names)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise InputError(f"{file}: damaged Parquet file ({exc}); remove it and run "
                             "again with --resume to recompute its runs") from None
        if rows != chunk[1] - chunk[0] or chunk[1] <= chunk[0]:
            raise InputError(f"{file}: holds {rows} runs, not the {chunk[1] - chunk[0]} its name "
                             "says; remove it and run again with --resume")
        missing = [f for f in ("run", *fields) if f not in names]
        if missing:
            raise InputError(f"{file}: lacks the column(s) {', '.join(missing[:3])}"
                             f"{' ...' if len(missing) > 3 else ''}; remove it and run again "
                             "with --resume to recompute its runs")

    def _part_path(self, chunk: Chunk) -> Path:
        return self.parts / f"part-{chunk[0]:010d}-{chunk[1]:010d}.parquet"

    def write_part(self, chunk: Chunk, columns: dict[str, np.ndarray]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(columns)
        write_atomic(self._part_path(chunk), lambda tmp: pq.write_table(table, _local(tmp)))

    def read_part(self, chunk: Chunk) -> dict[str, np.ndarray]:
        import pyarrow.parquet as pq

        table = pq.read_table(_local(self._part_path(chunk)))
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

    def finish(self, scenario: Scenario, tally: Tally, meta: dict[str, Any],
               keep_lock: bool = False) -> Results:
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
        try:
            write_atomic(self.path / "tally.npz", tally.save)
            results = Results(scenario, tally, meta, path=self.path)
            write_text_atomic(self.path / "summary.json", _json(results.summary().to_dict()))
            write_text_atomic(self.path / "metadata.json", _json(meta))  # last: finished
        except BaseException:
            self.release()
            raise
        if keep_lock:  # the caller writes more (plots, CSV) and then calls results.release()
            results._store = self
        else:
            self.release()
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
        self._store: ResultsStore | None = None  # holding the folder's lock, if kept

    def release(self) -> None:
        """Release the results folder's lock if the job that wrote it kept it (``keep_lock``)."""
        if self._store is not None:
            self._store.release()
            self._store = None

    @classmethod
    def from_memory(cls, scenario: Scenario, columns: list[dict[str, np.ndarray]], tally: Tally,
                    metadata: dict[str, Any]) -> Results:
        return cls(scenario, tally, metadata, columns=columns)

    @classmethod
    def load(cls, path: str | Path) -> Results:
        """Return the results saved in folder ``path``."""
        path = Path(path)
        if not path.is_dir():
            raise InputError(f"{path} is not a results folder")
        for name in ("scenario.yaml", "metadata.json", "tally.npz"):
            if not outputs.is_regular_file(path / name):
                raise InputError(f"{path} is not a finished results folder (no {name})")
        scenario = load_scenario(path / "scenario.yaml")
        try:
            metadata = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            raise InputError(f"{path}/metadata.json is not valid JSON; the folder is damaged") from None
        if not isinstance(metadata, dict) or not _is_count(metadata.get("seed")):
            raise InputError(f"{path}/metadata.json does not describe a job (no seed)")
        layout = Layout.from_fields(compile_scenario(scenario).fields, scenario.horizon_days)
        tally = Tally.load(path / "tally.npz", layout)
        results = cls(scenario, tally, metadata, path=path)
        results._check_parts()
        return results

    def _check_parts(self) -> None:
        """Raise :class:`InputError` unless the Parquet parts hold exactly the tallied runs."""
        assert self.path is not None
        store = ResultsStore(self.path)
        if not store.parts.is_dir():
            raise InputError(f"{self.path} is not a finished results folder (no outcomes/)")
        chunks = sorted(store.done_parts(check=True,
                                         fields=compile_scenario(self.scenario).fields))
        expected = 0
        for a, b in chunks:
            if a != expected:
                break
            expected = b
        if expected != self.tally.n or len(chunks) != sum(1 for c in chunks if c[1] <= expected):
            raise InputError(f"{self.path}: outcomes/ does not hold runs 0 to {self.tally.n - 1} "
                             "in whole parts; the folder is damaged")

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
            try:
                df = pd.read_parquet(_local(self.path / "outcomes"), columns=columns)
            except Exception as exc:  # pyarrow raises several types for damaged files
                raise InputError(f"{self.path}/outcomes: cannot read the runs ({exc}); "
                                 "the folder is damaged") from None
        df = df.sort_values("run", kind="stable").reset_index(drop=True)
        for col in df.columns:
            if col.endswith(".outcome"):
                df[col] = pd.Categorical.from_codes(df[col].astype("int64"), categories=CATEGORIES)
        return df

    @property
    def inputs(self) -> pd.DataFrame:
        """Return the experiments table's inputs: one row per run, one column per uncertain
        key (its dotted name), empty without priors."""
        from .inputs import COLUMN_PREFIX

        df = self.outcomes
        cols = [c for c in df.columns if c.startswith(COLUMN_PREFIX)]
        out = df[cols].rename(columns=lambda c: c[len(COLUMN_PREFIX):])
        out.index = df["run"].to_numpy()
        out.index.name = "run"
        return out

    def column(self, name: str) -> np.ndarray:
        """Return one outcome column in run order (codes for topic outcomes)."""
        import pandas as pd

        if self._columns is not None or self._outcomes is not None:
            series = self.outcomes[name]
        else:
            series = self._read_outcomes(columns=list(dict.fromkeys(["run", name])))[name]
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
                    table = pq.read_table(_local(store._part_path(chunk)))
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
