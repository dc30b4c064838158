"""Figures drawn from InferenceData and variable names (see :mod:`bayesqcd.report`)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bayesqcd.intervals import credible_band, credible_interval


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


