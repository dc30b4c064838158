"""Reports of a neutron-star EoS posterior: numbers, tables and figures, all from InferenceData.

:func:`write_results` fills a results folder atomically with ``posterior.nc``,
``summary.json``, ``summary.csv`` and the figures ``eos_band.png`` (p(eps) and c_s^2(n)
with 68% / 95% credible bands), ``mass_radius.png`` (the M-R band with the observations
drawn as their credible regions), ``corner.png`` (EoS parameters) and ``R14.png``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np

# grids of the model's array-valued deterministic sites
from bayesqcd.models.neutron_star import EPS_GRID, M_GRID, N_GRID
from bayesqcd.report import (
    atomic_results_dir,
    band_on_axes,
    credible_interval,
    pyplot,
    save_figure,
    versions,
    write_json,
)
from bayesqcd.report import plot_corner as report_corner

HEADLINE = ("R_1.4", "M_TOV", "Lambda_1.4")
"""Scalar quantities summarized with medians and 68% / 95% intervals."""
UNITS = {"R_1.4": "km", "M_TOV": "M_sun", "Lambda_1.4": "", "R_TOV": "km"}


def parameter_names(idata: az.InferenceData) -> list[str]:
    """The sampled EoS parameters in the posterior (``cs2``, ``log10_p1``/``gamma`` or ``nn_weights``)."""
    return [n for n in ("cs2", "log10_p1", "gamma", "nn_weights") if n in idata.posterior]


def headline(idata: az.InferenceData, truth: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Median, 68% and 95% central intervals of :data:`HEADLINE` (and whether ``truth`` lies in the 90%)."""
    out: dict[str, Any] = {}
    for name in HEADLINE:
        x = idata.posterior[name].values
        entry = {
            "median": float(np.nanmedian(x)),
            "ci68": credible_interval(x, 0.68),
            "ci95": credible_interval(x, 0.95),
            "unit": UNITS[name],
            "finite_fraction": float(np.isfinite(x).mean()),
        }
        if truth and name in truth:
            lo, hi = credible_interval(x, 0.90)
            entry["truth"] = float(truth[name])
            entry["truth_in_ci90"] = bool(lo <= truth[name] <= hi)
        out[name] = entry
    return out


def plot_eos_band(idata: az.InferenceData, path: str | os.PathLike[str], truth: Any = None) -> None:
    """p(eps) and c_s^2(n) medians with 68% / 95% bands; ``truth``: optional (p_of_eps, cs2_of_n)."""
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, var, grid in ((a1, "p_of_eps", EPS_GRID), (a2, "cs2_of_n", N_GRID)):
        band_on_axes(ax, idata, var, grid, label="credible")
    if truth is not None:
        a1.plot(EPS_GRID, truth[0], "k--", label="truth")
        a2.plot(N_GRID, truth[1], "k--", label="truth")
    a1.set(xscale="log", yscale="log", xlabel=r"$\varepsilon$ [MeV fm$^{-3}$]", ylabel=r"$p$ [MeV fm$^{-3}$]")
    a2.axhline(1 / 3, color="gray", ls=":", label="conformal 1/3")
    a2.set(xlabel=r"$n / n_0$", ylabel=r"$c_s^2$", ylim=(0, 1))
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)


