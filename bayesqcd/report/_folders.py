"""Results folders written atomically, JSON summaries and provenance (see :mod:`bayesqcd.report`)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


MARKER = ".bayesqcd-results"
"""File that marks a folder as a bayesqcd results folder (the only kind ``--overwrite`` replaces)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


class ResultsDir:
    """Where a run writes its results, checked before any work is done.

    A results folder is built in a temporary sibling folder and renamed into place only when
    everything inside it has been written (:func:`atomic_results_dir`), so a crash or an
    interrupt never leaves a half-written folder. The target is refused, naming the path, when
    it is empty (``""``), the current directory or one of its parents, an existing file, one of
    the run's ``inputs`` (or inside one, or containing one), a non-empty folder that is not a
    bayesqcd results folder (no :data:`MARKER` file), or a results folder of an earlier run
    without ``overwrite``. Temporary folders left by killed runs into the same place are removed.

    Args:
        out: the folder to write.
        overwrite: replace an earlier bayesqcd results folder at ``out``.
        inputs: files or folders the run reads (never replaced).
    """

    def __init__(self, out: str | os.PathLike[str], *, overwrite: bool = False,
                 inputs: tuple[str | os.PathLike[str], ...] = ()) -> None:
        if str(out).strip() == "":
            raise ValueError("--out is empty: name a results folder")
        self.user_path = str(out)
        self.path = Path(out).expanduser().resolve()
        self.overwrite = bool(overwrite)
        cwd = Path.cwd().resolve()
        if self.path == cwd or self.path in cwd.parents:
            raise ValueError(f"--out {self.user_path!r} is the current directory (or contains it); "
                             "name a new folder for the results")
        for item in inputs:
            other = Path(item).expanduser().resolve()
            if self.path == other or other in self.path.parents or self.path in other.parents:
                raise ValueError(f"--out {self.user_path!r} overlaps the input {str(item)!r}; "
                                 "write the results somewhere else")
        self.check_replaceable()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            probe = tempfile.mkdtemp(prefix=f".{self.path.name}.probe-", dir=self.path.parent)
            os.rmdir(probe)
        except OSError as err:
            raise ValueError(f"--out {self.user_path!r} cannot be created: {err.strerror}") from None
        self._remove_stale()

    def check_replaceable(self) -> None:
        """Raise ``ValueError`` unless the target is absent, empty, or ours with ``overwrite``."""
        if self.path.is_file() or self.path.is_symlink():
            raise ValueError(f"--out {self.user_path!r} is an existing file or link, not a folder")
        if self.path.is_dir() and any(self.path.iterdir()):
            if not (self.path / MARKER).is_file():
                raise ValueError(f"--out {self.user_path!r} is a non-empty folder that bayesqcd did not "
                                 f"write (no {MARKER} file); it is never replaced: choose another folder")
            if not self.overwrite:
                raise ValueError(f"--out {self.user_path!r} holds the results of an earlier run; "
                                 "pass --overwrite to replace them")

    def _remove_stale(self) -> None:
        """Remove ``.NAME.tmp-PID-*`` / ``.NAME.old-PID`` folders of processes that no longer run."""
        for kind in ("tmp", "old"):
            for p in self.path.parent.glob(f".{self.path.name}.{kind}-*"):
                pid = p.name[len(f".{self.path.name}.{kind}-"):].split("-")[0]
                if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)) and p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"ResultsDir({self.user_path!r}, overwrite={self.overwrite})"


def results_dir(out: str | os.PathLike[str] | ResultsDir | None, **kwargs: Any) -> ResultsDir | None:
    """``out`` checked as a :class:`ResultsDir` (kept as it is if it already is one; None stays None).

    Studies call it first thing, so a bad ``out`` fails before any computation.
    """
    if out is None or isinstance(out, ResultsDir):
        return out
    return ResultsDir(out, **kwargs)


@contextlib.contextmanager
def atomic_results_dir(out: str | os.PathLike[str] | ResultsDir) -> Iterator[Path]:
    """Yield a temporary folder; on normal exit it replaces ``out``, on error it is deleted.

    ``out`` is checked as a :class:`ResultsDir` (pass one made at the start of the run, so that
    the check comes before the work). The folder receives the :data:`MARKER` file. A failure
    while writing names ``out``, not the temporary folder.

    Example::

        with atomic_results_dir("results/") as tmp:
            write_json(tmp / "summary.json", summary)
    """
    target = results_dir(out)
    dest = target.path
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-{os.getpid()}-", dir=dest.parent))
    try:
        (tmp / MARKER).write_text(json.dumps({"written_by": "bayesqcd", "pid": os.getpid()}) + "\n")
        yield tmp
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        where = Path(err.filename).name if err.filename else "a file"
        raise OSError(err.errno, f"writing {where} into results folder {target.user_path!r} failed: "
                                 f"{err.strerror}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        target.check_replaceable()  # something may have appeared there during the run
    except ValueError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):
        return _jsonable(np.asarray(x).tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def to_json(obj: Any) -> str:
    """Serialise ``obj`` (dicts, lists, numpy/JAX arrays and scalars) to JSON; NaN/inf -> null."""
    return json.dumps(_jsonable(obj), indent=2, sort_keys=False)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(to_json(obj) + "\n")
    os.replace(tmp, path)


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on (for summaries)."""
    out = {"python": platform.python_version()}
    for pkg in ("bayesqcd", "jax", "jaxlib", "numpyro", "diffrax", "equinox", "optax", "arviz"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


