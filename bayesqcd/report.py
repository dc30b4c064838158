"""Results folders, JSON summaries, provenance, and figures drawn from InferenceData.

Layer: report (imports core and arviz/matplotlib; never models, inference, studies or cli).
Every figure of the project is saved by :func:`save_figure`; generic plots take an
``arviz.InferenceData`` (or several) and variable names, so a user's model gets the same
reports as ours: :func:`plot_band` (median and credible bands of a curve along its
coordinate, several results overlaid), :func:`plot_intervals` (forest plot of intervals),
:func:`plot_corner` (pairwise densities of scalar parameters), :func:`plot_calibration`
(coverage and SBC ranks). :func:`compare` measures, variable by variable, how two results
agree (a printable, JSON-able :class:`Comparison`), :func:`plot_compare` draws it and
:func:`write_compare` writes it as a results folder (``bayesqcd compare``).

Results folders (:class:`ResultsDir`, :func:`atomic_results_dir`) are checked before any work,
written into a temporary sibling and renamed into place only when complete; only folders that
bayesqcd wrote (marked by :data:`MARKER`) are ever replaced, and only with ``overwrite``.
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
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from bayesqcd.intervals import credible_band, credible_interval, interval_overlap  # noqa: F401 (re-exported)


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


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Save a matplotlib figure as ``path`` atomically (temporary file, then rename) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OSError(err.errno, f"cannot write the figure {str(path)!r}: {err.strerror}") from None
    finally:
        plt.close(fig)


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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


def _draws(idata: Any, var: str) -> np.ndarray:
    """Posterior draws of ``var`` flattened over (chain, draw) and over its own axes: ``(n, K)``."""
    if var not in idata.posterior:
        raise ValueError(f"the result has no variable {var!r}; it has {sorted(idata.posterior.data_vars)}")
    x = np.asarray(idata.posterior[var].values, dtype=float)
    return x.reshape(x.shape[0] * x.shape[1], -1)


def _curve_draws(idata: Any, var: str) -> np.ndarray:
    """Posterior draws of the curve ``var``, shape ``(n, G)``."""
    x = _draws(idata, var)
    if idata.posterior[var].ndim != 3:
        raise ValueError(f"{var!r} has shape {idata.posterior[var].shape[2:]} per draw; "
                         "plot_band needs a curve (one axis)")
    return x


def _coordinate(idata: Any, var: str, x: Any) -> np.ndarray:
    """The x values of curve ``var``: ``x`` itself (an array), or the coordinate/variable named ``x``."""
    n = idata.posterior[var].shape[-1]
    if x is None:
        grid = np.asarray(idata.posterior[var][idata.posterior[var].dims[-1]].values, dtype=float)
    elif isinstance(x, str):
        grid = None
        for group in ("posterior", "constant_data", "observed_data"):
            if group in idata.groups() and x in idata[group].variables:
                grid = np.asarray(idata[group][x].values, dtype=float)
                break
        if grid is None:
            raise ValueError(f"no coordinate or data variable {x!r} for the x axis of {var!r}")
    else:
        grid = np.asarray(x, dtype=float)
    if grid.shape != (n,):
        raise ValueError(f"x of {var!r} has shape {grid.shape}; the curve has {n} points")
    return grid


def _as_list(results: Any) -> list[Any]:
    return list(results) if isinstance(results, (list, tuple)) else [results]


def _labels(results: list[Any], labels: Any) -> list[str]:
    """``labels`` checked against ``results``; by default each result's engine, numbered if repeated."""
    if labels is not None:
        if len(labels) != len(results):
            raise ValueError(f"labels has {len(labels)} entries for {len(results)} results")
        return [str(lab) for lab in labels]
    names = [str(r.posterior.attrs.get("engine", f"result {i + 1}")) for i, r in enumerate(results)]
    if len(set(names)) < len(names):
        names = [f"{n} ({i + 1})" for i, n in enumerate(names)]
    return names


