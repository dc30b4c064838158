"""Train an autoencoder on line drawings without labels and measure the topology its codes keep.

Protocol (labels are used only to score, and to fit the supervised linear probe):

1. draw a training, a held-out test and a validation set with
   :func:`bayesqcd.topology.sample_drawings`;
2. normalise every image without labels, the same for every method below
   (:func:`prepare_images`): by default only its position (:func:`shift_to_centroid`: the ink
   centroid to the centre), leaving size, stretch, shear, rotation and deformation to the model;
   or shape, position and size as well (:func:`affine_normalise`: the ink's second moments made
   isotropic by an area-preserving linear map, which undoes stretch and shear, then the ink
   centroid to the centre and the farthest ink at a fixed radius; also the last two alone,
   :func:`centroid_normalise`, the bounding box, :func:`normalise_images`, or the principal axes,
   :func:`orient_images`); then stroke width (:func:`stroke_normalise`: a Gaussian blur divided
   by its maximum);
3. train :class:`bayesqcd.nn.autoencoder.ConvAutoencoder` on the training images with the
   reconstruction loss, through :func:`bayesqcd.nn.train`; by default its code is invariant
   under turns of the image (orbit averaging over ``rotations`` turns, a pose angle for the
   decoder), and a penalty on changes of the code under random zooms and stretches of the
   drawing (:func:`random_zoom_stretch`, :func:`bayesqcd.nn.autoencoder.invariance_penalty`)
   leaves size and aspect to three pose numbers that only the decoder reads;
4. represent every image by (a) its code, (b) its pixels, (c) its projection on the top
   ``latent`` principal components of the training pixels (and on the top 2), (d) the pixels of
   the drawing as generated, before the normalisation, and their top ``latent`` principal
   components, (e) five simple pixel statistics of the drawing as generated, (f) the radial ink
   profile of the normalised drawing (:func:`radial_profile`);
5. for each representation: fit k-means and a Gaussian mixture with as many clusters as classes
   on the training features (whitened, full covariances; for raw pixels standardised, diagonal
   ones; restarts chosen by inertia / likelihood),
   assign the held-out images, and score the assignment with the Hungarian-matched accuracy and
   the NMI; fit a logistic-regression probe on the training features and report its held-out
   accuracy.
"""

from __future__ import annotations

import math
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
                                     reconstruction_loss, transform_image)
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


def shift_to_centroid(images: Float[Array, "B H W"]) -> Float[Array, "B H W"]:
    """Shift each image (bilinear, by a fraction of a pixel as needed) so that the centroid of its
    ink (intensity-weighted) sits at the image centre; size, shape and orientation are left as
    drawn. A label-free normalisation that commutes with turns about the centroid. Ink the shift
    moves past the border is lost: for the default generator 0.2% of the ink on average and at
    most 12% of one drawing in 3500 (an open arc, whose centroid lies far from its middle). Images
    without ink stay zero."""
    _, h, w = images.shape
    ys, xs = jnp.meshgrid(jnp.arange(h, dtype=images.dtype), jnp.arange(w, dtype=images.dtype),
                          indexing="ij")

    def one(img):
        total = img.sum()
        wt = img / jnp.where(total > 0, total, 1.0)
        my = jnp.where(total > 0, jnp.sum(wt * ys), (h - 1) / 2)
        mx = jnp.where(total > 0, jnp.sum(wt * xs), (w - 1) / 2)
        coords = [ys + my - (h - 1) / 2, xs + mx - (w - 1) / 2]
        return jax.scipy.ndimage.map_coordinates(img, coords, order=1, mode="constant", cval=0.0)

    return jax.lax.map(one, images, batch_size=min(images.shape[0], 256))


