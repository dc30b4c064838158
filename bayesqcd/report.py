"""Results folders written atomically, JSON summaries, and provenance.

A results folder is built in a temporary sibling folder and renamed into place only when
everything inside it has been written, so an interrupted or crashed run never leaves a
half-written folder behind (an existing folder of the same name is replaced only on
success).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_results_dir(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder; on normal exit it replaces ``out``, on error it is deleted.

    Example::

        with atomic_results_dir("results/") as tmp:
            write_json(tmp / "summary.json", summary)
    """
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
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


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Save a matplotlib figure as ``path`` atomically (temporary file, then rename) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def credible_interval(x: Any, level: float) -> tuple[float, float]:
    """Central (equal-tailed) ``level`` credible interval of the finite values of ``x``."""
    x = np.asarray(x, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def credible_band(draws: Any, levels: tuple[float, ...] = (0.68, 0.95), min_finite: float = 0.5) -> dict[str, Any]:
    """Median and central credible bands of ``draws`` shaped ``(..., G)`` along a grid of G points.

    Draws are flattened over all leading axes (chains, draws). Grid points where fewer than
    ``min_finite`` of the draws are finite (e.g. masses above most M_TOV) get NaN.
    Returns ``{"median": (G,), level: (lo (G,), hi (G,)) for each level}``.
    """
    x = np.asarray(draws, dtype=float)
    x = x.reshape(-1, x.shape[-1])
    enough = np.isfinite(x).mean(axis=0) >= min_finite
    out: dict[str, Any] = {}
    with warnings.catch_warnings():  # all-NaN columns are masked below
        warnings.simplefilter("ignore", RuntimeWarning)
        out["median"] = np.where(enough, np.nanmedian(x, axis=0), np.nan)
        for level in levels:
            lo, hi = np.nanquantile(x, [(1 - level) / 2, (1 + level) / 2], axis=0)
            out[level] = (np.where(enough, lo, np.nan), np.where(enough, hi, np.nan))
    return out


def plot_mass_radius(curves: dict[str, tuple[Any, Any]], path: str | os.PathLike[str]) -> None:
    """Draw mass-radius curves ``{label: (R [km], M [M_sun])}`` into a PNG file (written atomically)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for label, (r, m) in curves.items():
        ax.plot(r, m, label=label)
    ax.set_xlabel("R [km]")
    ax.set_ylabel(r"M [$M_\odot$]")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
