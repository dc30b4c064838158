"""Comparing two results variable by variable: tables, figures and a results folder (see
:mod:`bayesqcd.report`)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bayesqcd.intervals import credible_band, interval_overlap

from ._folders import ResultsDir, atomic_results_dir, results_dir, versions, write_json
from ._plots import _coordinate, _draws, _finish, _labels, plot_intervals, pyplot


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