def random_zoom_stretch(key: PRNGKeyArray, image: Float[Array, "H W"],
                        log_zoom: tuple[float, float] = (-0.3, 0.1), stretch: float = 0.2
                        ) -> Float[Array, "H W"]:
    """The drawing enlarged by ``exp(l)``, ``l ~ U[log_zoom]``, and stretched by ``exp(s)`` along a
    random axis and ``exp(-s)`` across it, ``s ~ U[-stretch, stretch]``, about the image centre
    (bilinear resampling, :func:`bayesqcd.nn.autoencoder.transform_image`): the nuisances of size
    and aspect that the autoencoder's code is trained to ignore (``invariance`` in
    :func:`fit_autoencoder`). The default range shrinks more than it enlarges, so that drawings
    filling the image mostly stay inside it."""
    k_zoom, k_stretch, k_axis = jax.random.split(key, 3)
    zoom = jax.random.uniform(k_zoom, (), image.dtype, *log_zoom)
    s = jax.random.uniform(k_stretch, (), image.dtype, -stretch, stretch)
    phi = jax.random.uniform(k_axis, (), image.dtype, 0.0, math.pi)
    c, si = jnp.cos(phi), jnp.sin(phi)
    axes = jnp.stack([jnp.stack([c, -si]), jnp.stack([si, c])])
    # the inverse of the map applied to the drawing
    inverse = jnp.exp(-zoom) * (axes * jnp.exp(jnp.stack([-s, s]))) @ axes.T
    return transform_image(image, inverse)


def _pixel_grid(images: Array, extent: float) -> tuple[Array, Array, float]:
    """Refuse non-square images and an ``extent`` [px] outside ``(0, size - 2]``; return the pixel
    coordinates ``(ys, xs)`` (row, column) and the image centre [px]."""
    b, h, w = images.shape
    if h != w:
        raise ValueError(f"images must be square, got {h} x {w}")
    if not 0 < extent <= h - 2:
        raise ValueError(f"extent must be in (0, {h - 2}] pixels, got {extent}")
    idx = jnp.arange(h, dtype=images.dtype)
    ys, xs = jnp.meshgrid(idx, idx, indexing="ij")
    return ys, xs, (h - 1) / 2


def _ink_centroid(img: Array, ys: Array, xs: Array) -> tuple[Array, Array, Array]:
    """The ink as weights of unit sum, and its centroid ``(x, y)`` [px]."""
    ink = img.sum()
    wt = img / jnp.where(ink > 0, ink, 1.0)
    return wt, (wt * xs).sum(), (wt * ys).sum()


def _second_moments(wt: Array, dx: Array, dy: Array) -> tuple[Array, Array, Array]:
    """``(Sxx, Syy, Sxy)`` [px^2] of the unit-sum ink ``wt`` at offsets ``(dx, dy)`` from its
    centroid."""
    return (wt * dx * dx).sum(), (wt * dy * dy).sum(), (wt * dx * dy).sum()


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
    ys, xs, c = _pixel_grid(images, extent)
    h = images.shape[1]
    mask = images > threshold
    idx = ys[:, 0]

    def bounds(m):
        lo = jnp.min(jnp.where(m, idx, h), axis=1)
        hi = jnp.max(jnp.where(m, idx, -1), axis=1)
        return lo, hi

    (ylo, yhi), (xlo, xhi) = bounds(mask.any(axis=2)), bounds(mask.any(axis=1))
    empty = yhi < ylo
    cy = jnp.where(empty, c, (ylo + yhi) / 2)
    cx = jnp.where(empty, c, (xlo + xhi) / 2)
    scale = jnp.where(empty, 1.0, jnp.maximum(jnp.maximum(yhi - ylo, xhi - xlo), 1.0) / extent)

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
    ys, xs, c = _pixel_grid(images, extent)

    def one(img):
        wt, mx, my = _ink_centroid(img, ys, xs)
        dx, dy = xs - mx, ys - my
        sxx, syy, sxy = _second_moments(wt, dx, dy)
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

    return jax.lax.map(one, images, batch_size=min(images.shape[0], 256))


def centroid_normalise(images: Float[Array, "B H W"], extent: float = 22.0,
                       threshold: float = 0.05) -> Float[Array, "B H W"]:
    """Move each drawing's ink centroid to the image centre and rescale it so that its farthest
    inked pixel (above ``threshold``) lies ``extent / 2`` output pixels from the centre.

    A label-free normalisation of position and size that commutes with turns of the drawing (a
    turned drawing gives the turned image, up to resampling), unlike the bounding box of
    :func:`normalise_images`, whose size depends on the orientation. Output pixel ``p`` samples
    the input, by bilinear interpolation (zero outside), at ``m + (p - c) s`` with ``m`` the
    intensity-weighted centroid, ``c`` the image centre and ``s = r_max / (extent / 2)`` (``r_max``
    [input px] the largest distance of an inked pixel from ``m``, at least 1). ``extent`` is the
    diameter [output px] of the disc the drawing then fills, in ``(0, size - 2]``. Images without
    ink are returned unchanged.
    """
    return _disc_normalise(images, extent, threshold, isotropic=False)


