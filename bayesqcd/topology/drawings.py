"""Line-drawing images with exact topological labels (Fukushima, Funai, Iida, arXiv:1908.00281).

Every image shows one smooth curve drawn as an anti-aliased stroke on a ``size x size`` grid
(pixel units throughout: coordinates, radii and widths are in pixels, intensities in [0, 1]).
The class of an image is topological and fixed by construction:

* class 0: an *open* curve (an arc sweeping ``s`` in ``[s_min, s_max]`` of a turn around its
  centre, so its two endpoints are visibly apart); an arc is contractible and carries no winding;
* class ``n`` (``1 <= n <= W``): a *closed* curve winding ``n`` times around its centre.

A curve is drawn in polar form around its centre ``c``, for ``t`` in ``[0, 1]``,

    theta(t) = phi0 + sigma 2 pi T t + eps sin(2 pi t + chi),          (T = n or s; sigma = +-1)
    r(t)     = R [1 + a cos(2 pi t + psi_1) + sum_{k=2}^{4} b_k cos(2 pi k t + psi_k)
                    + c cos(2 pi m t + psi_5)],                        (m in {5, 6, 7})

then stretched, sheared and rotated by a random linear map ``A`` (``det A > 0``; a reflection
would only flip the sign of the winding), and shifted so that the drawing fits inside the image.
Because ``r > 0`` and ``r, theta - 2 pi sigma T t`` are 1-periodic, a closed curve winds exactly
``sigma n`` times around ``c``. For ``n >= 2`` the ``a``-term makes the ``n`` passes visibly distinct
loops (``n - 1`` self-crossings for a limacon-like curve).

Nuisance variables (size, width, deformation, rotation, position) are random for every class.
At a fixed resolution, more loops mean more stroke per area, so some simple statistic must vary
with the class; the design spreads this over several of them instead of the total ink: the radius
scales as ``R ~ T**(-size_exponent)`` and the stroke width as ``w ~ L**(-ink_balance)`` (``L`` the
length), which leaves the total ink (~ L w) nearly uninformative and the extent partly informative.
:func:`pixel_statistics` gives the statistics to check this with; ``bayesqcd.studies.topology.experiment`` reports
how well each of them, alone and together, predicts the class.

:func:`winding_number` is the exact check: the sum of the wrapped angle increments of the drawn
polygon as seen from the centre, divided by 2 pi.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray


class DrawingConfig(eqx.Module):
    """Distribution of the line drawings (pixel units).

    Attributes:
        size: image side in pixels.
        max_winding: W, the largest winding number (classes are 0, 1, ..., W).
        n_points: vertices of the drawn polygon.
        radius: base radius R0 [px] of a one-turn curve; R = R0 u T**(-size_exponent), u ~ U[0.8, 1.2].
        size_exponent: gamma in R ~ T**(-gamma), trading extent against ink across classes.
        width: (min, max) of the stroke width [px] of a curve of length ``length_ref``, uniform.
        ink_balance: beta in ``w ~ L**(-beta)``: 0 gives widths independent of the length L,
            1 gives ink (~ L w) independent of it (and widths that reveal L instead).
        length_ref: reference length [px] of the width law.
        width_ref_factor_max: bound on ``(L / length_ref)**(-beta)`` and its inverse.
        loop_offset: (min, max) of ``a``, the term separating the loops of a multiple winding.
        bump: maximum |b_k| of the deformation harmonics k = 2, 3, 4.
        wiggle: maximum amplitude of a fast deformation harmonic (k = 5, 6 or 7), which varies the
            length of a curve at fixed extent.
        arc_sweep: (min, max) of ``s``, the fraction of a turn swept by an open arc.
        stretch: maximal log-stretch of the random linear map (aspect ratio up to exp(2 stretch)).
        shear: maximal shear of the random linear map.
        margin: minimal distance [px] of the polygon from the image border.
    """

    size: int = 32
    max_winding: int = 3
    n_points: int = 256
    radius: float = 10.0
    size_exponent: float = 0.5
    width: tuple[float, float] = (0.7, 1.5)
    ink_balance: float = 0.5
    length_ref: float = 70.0
    width_ref_factor_max: float = 1.5
    loop_offset: tuple[float, float] = (0.4, 0.55)
    bump: float = 0.07
    wiggle: float = 0.06
    arc_sweep: tuple[float, float] = (0.4, 0.75)
    stretch: float = 0.15
    shear: float = 0.2
    margin: float = 1.5

    def __check_init__(self):
        if self.size < 8:
            raise ValueError(f"size must be >= 8 pixels, got {self.size}")
        if self.max_winding < 1:
            raise ValueError(f"max_winding must be >= 1, got {self.max_winding}")
        if self.n_points < 16 * self.max_winding:
            raise ValueError(f"n_points must be >= 16 * max_winding = {16 * self.max_winding}, "
                             f"got {self.n_points}")
        if not 0 < self.width[0] <= self.width[1]:
            raise ValueError(f"width must satisfy 0 < min <= max, got {self.width}")
        if not 0 <= self.loop_offset[0] <= self.loop_offset[1]:
            raise ValueError(f"loop_offset must satisfy 0 <= min <= max, got {self.loop_offset}")
        if self.loop_offset[1] + 3 * self.bump + self.wiggle >= 0.9:
            raise ValueError("loop_offset max + 3 bump + wiggle must be < 0.9 so that r(t) > 0; "
                             f"got {self.loop_offset[1]} + 3 * {self.bump} + {self.wiggle}")
        if not 0 < self.arc_sweep[0] <= self.arc_sweep[1] <= 0.85:
            raise ValueError(f"arc_sweep must satisfy 0 < min <= max <= 0.85 (a visible gap), "
                             f"got {self.arc_sweep}")
        if self.radius <= 0:
            raise ValueError(f"radius must be > 0 pixels, got {self.radius}")
        if not 0 <= self.ink_balance <= 1:
            raise ValueError(f"ink_balance must be in [0, 1], got {self.ink_balance}")
        if self.length_ref <= 0 or self.width_ref_factor_max < 1:
            raise ValueError("length_ref must be > 0 and width_ref_factor_max >= 1, got "
                             f"{self.length_ref}, {self.width_ref_factor_max}")
        if self.size_exponent < 0:
            raise ValueError(f"size_exponent must be >= 0, got {self.size_exponent}")

    @property
    def n_classes(self) -> int:
        """Number of classes, W + 1."""
        return self.max_winding + 1


class Drawings(NamedTuple):
    """A batch of drawings.

    Attributes:
        images: ``(B, size, size)`` intensities in [0, 1] (row = y, column = x).
        labels: ``(B,)`` topological class: 0 open, n >= 1 closed with |winding| n.
        curves: ``(B, n_points, 2)`` polygon vertices (x, y) in pixels.
        centres: ``(B, 2)`` the point the curve winds around, in pixels.
        closed: ``(B,)`` whether the polygon is closed.
        widths: ``(B,)`` stroke widths in pixels.
    """

    images: Float[Array, "B H W"]
    labels: Int[Array, " B"]
    curves: Float[Array, "B P 2"]
    centres: Float[Array, "B 2"]
    closed: Array
    widths: Float[Array, " B"]


def _curve(key: PRNGKeyArray, label: Int[Array, ""], cfg: DrawingConfig, dtype):
    """Vertices ``(n_points, 2)`` [px] of one curve of class ``label`` around the origin."""
    ks = jax.random.split(key, 14)
    u = lambda k, lo, hi, shape=(): jax.random.uniform(k, shape, dtype, lo, hi)  # noqa: E731
    closed = label > 0
    sweep = jnp.where(closed, label.astype(dtype), u(ks[0], *cfg.arc_sweep))
    sign = jnp.where(jax.random.bernoulli(ks[1]), 1.0, -1.0).astype(dtype)
    radius = cfg.radius * u(ks[2], 0.8, 1.2) * sweep ** (-cfg.size_exponent)
    a = u(ks[3], *cfg.loop_offset)
    b = u(ks[4], -cfg.bump, cfg.bump, (3,))
    psi = u(ks[5], 0.0, 2 * math.pi, (5,))
    wiggle_amp = u(ks[12], 0.0, cfg.wiggle)
    wiggle_freq = jax.random.randint(ks[13], (), 5, 8).astype(dtype)
    eps, chi, phi0 = u(ks[6], 0.0, 0.3), u(ks[7], 0.0, 2 * math.pi), u(ks[8], 0.0, 2 * math.pi)

    t = jnp.linspace(0.0, 1.0, cfg.n_points, dtype=dtype)
    two_pi_t = 2 * math.pi * t
    theta = phi0 + sign * (sweep * two_pi_t + eps * jnp.sin(two_pi_t + chi))
    harmonics = jnp.cos(jnp.arange(2, 5, dtype=dtype)[:, None] * two_pi_t + psi[1:4, None])
    wiggle = wiggle_amp * jnp.cos(wiggle_freq * two_pi_t + psi[4])
    r = radius * (1 + a * jnp.cos(two_pi_t + psi[0]) + b @ harmonics + wiggle)
    xy = jnp.stack([r * jnp.cos(theta), r * jnp.sin(theta)], axis=-1)

    # random linear map with det > 0: rotation . shear . diagonal stretch
    ls = u(ks[9], -cfg.stretch, cfg.stretch)
    sh = u(ks[10], -cfg.shear, cfg.shear)
    rot = u(ks[11], 0.0, 2 * math.pi)
    stretch = jnp.diag(jnp.stack([jnp.exp(ls), jnp.exp(-ls)]))
    shear = jnp.array([[1.0, 0.0], [0.0, 1.0]], dtype) + sh * jnp.array([[0.0, 1.0], [0.0, 0.0]], dtype)
    c, s = jnp.cos(rot), jnp.sin(rot)
    rotation = jnp.stack([jnp.stack([c, -s]), jnp.stack([s, c])])
    xy = xy @ (rotation @ shear @ stretch).T
    # a closed curve ends exactly where it starts (removes the rounding of cos(phi0 + 2 pi n))
    return xy.at[-1].set(jnp.where(closed, xy[0], xy[-1]))


def _place(key: PRNGKeyArray, xy, cfg: DrawingConfig):
    """Shrink the drawing if it does not fit (with room for the widest stroke), then put it at a
    uniformly random position. Returns the placed vertices and the centre (image of the origin)."""
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    room = cfg.size - 2 * cfg.margin - cfg.width[1] * cfg.width_ref_factor_max
    scale = jnp.minimum(1.0, room / jnp.max(hi - lo))
    lo, hi, xy = lo * scale, hi * scale, xy * scale
    slack = jnp.maximum(room - (hi - lo), 0.0)
    offset = cfg.margin + 0.5 * (cfg.size - 2 * cfg.margin - room) + slack * jax.random.uniform(
        key, (2,), xy.dtype) - lo
    return xy + offset, offset


def _width(key: PRNGKeyArray, xy, cfg: DrawingConfig):
    """Stroke width ``w = u (L / length_ref)**(-ink_balance)``, ``u ~ U[width]``, clipped to the
    widest allowed stroke; ``L`` is the polygon length [px]."""
    length = jnp.sum(jnp.linalg.norm(jnp.diff(xy, axis=0), axis=-1))
    u = jax.random.uniform(key, (), xy.dtype, *cfg.width)
    factor = jnp.clip((length / cfg.length_ref) ** (-cfg.ink_balance),
                      1.0 / cfg.width_ref_factor_max, cfg.width_ref_factor_max)
    return u * factor


def render(curve: Float[Array, "P 2"], width: Float[Array, ""], size: int) -> Float[Array, "size size"]:
    """Anti-aliased stroke of a polygon: ``I = clip(w/2 + 1/2 - d, 0, 1)``.

    ``d`` is the distance [px] from a pixel centre (at integer + 1/2) to the polygon, so a pixel is
    fully inked inside the stroke of width ``w`` and fades linearly over one pixel at its edge.
    A closed curve repeats its first vertex last.
    """
    centres = (jnp.arange(size, dtype=curve.dtype) + 0.5)
    px = jnp.stack(jnp.meshgrid(centres, centres, indexing="xy"), axis=-1).reshape(-1, 2)
    a, ab = curve[:-1], jnp.diff(curve, axis=0)                         # (S, 2)
    rel = px[None, :, :] - a[:, None, :]                                  # (S, N, 2)
    h = jnp.clip(jnp.einsum("snk,sk->sn", rel, ab) / jnp.maximum(jnp.sum(ab**2, -1), 1e-12)[:, None],
                 0.0, 1.0)
    d2 = jnp.min(jnp.sum((rel - h[..., None] * ab[:, None, :]) ** 2, axis=-1), axis=0)
    img = jnp.clip(0.5 * width + 0.5 - jnp.sqrt(d2), 0.0, 1.0)
    return img.reshape(size, size)


def sample_drawings(key: PRNGKeyArray, n: int, cfg: DrawingConfig = DrawingConfig(),
                    labels: Int[Array, " B"] | None = None, dtype=None) -> Drawings:
    """Draw ``n`` images, with classes uniform over 0..W unless ``labels`` is given.

    Args:
        key: PRNG key.
        n: number of images (>= 1).
        cfg: the distribution of drawings.
        labels: optional ``(n,)`` integer classes in ``[0, W]``.
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`Drawings` with exact labels by construction.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    dtype = dtype or jnp.zeros(()).dtype
    k_lab, k_cur, k_w, k_pos = jax.random.split(key, 4)
    if labels is None:
        labels = jax.random.randint(k_lab, (n,), 0, cfg.n_classes)
    else:
        labels = jnp.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
        if int(labels.min()) < 0 or int(labels.max()) > cfg.max_winding:
            raise ValueError(f"labels must lie in [0, {cfg.max_winding}], got "
                             f"[{int(labels.min())}, {int(labels.max())}]")

    keys = [jax.random.split(k, n) for k in (k_cur, k_pos, k_w)]
    images, curves, centres, widths = _sample(*keys, labels, cfg, jnp.dtype(dtype))
    return Drawings(images=images, labels=labels, curves=curves, centres=centres, closed=labels > 0,
                    widths=widths)


