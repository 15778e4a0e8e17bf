"""Output folders the tool owns: recognised, locked, and only ever cleared of its own files.

A folder the tool writes (a job's results, a sweep, a comparison) holds a marker file,
``.sim-output``, naming what kind of folder it is. ``--force`` replaces such a folder's
contents only when every entry in it is one the tool writes for that kind: a folder holding
anything else (a user's notes, a thesis in a subfolder, a symlink) is refused, as are the
working directory, its parents, the home directory and symlinks, whatever they hold. Nothing
is deleted by following a link.

A job holds an exclusive lock on its folder (``flock`` on the directory itself, so no lock
file can be left behind) for as long as it writes, so a second job on the same folder fails
with a plain message instead of mixing two jobs in one folder.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .errors import InputError

MARKER = ".sim-output"
TOOL = "negotiation-sim"
TEMPORARY = ".*.tmp"  # write_atomic's temporary names


@dataclass(frozen=True)
class Layout:
    """The entries the tool writes in a folder of one kind: file patterns and subfolders.

    Files whose names vary (plots named after topics) are not matched by pattern: the tool
    lists each one in the folder's marker as it writes it (:func:`record`).
    """

    files: tuple[str, ...]
    folders: dict[str, Layout] = field(default_factory=dict)

    def file_ok(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in (*self.files, TEMPORARY))

    def folder_layout(self, name: str) -> Layout | None:
        for pattern, layout in self.folders.items():
            if fnmatch.fnmatchcase(name, pattern):
                return layout
        return None


RESULTS = Layout(
    files=(MARKER, "job.json", "scenario.yaml", "tally.npz", "summary.json", "metadata.json",
           "outcomes.csv", "report.html", "hindcast.json", "discovery.json",
           "discovery_trajectory.png", "discovery_limits.png", "score.json", "forecasts.json",
           "reliability.png", "pit.png"),
    folders={"outcomes": Layout(files=("part-*.parquet",)), "plots": Layout(files=())},
)
SWEEP = Layout(
    files=(MARKER, "sweep.json", "sweep.parquet", "sweep.csv", "sweep.png", "sweep_*.png",
           "heatmap_*.png", "sensitivity.csv", "sensitivity.png"),
    folders={"points": Layout(files=(), folders={"[0-9][0-9][0-9][0-9]*": RESULTS})},
)
COMPARISON = Layout(
    files=(MARKER, "comparison.json", "comparison.csv", "agreement_curves.png",
           "outcome_categories.png", "agreed_values.png", "meetings.png",
           "forest_probabilities.png", "forest_means.png"),
)
CALIBRATION = Layout(
    files=(MARKER, "calibration.json", "calibration.db", "calibration.db-journal",
           "posterior.parquet", "generations.csv", "check.json", "check.txt"),
    folders={"plots": Layout(files=())},
)
KINDS = {"results": RESULTS, "sweep": SWEEP, "comparison": COMPARISON,
         "calibration": CALIBRATION}


def is_empty(path: Path) -> bool:
    """Return whether ``path`` is missing or an empty folder.

    A folder holding only the temporary of a marker (a job killed as it started) counts as
    empty: nothing of value is in it.
    """
    if not path.exists():
        return True
    if not path.is_dir() or path.is_symlink():
        return False
    return all(fnmatch.fnmatchcase(p.name, f".{MARKER}.*.tmp") and p.is_file()
               and not p.is_symlink() for p in path.iterdir())


def _marker(path: Path) -> dict | None:
    try:
        data = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, dict) and data.get("tool") == TOOL and data.get("kind") in KINDS:
        return data
    return None


def marker_kind(path: Path) -> str | None:
    """Return the kind named by the folder's marker, or None if it has no valid marker."""
    data = _marker(path)
    return data["kind"] if data else None


def _listed(path: Path) -> set[str]:
    """Return the relative paths of the variable-named files the marker lists as written."""
    data = _marker(path) or {}
    written = data.get("written", [])
    return {w for w in written if isinstance(w, str)} if isinstance(written, list) else set()


def _is_listed(name: str, listed: set[str]) -> bool:
    folder, _, _ = name.rpartition("/")
    return name in listed or (bool(folder) and f"{folder}/*" in listed)


def record(folder: Path, paths: list[Path], done: list[Path] = ()) -> None:
    """List ``paths`` (files under ``folder`` about to be or just written) in its marker as
    the tool's own, and drop the entries ``done`` (a ``plots/*`` listed while writing).

    A listed ``<sub>/*`` makes every regular file directly in ``<sub>`` the tool's own.
    """
    data = _marker(folder)
    if data is None:
        return
    dropped = {p.relative_to(folder).as_posix() for p in done}
    names = (set(_listed(folder)) - dropped) | {p.relative_to(folder).as_posix() for p in paths}
    from .results import write_text_atomic

    write_text_atomic(folder / MARKER, json.dumps({**data, "written": sorted(names)}) + "\n")


