"""Conditional coupling flows built for cheap sampling (flowjax distributions and bijections).

Layer: core (pure JAX/Equinox; never imports models, inference, studies or cli).

A coupling layer splits the vector ``x`` (length ``dim``) into ``fixed`` entries, copied, and
``moved`` entries, each mapped by a monotone rational-quadratic spline (Durkan et al. 2019,
arXiv:1906.04032, eqs. 4-8) -- or by an affine map -- whose parameters one conditioner network
computes from ``(x[fixed], condition)``. :class:`SplineCoupling` is one layer as a flowjax
``AbstractBijection``; :class:`CouplingFlow` (built by :func:`coupling_flow`) stacks layers on a
standard normal as a flowjax ``AbstractTransformed`` distribution.

Written for the cost of posterior draws (the amortized posterior of
:func:`bayesqcd.inference.fit_npe`). On 2 CPU cores, 4000 draws of 3 targets conditioned on 20
data points with 5 layers, width 64 and 8 knots took 13-16 ms with flowjax's own
``coupling_flow`` (a scalar spline bijection ``vmap``-ped per entry and per draw) and take about
3.5 ms here, from four changes, each measured:

* **feature-first batches**: ``sample`` and ``log_prob`` run all draws at once with the batch
  on the *last* axis, so each spline parameter is a contiguous vector (3.7x faster splines than
  with the parameters along a short last axis);
* **unrolled bins**: the knots' cumulative sums, the bin search and the gathers are written
  per bin as element-wise selects, not as reductions, ``searchsorted`` and gathers;
* **cheap non-linearities**: ``elu + 1`` for positive spline parameters (one exponential;
  softplus costs two transcendentals) and squareplus as the activation (a square root; silu's
  exponential per hidden unit and draw was most of an affine layer's cost); the flows learn
  nearly as well as flowjax's (the oscillator of ``benchmarks/amortized.py``, four trainings:
  validation loss -2.92 to -2.97 against -3.02; NPE widths 1.1-2.2x NUTS's, depending on the
  training seed, against 1.1-1.9x);
* **the condition once**: the first layer is split, ``W_x x[fixed] + W_c c + b``, and ``W_c c``
  is computed once per condition however many draws share it; the networks compute in
  float32 (``dtype``), while the splines map in the inputs' precision, so the flow stays an
  exact bijection with an exact log-density whatever the networks' rounding.

The spline acts on ``[-interval, interval]`` and is the identity outside (derivative 1 at both
ends, so the density is continuous there); inside, ``knots`` inner knots make ``knots + 1``
bins. Zero-initialized output weights start every layer at the identity.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from flowjax.bijections import AbstractBijection, Chain
from flowjax.distributions import AbstractTransformed, StandardNormal
from jaxtyping import Array, Float, PRNGKeyArray

MIN_BIN = 1e-3
"""Smallest bin width and height, as a fraction of the interval's length / number of bins."""
MIN_DERIVATIVE = 1e-3
"""Smallest spline derivative at an inner knot."""


def positive(r: Array) -> Array:
    """``elu(r) + 1``: ``exp(r)`` for ``r <= 0``, ``1 + r`` above; increasing onto (0, inf),
    continuous slope, 1 at 0. Small values cost small ``r`` (as with softmax), large ones
    grow linearly (no overflow); one exponential, where softplus needs two transcendentals."""
    return jnp.where(r > 0, r + 1.0, jnp.exp(jnp.minimum(r, 0.0)))


def activation(h: Array) -> Array:
    """The conditioners' activation: ``squareplus(h, 1) = (h + sqrt(h^2 + 1)) / 2``, a smooth
    ReLU with one square root where silu needs an exponential (which dominated a layer's
    cost: one per hidden unit and draw); ``b = 1`` gives it silu's curvature at 0 (1/4)."""
    return jax.nn.squareplus(h, 1.0)


def _knot_positions(raw: list[Array], bound: float) -> list[Array]:
    """Increasing knot positions ``-bound = p_0 < ... < p_B = bound`` (``B = len(raw)`` bins)
    with bin sizes ``MIN_BIN + (1 - B MIN_BIN) positive(raw_j) / sum positive(raw)`` of
    ``2 bound`` (equal at ``raw = 0``). Bins are unrolled (a list of arrays shaped like the
    inputs): every operation is element-wise over the batch, which is several times faster
    on CPU than reductions, cumulative sums and gathers along a short last axis."""
    n_bins = len(raw)
    w = [positive(r) for r in raw]
    total = w[0]
    for wj in w[1:]:
        total = total + wj
    scale = 2.0 * bound * (1.0 - MIN_BIN * n_bins) / total
    pos = [jnp.full_like(total, -bound)]
    for wj in w[:-1]:
        pos.append(pos[-1] + 2.0 * bound * MIN_BIN + wj * scale)
    return [*pos, jnp.full_like(total, bound)]


