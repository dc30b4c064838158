"""Figures of the spectral study, drawn from InferenceData (saved by :func:`bayesqcd.report.save_figure`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import arviz as az
import numpy as np

from bayesqcd import spectral as sp
from bayesqcd.intervals import credible_band
from bayesqcd.report import pyplot


def plot_bands(idatas: Mapping[str, az.InferenceData | None], mock: sp.MockData, title: str = "",
               var_name: str = "rho") -> Any:
    """Posterior mean and pointwise 95% band of ``var_name`` for each method, over the truth.

    Arguments:
        idatas: method name -> InferenceData with ``posterior[var_name]`` on ``mock.omega``
            (``None`` for a failed method: skipped).
        mock: the problem (grid and true ``rho``).
        title: the figure's title.

    Returns:
        The matplotlib figure (one panel per method; save it with
        :func:`bayesqcd.report.save_figure`).
    """
    plt = pyplot()
    omega = np.asarray(mock.omega)
    names = [m for m, r in idatas.items() if r is not None]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(3.2 * max(len(names), 1), 3.0),
                             sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        rho = np.asarray(idatas[name].posterior[var_name].values).reshape(-1, omega.shape[0])
        lo, hi = credible_band(rho, levels=(0.95,))[0.95]
        ax.fill_between(omega, lo, hi, alpha=0.35, label="95% band")
        ax.plot(omega, rho.mean(0), lw=1.2, label="mean")
        ax.plot(omega, np.asarray(mock.rho), "k--", lw=1.0, label="truth")
        ax.set_title(name, fontsize="small")
        ax.set_xlim(0, min(10.0, omega[-1]))
        ax.set_xlabel(r"$\omega$")
    axes[0][0].set_ylabel(r"$\rho(\omega)$")
    axes[0][0].legend(fontsize="x-small")
    if title:
        fig.suptitle(title, fontsize="small")
    fig.tight_layout()
    return fig