def _finish(fig: Any, path: str | os.PathLike[str] | None) -> Any:
    """Lay out ``fig``, save it to ``path`` if given (:func:`save_figure`), and return it."""
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def band_on_axes(ax: Any, idata: Any, var: str, x: Any = None, *, levels: tuple[float, ...] = (0.68, 0.95),
                 color: str = "C0", label: str | None = None, vertical: bool = False) -> None:
    """Draw the median and central ``levels`` bands of curve ``var`` of ``idata`` into ``ax``.

    ``x``: the curve's abscissa (array, or the name of a coordinate/variable of ``idata``;
    default the variable's last coordinate). ``vertical``: the curve as x(y) (bands filled
    horizontally, e.g. R(M) drawn in the M-R plane).
    """
    grid = _coordinate(idata, var, x)
    band = credible_band(_curve_draws(idata, var), levels=tuple(levels))
    prefix = f"{label} " if label else ""
    for i, level in enumerate(sorted(levels, reverse=True)):
        alpha = 0.25 + 0.2 * i
        fill = ax.fill_betweenx if vertical else ax.fill_between
        fill(grid, *band[level], color=color, alpha=alpha, lw=0, label=f"{prefix}{int(round(level * 100))}%")
    if vertical:
        ax.plot(band["median"], grid, color=color)
    else:
        ax.plot(grid, band["median"], color=color, label=f"{prefix}median")


def plot_band(results: Any, var: str, x: Any = None, *, levels: tuple[float, ...] = (0.68, 0.95),
              labels: list[str] | None = None, path: str | os.PathLike[str] | None = None,
              xlabel: str | None = None, ylabel: str | None = None) -> Any:
    """Median and central ``levels`` bands of the curve ``var`` of one InferenceData or of a list
    of them (overlaid, one colour each, legend entries prefixed by ``labels``).

    ``x``: the abscissa, an array or the name of a coordinate / ``constant_data`` variable (looked
    up in each result); default the variable's own coordinate. Returns the figure (also saved to
    ``path`` if given). Grid points where fewer than half the draws are finite are left out.
    """
    plt = pyplot()
    results = _as_list(results)
    labels = labels or [None] * len(results)
    if len(labels) != len(results):
        raise ValueError(f"labels has {len(labels)} entries for {len(results)} results")
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (res, lab) in enumerate(zip(results, labels)):
        band_on_axes(ax, res, var, x, levels=levels, color=f"C{i}", label=lab)
    ax.set(xlabel=xlabel or (x if isinstance(x, str) else ""), ylabel=ylabel or var)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _finish(fig, path)


def plot_intervals(results: Any, var_names: list[str], labels: list[str] | None = None,
                   levels: tuple[float, ...] = (0.68, 0.95), *,
                   path: str | os.PathLike[str] | None = None) -> Any:
    """Forest plot: median (dot) and central ``levels`` intervals (thick: the narrowest level) of
    each variable of ``var_names``, one panel (with its own scale) per variable, one row per
    component of a vector variable, the results (one InferenceData or a list) side by side in
    each row.

    Non-finite draws are left out. Returns the figure (also saved to ``path`` if given).
    """
    plt = pyplot()
    results = _as_list(results)
    labels = _labels(results, labels)
    levels = sorted(levels)
    if not levels or not all(0.0 < lev < 1.0 for lev in levels):
        raise ValueError(f"levels = {levels} must lie in (0, 1)")
    var_names = list(var_names)
    sizes = {name: _draws(results[0], name).shape[1] for name in var_names}
    rows = [sizes[n] + 0.6 for n in var_names]
    fig, axes = plt.subplots(len(var_names), 1, squeeze=False, gridspec_kw={"height_ratios": rows},
                             figsize=(6, 0.6 + sum(rows) * (0.25 + 0.12 * len(results))))
    step = 0.7 / len(results)
    for ax, name in zip(axes[:, 0], var_names):
        k = sizes[name]
        for j, res in enumerate(results):
            d = _draws(res, name)
            if d.shape[1] != k:
                raise ValueError(f"{name!r} has {d.shape[1]} components in {labels[j]!r}, {k} in {labels[0]!r}")
            y = np.arange(k) + (j - (len(results) - 1) / 2) * step
            for lev, lw in zip(levels, np.linspace(3.5, 1.2, len(levels))):
                lo, hi = np.array([credible_interval(d[:, c], lev) for c in range(k)]).T
                ax.hlines(y, lo, hi, color=f"C{j}", lw=lw)
            with warnings.catch_warnings():  # an all-NaN component gives no dot
                warnings.simplefilter("ignore", RuntimeWarning)
                ax.plot(np.nanmedian(d, axis=0), y, "o", color=f"C{j}", ms=4, label=labels[j])
        ax.set_yticks(np.arange(k), [name] if k == 1 else [f"{name}[{c}]" for c in range(k)])
        ax.set_ylim(k - 0.5, -0.5)
        ax.grid(alpha=0.3, axis="x")
    axes[0, 0].legend(fontsize="small", loc="lower left", bbox_to_anchor=(0.0, 1.02), ncol=len(results),
                      frameon=False, title=" / ".join(f"{int(round(lev * 100))}%" for lev in levels) + " intervals",
                      title_fontsize="small")
    return _finish(fig, path)


