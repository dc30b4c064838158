"""Figures of a lattice run (through :func:`bayesqcd.report.save_figure`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from bayesqcd.report import pyplot, save_figure


def plot_observables(summary: dict[str, Any], idata, path: str | os.PathLike[str]) -> None:
    """Histogram of ``M``, ``G(t)`` and ``m_eff(t)`` with errors, as one PNG at ``path``."""
    plt = pyplot()
    phi = idata.posterior["phi"].values
    M = phi.mean(axis=(-2, -1)).ravel()
    obs = summary["observables"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].hist(M, bins=60, density=True)
    axes[0].set_xlabel("M")
    G, dG = np.asarray(obs["G_t"]["value"]), np.asarray(obs["G_t"]["error"])
    axes[1].errorbar(np.arange(len(G)), G, dG, fmt="o")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("t")
    axes[1].set_ylabel("G(t)")
    me, dme = np.asarray(obs["m_eff"]["value"], float), np.asarray(obs["m_eff"]["error"], float)
    axes[2].errorbar(np.arange(1, len(me) + 1), me, dme, fmt="o")
    axes[2].set_xlabel("t")
    axes[2].set_ylabel("m_eff(t)")
    c = summary["config"]
    fig.suptitle(f"{c['method']}: L={c['L']}, m2={c['m2']}, lambda={c['lam']}")
    fig.tight_layout()
    save_figure(fig, Path(path), dpi=110)
