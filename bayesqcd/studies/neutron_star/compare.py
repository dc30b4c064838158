"""Side-by-side comparison of two EoS results -- typically the Bayesian posterior and the
neural regression -- from their ``posterior.nc`` files.

Both results carry the same variables (``p_of_eps`` on EPS_GRID, ``cs2_of_n`` on N_GRID,
``R_of_M`` on M_GRID, ``R_1.4``, ``M_TOV``, ``Lambda_1.4``), whatever engine made them.

* :func:`band_agreement` -- per grid point, the overlap of the two central 68% intervals
  (length of the intersection over that of the union: 1 for identical bands, 0 for
  disjoint ones), averaged over the grid points where both are defined; and the fraction
  of grid points where each median lies inside the other's band.
* :func:`first_order_fractions` -- per density segment, the fraction of draws with
  c_s^2 below a threshold (a candidate first-order transition, or a strong softening).
* :func:`write_comparison` -- the results folder of ``bayesqcd compare``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np

from bayesqcd import units
from bayesqcd.eos.sound_speed import default_bounds
from bayesqcd.models.neutron_star import EPS_GRID, M_GRID, N_GRID
from bayesqcd.studies.neutron_star.report import HEADLINE, headline
from bayesqcd.report import atomic_results_dir, credible_band, pyplot, save_figure, versions, write_json

BANDS: dict[str, np.ndarray] = {"p_of_eps": EPS_GRID, "cs2_of_n": N_GRID, "R_of_M": M_GRID}
"""The curve-valued variables compared, with their grids."""
FIRST_ORDER_THRESHOLD: float = 0.1
"""Default c_s^2 below which a segment counts as (nearly) first order."""


def _draws(idata: az.InferenceData, name: str) -> np.ndarray:
    if name not in idata.posterior:
        raise ValueError(f"the result has no variable {name!r}; it has {sorted(idata.posterior.data_vars)}")
    x = idata.posterior[name].values
    return x.reshape(-1, *x.shape[2:])


def interval_overlap(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """|A n B| / |A u B| of intervals A = [a_lo, a_hi], B = [b_lo, b_hi], elementwise (in [0, 1])."""
    inter = np.clip(np.minimum(a[1], b[1]) - np.maximum(a[0], b[0]), 0.0, None)
    union = np.maximum(a[1], b[1]) - np.minimum(a[0], b[0])
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 1.0)


def band_agreement(first: az.InferenceData, second: az.InferenceData, level: float = 0.68) -> dict[str, Any]:
    """Agreement of the ``level`` bands of the curve variables and of the headline scalars."""
    out: dict[str, Any] = {}
    for name in BANDS:
        ba = credible_band(_draws(first, name), levels=(level,))
        bb = credible_band(_draws(second, name), levels=(level,))
        lo_a, hi_a = ba[level]
        lo_b, hi_b = bb[level]
        ok = np.isfinite(lo_a) & np.isfinite(hi_a) & np.isfinite(lo_b) & np.isfinite(hi_b)
        ov = interval_overlap((lo_a[ok], hi_a[ok]), (lo_b[ok], hi_b[ok]))
        in_b = (ba["median"][ok] >= lo_b[ok]) & (ba["median"][ok] <= hi_b[ok])
        in_a = (bb["median"][ok] >= lo_a[ok]) & (bb["median"][ok] <= hi_a[ok])
        out[name] = {"mean_overlap": float(ov.mean()) if ok.any() else float("nan"),
                     "first_median_in_second_band": float(in_b.mean()) if ok.any() else float("nan"),
                     "second_median_in_first_band": float(in_a.mean()) if ok.any() else float("nan"),
                     "grid_points": int(ok.sum())}
    for name in HEADLINE:
        a, b = _draws(first, name), _draws(second, name)
        qa = np.nanquantile(a, [(1 - level) / 2, (1 + level) / 2])
        qb = np.nanquantile(b, [(1 - level) / 2, (1 + level) / 2])
        out[name] = {"overlap": float(interval_overlap((qa[0], qa[1]), (qb[0], qb[1]))),
                     "median_difference": float(np.nanmedian(a) - np.nanmedian(b))}
    out["level"] = level
    return out


def first_order_fractions(idata: az.InferenceData, n_segments: int = 5,
                          threshold: float = FIRST_ORDER_THRESHOLD) -> dict[str, Any]:
    """Per segment (equal widths from 1.1 n_0 to 8 n_0), how many draws have c_s^2 < ``threshold``.

    c_s^2 of a segment is read from ``cs2_of_n`` at the segment's midpoint (exact for the
    piecewise-constant c_s^2 EoS; the local value for any other EoS).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold = {threshold} must lie in (0, 1)")
    bounds = default_bounds(n_segments) / units.N_SAT
    mids = 0.5 * (bounds[1:] + bounds[:-1])
    cs2 = _draws(idata, "cs2_of_n")
    at_mid = np.stack([np.interp(mids, N_GRID, row) for row in cs2])
    below = at_mid < threshold
    return {"segments_n0": [[float(a), float(b)] for a, b in zip(bounds[:-1], bounds[1:])],
            "counts": below.sum(axis=0).astype(int).tolist(),
            "fractions": below.mean(axis=0).tolist(),
            "n_draws": int(cs2.shape[0]), "threshold": threshold}