@partial(jax.jit, static_argnums=(4, 5))
def _sample(k_cur, k_pos, k_w, labels, cfg: DrawingConfig, dtype):
    def one(args):
        kc, kp, kw, lab = args
        xy = _curve(kc, lab, cfg, dtype)
        xy, centre = _place(kp, xy, cfg)
        w = _width(kw, xy, cfg)
        return render(xy, w, cfg.size), xy, centre, w

    return jax.lax.map(one, (k_cur, k_pos, k_w, labels), batch_size=min(labels.shape[0], 16))


def winding_number(curve: Float[Array, "P 2"], centre: Float[Array, "2"]) -> Float[Array, ""]:
    """Total angle swept around ``centre`` along the polygon, in turns: ``sum_i dphi_i / (2 pi)``.

    ``dphi_i`` is the angle between consecutive vertices seen from the centre, wrapped to
    ``(-pi, pi]`` (exact as long as no edge passes through the centre). For a closed polygon
    (last vertex = first) the result is the integer winding number up to rounding; for an open
    one it is the fraction of a turn swept.
    """
    v = curve - centre
    phi = jnp.arctan2(v[:, 1], v[:, 0])
    d = jnp.diff(phi)
    d = jnp.mod(d + math.pi, 2 * math.pi) - math.pi
    return jnp.sum(d) / (2 * math.pi)