def _legacy_results(path: Path) -> bool:
    """Return whether ``path`` is a results folder of an earlier version (job.json, no marker)."""
    try:
        job = json.loads((path / "job.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(job, dict) and {"scenario", "scenario_hash", "seed", "runs"} <= set(job)


def is_ours(path: Path, kind: str) -> bool:
    """Return whether ``path`` is a folder of ``kind`` that this tool wrote."""
    if path.is_symlink() or not path.is_dir():
        return False
    if marker_kind(path) == kind:
        return True
    return kind == "results" and _legacy_results(path)


def foreign_entries(path: Path, layout: Layout, limit: int = 5) -> list[str]:
    """Return up to ``limit`` entries under ``path`` that ``layout`` does not account for."""
    found: list[str] = []
    listed = _listed(path)

    def walk(folder: Path, lay: Layout, prefix: str) -> None:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if len(found) >= limit:
                return
            name = f"{prefix}{entry.name}"
            if entry.is_symlink():
                found.append(name)
            elif entry.is_dir(follow_symlinks=False):
                sub = lay.folder_layout(entry.name)
                if sub is None:
                    found.append(name + "/")
                else:
                    walk(Path(entry.path), sub, name + "/")
            elif not (entry.is_file(follow_symlinks=False)
                      and (lay.file_ok(entry.name) or _is_listed(name, listed))):
                found.append(name)

    walk(path, layout, "")
    return found


def _protected(path: Path) -> str | None:
    """Return why ``path`` may never be replaced, or None."""
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        return "it is the working directory or holds it"
    home = Path.home().resolve()
    if resolved == home or resolved in home.parents:
        return "it is the home directory or holds it"
    if resolved == Path(resolved.anchor):
        return "it is the root of the file system"
    return None


def check_replaceable(path: Path, kind: str) -> None:
    """Raise :class:`InputError` unless ``--force`` may clear ``path`` (a ``kind`` folder)."""
    if path.is_symlink():
        raise InputError(f"{path} is a symbolic link; --force never replaces one: "
                         "give the folder it points to, or another --out")
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} is a file, not a folder; choose another --out")
    reason = _protected(path)
    if reason is not None:
        raise InputError(f"{path} cannot be replaced: {reason}; choose another --out")
    if not is_ours(path, kind):
        raise InputError(f"{path} was not written by sim (no {kind} marker), so --force "
                         "will not replace it; choose another --out")
    foreign = foreign_entries(path, KINDS[kind])
    if foreign:
        raise InputError(f"{path} holds files sim did not write ({', '.join(foreign)}); "
                         "--force will not delete them: move them or choose another --out")


def clear(path: Path, kind: str) -> None:
    """Remove the tool's own entries from ``path`` (checked with :func:`check_replaceable`).

    The folder itself stays (with its lock and permissions); only entries the layout
    accounts for are removed, never through a link.
    """
    check_replaceable(path, kind)
    _clear(path, KINDS[kind], _listed(path))
    write_marker(path, kind)  # the listed files are gone


def _clear(folder: Path, layout: Layout, listed: set[str], prefix: str = "") -> None:
    for entry in os.scandir(folder):
        name = f"{prefix}{entry.name}"
        if entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            sub = layout.folder_layout(entry.name)
            if sub is not None:
                _clear(Path(entry.path), sub, listed, name + "/")
                try:
                    os.rmdir(entry.path)
                except OSError:  # something foreign appeared meanwhile: keep it
                    pass
        elif (layout.file_ok(entry.name) or _is_listed(name, listed)) and name != MARKER:
            os.unlink(entry.path)  # the top marker stays: the folder is still ours


def remove_temporaries(folder: Path, kind: str) -> None:
    """Remove temporary files that a killed job left in its folder (lock held)."""

    def walk(f: Path, lay: Layout) -> None:
        for entry in os.scandir(f):
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                sub = lay.folder_layout(entry.name)
                if sub is not None:
                    walk(Path(entry.path), sub)
            elif fnmatch.fnmatchcase(entry.name, TEMPORARY):
                os.unlink(entry.path)

    if folder.is_dir():
        walk(folder, KINDS[kind])


def check_writable_location(path: Path) -> None:
    """Raise :class:`InputError` if ``path`` cannot become a folder (checked before writing)."""
    for part in path.parts:
        if len(os.fsencode(part)) > 255:
            raise InputError(f"{path}: the name '{part[:40]}...' is longer than a file name "
                             "may be; choose a shorter --out")
    if path.is_symlink():
        raise InputError(f"{path} is a symbolic link; give a real folder as --out")
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} is a file, not a folder; choose another --out")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{path}: {parent} is a file, not a folder")
            if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
                raise InputError(f"{path}: cannot create a folder in {parent} (permission denied)")
            break
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{path}: the folder is not writable (permission denied)")


