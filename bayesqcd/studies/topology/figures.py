"""The two figures of the topology study, saved through :func:`bayesqcd.report.save_figure`."""

from __future__ import annotations

import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array
from sklearn.decomposition import PCA

from bayesqcd.nn.autoencoder import ConvAutoencoder
from bayesqcd.report import pyplot, save_figure


def _class_name(c: int) -> str:
    return "open" if c == 0 else f"winding {c}"


def plot_latent(codes: Array, labels: Array, path: str | os.PathLike[str], title: str = "") -> None:
    """Scatter of the codes projected on their first two principal components, coloured by class."""
    xy = PCA(2, svd_solver="full").fit_transform(np.asarray(codes, dtype=np.float64))
    labels = np.asarray(labels)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    for c in np.unique(labels):
        m = labels == c
        ax.scatter(xy[m, 0], xy[m, 1], s=5, alpha=0.6, label=_class_name(int(c)))
    ax.set_xlabel("latent PC 1")
    ax.set_ylabel("latent PC 2")
    ax.legend(markerscale=3, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def plot_reconstructions(model: ConvAutoencoder, images: Array, labels: Array,
                         path: str | os.PathLike[str], per_class: int = 4) -> None:
    """Originals (top row) and their reconstructions, ``per_class`` per class; for a
    rotation-invariant autoencoder also the drawing of each code in the canonical frame (the
    decoder's output before it is turned to the pose: the same for any turn of the input)."""
    labels = np.asarray(labels)
    idx = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)])
    x = jnp.asarray(images)[idx]
    rows = [("input", np.asarray(x)), ("reconstruction", np.asarray(jax.vmap(eqx.filter_jit(model))(x)))]
    if model.rotations:
        rows.append(("canonical frame", np.asarray(jax.vmap(eqx.filter_jit(model.canonical))(x))))
    plt = pyplot()
    fig, axes = plt.subplots(len(rows), len(idx), figsize=(0.9 * len(idx), 1.0 * len(rows)),
                             squeeze=False)
    for r, (name, imgs) in enumerate(rows):
        for j, i in enumerate(idx):
            axes[r, j].imshow(imgs[j], cmap="gray_r", vmin=0, vmax=1)
            axes[r, j].set_axis_off()
            if r == 0:
                axes[r, j].set_title("open" if labels[i] == 0 else f"w={labels[i]}", fontsize=7)
        axes[r, 0].text(-0.15, 0.5, name, transform=axes[r, 0].transAxes, fontsize=6,
                        rotation=90, va="center", ha="right")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
