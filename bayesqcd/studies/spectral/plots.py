"""Figures of the spectral study, drawn from InferenceData (saved by :func:`bayesqcd.report.save_figure`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import arviz as az
import numpy as np

from bayesqcd import spectral as sp
from bayesqcd.intervals import credible_band
from bayesqcd.report import pyplot


def point_estimate(idata: az.InferenceData, var_name: str = "rho") -> np.ndarray:
    """The method's point estimate: ``constant_data["rho_map"]`` (MEM, BR) or the posterior mean."""
    if var_name == "rho" and "constant_data" in idata.groups() and "rho_map" in idata.constant_data:
        return np.asarray(idata.constant_data["rho_map"].values).reshape(-1)
    draws = np.asarray(idata.posterior[var_name].values)
    return draws.reshape(-1, draws.shape[-1]).mean(0)


def plot_bands(idatas: Mapping[str, az.InferenceData | None], mock: sp.MockData, title: str = "",
               var_name: str = "rho", fit_panel: bool | None = None) -> Any:
    """Posterior mean and pointwise 95% band of ``var_name`` for each method, over the truth
    when there is one; and a panel of the fit's normalised residuals ``(D - A rho) / sigma``
    of each method's point estimate (:func:`point_estimate`) against the data.

    Arguments:
        idatas: method name -> InferenceData with ``posterior[var_name]`` on ``mock.omega``
            (``None`` for a failed method: skipped).
        mock: the problem (grid, data, and the true ``rho`` of a mock; ``mock.rho is None``:
            measured data, no truth curve).
        title: the figure's title.
        fit_panel: draw the residual panel (default: only without a truth).

    Returns:
        The matplotlib figure (one panel per method, then the residuals; save it with
        :func:`bayesqcd.report.save_figure`).
    """
    plt = pyplot()
    omega = np.asarray(mock.omega)
    names = [m for m, r in idatas.items() if r is not None]
    fit_panel = (not mock.has_truth) if fit_panel is None else bool(fit_panel)
    n = max(len(names), 1)
    fig, axes = plt.subplots(1, n + int(fit_panel), figsize=(3.2 * (n + int(fit_panel)), 3.0), squeeze=False)
    axes = axes[0]
    for ax, name in zip(axes[:n], names):
        rho = np.asarray(idatas[name].posterior[var_name].values).reshape(-1, omega.shape[0])
        lo, hi = credible_band(rho, levels=(0.95,))[0.95]
        ax.fill_between(omega, lo, hi, alpha=0.35, label="95% band")
        ax.plot(omega, rho.mean(0), lw=1.2, label="mean")
        if mock.has_truth:
            ax.plot(omega, np.asarray(mock.rho), "k--", lw=1.0, label="truth")
        ax.set_title(name, fontsize="small")
        ax.set_xlim(omega[0] - (omega[1] - omega[0]), min(10.0, omega[-1]) if mock.has_truth else omega[-1])
        ax.set_xlabel(r"$\omega$")
        if ax is not axes[0]:
            ax.sharey(axes[0])
    axes[0].set_ylabel(r"$\rho(\omega)$")
    if names:
        axes[0].legend(fontsize="x-small")
    if fit_panel:
        ax = axes[-1]
        x, sigma = np.asarray(mock.x), np.asarray(mock.sigma)
        for name in names:
            fit = np.asarray(mock.A) @ point_estimate(idatas[name], var_name)
            ax.plot(x, (np.asarray(mock.data) - fit) / sigma, "o-", ms=3, lw=0.8, label=name)
        ax.axhspan(-1, 1, color="0.85", zorder=0)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xlabel("x (kernel argument)")
        ax.set_ylabel(r"$(D - A\rho)/\sigma$")
        ax.set_title("data - fit", fontsize="small")
        if names:
            ax.legend(fontsize="x-small")
    if title:
        fig.suptitle(title, fontsize="small")
    fig.tight_layout()
    return fig