def plot_comparison(first: az.InferenceData, second: az.InferenceData, path: str | os.PathLike[str],
                    labels: tuple[str, str] = ("Bayesian posterior", "neural regression"),
                    observations: Any = None) -> None:
    """p(eps), c_s^2(n) and M-R bands (68% filled, 95% dashed) of both results in one figure."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for i, (idata, label) in enumerate(zip((first, second), labels)):
        color = f"C{i}"
        for ax, name in zip(axes, BANDS):
            band = credible_band(_draws(idata, name))
            grid = BANDS[name]
            if name == "R_of_M":
                ax.fill_betweenx(grid, *band[0.68], color=color, alpha=0.35, lw=0, label=f"{label} 68%")
                for edge in band[0.95]:
                    ax.plot(edge, grid, color=color, ls="--", lw=1)
                ax.plot(band["median"], grid, color=color)
            else:
                ax.fill_between(grid, *band[0.68], color=color, alpha=0.35, lw=0, label=f"{label} 68%")
                for edge in band[0.95]:
                    ax.plot(grid, edge, color=color, ls="--", lw=1)
                ax.plot(grid, band["median"], color=color)
    if observations is not None:
        for src in getattr(observations, "mr", ()):
            if hasattr(src, "region"):
                m_lo, m_hi, r_lo, r_hi = src.region(0.68)
                axes[2].add_patch(plt.Rectangle((r_lo, m_lo), r_hi - r_lo, m_hi - m_lo, fill=False, ec="gray"))
    axes[0].set(xscale="log", yscale="log", xlabel=r"$\varepsilon$ [MeV fm$^{-3}$]", ylabel=r"$p$ [MeV fm$^{-3}$]")
    axes[1].set(xlabel=r"$n/n_0$", ylabel=r"$c_s^2$", ylim=(0, 1))
    axes[1].axhline(1 / 3, color="k", lw=0.8, ls=":")
    axes[2].set(xlabel="R [km]", ylabel=r"M [$M_\odot$]", xlim=(9, 15), ylim=(M_GRID[0], M_GRID[-1]))
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small", loc="upper left")
    fig.tight_layout()
    save_figure(fig, path)


def plot_first_order(hists: Mapping[str, Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """Bars: fraction of draws with c_s^2 below the threshold, per segment, per result."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / max(len(hists), 1)
    for i, (label, h) in enumerate(hists.items()):
        k = len(h["fractions"])
        ax.bar(np.arange(k) + (i - (len(hists) - 1) / 2) * width, h["fractions"], width, label=label)
    first = next(iter(hists.values()))
    ticks = [f"{a:.1f}-{b:.1f}" for a, b in first["segments_n0"]]
    ax.set(xticks=np.arange(len(ticks)), xticklabels=ticks, xlabel=r"segment [$n_0$]",
           ylabel=rf"fraction with $c_s^2 < {first['threshold']}$")
    ax.legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)


def load_result(folder: str | os.PathLike[str]) -> az.InferenceData:
    """The ``posterior.nc`` of a results folder, with a clear error when it is missing."""
    path = Path(folder) / "posterior.nc"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass a folder written by `bayesqcd ns-eos` "
                                f"or `bayesqcd ns-regression`")
    return az.from_netcdf(str(path))


def write_comparison(out: str | os.PathLike[str], first_dir: str | os.PathLike[str],
                     second_dir: str | os.PathLike[str], *, n_segments: int = 5,
                     threshold: float = FIRST_ORDER_THRESHOLD, observations: Any = None) -> dict[str, Any]:
    """Compare two results folders; write ``summary.json``, ``comparison.png`` and
    ``first_order.png`` atomically to ``out``; return the summary."""
    first, second = load_result(first_dir), load_result(second_dir)
    labels = tuple(_label(r) for r in (first, second))
    if labels[0] == labels[1]:
        labels = (f"{labels[0]} (1)", f"{labels[1]} (2)")
    hists = {labels[0]: first_order_fractions(first, n_segments, threshold),
             labels[1]: first_order_fractions(second, n_segments, threshold)}
    summary = {
        "inputs": {labels[0]: str(first_dir), labels[1]: str(second_dir)},
        "agreement": band_agreement(first, second),
        "headline": {labels[0]: headline(first), labels[1]: headline(second)},
        "first_order": hists,
        "versions": versions(),
    }
    with atomic_results_dir(out) as tmp:
        write_json(tmp / "summary.json", summary)
        plot_comparison(first, second, tmp / "comparison.png", labels, observations)
        plot_first_order(hists, tmp / "first_order.png")
    return summary


def _label(idata: az.InferenceData) -> str:
    engine = idata.posterior.attrs.get("engine", "result")
    return {"regression": "neural regression", "nuts": "Bayesian posterior (NUTS)",
            "svi": "Bayesian posterior (SVI)"}.get(str(engine), str(engine))
