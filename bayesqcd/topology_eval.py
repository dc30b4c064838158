"""Train an autoencoder on line drawings without labels and measure the topology its codes keep.

Protocol (labels are used only to score, and to fit the supervised linear probe):

1. draw a training and a held-out set with :func:`bayesqcd.topology.sample_drawings`;
2. centre every image on the bounding box of its ink (a label-free normalisation, like MNIST's),
   the same for every method below;
3. train :class:`bayesqcd.nn.autoencoder.ConvAutoencoder` on the training images with the
   reconstruction loss, through :func:`bayesqcd.nn.train`;
4. represent every image by (a) its code, (b) its raw pixels, (c) its projection on the top
   ``latent`` principal components of the training pixels, (d) five simple pixel statistics;
5. for each representation: fit k-means and a Gaussian mixture with as many clusters as classes
   on the (standardised) training features (full covariances; diagonal ones for raw pixels),
   assign the held-out images, and score the assignment with the Hungarian-matched accuracy and
   the NMI; fit a logistic-regression probe on the training features and report its held-out
   accuracy.
"""

from __future__ import annotations

import os
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from bayesqcd import clustering as cl
from bayesqcd.nn import train
from bayesqcd.nn.autoencoder import ConvAutoencoder, encode_batch, reconstruction_loss
from bayesqcd.topology import DrawingConfig, pixel_statistics, sample_drawings

STATISTICS = ("ink", "inked_area", "radius_of_gyration", "extent", "peak")
"""Names of the columns of :func:`bayesqcd.topology.pixel_statistics`."""


def centre_images(images: Float[Array, "B H W"], threshold: float = 0.05) -> Float[Array, "B H W"]:
    """Shift each image by a whole number of pixels so that the bounding box of its ink (pixels
    above ``threshold``) sits in the middle. A label-free normalisation; a drawing that fits in
    the image still fits after the shift (zeros fill in)."""
    b, h, w = images.shape
    mask = images > threshold
    rows, cols = mask.any(axis=2), mask.any(axis=1)

    def centre_shift(m, n):
        idx = jnp.arange(n)
        lo = jnp.min(jnp.where(m, idx, n), axis=1)
        hi = jnp.max(jnp.where(m, idx, -1), axis=1)
        return jnp.where(hi >= lo, jnp.floor((n - 1 - lo - hi) / 2 + 0.5), 0).astype(jnp.int32)

    dy, dx = centre_shift(rows, h), centre_shift(cols, w)
    padded = jnp.pad(images, ((0, 0), (h, h), (w, w)))

    def one(img, dy, dx):
        return jax.lax.dynamic_slice(img, (h - dy, w - dx), (h, w))

    return jax.vmap(one)(padded, dy, dx)


def evaluate_features(key: PRNGKeyArray, f_train: Array, y_train: Array, f_test: Array,
                      y_test: Array, n_classes: int) -> dict[str, float]:
    """k-means / GMM matched accuracy and NMI on held-out data, and the linear-probe accuracy."""
    k_km, k_gmm = jax.random.split(key)
    a, b = cl.standardize(f_train, f_test)
    mu = cl.kmeans(k_km, a, n_classes)
    p_km = cl.kmeans_predict(mu, b)
    g = cl.gmm(k_gmm, a, n_classes, covariance="full" if a.shape[1] <= 64 else "diag")
    p_gmm = cl.gmm_predict(g, b)
    return {
        "kmeans_accuracy": cl.matched_accuracy(p_km, y_test),
        "kmeans_nmi": cl.normalized_mutual_information(p_km, y_test),
        "gmm_accuracy": cl.matched_accuracy(p_gmm, y_test),
        "gmm_nmi": cl.normalized_mutual_information(p_gmm, y_test),
        "probe_accuracy": cl.logistic_probe(f_train, y_train, f_test, y_test, n_classes),
    }


def fit_autoencoder(k_init: PRNGKeyArray, k_train: PRNGKeyArray, x_train: Float[Array, "N H W"],
                    x_val: Float[Array, "M H W"], *, latent: int = 8,
                    channels: tuple[int, ...] = (8, 16, 16), hidden: int = 64, steps: int = 3000,
                    batch_size: int = 64, lr: float = 2e-3, schedule: str = "cosine",
                    checkpoint: str | os.PathLike[str] | None = None, progress: bool = True):
    """Train a :class:`ConvAutoencoder` on ``x_train`` (Adam, minibatches with replacement);
    returns ``(model, TrainResult)``. ``schedule``: ``"constant"`` learning rate ``lr``, or
    ``"cosine"`` decay from ``lr`` to ``lr / 20`` over the ``steps``."""
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
    rate = lr if schedule == "constant" else optax.cosine_decay_schedule(lr, max(steps, 1), 0.05)
    model = ConvAutoencoder(k_init, size=x_train.shape[-1], latent=latent, channels=channels,
                            hidden=hidden, dtype=x_train.dtype)
    n = x_train.shape[0]
    result = train(model, lambda m, batch, _k: reconstruction_loss(m, batch),
                   lambda k: x_train[jax.random.randint(k, (batch_size,), 0, n)],
                   optax.adam(rate), steps, k_train, val_loss=lambda m: reconstruction_loss(m, x_val),
                   eval_every=max(1, min(250, steps)), checkpoint=checkpoint, progress=progress,
                   desc="autoencoder")
    return result.model, result