def affine_normalise(images: Float[Array, "B H W"], extent: float = 22.0,
                     threshold: float = 0.05) -> Float[Array, "B H W"]:
    """:func:`centroid_normalise` after undoing each drawing's stretch and shear: the ink's
    second moments are made isotropic by an area-preserving linear map.

    With ``w`` the ink normalised to unit sum, ``m`` its centroid and
    ``Sigma = sum w (p - m)(p - m)^T`` its second moments [px^2], let
    ``M = Sigma^(1/2) / det(Sigma)^(1/4)`` (symmetric, ``det M = 1``). Output pixel ``q`` samples
    the input, by bilinear interpolation (zero outside), at ``m + s M (q - c)``, ``c`` the image
    centre, so the output ink has second moments proportional to the identity; ``s`` puts the
    farthest inked pixel (above ``threshold``) of the whitened drawing, ``max |M^(-1) (p - m)|``,
    at ``extent / 2`` output pixels from the centre. A linear map of the drawing (the generator's
    stretch and shear) changes the output only by a turn (up to the stroke, which it does not
    stretch, and resampling); turning the drawing by ``R`` turns ``M`` into ``R M R^T``, so the
    map commutes with turns. It widens a nearly straight drawing until its spread across equals
    its spread along (a thin bar comes out as a square blob: use :func:`centroid_normalise` for
    such data); ink exactly on a line (``det Sigma`` below 1e-6 of its trace squared) is only
    centroid-normalised. ``extent`` in ``(0, size - 2]`` [output px]. Images without ink are
    returned unchanged.
    """
    return _disc_normalise(images, extent, threshold, isotropic=True)


def _disc_normalise(images: Array, extent: float, threshold: float, isotropic: bool) -> Array:
    """:func:`affine_normalise` (``isotropic``) or :func:`centroid_normalise` (``M = 1``)."""
    ys, xs, c = _pixel_grid(images, extent)

    def shape_matrix(sxx, syy, sxy):
        """``(a, b, d)`` of ``M = [[a, b], [b, d]] = Sigma^(1/2) / det(Sigma)^(1/4)`` in (x, y),
        from sqrt(S) = (S + sqrt(det) I) / sqrt(tr + 2 sqrt(det)); ``M = 1`` for flat ink."""
        tr, det = sxx + syy, sxx * syy - sxy * sxy
        flat = det <= 1e-6 * tr * tr
        rdet = jnp.sqrt(jnp.where(flat, 1.0, det))
        norm = jnp.sqrt(tr + 2 * rdet) * jnp.sqrt(rdet)
        return (jnp.where(flat, 1.0, (sxx + rdet) / norm), jnp.where(flat, 0.0, sxy / norm),
                jnp.where(flat, 1.0, (syy + rdet) / norm))

    def one(img):
        wt, mx, my = _ink_centroid(img, ys, xs)
        dx, dy = xs - mx, ys - my
        a, b, d = shape_matrix(*_second_moments(wt, dx, dy)) if isotropic else (1.0, 0.0, 1.0)
        mask = img > threshold
        # det M = 1, so M^-1 = [[d, -b], [-b, a]]: the farthest ink of the whitened drawing
        r_max = jnp.max(jnp.where(mask, jnp.hypot(d * dx - b * dy, -b * dx + a * dy), 0.0))
        s = jnp.maximum(r_max, 1.0) / (extent / 2)
        vx, vy = s * (xs - c), s * (ys - c)
        coords = [my + b * vx + d * vy, mx + a * vx + b * vy]
        out = jax.scipy.ndimage.map_coordinates(img, coords, order=1, mode="constant", cval=0.0)
        return jnp.where(mask.any(), out, img)

    return jax.lax.map(one, images, batch_size=min(images.shape[0], 256))