def rational_quadratic(x: Float[Array, " *batch"], params: Float[Array, "P *batch"], bound: float,
                       inverse: bool = False) -> tuple[Float[Array, " *batch"], Float[Array, " *batch"]]:
    """Monotone rational-quadratic splines applied element-wise, and their derivatives.

    Args:
        x: inputs, one per spline (dimensionless, standardized space).
        params: per spline, along the *first* axis (so that each parameter is a contiguous
            array over the batch), ``B`` bin-width and ``B`` bin-height pre-activations and
            ``B - 1`` inner-knot derivative pre-activations (``P = 3B - 1``; ``B`` bins).
        bound: the splines map ``[-bound, bound]`` onto itself; identity outside.
        inverse: apply the inverse splines instead.

    Returns:
        ``(y, dy/dx)`` of the applied map (``inverse``: of the inverse map).
    """
    n_bins = (params.shape[0] + 1) // 3
    col = list(params)
    one = jnp.ones_like(col[0])
    knots = [*_knot_positions(col[:n_bins], bound), *_knot_positions(col[n_bins:2 * n_bins], bound),
             one, *(MIN_DERIVATIVE + (1.0 - MIN_DERIVATIVE) * positive(c) for c in col[2 * n_bins:]), one]
    # knots and derivatives in the parameters' precision, the map in the inputs'
    knots = [k.astype(x.dtype) for k in knots]
    xs, ys, ds = knots[:n_bins + 1], knots[n_bins + 1:2 * n_bins + 2], knots[2 * n_bins + 2:]
    inside = jnp.abs(x) <= bound
    xc = jnp.clip(x, -bound, bound)
    search = ys if inverse else xs
    x0, x1, y0, y1, d0, d1 = xs[0], xs[1], ys[0], ys[1], ds[0], ds[1]
    for j in range(1, n_bins):  # the bin holding xc: the last knot at or below it
        above = xc >= search[j]
        x0, x1 = jnp.where(above, xs[j], x0), jnp.where(above, xs[j + 1], x1)
        y0, y1 = jnp.where(above, ys[j], y0), jnp.where(above, ys[j + 1], y1)
        d0, d1 = jnp.where(above, ds[j], d0), jnp.where(above, ds[j + 1], d1)
    width, height = x1 - x0, y1 - y0
    s = height / width
    if inverse:
        dy = xc - y0
        a = height * (s - d0) + dy * (d1 + d0 - 2 * s)
        b = height * d0 - dy * (d1 + d0 - 2 * s)
        c = -s * dy
        xi = 2 * c / (-b - jnp.sqrt(jnp.maximum(b * b - 4 * a * c, 0.0)))
    else:
        xi = (xc - x0) / width
    t = xi * (1 - xi)
    den = s + (d1 + d0 - 2 * s) * t
    deriv = s * s * (d1 * xi * xi + 2 * s * t + d0 * (1 - xi) ** 2) / (den * den)
    if inverse:
        out = x0 + xi * width
        deriv = 1.0 / deriv
    else:
        out = y0 + height * (s * xi * xi + d0 * t) / den
    return jnp.where(inside, out, x), jnp.where(inside, deriv, 1.0)


def _affine(x: Float[Array, " *batch"], params: Float[Array, "2 *batch"], inverse: bool = False):
    """``y = x * scale + shift`` element-wise and ``dy/dx``; ``scale > 0`` from
    :func:`positive` (1 at zero params)."""
    scale = (MIN_DERIVATIVE + (1.0 - MIN_DERIVATIVE) * positive(params[0])).astype(x.dtype)
    shift = params[1].astype(x.dtype)
    if inverse:
        return (x - shift) / scale, 1.0 / scale
    return x * scale + shift, scale


