"""Label-free normalisations of line-drawing images (pixel units; intensities in [0, 1]).

Each maps a batch ``(B, H, W)`` of drawings to a batch of the same shape without looking at
labels: the geometric frames of :func:`prepare_images` (``FRAMES``: position only, or position,
size and shape as well), the stroke-width normalisation, the random zooms and stretches the
autoencoder's code is trained to ignore, and the radial ink profile scored beside the codes.
Used by :mod:`bayesqcd.studies.topology.experiment`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from bayesqcd.nn.autoencoder import transform_image


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
    :func:`bayesqcd.studies.topology.experiment.fit_autoencoder`). The default range shrinks more than it
    enlarges, so that drawings filling the image mostly stay inside it."""
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