def score_representations(key: PRNGKeyArray, z_tr: Array, z_te: Array, x_tr: Array, x_te: Array,
                          y_tr: Array, y_te: Array, n_classes: int) -> dict[str, dict[str, float]]:
    """:func:`evaluate_features` for the codes, raw pixels, PCA with as many components as the
    code has dimensions, and the simple pixel statistics."""
    n_tr, n_te = x_tr.shape[0], x_te.shape[0]
    p_tr, p_te = x_tr.reshape(n_tr, -1), x_te.reshape(n_te, -1)
    mean, comps = cl.pca(p_tr, z_tr.shape[1])
    features = {
        "codes": (z_tr, z_te),
        "pixels": (p_tr, p_te),
        "pca": ((p_tr - mean) @ comps.T, (p_te - mean) @ comps.T),
        "pixel_statistics": (pixel_statistics(x_tr), pixel_statistics(x_te)),
    }
    return {name: evaluate_features(jax.random.fold_in(key, i), f_tr, y_tr, f_te, y_te, n_classes)
            for i, (name, (f_tr, f_te)) in enumerate(features.items())}


def run_experiment(key: PRNGKeyArray, *, cfg: DrawingConfig = DrawingConfig(), n_train: int = 4000,
                   n_test: int = 1000, latent: int = 8, channels: tuple[int, ...] = (8, 16, 16),
                   hidden: int = 64, steps: int = 3000, batch_size: int = 64, lr: float = 2e-3,
                   schedule: str = "cosine", checkpoint: str | os.PathLike[str] | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """The whole protocol of the module docstring.

    Returns a dict with ``summary`` (JSON-ready numbers), ``model``, ``history``, and the arrays
    ``codes_test``, ``labels_test``, ``images_test`` (centred), needed for the figures.
    """
    for name, val, lo in (("n_train", n_train, 2 * cfg.n_classes), ("n_test", n_test, cfg.n_classes),
                          ("latent", latent, 1), ("steps", steps, 0), ("batch_size", batch_size, 1)):
        if val < lo:
            raise ValueError(f"{name} must be >= {lo}, got {val}")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    k_data, k_init, k_train, k_eval = jax.random.split(key, 4)
    drawings = sample_drawings(k_data, n_train + n_test, cfg)  # one compiled call for both sets
    x = centre_images(drawings.images)
    x_tr, x_te = x[:n_train], x[n_train:]
    y_tr, y_te = np.asarray(drawings.labels[:n_train]), np.asarray(drawings.labels[n_train:])

    model, result = fit_autoencoder(k_init, k_train, x_tr, x_te[:min(n_test, 500)], latent=latent,
                                    channels=channels, hidden=hidden, steps=steps,
                                    batch_size=batch_size, lr=lr, schedule=schedule,
                                    checkpoint=checkpoint,
                                    progress=progress)
    z_tr, z_te = encode_batch(model, x_tr), encode_batch(model, x_te)
    scores = score_representations(k_eval, z_tr, z_te, x_tr, x_te, y_tr, y_te, cfg.n_classes)
    s_tr, s_te = pixel_statistics(x_tr), pixel_statistics(x_te)
    single = {name: cl.logistic_probe(s_tr[:, j:j + 1], y_tr, s_te[:, j:j + 1], y_te, cfg.n_classes)
              for j, name in enumerate(STATISTICS)}
    summary = {
        "n_classes": cfg.n_classes,
        "chance_accuracy": float(np.max(np.bincount(y_te, minlength=cfg.n_classes)) / n_test),
        "n_train": n_train, "n_test": n_test, "latent": latent, "steps": result.steps,
        "final_train_loss": result.history["train_loss"][-1] if result.history["train_loss"] else None,
        "final_val_loss": result.history["val_loss"][-1] if result.history["val_loss"] else None,
        "initial_val_loss": float(reconstruction_loss(ConvAutoencoder(
            k_init, size=cfg.size, latent=latent, channels=channels, hidden=hidden,
            dtype=x_tr.dtype), x_te[:min(n_test, 500)])),
        "scores": scores,
        "single_statistic_probe_accuracy": single,
        "config": {f: getattr(cfg, f) for f in cfg.__dataclass_fields__},
    }
    return {"summary": summary, "model": model, "history": result.history, "codes_test": z_te,
            "labels_test": y_te, "images_test": x_te, "codes_train": z_tr, "labels_train": y_tr}


def plot_latent(codes: Array, labels: Array, path: str | os.PathLike[str], title: str = "") -> None:
    """Scatter of the codes projected on their first two principal components, coloured by class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean, comps = cl.pca(codes, 2)
    xy = np.asarray((jnp.asarray(codes) - mean) @ comps.T)
    labels = np.asarray(labels)
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    for c in np.unique(labels):
        m = labels == c
        ax.scatter(xy[m, 0], xy[m, 1], s=5, alpha=0.6, label="open" if c == 0 else f"winding {c}")
    ax.set_xlabel("latent PC 1")
    ax.set_ylabel("latent PC 2")
    ax.legend(markerscale=3, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reconstructions(model: ConvAutoencoder, images: Array, labels: Array,
                         path: str | os.PathLike[str], per_class: int = 4) -> None:
    """Originals (odd rows) and their reconstructions (even rows), ``per_class`` per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    idx = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)])
    recon = np.asarray(jax.vmap(eqx.filter_jit(model))(jnp.asarray(images)[idx]))
    fig, axes = plt.subplots(2, len(idx), figsize=(0.9 * len(idx), 2.0))
    for j, i in enumerate(idx):
        axes[0, j].imshow(np.asarray(images[i]), cmap="gray_r", vmin=0, vmax=1)
        axes[1, j].imshow(recon[j], cmap="gray_r", vmin=0, vmax=1)
        axes[0, j].set_title("open" if labels[i] == 0 else f"w={labels[i]}", fontsize=7)
        for ax in axes[:, j]:
            ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
