"""Train an autoencoder on line drawings without labels and measure the topology its codes keep.

Protocol (labels are used only to score, and to fit the supervised linear probe):

1. draw a training, a held-out test and a validation set with
   :func:`bayesqcd.topology.sample_drawings`;
2. centre every image on the bounding box of its ink and rescale it to a fixed extent
   (:func:`normalise_images`; a label-free normalisation of position and size, like MNIST's),
   optionally in its principal-axis frame (:func:`orient_images`, a normalisation of
   orientation too), the same for every method below (:func:`prepare_images`);
3. train :class:`bayesqcd.nn.autoencoder.ConvAutoencoder` on the training images with the
   reconstruction loss, through :func:`bayesqcd.nn.train`;
4. represent every image by (a) its code, (b) its raw pixels, (c) its projection on the top
   ``latent`` principal components of the training pixels, (d) five simple pixel statistics;
5. for each representation: fit k-means and a Gaussian mixture with as many clusters as classes
   on the training features (whitened, full covariances; for raw pixels standardised, diagonal
   ones; restarts chosen by inertia / likelihood),
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


def normalise_images(images: Float[Array, "B H W"], extent: float = 22.0,
                     threshold: float = 0.05) -> Float[Array, "B H W"]:
    """Centre and rescale each drawing so that the longer side of the bounding box of its ink
    (pixels above ``threshold``) spans ``extent`` pixels, centred in the image.

    A label-free normalisation of position and size (both nuisances of the generator): output
    pixel ``p`` samples the input, by bilinear interpolation (zero outside), at
    ``c_in + (p - c_out) s`` with ``c_in`` the centre of the ink's bounding box, ``c_out`` the
    image centre and ``s = span / extent`` the input pixels per output pixel (``span`` the longer
    bounding-box side [px], at least 1). ``extent`` is in output pixels, in ``(0, size - 2]``.
    Images without ink are returned unchanged.
    """
    b, h, w = images.shape
    if h != w:
        raise ValueError(f"images must be square, got {h} x {w}")
    if not 0 < extent <= h - 2:
        raise ValueError(f"extent must be in (0, {h - 2}] pixels, got {extent}")
    mask = images > threshold
    idx = jnp.arange(h, dtype=images.dtype)

    def bounds(m):
        lo = jnp.min(jnp.where(m, idx, h), axis=1)
        hi = jnp.max(jnp.where(m, idx, -1), axis=1)
        return lo, hi

    (ylo, yhi), (xlo, xhi) = bounds(mask.any(axis=2)), bounds(mask.any(axis=1))
    empty = yhi < ylo
    c = (h - 1) / 2
    cy = jnp.where(empty, c, (ylo + yhi) / 2)
    cx = jnp.where(empty, c, (xlo + xhi) / 2)
    scale = jnp.where(empty, 1.0, jnp.maximum(jnp.maximum(yhi - ylo, xhi - xlo), 1.0) / extent)
    ys, xs = jnp.meshgrid(idx, idx, indexing="ij")

    def one(img, cy, cx, s):
        coords = [cy + (ys - c) * s, cx + (xs - c) * s]
        return jax.scipy.ndimage.map_coordinates(img, coords, order=1, mode="constant", cval=0.0)

    return jax.vmap(one)(images, cy, cx, scale)


def orient_images(images: Float[Array, "B H W"], extent: float = 22.0,
                  threshold: float = 0.05) -> Float[Array, "B H W"]:
    """:func:`normalise_images` in the frame of each drawing's principal axes: a label-free
    normalisation of orientation as well as of position and size, in one resampling.

    With ``w`` the ink (intensities) normalised to unit sum, ``m`` its centroid and
    ``Sigma = sum w (p - m)(p - m)^T`` its second moments [px^2], ``e_1`` is the major and
    ``e_2`` the minor eigenvector of ``Sigma``, each signed so that the third moment
    ``sum w ((p - m) . e_i)^3`` is >= 0. In the frame ``u = ((p - m) . e_1, (p - m) . e_2)`` the
    pixels above ``threshold`` have a bounding box of centre ``b`` and longer side ``span`` [px];
    output pixel ``q`` (offset ``v = q - c`` from the image centre) samples the input, by bilinear
    interpolation (zero outside), at ``m + (b_1 + s v_x) e_1 + (b_2 + s v_y) e_2`` with
    ``s = span / extent``. The map is a rotation, possibly composed with a reflection (the
    classes are ``|winding|``, which a reflection keeps), and a scaling: in the output the ink's
    major axis lies along x, its second moments are diagonal, both third moments are >= 0, and
    its box is centred with longer side ``extent`` [output px], in ``(0, size - 2]``. Where two
    eigenvalues (or a third moment) nearly vanish the frame is ill-defined, but so is the
    orientation it removes. Images without ink are returned unchanged.
    """
    b, h, w = images.shape
    if h != w:
        raise ValueError(f"images must be square, got {h} x {w}")
    if not 0 < extent <= h - 2:
        raise ValueError(f"extent must be in (0, {h - 2}] pixels, got {extent}")
    idx = jnp.arange(h, dtype=images.dtype)
    ys, xs = jnp.meshgrid(idx, idx, indexing="ij")
    c = (h - 1) / 2

    def one(img):
        ink = img.sum()
        wt = img / jnp.where(ink > 0, ink, 1.0)
        mx, my = (wt * xs).sum(), (wt * ys).sum()
        dx, dy = xs - mx, ys - my
        sxx, syy, sxy = (wt * dx * dx).sum(), (wt * dy * dy).sum(), (wt * dx * dy).sum()
        # eigenvectors of the 2 x 2 second moments in closed form (no batched LAPACK call, see
        # bayesqcd.inference.score_posterior): the major axis is at angle theta to x
        theta = 0.5 * jnp.arctan2(2 * sxy, sxx - syy)
        major = jnp.stack([jnp.cos(theta), jnp.sin(theta)])
        minor = jnp.stack([-jnp.sin(theta), jnp.cos(theta)])
        mask = img > threshold

        def frame(e):
            e = jnp.where((wt * (dx * e[0] + dy * e[1]) ** 3).sum() < 0, -e, e)
            u = dx * e[0] + dy * e[1]
            lo, hi = jnp.min(jnp.where(mask, u, jnp.inf)), jnp.max(jnp.where(mask, u, -jnp.inf))
            return e, lo, hi

        (e1, lo1, hi1), (e2, lo2, hi2) = frame(major), frame(minor)
        scale = jnp.maximum(jnp.maximum(hi1 - lo1, hi2 - lo2), 1.0) / extent
        a1 = (lo1 + hi1) / 2 + scale * (xs - c)
        a2 = (lo2 + hi2) / 2 + scale * (ys - c)
        coords = [my + a1 * e1[1] + a2 * e2[1], mx + a1 * e1[0] + a2 * e2[0]]
        out = jax.scipy.ndimage.map_coordinates(img, coords, order=1, mode="constant", cval=0.0)
        return jnp.where(mask.any(), out, img)

    return jax.lax.map(one, images, batch_size=min(b, 256))


def prepare_images(images: Float[Array, "B H W"], extent: float | None = 22.0,
                   orient: bool = False) -> Float[Array, "B H W"]:
    """The label-free normalisation every representation sees: :func:`normalise_images` to
    ``extent`` pixels (``None``: only :func:`centre_images`), or with ``orient`` the same in the
    drawing's principal-axis frame (:func:`orient_images`; needs an ``extent``)."""
    if orient:
        if extent is None:
            raise ValueError("orient needs an extent (the size of the turned drawing), got None")
        return orient_images(images, extent)
    return centre_images(images) if extent is None else normalise_images(images, extent)


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
                          y_tr: Array, y_te: Array, n_classes: int, raw_tr: Array | None = None,
                          raw_te: Array | None = None) -> dict[str, dict[str, float]]:
    """:func:`evaluate_features` for the codes, the pixels ``x`` the autoencoder sees, PCA of
    them with as many components as the code has dimensions, and the simple pixel statistics of
    the drawings as generated (``raw``, default ``x``: size is a statistic, not a nuisance)."""
    raw_tr = x_tr if raw_tr is None else raw_tr
    raw_te = x_te if raw_te is None else raw_te
    n_tr, n_te = x_tr.shape[0], x_te.shape[0]
    p_tr, p_te = x_tr.reshape(n_tr, -1), x_te.reshape(n_te, -1)
    mean, comps = cl.pca(p_tr, z_tr.shape[1])
    features = {
        "codes": (z_tr, z_te),
        "pixels": (p_tr, p_te),
        "pca": ((p_tr - mean) @ comps.T, (p_te - mean) @ comps.T),
        "pixel_statistics": (pixel_statistics(raw_tr), pixel_statistics(raw_te)),
    }
    return {name: evaluate_features(jax.random.fold_in(key, i), f_tr, y_tr, f_te, y_te, n_classes)
            for i, (name, (f_tr, f_te)) in enumerate(features.items())}