class SplineCoupling(AbstractBijection):
    """One coupling layer: ``x[moved]`` through splines (or affine maps) whose parameters a
    squareplus network computes from ``(x[fixed], condition)``; ``x[fixed]`` unchanged.

    Attributes:
        shape, cond_shape: flowjax shapes (``(dim,)``, ``(cond_dim,)`` or ``None``).
        fixed, moved: the entries copied and transformed.
        knots: inner spline knots (``0``: affine maps); interval: spline bound.
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    cond_shape: tuple[int, ...] | None = eqx.field(static=True)
    fixed: tuple[int, ...] = eqx.field(static=True)
    moved: tuple[int, ...] = eqx.field(static=True)
    knots: int = eqx.field(static=True)
    interval: float = eqx.field(static=True)
    dtype: str = eqx.field(static=True)
    w_fixed: Array
    w_cond: Array
    b_in: Array
    hidden: tuple[eqx.nn.Linear, ...]
    w_out: Array
    b_out: Array

    def __init__(self, key: PRNGKeyArray, dim: int, cond_dim: int | None, fixed: tuple[int, ...], *,
                 knots: int = 8, interval: float = 4.0, width: int = 64, depth: int = 1,
                 dtype: str = "float32"):
        if sorted(set(fixed)) != sorted(fixed) or not all(0 <= i < dim for i in fixed) or len(fixed) >= dim:
            raise ValueError(f"fixed = {fixed} must be distinct entries of range({dim}), leaving at least one to move")
        self.shape, self.cond_shape = (dim,), None if cond_dim is None else (cond_dim,)
        self.fixed = tuple(int(i) for i in fixed)
        self.moved = tuple(i for i in range(dim) if i not in self.fixed)
        self.knots, self.interval, self.dtype = int(knots), float(interval), str(jnp.dtype(dtype))
        n_in = len(self.fixed) + (cond_dim or 0)
        k_in, *k_hidden = jax.random.split(key, depth)
        lim = 1.0 / math.sqrt(max(n_in, 1))
        w_in = jax.random.uniform(k_in, (n_in, width), minval=-lim, maxval=lim, dtype=dtype)
        self.w_fixed, self.w_cond = w_in[:len(self.fixed)], w_in[len(self.fixed):]
        self.b_in = jnp.zeros(width, dtype)
        self.hidden = tuple(eqx.nn.Linear(width, width, key=k, dtype=dtype) for k in k_hidden)
        n_par = 3 * (knots + 1) - 1 if knots else 2
        self.w_out = jnp.zeros((width, len(self.moved) * n_par), dtype)
        self.b_out = jnp.zeros(len(self.moved) * n_par, dtype)

    def condition_term(self, condition: Float[Array, "*cb C"] | None, n_batch: int) -> Array:
        """The condition's part of the first hidden layer, ``W_c^T c + b`` ``(width, *ones, *cb)``,
        shaped to broadcast against ``n_batch`` trailing batch axes: computed once per
        condition, however many draws share it."""
        if condition is None:
            return self.b_in.reshape(-1, *([1] * n_batch))
        term = jnp.moveaxis(condition.astype(self.dtype) @ self.w_cond, -1, 0) + self.b_in.reshape(
            -1, *([1] * (condition.ndim - 1)))
        return term.reshape(term.shape[0], *([1] * (n_batch - condition.ndim + 1)), *term.shape[1:])

    def apply_batch(self, x: Float[Array, "dim *batch"], cond: Array, inverse: bool = False
            ) -> tuple[Float[Array, "dim *batch"], Float[Array, " *batch"]]:
        """The layer (or its inverse) on a batch laid out feature-first, and ``log|det J|``.

        Args:
            x: ``(dim, *batch)``: each entry a contiguous array over the batch, so that every
                spline operation is a vector operation.
            cond: :meth:`condition_term` for these ``batch`` axes.
            inverse: apply the inverse layer.
        """
        rows = list(x)
        h = cond
        if self.fixed:
            x_fixed = jnp.stack([rows[i] for i in self.fixed]).astype(self.dtype)
            h = h + jnp.einsum("fw,f...->w...", self.w_fixed, x_fixed)
        h = activation(h)
        for layer in self.hidden:
            h = activation(jnp.einsum("vw,w...->v...", layer.weight, h)
                           + layer.bias.reshape(-1, *([1] * (h.ndim - 1))))
        out = jnp.einsum("wo,w...->o...", self.w_out, h) + self.b_out.reshape(-1, *([1] * (h.ndim - 1)))
        n_par = out.shape[0] // len(self.moved)
        log_det = 0.0
        for j, i in enumerate(self.moved):
            par = out[j * n_par:(j + 1) * n_par]
            if self.knots:
                rows[i], d = rational_quadratic(rows[i], par, self.interval, inverse)
            else:
                rows[i], d = _affine(rows[i], par, inverse)
            log_det = log_det + jnp.log(d)  # (a product of many derivatives could under- or overflow)
        return jnp.stack(rows), log_det

    def transform_and_log_det(self, x, condition=None):
        y, log_det = self.apply_batch(x[:, None], self.condition_term(condition, 1))
        return y[:, 0], log_det[0]

    def inverse_and_log_det(self, y, condition=None):
        x, log_det = self.apply_batch(y[:, None], self.condition_term(condition, 1), inverse=True)
        return x[:, 0], log_det[0]


def fixed_entries(dim: int, layer: int) -> tuple[int, ...]:
    """The entries copied by coupling layer ``layer`` of a ``dim``-dimensional flow:
    ``dim // 2`` consecutive entries (cyclically), starting ``ceil(dim / 2)`` further on in
    each layer, so that with ``dim`` odd every entry is moved and conditions in turn, and
    with ``dim`` even the two halves alternate. ``dim = 1``: none (the condition only)."""
    start = layer * ((dim + 1) // 2)
    return tuple(sorted((start + j) % dim for j in range(dim // 2)))


class CouplingFlow(AbstractTransformed):
    """A flowjax distribution: :class:`SplineCoupling` layers on a standard normal.

    ``sample``, ``log_prob`` and ``sample_and_log_prob`` run the whole batch at once, laid
    out feature-first (what makes the layers fast); the per-draw methods of flowjax's
    ``AbstractTransformed`` (``_sample``, ``_log_prob``) give the same numbers.

    Attributes:
        base_dist: ``StandardNormal((dim,))``; bijection: a ``Chain`` of the layers.
    """

    base_dist: StandardNormal
    bijection: Chain

    def _layers(self) -> list[SplineCoupling]:
        return list(self.bijection.bijections)

    def _check(self, condition: Array | None) -> Array | None:
        if (condition is None) != (self.cond_shape is None):
            raise ValueError(f"condition must be {'None' if self.cond_shape is None else 'given'} for this flow")
        if condition is not None:
            condition = jnp.asarray(condition)
            if condition.shape[-1:] != self.cond_shape:
                raise ValueError(f"condition of shape {condition.shape}: its last axis must be {self.cond_shape}")
        return condition

    def _forward(self, key: PRNGKeyArray, sample_shape: tuple[int, ...], condition: Array | None):
        condition = self._check(condition)
        batch = (*sample_shape, *(() if condition is None else condition.shape[:-1]))
        z = jax.random.normal(key, (self.shape[0], *batch))
        log_q = -0.5 * jnp.sum(z * z, 0) - 0.5 * self.shape[0] * math.log(2 * math.pi)
        for layer in self._layers():
            z, log_det = layer.apply_batch(z, layer.condition_term(condition, len(batch)))
            log_q = log_q - log_det
        return jnp.moveaxis(z, 0, -1), log_q

    def sample(self, key: PRNGKeyArray, sample_shape: tuple[int, ...] = (), condition: Array | None = None) -> Array:
        """Draws ``sample_shape + condition_batch_shape + (dim,)`` (flowjax's convention)."""
        return self._forward(key, tuple(sample_shape), condition)[0]

    def sample_and_log_prob(self, key: PRNGKeyArray, sample_shape: tuple[int, ...] = (),
                            condition: Array | None = None) -> tuple[Array, Array]:
        """Draws and their log densities."""
        return self._forward(key, tuple(sample_shape), condition)

    def log_prob(self, x: Array, condition: Array | None = None) -> Array:
        """``log q(x | condition)`` over the broadcast batch axes of ``x`` and ``condition``."""
        condition = self._check(condition)
        x = jnp.asarray(x)
        batch = jnp.broadcast_shapes(x.shape[:-1], () if condition is None else condition.shape[:-1])
        z = jnp.moveaxis(jnp.broadcast_to(x, (*batch, self.shape[0])), -1, 0)
        log_det = 0.0
        for layer in reversed(self._layers()):
            z, ld = layer.apply_batch(z, layer.condition_term(condition, len(batch)), inverse=True)
            log_det = log_det + ld
        return -0.5 * jnp.sum(z * z, 0) - 0.5 * self.shape[0] * math.log(2 * math.pi) + log_det


def coupling_flow(key: PRNGKeyArray, dim: int, cond_dim: int | None = None, *, layers: int = 5, knots: int = 8,
                  interval: float = 4.0, width: int = 64, depth: int = 1, dtype: str = "float32") -> CouplingFlow:
    """:class:`CouplingFlow` of ``layers`` :class:`SplineCoupling` layers on a standard normal of
    ``dim`` entries, conditioned on ``cond_dim`` entries (``None``: unconditional)."""
    keys = jax.random.split(key, layers)
    bijections = [SplineCoupling(k, dim, cond_dim, fixed_entries(dim, i), knots=knots, interval=interval,
                                 width=width, depth=depth, dtype=dtype) for i, k in enumerate(keys)]
    return CouplingFlow(StandardNormal((dim,)), Chain(bijections))