def plot_corner(idata: Any, var_names: list[str], path: str | os.PathLike[str] | None = None,
                coords: dict[str, Any] | None = None) -> Any:
    """Pairwise KDE plot (with marginals) of the posterior of ``var_names``; returns the figure
    (also saved to ``path`` if given)."""
    import arviz as az

    pyplot()
    axes = az.plot_pair(idata, var_names=list(var_names), coords=coords or None, kind="kde", marginals=True,
                        kde_kwargs={"contourf_kwargs": {"cmap": "Blues"}}, textsize=9)
    fig = np.ravel(axes)[0].get_figure()
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_calibration(calibrations: Any, var_names: list[str] | None = None, labels: list[str] | None = None, *,
                     bins: int = 10, path: str | os.PathLike[str] | None = None) -> Any:
    """Simulation-based calibration of one or several posterior approximations (objects with
    ``levels``, ``coverage``, ``band``, ``n_sims`` and ``rank_histogram(name, bins)``, as
    :func:`bayesqcd.inference.calibrate` returns): per target, the empirical against the nominal
    coverage of central intervals with the 95% binomial band of a calibrated posterior (top),
    and the histogram of normalized SBC ranks with the band of uniform ranks (bottom).
    Returns the figure (also saved to ``path`` if given).
    """
    from scipy import stats

    plt = pyplot()
    cals = _as_list(calibrations)
    labels = list(labels) if labels is not None else [str(getattr(c, "engine", "") or f"result {i + 1}")
                                                      for i, c in enumerate(cals)]
    if len(labels) != len(cals):
        raise ValueError(f"labels has {len(labels)} entries for {len(cals)} calibrations")
    names = list(var_names or cals[0].coverage)
    fig, axes = plt.subplots(2, len(names), figsize=(3.3 * len(names) + 0.6, 6.2), squeeze=False)
    for col, name in enumerate(names):
        top, bottom = axes[0, col], axes[1, col]
        top.fill_between(cals[0].levels, *cals[0].band, color="0.85", zorder=0,
                         label=f"95% band ({cals[0].n_sims} sims)")
        top.plot([0, 1], [0, 1], color="0.4", lw=0.8, ls=":")
        for i, (cal, lab) in enumerate(zip(cals, labels)):
            top.plot(cal.levels, cal.coverage[name], "o-", ms=3, color=f"C{i}", label=lab)
            counts, edges = cal.rank_histogram(name, bins)
            bottom.stairs(counts / counts.sum() * bins, edges, color=f"C{i}", lw=1.5)
        n = int(cals[0].rank_histogram(names[0], bins)[0].sum())
        lo, hi = (stats.binom.ppf(q, n, 1 / bins) / n * bins for q in (0.025, 0.975))
        bottom.axhspan(lo, hi, color="0.85", zorder=0)
        bottom.axhline(1.0, color="0.4", lw=0.8, ls=":")
        top.set(title=name, xlabel="nominal level", xlim=(0, 1), ylim=(0, 1))
        bottom.set(xlabel="normalized rank", xlim=(0, 1), ylim=(0, None))
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("empirical coverage")
    axes[1, 0].set_ylabel("density of ranks")
    axes[0, 0].legend(fontsize="x-small", loc="upper left")
    return _finish(fig, path)


# -- comparing two results ------------------------------------------------------------------------