def run_experiment(key: PRNGKeyArray, *, cfg: DrawingConfig = DrawingConfig(), n_train: int = 2000,
                   n_test: int = 1000, n_val: int = 500, latent: int = 8,
                   channels: tuple[int, ...] = (8, 16, 16), hidden: int = 64, steps: int = 1000,
                   batch_size: int = 64, lr: float = 2e-3, schedule: str = "cosine",
                   extent: float | None = 22.0, orient: bool = False,
                   checkpoint: str | os.PathLike[str] | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """The whole protocol of the module docstring.

    ``extent``: the size [px] every drawing is rescaled to by :func:`normalise_images`; ``None``
    only centres them (:func:`centre_images`). ``orient``: turn every drawing into its
    principal-axis frame first (:func:`orient_images`). ``n_val`` validation drawings (drawn apart from
    the training and held-out sets) monitor the reconstruction loss.

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
    x = prepare_images(drawings.images, extent, orient)
    x_tr, x_te, x_va = x[:n_train], x[n_train:n_train + n_test], x[n_train + n_test:]
    y_tr = np.asarray(drawings.labels[:n_train])
    y_te = np.asarray(drawings.labels[n_train:n_train + n_test])

    model, result = fit_autoencoder(k_init, k_train, x_tr, x_va, latent=latent,
                                    channels=channels, hidden=hidden, steps=steps,
                                    batch_size=batch_size, lr=lr, schedule=schedule,
                                    checkpoint=checkpoint,
                                    progress=progress)
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
        "n_train": n_train, "n_test": n_test, "n_val": n_val, "latent": latent, "extent": extent,
        "orient": orient,
        "steps": result.steps,
        "final_train_loss": result.history["train_loss"][-1] if result.history["train_loss"] else None,
        "final_val_loss": result.history["val_loss"][-1] if result.history["val_loss"] else None,
        "initial_val_loss": float(reconstruction_loss(ConvAutoencoder(
            k_init, size=cfg.size, latent=latent, channels=channels, hidden=hidden,
            dtype=x_tr.dtype), x_va)),
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
