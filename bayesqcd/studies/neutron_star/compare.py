"""Two neutron-star EoS results side by side -- typically the Bayesian posterior and the
neural regression -- from their ``posterior.nc`` files.

The comparison is the generic :func:`bayesqcd.report.compare` on the variables every EoS
result carries, whatever engine made it (``p_of_eps`` on EPS_GRID, ``cs2_of_n`` on N_GRID,
``R_of_M`` on M_GRID, ``R_1.4``, ``M_TOV``, ``Lambda_1.4``); what is specific to neutron stars:

* :func:`band_agreement` -- those variables, with their grids;
* :func:`first_order_fractions` -- per density segment, the fraction of draws with
  c_s^2 below a threshold (a candidate first-order transition, or a strong softening);
* :func:`plot_comparison` -- the bands with the axes of the EoS and the M-R plane;
* :func:`write_comparison` -- the results folder of ``bayesqcd compare``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import arviz as az
import numpy as np

from bayesqcd import units
from bayesqcd.eos.sound_speed import default_bounds
from bayesqcd.models.neutron_star import EPS_GRID, M_GRID, N_GRID
from bayesqcd.report import (
    Comparison,
    atomic_results_dir,
    compare,
    load_result,
    plot_compare,
    pyplot,
    results_dir,
    save_figure,
    versions,
    write_json,
)
from bayesqcd.studies.neutron_star.report import HEADLINE, headline

BANDS: dict[str, np.ndarray] = {"p_of_eps": EPS_GRID, "cs2_of_n": N_GRID, "R_of_M": M_GRID}
"""The curve-valued variables compared, with their grids."""
VARIABLES: tuple[str, ...] = (*BANDS, *HEADLINE)
"""Every variable compared."""
FIRST_ORDER_THRESHOLD: float = 0.1
"""Default c_s^2 below which a segment counts as (nearly) first order."""


def has_eos_variables(idata: az.InferenceData) -> bool:
    """Whether ``idata`` carries every variable of :data:`VARIABLES` (an EoS result)."""
    return all(name in idata.posterior for name in VARIABLES)


def band_agreement(first: az.InferenceData, second: az.InferenceData, level: float = 0.68,
                   labels: tuple[str, str] | None = None) -> Comparison:
    """:func:`bayesqcd.report.compare` of :data:`VARIABLES` (curves on their grids)."""
    return compare(first, second, list(VARIABLES), level, labels, x=BANDS)


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
    if "cs2_of_n" not in idata.posterior:
        raise ValueError(f"the result has no variable 'cs2_of_n'; it has {sorted(idata.posterior.data_vars)}")
    cs2 = np.asarray(idata.posterior["cs2_of_n"].values, dtype=float).reshape(-1, N_GRID.size)
    at_mid = np.stack([np.interp(mids, N_GRID, row) for row in cs2])
    below = at_mid < threshold
    return {"segments_n0": [[float(a), float(b)] for a, b in zip(bounds[:-1], bounds[1:])],
            "counts": below.sum(axis=0).astype(int).tolist(),
            "fractions": below.mean(axis=0).tolist(),
            "n_draws": int(cs2.shape[0]), "threshold": threshold}


def plot_comparison(comparison: Comparison, path: str | os.PathLike[str], observations: Any = None) -> None:
    """p(eps), c_s^2(n) and M-R bands of both results (:func:`bayesqcd.report.plot_compare`),
    the observations' 68% regions drawn in the M-R plane."""
    plt = pyplot()
    fig = plot_compare(comparison, var_names=list(BANDS), vertical=("R_of_M",), axes={
        "p_of_eps": {"xscale": "log", "yscale": "log", "xlabel": r"$\varepsilon$ [MeV fm$^{-3}$]",
                     "ylabel": r"$p$ [MeV fm$^{-3}$]"},
        "cs2_of_n": {"xlabel": r"$n/n_0$", "ylabel": r"$c_s^2$", "ylim": (0, 1)},
        "R_of_M": {"xlabel": "R [km]", "ylabel": r"M [$M_\odot$]", "xlim": (9, 15), "ylim": (M_GRID[0], M_GRID[-1])},
    })
    fig.axes[1].axhline(1 / 3, color="k", lw=0.8, ls=":")
    for src in getattr(observations, "mr", ()):
        if hasattr(src, "region"):
            m_lo, m_hi, r_lo, r_hi = src.region(0.68)
            fig.axes[2].add_patch(plt.Rectangle((r_lo, m_lo), r_hi - r_lo, m_hi - m_lo, fill=False, ec="gray"))
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


def write_comparison(out: str | os.PathLike[str], first: str | os.PathLike[str] | az.InferenceData,
                     second: str | os.PathLike[str] | az.InferenceData, *, n_segments: int = 5,
                     threshold: float = FIRST_ORDER_THRESHOLD, level: float = 0.68,
                     observations: Any = None) -> dict[str, Any]:
    """Compare two EoS results (results folders or InferenceData); write ``summary.json``,
    ``comparison.png`` and ``first_order.png`` atomically to ``out``; return the summary."""
    target = results_dir(out)
    inputs = [str(r) if not isinstance(r, az.InferenceData) else "InferenceData" for r in (first, second)]
    first, second = (r if isinstance(r, az.InferenceData) else load_result(r) for r in (first, second))
    labels = tuple(_label(r) for r in (first, second))
    if labels[0] == labels[1]:
        labels = (f"{labels[0]} (1)", f"{labels[1]} (2)")
    agreement = band_agreement(first, second, level, labels)
    hists = {labels[0]: first_order_fractions(first, n_segments, threshold),
             labels[1]: first_order_fractions(second, n_segments, threshold)}
    summary = {
        "inputs": dict(zip(labels, inputs)),
        "agreement": agreement.to_dict(),
        "headline": {labels[0]: headline(first), labels[1]: headline(second)},
        "first_order": hists,
        "versions": versions(),
    }
    with atomic_results_dir(target) as tmp:
        write_json(tmp / "summary.json", summary)
        plot_comparison(agreement, tmp / "comparison.png", observations)
        plot_first_order(hists, tmp / "first_order.png")
    return summary


def _label(idata: az.InferenceData) -> str:
    engine = idata.posterior.attrs.get("engine", "result")
    return {"regression": "neural regression", "nuts": "Bayesian posterior (NUTS)",
            "svi": "Bayesian posterior (SVI)"}.get(str(engine), str(engine))