@dataclass(frozen=True)
class VariableComparison:
    """How two results agree on one posterior variable, point by point (a scalar is one point,
    a curve one per grid point, an array one per component, flattened).

    Attributes:
        name, shape: the variable and its shape per draw.
        x: ``(K,)`` the curve's abscissa (its coordinate), or component indices.
        median, lo, hi: ``(2, K)`` medians and central ``level`` intervals of the first and the
            second result, from their finite draws (NaN where fewer than ``min_finite`` of the
            draws are finite).
        sd: ``(K,)`` standard deviation of the first result's finite draws.
        dropped, n_values: non-finite draw values left out, and all draw values, per result.
    """

    name: str
    shape: tuple[int, ...]
    x: np.ndarray
    median: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    sd: np.ndarray
    dropped: tuple[int, int]
    n_values: tuple[int, int]

    @property
    def points(self) -> np.ndarray:
        """``(K,)`` mask of the points where both results have a median and an interval."""
        return np.all(np.isfinite(self.median) & np.isfinite(self.lo) & np.isfinite(self.hi), axis=0)

    def summary(self) -> dict[str, Any]:
        """The metrics, means over :attr:`points` (in units of the variable unless said):

        ``median_difference`` (first - second), ``median_difference_sd`` (the same over the
        first's sd; ``max_abs_median_difference_sd`` its largest size), ``overlap``
        (|intersection| / |union| of the two intervals: 1 identical, 0 disjoint),
        ``width_ratio`` (second's interval width / first's), ``first_median_in_second`` and
        ``second_median_in_first`` (fraction of points where a median lies inside the other's
        interval), ``points`` (used, of ``of_points``), ``dropped`` / ``n_values`` per result.
        """
        ok = self.points
        med, lo, hi, sd = self.median[:, ok], self.lo[:, ok], self.hi[:, ok], self.sd[ok]
        diff = med[0] - med[1]
        shift = np.divide(diff, sd, out=np.where(diff == 0, 0.0, np.copysign(np.inf, diff)), where=sd > 0)
        width = hi - lo
        ratio = np.divide(width[1], width[0], out=np.where(width[1] == 0, 1.0, np.inf), where=width[0] > 0)

        def mean(v: np.ndarray) -> float:
            return float(np.mean(v)) if ok.any() else float("nan")

        return {"shape": list(self.shape), "points": int(ok.sum()), "of_points": int(ok.size),
                "median_difference": mean(diff), "median_difference_sd": mean(shift),
                "max_abs_median_difference_sd": float(np.max(np.abs(shift))) if ok.any() else float("nan"),
                "overlap": mean(interval_overlap((lo[0], hi[0]), (lo[1], hi[1]))), "width_ratio": mean(ratio),
                "first_median_in_second": mean((med[0] >= lo[1]) & (med[0] <= hi[1])),
                "second_median_in_first": mean((med[1] >= lo[0]) & (med[1] <= hi[0])),
                "dropped": list(self.dropped), "n_values": list(self.n_values)}


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`: per variable a :class:`VariableComparison`.

    ``comparison["omega"]`` is that variable's :meth:`~VariableComparison.summary`;
    ``str(comparison)`` is a table, :meth:`to_dict` the JSON-able form; variables that could
    not be compared are in ``skipped`` with the reason.
    """

    labels: tuple[str, str]
    level: float
    variables: dict[str, VariableComparison]
    skipped: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> dict[str, Any]:
        return self.variables[name].summary()

    def to_dict(self) -> dict[str, Any]:
        """``{"labels", "level", "variables": {name: summary}, "skipped"}`` (JSON-able via :func:`to_json`)."""
        return {"labels": list(self.labels), "level": self.level,
                "variables": {n: v.summary() for n, v in self.variables.items()}, "skipped": dict(self.skipped)}

    def __str__(self) -> str:
        a, b = self.labels
        lines = [f"{a} vs {b}: central {self.level:.0%} intervals; median difference ({a} - {b}) in sd of {a}; "
                 f"overlap |A n B|/|A u B|; width {b}/{a}; means over a curve's points",
                 f"{'variable':16s} {'points':>7s} {'dmed/sd':>8s} {'max|d|/sd':>9s} {'overlap':>7s} "
                 f"{'width':>6s} {'med1 in 2':>9s} {'med2 in 1':>9s}  dropped"]
        for name, v in self.variables.items():
            s = v.summary()
            lines.append(f"{name:16s} {s['points']:7d} {s['median_difference_sd']:+8.2f} "
                         f"{s['max_abs_median_difference_sd']:9.2f} {s['overlap']:7.2f} {s['width_ratio']:6.2f} "
                         f"{s['first_median_in_second']:9.2f} {s['second_median_in_first']:9.2f}  "
                         f"{s['dropped'][0]}/{s['dropped'][1]}")
        lines += [f"{name:16s} skipped: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)


def compare(first: Any, second: Any, var_names: list[str] | None = None, level: float = 0.68,
            labels: tuple[str, str] | None = None, *, x: dict[str, Any] | None = None,
            min_finite: float = 0.5) -> Comparison:
    """Compare two results (InferenceData of any model and engine) variable by variable.

    Args:
        first, second: the results; the first is the reference (e.g. NUTS).
        var_names: posterior variables to compare (default: every variable both results have
            with the same shape; others are listed in ``skipped``).
        level: the central credible level of the intervals, in (0, 1).
        labels: names of the two results (default: their ``engine`` attribute).
        x: per curve variable, its abscissa (array or coordinate name, as in :func:`plot_band`).
        min_finite: a point is used only where at least this fraction of each result's draws
            is finite; non-finite draws are left out and counted.

    Returns:
        a :class:`Comparison`; for each variable the metrics of :meth:`VariableComparison.summary`.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level = {level} must lie in (0, 1)")
    if not 0.0 < min_finite <= 1.0:
        raise ValueError(f"min_finite = {min_finite} must lie in (0, 1]")
    a_label, b_label = _labels([first, second], labels)
    shared = [str(v) for v in first.posterior.data_vars if v in second.posterior.data_vars]
    names = shared if var_names is None else list(var_names)
    for name in names:
        for res, lab in ((first, a_label), (second, b_label)):
            if name not in res.posterior:
                raise ValueError(f"var_names: {lab!r} has no variable {name!r}; it has "
                                 f"{sorted(map(str, res.posterior.data_vars))}")
    if not names:
        raise ValueError(f"{a_label!r} and {b_label!r} share no posterior variable")
    x = dict(x or {})
    out: dict[str, VariableComparison] = {}
    skipped: dict[str, str] = {}
    for name in names:
        shapes = [tuple(res.posterior[name].shape[2:]) for res in (first, second)]
        if shapes[0] != shapes[1]:
            if var_names is not None:
                raise ValueError(f"{name!r} has shape {shapes[0]} in {a_label!r} but {shapes[1]} in {b_label!r}")
            skipped[name] = f"shapes {shapes[0]} and {shapes[1]} differ"
            continue
        draws = [_draws(res, name) for res in (first, second)]
        bands = [credible_band(d, levels=(level,), min_finite=min_finite) for d in draws]
        with warnings.catch_warnings():  # all-NaN points are masked by the bands
            warnings.simplefilter("ignore", RuntimeWarning)
            sd = np.nanstd(draws[0], axis=0)
        grid = (_coordinate(first, name, x.get(name)) if len(shapes[0]) == 1
                else np.arange(draws[0].shape[1], dtype=float))
        out[name] = VariableComparison(
            name=name, shape=shapes[0], x=grid, median=np.stack([b["median"] for b in bands]),
            lo=np.stack([b[level][0] for b in bands]), hi=np.stack([b[level][1] for b in bands]), sd=sd,
            dropped=tuple(int((~np.isfinite(d)).sum()) for d in draws), n_values=tuple(int(d.size) for d in draws))
    return Comparison((a_label, b_label), float(level), out, skipped)


def plot_compare(comparison: Comparison | tuple[Any, Any], *, var_names: list[str] | None = None,
                 level: float = 0.68, labels: tuple[str, str] | None = None, x: dict[str, Any] | None = None,
                 vertical: tuple[str, ...] = (), axes: dict[str, dict[str, Any]] | None = None, ncols: int = 3,
                 path: str | os.PathLike[str] | None = None) -> Any:
    """One panel per variable of a :class:`Comparison` (or of ``compare(*comparison, ...)`` for a
    pair of InferenceData): both results' medians and ``level`` intervals (a curve's bands along
    its abscissa; a scalar's intervals one above the other), titled with overlap and median shift.

    ``vertical``: curves drawn as x(y) (e.g. R(M)); ``axes``: per variable, keyword arguments of
    ``Axes.set`` (scales, labels, limits). Returns the figure (also saved to ``path`` if given).
    """
    cmp = comparison if isinstance(comparison, Comparison) else compare(
        *comparison, var_names=var_names, level=level, labels=labels, x=x)
    names = list(var_names or cmp.variables)
    if not names:
        raise ValueError("nothing to plot: the comparison has no variable")
    plt = pyplot()
    ncols = max(1, min(int(ncols), len(names)))
    nrows = -(-len(names) // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
    for ax, name in zip(grid.flat, names):
        v = cmp.variables[name]
        for i, lab in enumerate(cmp.labels):
            med, lo, hi = v.median[i], v.lo[i], v.hi[i]
            tag = f"{lab} ({cmp.level:.0%})"
            if not v.shape:  # a scalar: two intervals, one above the other
                ax.errorbar(med, [-i], xerr=[med - lo, hi - med], fmt="o", color=f"C{i}", capsize=4, label=tag)
            elif name in vertical:
                ax.fill_betweenx(v.x, lo, hi, color=f"C{i}", alpha=0.35, lw=0, label=tag)
                ax.plot(med, v.x, color=f"C{i}")
            else:
                ax.fill_between(v.x, lo, hi, color=f"C{i}", alpha=0.35, lw=0, label=tag)
                ax.plot(v.x, med, color=f"C{i}")
        if not v.shape:
            ax.set(yticks=[], ylim=(-1.8, 0.8), xlabel=name)
        s = v.summary()
        ax.set_title(f"{name}: overlap {s['overlap']:.2f}, $\\Delta$med {s['median_difference_sd']:+.2f} sd",
                     fontsize="small")
        ax.set(**(axes or {}).get(name, {}))
        ax.grid(alpha=0.3)
    for ax in list(grid.flat)[len(names):]:
        ax.set_visible(False)
    grid[0, 0].legend(fontsize="small")
    return _finish(fig, path)


def load_result(path: str | os.PathLike[str]) -> Any:
    """InferenceData from a netCDF file, or from a results folder's ``posterior.nc`` (or its only ``*.nc``)."""
    import arviz as az

    p = Path(path)
    if p.is_dir():
        found = [p / "posterior.nc"] if (p / "posterior.nc").is_file() else sorted(p.glob("*.nc"))
        if len(found) != 1:
            raise FileNotFoundError(f"{p} holds {'no' if not found else len(found)} *.nc files and no "
                                    "posterior.nc: pass a results folder with one posterior, or the .nc file")
        p = found[0]
    elif not p.is_file():
        raise FileNotFoundError(f"{p} not found: pass a results folder (with posterior.nc) or a .nc file")
    return az.from_netcdf(str(p))


def write_compare(out: str | os.PathLike[str] | ResultsDir, first: Any, second: Any, *,
                  var_names: list[str] | None = None, level: float = 0.68, labels: tuple[str, str] | None = None,
                  x: dict[str, Any] | None = None, inputs: dict[str, str] | None = None) -> Comparison:
    """:func:`compare` two results and write, atomically into the results folder ``out``:
    ``summary.json`` (the comparison, ``inputs``, versions), ``comparison.png``
    (:func:`plot_compare`) and, for the variables with at most 12 components,
    ``intervals.png`` (:func:`plot_intervals`). Returns the comparison."""
    target = results_dir(out)
    cmp = compare(first, second, var_names, level, labels, x=x)
    small = [n for n, v in cmp.variables.items() if v.x.size <= 12]
    with atomic_results_dir(target) as tmp:
        write_json(tmp / "summary.json", {"comparison": cmp.to_dict(), "inputs": dict(inputs or {}),
                                          "versions": versions()})
        plot_compare(cmp, path=tmp / "comparison.png")
        if small:
            plot_intervals([first, second], small, labels=list(cmp.labels), levels=(level,),
                           path=tmp / "intervals.png")
    return cmp