def plot_mass_radius_band(
    idata: az.InferenceData, path: str | os.PathLike[str], observations: Any = None, truth: Any = None
) -> None:
    """R(M) median with 68% / 95% bands (over draws whose M_TOV exceeds M) and the observations:
    NICER summary sources as boxes of their marginal 68% intervals, sample sources as KDE
    contours (68%, 95%), radio masses as horizontal bands; ``truth``: optional (R, M) curve."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    band_on_axes(ax, idata, "R_of_M", M_GRID, label="posterior", vertical=True)
    if observations is not None:
        for i, src in enumerate(observations.mr):
            color = f"C{(i % 8) + 1}"
            if hasattr(src, "region"):
                m_lo, m_hi, r_lo, r_hi = src.region(0.68)
                ax.add_patch(plt.Rectangle((r_lo, m_lo), r_hi - r_lo, m_hi - m_lo, fill=False, ec=color, lw=1.5,
                                           label=f"{src.name} (68%)"))
            else:
                d = src.contour_data()
                ax.contour(d["R"], d["M"], d["density"], levels=d["thresholds"], colors=color)
                ax.plot([], [], color=color, label=f"{src.name} (68/95%)")
        for r in observations.radio:
            ax.axhspan(r.mean - r.sigma, r.mean + r.sigma, color="gray", alpha=0.2)
            ax.text(8.6, r.mean, r.name, fontsize="x-small", va="center")
    if truth is not None:
        ax.plot(truth[0], truth[1], "k--", label="truth")
    ax.set(xlabel="R [km]", ylabel=r"M [$M_\odot$]", xlim=(8.5, 16), ylim=(M_GRID[0], M_GRID[-1]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper right")
    fig.tight_layout()
    save_figure(fig, path)


def plot_corner(idata: az.InferenceData, path: str | os.PathLike[str], var_names: Sequence[str] | None = None) -> None:
    """Pairwise KDE plot of the EoS parameters (of a network's weights, the first six)."""
    names = list(var_names or parameter_names(idata))
    coords = {}
    if "nn_weights" in names:  # a network: show its first six weights only
        coords = {"nn_weights_dim_0": list(range(min(6, idata.posterior["nn_weights"].shape[2])))}
    report_corner(idata, names, path, coords=coords)


def plot_r14(idata: az.InferenceData, path: str | os.PathLike[str], ref: float | None = None) -> None:
    """Posterior of R_1.4 with its 95% HDI (``ref``: a value to mark, e.g. the truth). Draws
    without a 1.4 M_sun star (NaN) are left out, and their share is named in the label."""
    plt = pyplot()
    r = np.asarray(idata.posterior["R_1.4"].values, float).ravel()
    finite = r[np.isfinite(r)]
    ax = az.plot_posterior({"R_1.4": finite}, hdi_prob=0.95, ref_val=ref, figsize=(5, 3.5))
    ax = np.ravel(ax)[0]
    missing = 1.0 - finite.size / max(r.size, 1)
    ax.set_xlabel("R_1.4 [km]" + (f" ({missing:.1%} of the draws have no 1.4 M_sun star)" if missing else ""))
    save_figure(ax.get_figure(), path)
    plt.close("all")


def plot_elbo(idata: az.InferenceData, path: str | os.PathLike[str]) -> None:
    """Loss (negative ELBO) trace of a variational fit."""
    plt = pyplot()
    loss = idata["elbo"]["loss"].values
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(loss, lw=0.6)
    lo, hi = np.nanpercentile(loss, [1, 95])
    ax.set(xlabel="step", ylabel="-ELBO", ylim=(lo - 0.1 * (hi - lo), hi))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def write_results(
    out: str | os.PathLike[str],
    idata: az.InferenceData,
    *,
    observations: Any = None,
    settings: Mapping[str, Any] | None = None,
    diagnostics: Mapping[str, Any] | None = None,
    truth: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    write_extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write the results folder ``out`` atomically (nothing is left behind if anything fails).

    Args:
        idata: the posterior (from NUTS or SVI).
        observations: the :class:`~bayesqcd.data.ObservationSet` used (drawn in the M-R plot
            and listed in ``summary.json``).
        settings: how the run was made (engine, EoS prior, chains, ...).
        diagnostics: :func:`bayesqcd.inference.results.diagnostics` of the run.
        truth: for mock data: scalar true values (``R_1.4``, ``M_TOV``, ``Lambda_1.4``) and
            optionally ``curves`` = dict(p_of_eps, cs2_of_n, R, M) for the figures.
        extra: more entries for ``summary.json`` (e.g. a regression's validation errors).
        write_extra: called with the (temporary) folder to add more files before it is
            moved into place.
    """
    truth = dict(truth or {})
    curves = truth.pop("curves", None)
    summary = {
        "headline": headline(idata, truth),
        "diagnostics": dict(diagnostics or {}),
        "wall_time_s": idata.posterior.attrs.get("wall_time_s"),
        "settings": dict(settings or {}),
        "observations": observations.table() if observations is not None else None,
        "versions": versions(),
        **dict(extra or {}),
    }
    with atomic_results_dir(out) as tmp:
        idata.to_netcdf(str(tmp / "posterior.nc"))
        names = parameter_names(idata) + [n for n in HEADLINE + ("R_TOV",) if n in idata.posterior]
        az.summary(idata, var_names=names).to_csv(tmp / "summary.csv")
        write_json(tmp / "summary.json", summary)
        plot_eos_band(idata, tmp / "eos_band.png", None if curves is None else (curves["p_of_eps"], curves["cs2_of_n"]))
        plot_mass_radius_band(idata, tmp / "mass_radius.png", observations,
                              None if curves is None else (curves["R"], curves["M"]))
        plot_corner(idata, tmp / "corner.png")
        plot_r14(idata, tmp / "R14.png", truth.get("R_1.4"))
        if "elbo" in idata.groups():
            plot_elbo(idata, tmp / "elbo.png")
        if write_extra is not None:
            write_extra(tmp)
    return Path(out)