def topological_class(curve: Float[Array, "P 2"], centre: Float[Array, "2"],
                      close_tol: float = 1e-6) -> Int[Array, ""]:
    """Class of a drawn polygon: 0 if its endpoints are more than ``close_tol`` px apart (open),
    else the absolute winding number around ``centre``."""
    is_open = jnp.linalg.norm(curve[-1] - curve[0]) > close_tol
    w = jnp.abs(jnp.round(winding_number(curve, centre))).astype(jnp.int32)
    return jnp.where(is_open, 0, w)


def pixel_statistics(images: Float[Array, "B H W"]) -> Float[Array, "B 5"]:
    """Simple class-agnostic statistics of each image (the "trivial separability" check).

    Columns: total ink [px], inked area (pixels > 1/2), radius of gyration of the ink [px],
    diagonal of the ink's bounding box [px] (pixels > 0.05), peak intensity.
    """
    b, h, w = images.shape
    ys, xs = jnp.meshgrid(jnp.arange(h), jnp.arange(w), indexing="ij")
    ink = images.sum(axis=(1, 2))
    area = (images > 0.5).sum(axis=(1, 2))
    mx = (images * xs).sum(axis=(1, 2)) / ink
    my = (images * ys).sum(axis=(1, 2)) / ink
    rg = jnp.sqrt((images * ((xs - mx[:, None, None]) ** 2 + (ys - my[:, None, None]) ** 2))
                  .sum(axis=(1, 2)) / ink)
    mask = images > 0.05
    big = jnp.asarray(10 * max(h, w))
    xmax = jnp.where(mask, xs, -big).max(axis=(1, 2))
    xmin = jnp.where(mask, xs, big).min(axis=(1, 2))
    ymax = jnp.where(mask, ys, -big).max(axis=(1, 2))
    ymin = jnp.where(mask, ys, big).min(axis=(1, 2))
    diag = jnp.hypot(xmax - xmin, ymax - ymin)
    peak = images.max(axis=(1, 2))
    return jnp.stack([ink, area.astype(ink.dtype), rg, diag.astype(ink.dtype), peak], axis=-1)