def stroke_normalise(images: Float[Array, "B H W"], sigma: float = 0.8) -> Float[Array, "B H W"]:
    """Blur each image with a Gaussian of ``sigma`` [px] and divide it by its maximum.

    A label-free normalisation of the stroke width, a nuisance of the generator: a stroke of width
    ``w`` [px] blurred by ``sigma`` has a cross-section of width ~ ``sqrt(sigma^2 + w^2 / 12)`` and
    height ~ ``w``; dividing by the maximum removes the height, so for the generator's widths
    (0.5-2.3 px at the original scale) the blurred profiles differ by less than 30% in width (a
    factor of ~5 before). The kernel is truncated at 3 sigma. Images without ink stay zero.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0 pixels, got {sigma}")
    r = int(math.ceil(3 * sigma))
    t = jnp.arange(-r, r + 1, dtype=images.dtype)
    k = jnp.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()

    def one(img):
        out = jax.scipy.signal.convolve(jax.scipy.signal.convolve(img, k[:, None], mode="same"),
                                        k[None, :], mode="same")
        top = out.max()
        return out / jnp.where(top > 0, top, 1.0)

    return jax.lax.map(one, images, batch_size=min(images.shape[0], 256))


FRAMES = ("centre", "affine", "centroid", "box", "axes", "none")
"""The label-free normalisations of :func:`prepare_images` (the first is the default)."""


def prepare_images(images: Float[Array, "B H W"], frame: str = "centre",
                   extent: float | None = 22.0, stroke_sigma: float | None = 0.8
                   ) -> Float[Array, "B H W"]:
    """The label-free normalisation every representation sees.

    ``frame``: ``"centre"`` (:func:`shift_to_centroid`: the ink centroid to the centre; size,
    stretch and shear are left to the model), ``"affine"`` (:func:`affine_normalise`: the ink's
    second moments made isotropic, which undoes stretch and shear, then as ``"centroid"``),
    ``"centroid"`` (:func:`centroid_normalise`: the drawing fills a disc of diameter ``extent``;
    both commute with turns), ``"box"`` (:func:`normalise_images`: the ink's bounding box spans
    ``extent``; with ``extent=None`` only centred, :func:`centre_images`) or ``"axes"``
    (:func:`orient_images`: the bounding box in the ink's principal-axis frame) or ``"none"``
    (the drawings as generated: position, size, stretch and shear are left to the model).
    ``extent`` is not used by ``"centre"`` and ``"none"``. Then, unless ``stroke_sigma`` is
    ``None``, :func:`stroke_normalise` with that blur [px].
    """
    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {FRAMES}, got {frame!r}")
    if extent is None and frame not in ("box", "none", "centre"):
        raise ValueError(f"frame {frame!r} needs an extent (the size of the drawing), got None")
    if frame == "centre":
        x = shift_to_centroid(images)
    elif frame == "centroid":
        x = centroid_normalise(images, extent)
    elif frame == "affine":
        x = affine_normalise(images, extent)
    elif frame == "axes":
        x = orient_images(images, extent)
    elif frame == "none":
        x = images
    else:
        x = centre_images(images) if extent is None else normalise_images(images, extent)
    return x if stroke_sigma is None else stroke_normalise(x, stroke_sigma)


def radial_profile(images: Float[Array, "B H W"], n_bins: int = 11, width: float = 1.5
                   ) -> Float[Array, "B n_bins"]:
    """Mean intensity in ``n_bins`` annuli of ``width`` [px] around the image centre (the last
    annulus takes every pixel beyond): a simple statistic of a normalised drawing that does not
    change under its turns. Scored next to the codes to show how much of the class it carries."""
    if n_bins < 1 or width <= 0:
        raise ValueError(f"n_bins must be >= 1 and width > 0 pixels, got {n_bins}, {width}")
    h, w = images.shape[-2:]
    ys, xs = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    which = np.minimum((np.hypot(ys, xs) / width).astype(int), n_bins - 1).ravel()
    onehot = np.eye(n_bins)[which]                                      # (H W, n_bins)
    weights = jnp.asarray(onehot / np.maximum(onehot.sum(axis=0), 1), images.dtype)
    return images.reshape(images.shape[0], -1) @ weights


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
