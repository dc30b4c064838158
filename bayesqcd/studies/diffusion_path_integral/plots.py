"""Figures of the path-integral reproduction (through :func:`bayesqcd.report.save_figure`)."""

from __future__ import annotations

import os
from typing import Any

from bayesqcd.report import pyplot, save_figure


def plot_samples(summary: dict[str, Any], arrays: dict[str, Any],
                 path: str | os.PathLike[str]) -> None:
    """Fresh data next to h-process samples at the smallest, middle and largest ``h``."""
    plt = pyplot()
    title = f"{summary['case']['data']} / {summary['case']['sde'].upper()}"
    hs = sorted(arrays["samples"])
    show = [hs[0], hs[len(hs) // 2], hs[-1]]
    fig, ax = plt.subplots(1, 4, figsize=(16, 4), sharex=True, sharey=True)
    ax[0].scatter(*arrays["ref"].T, s=1, c="k")
    ax[0].set_title("data")
    for a, h in zip(ax[1:], show):
        a.scatter(*arrays["samples"][h].T, s=1)
        a.set_title(f"h = {h:g}")
    fig.suptitle(title)
    save_figure(fig, path, dpi=100)


def plot_w2_finite_h(summary: dict[str, Any], arrays: dict[str, Any],
                     path: str | os.PathLike[str]) -> None:
    """Three panels: W2 against ``h``; ``NLL(h) - NLL(0)`` from the KDE against the WKB line;
    the training curve."""
    plt = pyplot()
    title = f"{summary['case']['data']} / {summary['case']['sde'].upper()}"
    w = summary["w2_vs_h"]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    ax[0].plot(w["h"], w["w2"], "o-", label="generated vs data")
    ax[0].axhline(w["data_vs_data_floor"], ls="--", c="gray", label="data vs data")
    ax[0].set(xlabel="h", ylabel="W2", title=f"{title}: W2 against h")
    ax[0].legend()
    f = summary["finite_h_kde"]["points"]
    h = [p["h"] for p in f]
    ax[1].errorbar(h, [p["kde_delta_nll"] for p in f], [p["kde_delta_nll_err"] for p in f],
                   fmt="o", label="KDE of h-process samples")
    ax[1].plot(h, [p["wkb_delta_nll"] for p in f], "-", label="WKB first order")
    ax[1].set(xlabel="h", ylabel="NLL(h) - NLL(0) [nats]", title="finite h: direct vs WKB")
    ax[1].legend()
    hist = arrays["history"]
    ax[2].plot(hist["step"], hist["val_loss"])
    ax[2].set(xlabel="step", ylabel="DSM loss (fixed validation draw)", title="training")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def plot_analytic_finite_h(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """The 1-D analytic model: exact ``NLL(h)`` against the WKB line
    (the result of :func:`~bayesqcd.studies.diffusion_path_integral.analytic_finite_h`)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(result["h"], result["exact_nll"], "k-", label="exact (closed form)")
    ax.plot(result["h"], result["wkb_nll"], "r--", label="WKB first order (adjoint sweep)")
    ax.set(xlabel="h", ylabel="NLL(x0) [nats]", title="1-D analytic model")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def plot_coefficients(summary: dict[str, Any], arrays: dict[str, Any],
                      path: str | os.PathLike[str]) -> None:
    """Histogram of the per-point first-order coefficients, one panel per outer tolerance and
    one outline per training, on the range of the pooled 1st-99th percentiles (the count of
    points beyond it in the title), with the mean, median and trimmed mean over trainings."""
    import numpy as np

    plt = pyplot()
    per_tol = arrays["coef_per_tol"]
    fig, axes = plt.subplots(1, len(per_tol), figsize=(5.5 * len(per_tol), 4), squeeze=False)
    for ax, (tol, per_seed) in zip(axes[0], sorted(per_tol.items(), reverse=True)):
        pooled = np.concatenate(per_seed)
        lo, hi = np.quantile(pooled, [0.01, 0.99]) if len(pooled) else (-1.0, 1.0)
        bins = np.linspace(lo, hi, 41)
        for seed, c in zip(summary["seeds"], per_seed):
            ax.hist(np.clip(c, lo, hi), bins, histtype="step", label=f"seed {seed}")
        st = summary["first_order"][f"tol={tol:g}"]
        for key, style in (("mean", "-"), ("median", "--"), ("trimmed_mean", ":")):
            ax.axvline(st[key], c="k", ls=style, label=f"{key.replace('_', ' ')} {st[key]:.2f}")
        outside = int(np.sum((pooled < lo) | (pooled > hi)))
        ax.set(xlabel="dNLL/dh per point [nats]", ylabel="points",
               title=f"outer tol {tol:g}: {outside} of {len(pooled)} beyond the range (clipped)")
        ax.legend(fontsize=7)
    case = summary["case"]
    fig.suptitle(f"{case['data']} / {case['sde'].upper()}, window "
                 f"[{summary['window']['t_min']:g}, {summary['window']['T']:g}]")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