class FolderLock:
    """An exclusive, non-blocking lock on a folder, held until :meth:`release`."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no locking
            return
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise InputError(f"{self.path} is in use by another sim job; wait for it to "
                                 "finish or choose another --out") from None
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def claim(path: Path, kind: str, *, force: bool, resume: bool = False,
          lock: bool = True) -> tuple[FolderLock | None, bool]:
    """Make ``path`` ready for a ``kind`` job and return (its lock, whether it was created).

    The folder is locked first, so a job already writing there is reported as such. An
    empty or missing folder is taken as it is; a folder that holds files is taken only when
    resuming one of our own (its job is checked by the caller) or, with ``force``, cleared of
    the tool's own files after :func:`check_replaceable`. The marker is written first, so a
    folder a job set up is recognised as ours even if the job is killed at once.
    """
    check_writable_location(path)
    if lock:  # a job of its own, not a part of another job's folder (a sweep's points)
        check_not_nested(path)
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    folder_lock = FolderLock(path) if lock else None
    try:
        if folder_lock is not None:
            folder_lock.acquire()
        _check_claim(path, kind, force=force, resume=resume)
        if force and not resume and not is_empty(path):
            clear(path, kind)
        remove_temporaries(path, kind)
        if marker_kind(path) != kind:
            write_marker(path, kind)
    except BaseException:
        if folder_lock is not None:
            folder_lock.release()
        if created and is_empty(path):
            path.rmdir()
        raise
    return folder_lock, created


def check_not_nested(path: Path) -> None:
    """Refuse a job's folder inside another folder of sim's: that one would then hold an
    entry it did not write, and refuse --force and --resume (and a results folder's dataset
    could take the new job's files for its own)."""
    for parent in path.absolute().parents:
        kind = marker_kind(parent)
        if kind is not None:
            raise InputError(f"--out {path}: it is inside {parent}, a {kind} folder of sim's; "
                             "choose a folder outside it")


def _check_claim(path: Path, kind: str, *, force: bool, resume: bool) -> None:
    if is_empty(path):
        return
    if resume:
        if not is_ours(path, kind):
            raise InputError(f"{path} is not a {kind} folder of this tool; nothing to resume")
        foreign = foreign_entries(path, KINDS[kind])  # a link in it would be written through
        if foreign:
            raise InputError(f"{path} holds files or links sim did not write "
                             f"({', '.join(foreign)}); --resume will not write among them: "
                             "move them away first")
    elif force:
        check_replaceable(path, kind)
    elif is_ours(path, kind):
        what = {"results": "results", "sweep": "a sweep", "comparison": "a comparison",
                "calibration": "a calibration"}[kind]
        resume_hint = "" if kind == "comparison" else " or --resume to finish an interrupted job"
        raise InputError(f"{path} already holds {what}; use --force to replace it{resume_hint}")
    else:
        raise InputError(f"{path} already holds files sim did not write; choose another --out")


def write_marker(path: Path, kind: str) -> None:
    from .results import write_text_atomic

    data = {"tool": TOOL, "kind": kind, "version": __version__}
    write_text_atomic(path / MARKER, json.dumps(data) + "\n")


def discard(path: Path, kind: str, created: bool) -> None:
    """Remove a folder set up by a job that failed before any run finished.

    Only the tool's own entries go; the folder itself goes only if this job created it.
    """
    if not is_ours(path, kind) or foreign_entries(path, KINDS[kind]):
        return
    _clear(path, KINDS[kind], _listed(path))
    try:
        os.unlink(path / MARKER)
        if created:
            os.rmdir(path)
    except OSError:
        pass


def is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


#: The tag every HTML report of this tool carries in its head, and how the file begins, so
#: that a report is recognised by its first bytes (not by a mention of the tag elsewhere).
REPORT_GENERATOR = f'<meta name="generator" content="{TOOL}">'
REPORT_HEAD = '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' + REPORT_GENERATOR


def check_report_target(path: Path) -> None:
    """Raise :class:`InputError` unless the report may be written to ``path``.

    A missing file is fine and so is a report this tool wrote (it is replaced); anything
    else that exists (a scenario file, a user's page, a folder, a link) is never replaced.
    """
    check_writable_location(path.parent if str(path.parent) else Path("."))
    if path.is_symlink():
        raise InputError(f"{path} is a symbolic link; choose another --out")
    parent = path.absolute().parent
    for folder in (parent, parent.parent, parent.parent.parent):
        kind = marker_kind(folder)
        if kind is not None and not (folder == parent and kind == "results"
                                     and path.name == "report.html"):
            raise InputError(f"{path} is inside a {kind} folder of sim's, where a report "
                             "has no place (only <results>/report.html); choose another --out")
    if not path.exists():
        return
    if not is_regular_file(path):
        raise InputError(f"{path} is not a regular file; choose another --out")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    if not head.startswith(REPORT_HEAD.encode()):
        raise InputError(f"{path} exists and is not a report written by sim; it is kept: "
                         "choose another --out")
