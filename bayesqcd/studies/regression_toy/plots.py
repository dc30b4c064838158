"""The figure of the toy experiment (through :func:`bayesqcd.report.save_figure`)."""

from __future__ import annotations

import os
from typing import Any

from bayesqcd.report import pyplot, save_figure


def plot_toy(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Two panels: loss curves (log scale) of both runs; both fits against the truth and the data."""
    plt = pyplot()
    cfg, data = result["config"], result["data"]
    fig, (ax_l, ax_f) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {"unaugmented": "tab:red", "augmented": "tab:blue"}
    labels = {"unaugmented": "without augmentation", "augmented": f"augmented, $n_s={cfg['n_s']}$"}
    for name, c in colours.items():
        h = result[name]["history"]
        ax_l.plot(h["step"], h["train_loss"], color=c, ls="--", lw=1, label=f"{labels[name]}: train")
        ax_l.plot(h["step"], h["val_loss"], color=c, lw=1.8, label=f"{labels[name]}: validation")
        ax_l.plot(result[name]["min_step"], result[name]["min_val_loss"], "o", color=c, ms=5)
    ax_l.axhline(cfg["sigma"] ** 2, color="k", lw=0.8, ls=":", label=r"$\sigma^2$ (floor of a loss on noisy data)")
    ax_l.set(yscale="log", xlabel="Adam step", ylabel="mean squared error",
             title="loss (dots: validation minimum)")
    top = max(max(result[n]["history"]["val_loss"] + result[n]["history"]["train_loss"])
              for n in colours)
    ax_l.set_ylim(top=30 * top)  # room for the legend above the curves
    ax_l.legend(fontsize=7, ncol=2, loc="upper center")
    ax_f.plot(data["x_grid"], data["f_grid"], "k", lw=2, label="truth $f(x)$")
    for name, c in colours.items():
        ax_f.plot(data["x_grid"], result[name]["fit_grid"], color=c, lw=1.4, label=labels[name])
    ax_f.plot(data["x_train"], data["y_train"], "ko", ms=4, mfc="none",
              label=f"training points ($\\sigma={cfg['sigma']}$)")
    ax_f.set(xlabel="$x$", ylabel="$y$", title=f"fits after {cfg['n_steps']} steps")
    ax_f.legend(fontsize=7.5)
    fig.tight_layout()
    save_figure(fig, path)
