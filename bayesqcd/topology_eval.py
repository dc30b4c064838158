"""Train an autoencoder on line drawings without labels and measure the topology its codes keep.

Protocol (labels are used only to score, and to fit the supervised linear probe):

1. draw a training, a held-out test and a validation set with
   :func:`bayesqcd.topology.sample_drawings`;
2. normalise every image without labels, the same for every method below
   (:func:`bayesqcd.topology_frames.prepare_images`, beside the other normalisations of that
   module): by default only its position (``shift_to_centroid``: the ink centroid to the
   centre), leaving size, stretch, shear, rotation and deformation to the model; or shape,
   position and size as well (``affine_normalise``: the ink's second moments made isotropic by an
   area-preserving linear map, which undoes stretch and shear, then the ink centroid to the centre
   and the farthest ink at a fixed radius; also the last two alone, ``centroid_normalise``, the
   bounding box, ``normalise_images``, or the principal axes, ``orient_images``); then stroke
   width (``stroke_normalise``: a Gaussian blur divided by its maximum);
3. train :class:`bayesqcd.nn.autoencoder.ConvAutoencoder` on the training images with the
   reconstruction loss, through :func:`bayesqcd.nn.train`; by default its code is invariant
   under turns of the image (orbit averaging over ``rotations`` turns, a pose angle for the
   decoder), and a penalty on changes of the code under random zooms and stretches of the
   drawing (``random_zoom_stretch``, :func:`bayesqcd.nn.autoencoder.invariance_penalty`)
   leaves size and aspect to three pose numbers that only the decoder reads;
4. represent every image by (a) its code, (b) its pixels, (c) its projection on the top
   ``latent`` principal components of the training pixels (and on the top 2), (d) the pixels of
   the drawing as generated, before the normalisation, and their top ``latent`` principal
   components, (e) five simple pixel statistics of the drawing as generated, (f) the radial ink
   profile of the normalised drawing (``radial_profile``);
5. for each representation: fit k-means and a Gaussian mixture with as many clusters as classes
   on the training features (whitened, full covariances; for raw pixels standardised, diagonal
   ones; restarts chosen by inertia / likelihood),
   assign the held-out images, and score the assignment with the Hungarian-matched accuracy and
   the NMI; fit a logistic-regression probe on the training features and report its held-out
   accuracy.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from bayesqcd import clustering as cl
from bayesqcd.nn import train
from bayesqcd.nn.autoencoder import (ConvAutoencoder, encode_batch, invariance_penalty,
                                     reconstruction_loss)
from bayesqcd.topology import DrawingConfig, pixel_statistics, sample_drawings
from bayesqcd.topology_frames import (prepare_images, radial_profile, random_zoom_stretch,
                                      stroke_normalise)

STATISTICS = ("ink", "inked_area", "radius_of_gyration", "extent", "peak")
"""Names of the columns of :func:`bayesqcd.topology.pixel_statistics`."""


def whiten(train: Float[Array, "N D"], *others: Array) -> tuple[Array, ...]:
    """Rotate onto the principal axes of ``train`` and scale each axis to unit variance (all
    ``D`` components kept, so nothing is lost). A Gaussian mixture's likelihood is unchanged by
    this affine map, but its k-means start is not: on whitened features, k-means seeds fall near
    higher-likelihood optima of EM (measured on the codes)."""
    mean, comps = cl.pca(train, min(train.shape))
    return cl.standardize(*((jnp.asarray(a) - mean) @ comps.T for a in (train, *others)))


def evaluate_features(key: PRNGKeyArray, f_train: Array, y_train: Array, f_test: Array,
                      y_test: Array, n_classes: int, n_init: int = 10) -> dict[str, float]:
    """k-means / GMM matched accuracy and NMI on held-out data, and the linear-probe accuracy.

    Both clusterings are fitted on the training features only (no labels) and applied to the
    held-out ones. Features of dimension <= 64 are whitened (:func:`whiten`) and get a
    full-covariance mixture; higher-dimensional ones (raw pixels) are standardised and get a
    diagonal one. ``n_init`` restarts each, the best chosen by inertia / likelihood (never by
    accuracy)."""
    k_km, k_gmm = jax.random.split(key)
    low = f_train.shape[1] <= 64
    a, b = whiten(f_train, f_test) if low else cl.standardize(f_train, f_test)
    mu = cl.kmeans(k_km, a, n_classes, n_init=n_init)
    p_km = cl.kmeans_predict(mu, b)
    g = cl.gmm(k_gmm, a, n_classes, covariance="full" if low else "diag", n_init=n_init)
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
                    channels: tuple[int, ...] = (16, 32, 32), hidden: int = 128, rotations: int = 16,
                    pose_dims: int = 0, invariance: float = 0.0, stroke_sigma: float | None = None,
                    steps: int = 1000, batch_size: int = 64, lr: float = 2e-3,
                    schedule: str = "cosine", checkpoint: str | os.PathLike[str] | None = None,
                    progress: bool = True):
    """Train a :class:`ConvAutoencoder` (``rotations`` > 0: with a rotation-invariant code) on
    ``x_train`` (Adam, minibatches with replacement, four steps per compiled call: convolutions
    run faster outside a loop on CPU); returns ``(model, TrainResult)``. ``schedule``: ``"constant"``
    learning rate ``lr``, or ``"cosine"`` decay from ``lr`` to ``lr / 20`` over the ``steps``.

    ``stroke_sigma``: :func:`stroke_normalise` every batch with this blur [px] (``x_train`` and
    ``x_val`` are then the drawings before it); ``None``: the images are used as given.
    ``invariance`` > 0: add ``invariance`` times the :func:`invariance_penalty` between the codes of
    the batch and of a :func:`random_zoom_stretch` of it (drawn before the stroke normalisation) to
    the reconstruction loss, so that the code does not follow the size and aspect of a drawing;
    the model's ``pose_dims`` pose numbers are left free to carry them to the decoder.
    """
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
    if invariance < 0:
        raise ValueError(f"invariance must be >= 0, got {invariance}")
    rate = lr if schedule == "constant" else optax.cosine_decay_schedule(lr, max(steps, 1), 0.05)
    model = ConvAutoencoder(k_init, size=x_train.shape[-1], latent=latent, channels=channels,
                            hidden=hidden, rotations=rotations, pose_dims=pose_dims,
                            dtype=x_train.dtype)
    strokes = (lambda x: x) if stroke_sigma is None else partial(stroke_normalise, sigma=stroke_sigma)
    n = x_train.shape[0]

    def loss(m: ConvAutoencoder, batch: Array, key: PRNGKeyArray) -> Array:
        x = strokes(batch)
        value = reconstruction_loss(m, x)
        if invariance > 0:
            moved = strokes(jax.vmap(random_zoom_stretch)(jax.random.split(key, batch.shape[0]), batch))
            value = value + invariance * invariance_penalty(jax.vmap(m.encode)(x),
                                                            jax.vmap(m.encode)(moved))
        return value

    x_val = strokes(x_val)
    result = train(model, loss, lambda k: x_train[jax.random.randint(k, (batch_size,), 0, n)],
                   optax.adam(rate), steps, k_train, val_loss=lambda m: reconstruction_loss(m, x_val),
                   # windows of a multiple of the 4 steps per call: one compiled chunk length
                   eval_every=max(1, min(200, steps)), checkpoint=checkpoint, progress=progress,
                   desc="autoencoder", steps_per_call=4)
    return result.model, result


def score_representations(key: PRNGKeyArray, z_tr: Array, z_te: Array, x_tr: Array, x_te: Array,
                          y_tr: Array, y_te: Array, n_classes: int, raw_tr: Array | None = None,
                          raw_te: Array | None = None) -> dict[str, dict[str, float]]:
    """:func:`evaluate_features` for the codes, the pixels ``x`` the autoencoder sees, PCA of
    them with as many components as the code has dimensions (``"pca"``) and with two
    (``"pca_2"``), and the simple pixel statistics of the drawings as generated (``raw``, default
    ``x``: size is a statistic, not a nuisance). When ``raw`` is given, its pixels and their PCA
    with the code's dimension are scored too (``"raw_pixels"``, ``"raw_pca"``: the baselines
    without the normalisation). Last, the :func:`radial_profile` of ``x`` (``"radial_profile"``).
    Each representation gets its own key, ``fold_in(key, i)`` in this order."""
    d = z_tr.shape[1]

    def flat_and_pca(a_tr: Array, a_te: Array, k: int) -> tuple[Array, Array, Array, Array]:
        f_tr, f_te = a_tr.reshape(a_tr.shape[0], -1), a_te.reshape(a_te.shape[0], -1)
        mean, comps = cl.pca(f_tr, k)
        return f_tr, f_te, (f_tr - mean) @ comps.T, (f_te - mean) @ comps.T

    p_tr, p_te, proj_tr, proj_te = flat_and_pca(x_tr, x_te, max(d, 2))
    features = {
        "codes": (z_tr, z_te),
        "pixels": (p_tr, p_te),
        "pca": (proj_tr[:, :d], proj_te[:, :d]),
        "pca_2": (proj_tr[:, :2], proj_te[:, :2]),
    }
    unnormalised = raw_tr is not None and raw_te is not None
    if not unnormalised:
        raw_tr, raw_te = x_tr, x_te
    features["pixel_statistics"] = (pixel_statistics(raw_tr), pixel_statistics(raw_te))
    if unnormalised:
        r_tr, r_te, rproj_tr, rproj_te = flat_and_pca(raw_tr, raw_te, d)
        features["raw_pixels"] = (r_tr, r_te)
        features["raw_pca"] = (rproj_tr, rproj_te)
    features["radial_profile"] = (radial_profile(x_tr), radial_profile(x_te))
    return {name: evaluate_features(jax.random.fold_in(key, i), f_tr, y_tr, f_te, y_te, n_classes)
            for i, (name, (f_tr, f_te)) in enumerate(features.items())}


def run_experiment(key: PRNGKeyArray, *, cfg: DrawingConfig = DrawingConfig(), n_train: int = 2000,
                   n_test: int = 1000, n_val: int = 500, latent: int = 8,
                   channels: tuple[int, ...] = (16, 32, 32), hidden: int = 128, rotations: int = 16,
                   pose_dims: int = 3, invariance: float = 1.0,
                   steps: int = 1000, batch_size: int = 64, lr: float = 2e-3,
                   schedule: str = "cosine", frame: str = "centre", extent: float | None = 22.0,
                   stroke_sigma: float | None = 0.8,
                   checkpoint: str | os.PathLike[str] | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """The whole protocol of the module docstring.

    ``frame``, ``extent``, ``stroke_sigma``: the normalisation (:func:`prepare_images`).
    ``rotations``: turns the autoencoder's code is averaged over (0: a plain autoencoder).
    ``pose_dims``, ``invariance``: pose numbers beside the code and the weight of the penalty that
    keeps size and aspect out of the code (:func:`fit_autoencoder`; 0: none).
    ``n_val`` validation drawings (drawn apart from the training and held-out sets) monitor the
    reconstruction loss.

    Returns a dict with ``summary`` (JSON-ready numbers), ``model``, ``history``, and the arrays
    ``codes_test``, ``labels_test``, ``images_test`` (normalised), needed for the figures.
    """
    for name, val, lo in (("n_train", n_train, 2 * cfg.n_classes), ("n_test", n_test, cfg.n_classes),
                          ("n_val", n_val, 1), ("latent", latent, 1), ("steps", steps, 0),
                          ("batch_size", batch_size, 1)):
        if val < lo:
            raise ValueError(f"{name} must be >= {lo}, got {val}")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    k_data, k_init, k_train, k_eval = jax.random.split(key, 4)
    # one compiled call for the three sets: training, held-out test, validation
    drawings = sample_drawings(k_data, n_train + n_test + n_val, cfg)
    framed = prepare_images(drawings.images, frame, extent, None)
    x = framed if stroke_sigma is None else stroke_normalise(framed, stroke_sigma)
    x_tr, x_te, x_va = x[:n_train], x[n_train:n_train + n_test], x[n_train + n_test:]
    y_tr = np.asarray(drawings.labels[:n_train])
    y_te = np.asarray(drawings.labels[n_train:n_train + n_test])

    if invariance > 0:  # the random zooms come before the stroke normalisation, batch by batch
        train_x, val_x, sigma = framed[:n_train], framed[n_train + n_test:], stroke_sigma
    else:
        train_x, val_x, sigma = x_tr, x_va, None
    model, result = fit_autoencoder(k_init, k_train, train_x, val_x, stroke_sigma=sigma,
                                    latent=latent, channels=channels, hidden=hidden,
                                    rotations=rotations, pose_dims=pose_dims,
                                    invariance=invariance, steps=steps,
                                    batch_size=batch_size, lr=lr, schedule=schedule,
                                    checkpoint=checkpoint, progress=progress)
    z_tr, z_te = encode_batch(model, x_tr), encode_batch(model, x_te)
    raw_tr, raw_te = drawings.images[:n_train], drawings.images[n_train:n_train + n_test]
    scores = score_representations(k_eval, z_tr, z_te, x_tr, x_te, y_tr, y_te, cfg.n_classes,
                                   raw_tr, raw_te)
    # the same clustering of the codes scored on the validation set: the number to choose settings by
    y_va = np.asarray(drawings.labels[n_train + n_test:])
    validation = evaluate_features(k_eval, z_tr, y_tr, encode_batch(model, x_va), y_va, cfg.n_classes)
    s_tr, s_te = pixel_statistics(raw_tr), pixel_statistics(raw_te)
    single = {name: cl.logistic_probe(s_tr[:, j:j + 1], y_tr, s_te[:, j:j + 1], y_te, cfg.n_classes)
              for j, name in enumerate(STATISTICS)}
    summary = {
        "n_classes": cfg.n_classes,
        "chance_accuracy": float(np.max(np.bincount(y_te, minlength=cfg.n_classes)) / n_test),
        "n_train": n_train, "n_test": n_test, "n_val": n_val, "latent": latent, "rotations": rotations,
        "pose_dims": pose_dims, "invariance": invariance,
        "frame": frame, "extent": extent, "stroke_sigma": stroke_sigma,
        "steps": result.steps,
        "final_train_loss": result.history["train_loss"][-1] if result.history["train_loss"] else None,
        "final_val_loss": result.history["val_loss"][-1] if result.history["val_loss"] else None,
        "initial_val_loss": float(eqx.filter_jit(reconstruction_loss)(ConvAutoencoder(
            k_init, size=cfg.size, latent=latent, channels=channels, hidden=hidden,
            rotations=rotations, pose_dims=pose_dims, dtype=x_tr.dtype), x_va)),
        "scores": scores,
        "validation_scores_codes": validation,
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
    """Originals (top row) and their reconstructions, ``per_class`` per class; for a
    rotation-invariant autoencoder also the drawing of each code in the canonical frame (the
    decoder's output before it is turned to the pose: the same for any turn of the input)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    idx = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)])
    x = jnp.asarray(images)[idx]
    rows = [("input", np.asarray(x)), ("reconstruction", np.asarray(jax.vmap(eqx.filter_jit(model))(x)))]
    if model.rotations:
        rows.append(("canonical frame", np.asarray(jax.vmap(eqx.filter_jit(model.canonical))(x))))
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
    fig.savefig(path, dpi=110)
    plt.close(fig)
