"""Asymmetric error bars as distributions: the split (two-piece) normal.

A published value ``median +a/-b`` (central credible level ``cl``) is represented by a
*two-piece normal* with mode ``loc``, scales ``s_lo`` (left) and ``s_hi`` (right) and mass
``p_lo`` to the left of ``loc``:

    p(x) = (2 p_lo / s_lo) phi((x - loc)/s_lo)          for x <  loc
    p(x) = (2 (1 - p_lo) / s_hi) phi((x - loc)/s_hi)    for x >= loc,      phi = N(0, 1) density.

* ``p_lo = s_lo/(s_lo + s_hi)`` (the default) is the classical, *continuous* split normal
  (Gibbons & Mylroie 1973; John 1982): ``p(x) = sqrt(2/pi)/(s_lo+s_hi) exp(-(x-loc)^2/(2 s^2))``
  with ``s = s_lo`` left of the mode and ``s_hi`` right of it. Its median is not its mode.
* ``p_lo = 1/2`` splits at the median (the "dimidiated" Gaussian of asymmetric error bars); the
  density jumps at ``loc`` unless ``s_lo = s_hi``.

:func:`split_normal_from_quantiles` solves (at load time, numpy/scipy) for the continuous split
normal whose median and central ``cl`` interval equal the published ones exactly. That is possible
only while the asymmetry ratio ``(upper - median)/(median - lower)`` lies strictly inside
``(1/r_max, r_max)`` with ``r_max(0.68) = 1.546`` and ``r_max(0.90) = 2.101``;
:func:`two_piece_from_quantiles` falls back to the median split beyond that (it always matches the
three quantiles exactly).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.special import ndtr, ndtri
from numpyro.distributions import constraints
from numpyro.distributions.util import promote_shapes
from scipy.optimize import brentq
from scipy.special import ndtri as np_ndtri

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _check_positive(name: str, value: Any) -> None:
    """Refuse non-positive scales when the value is concrete (skipped under jit)."""
    if isinstance(value, jax.core.Tracer):
        return
    arr = np.asarray(value)
    bad = ~(arr > 0)
    if np.any(bad):
        raise ValueError(f"SplitNormal: {name} must be > 0 (a standard deviation), got "
                         f"{arr[bad].ravel()[0].item()!r}" + (f" in {arr.tolist()!r}" if arr.ndim else ""))


def _check_unit(name: str, value: Any) -> None:
    if isinstance(value, jax.core.Tracer):
        return
    arr = np.asarray(value)
    bad = ~((arr > 0) & (arr < 1))
    if np.any(bad):
        raise ValueError(f"SplitNormal: {name} must lie in (0, 1), got {arr[bad].ravel()[0].item()!r}")


class SplitNormal(dist.Distribution):
    """Two-piece normal with mode ``loc`` and scales ``scale_lo`` / ``scale_hi`` (module docstring).

    Args:
        loc: the mode (where the two halves meet), any real.
        scale_lo: standard deviation of the left half (``> 0``).
        scale_hi: standard deviation of the right half (``> 0``).
        p_lo: probability mass left of ``loc``, in ``(0, 1)``; ``None`` (default) gives the
            continuous split normal ``p_lo = scale_lo/(scale_lo + scale_hi)``.

    All arguments broadcast to a common batch shape; the event shape is ``()``.
    Non-positive scales raise a ``ValueError`` naming the value (outside ``jit``; under ``jit`` the
    values are not concrete and are not checked).
    """

    arg_constraints = {"loc": constraints.real, "scale_lo": constraints.positive,
                       "scale_hi": constraints.positive, "p_lo": constraints.open_interval(0.0, 1.0)}
    support = constraints.real
    reparametrized_params = ["loc", "scale_lo", "scale_hi"]

    def __init__(self, loc, scale_lo, scale_hi, p_lo=None, *, validate_args: bool | None = None):
        _check_positive("scale_lo", scale_lo)
        _check_positive("scale_hi", scale_hi)
        if p_lo is None:
            p_lo = jnp.asarray(scale_lo) / (jnp.asarray(scale_lo) + jnp.asarray(scale_hi))
        else:
            _check_unit("p_lo", p_lo)
        batch_shape = jax.lax.broadcast_shapes(jnp.shape(loc), jnp.shape(scale_lo),
                                               jnp.shape(scale_hi), jnp.shape(p_lo))
        self.loc, self.scale_lo, self.scale_hi, self.p_lo = promote_shapes(
            loc, scale_lo, scale_hi, p_lo, shape=batch_shape)
        super().__init__(batch_shape=batch_shape, validate_args=validate_args)

    def log_prob(self, value):
        """``log p(value)`` [nats, per unit of ``value``]."""
        left = value < self.loc
        s = jnp.where(left, self.scale_lo, self.scale_hi)
        w = jnp.where(left, self.p_lo, 1.0 - self.p_lo)
        z = (value - self.loc) / s
        return jnp.log(2.0 * w) - jnp.log(s) - _HALF_LOG_2PI - 0.5 * z**2

    def cdf(self, value):
        left = value < self.loc
        zl = (value - self.loc) / self.scale_lo
        zh = (value - self.loc) / self.scale_hi
        return jnp.where(left, 2.0 * self.p_lo * ndtr(zl),
                         self.p_lo + 2.0 * (1.0 - self.p_lo) * (ndtr(zh) - 0.5))

    def icdf(self, q):
        left = q < self.p_lo
        # clip both branch arguments into (0, 1) so the unused branch is finite (safe gradients)
        tiny = jnp.finfo(jnp.result_type(q, float)).tiny
        ql = jnp.clip(q / (2.0 * self.p_lo), tiny, 0.5)
        qh = jnp.clip(0.5 + (q - self.p_lo) / (2.0 * (1.0 - self.p_lo)), 0.5, 1.0 - 1e-16)
        return jnp.where(left, self.loc + self.scale_lo * ndtri(ql),
                         self.loc + self.scale_hi * ndtri(qh))

    def sample(self, key, sample_shape=()):
        """Inverse-cdf sampling (reparametrized in ``loc``, ``scale_lo``, ``scale_hi``)."""
        shape = tuple(sample_shape) + self.batch_shape
        dtype = jnp.result_type(self.loc, float)
        u = jax.random.uniform(key, shape, dtype=dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
        return self.icdf(u)

    @property
    def mean(self):
        return self.loc + math.sqrt(2.0 / math.pi) * (
            (1.0 - self.p_lo) * self.scale_hi - self.p_lo * self.scale_lo)

    @property
    def variance(self):
        m2 = self.p_lo * self.scale_lo**2 + (1.0 - self.p_lo) * self.scale_hi**2
        return m2 - (self.mean - self.loc) ** 2


# ----------------------------------------------------------------------------- quantile matching

def _g(p: float, w: float) -> float:
    """Quantile ``p`` of the unit-total-scale split normal with left mass ``w`` (mode at 0)."""
    if p < w:
        return w * float(np_ndtri(p / (2.0 * w)))
    return (1.0 - w) * float(np_ndtri(0.5 + (p - w) / (2.0 * (1.0 - w))))


def _check_quantiles(median: float, lower: float, upper: float, cl: float) -> None:
    for name, v in (("median", median), ("lower", lower), ("upper", upper), ("cl", cl)):
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v!r}")
    if not 0.0 < cl < 1.0:
        raise ValueError(f"cl (central credible level) must lie in (0, 1), got {cl!r}")
    if not lower < median < upper:
        raise ValueError(f"need lower < median < upper, got lower={lower!r}, median={median!r}, "
                         f"upper={upper!r}")


def max_asymmetry(cl: float) -> float:
    """Largest ratio ``(upper - median)/(median - lower)`` a continuous split normal can reach at
    central level ``cl`` (the half-normal limit); the smallest is its inverse."""
    pl, pu = (1.0 - cl) / 2.0, (1.0 + cl) / 2.0
    z50 = float(np_ndtri(0.75))
    return (float(np_ndtri(0.5 + pu / 2.0)) - z50) / (z50 - float(np_ndtri(0.5 + pl / 2.0)))


def split_normal_from_quantiles(median: float, lower: float, upper: float,
                                cl: float) -> tuple[float, float, float]:
    """The continuous split normal with the given median and central ``cl`` interval.

    Solves ``F(lower) = (1-cl)/2``, ``F(median) = 1/2``, ``F(upper) = (1+cl)/2`` exactly (1-D root
    find for the left mass ``w = s_lo/(s_lo+s_hi)`` on the asymmetry ratio, then the scale and the
    mode in closed form). ``lower``/``upper`` are the interval endpoints (absolute values).

    Returns:
        ``(loc, scale_lo, scale_hi)``: the mode (not the median unless symmetric) and the scales.

    Raises:
        ValueError: if the asymmetry ratio lies outside what a continuous split normal can reach
            (see :func:`max_asymmetry`); use :func:`two_piece_from_quantiles` for those.
    """
    median, lower, upper, cl = float(median), float(lower), float(upper), float(cl)
    _check_quantiles(median, lower, upper, cl)
    pl, pu = (1.0 - cl) / 2.0, (1.0 + cl) / 2.0
    rho = (upper - median) / (median - lower)
    rmax = max_asymmetry(cl)
    if abs(math.log(rho)) >= math.log(rmax) * (1.0 - 1e-9):
        raise ValueError(
            f"no continuous split normal has median {median!r} and {cl:g} interval "
            f"[{lower!r}, {upper!r}]: the asymmetry ratio (upper-median)/(median-lower) = {rho:.4g} "
            f"must lie in ({1 / rmax:.4g}, {rmax:.4g}); use two_piece_from_quantiles (splits at "
            f"the median) instead")
    if rho == 1.0:
        w = 0.5
    else:
        def f(w: float) -> float:
            g50 = _g(0.5, w)
            return math.log((_g(pu, w) - g50) / (g50 - _g(pl, w))) - math.log(rho)
        w = brentq(f, 1e-15, 1.0 - 1e-15, xtol=1e-15, rtol=1e-15, maxiter=500)
    total = (upper - lower) / (_g(pu, w) - _g(pl, w))
    loc = median - total * _g(0.5, w)
    return loc, w * total, (1.0 - w) * total


def two_piece_from_quantiles(median: float, lower: float, upper: float, cl: float,
                             family: str = "auto") -> tuple[float, float, float, float]:
    """Two-piece normal ``(loc, scale_lo, scale_hi, p_lo)`` with the given median and interval.

    Args:
        family: ``"continuous"`` (the split normal of :func:`split_normal_from_quantiles`; raises
            if unreachable), ``"median_split"`` (``loc = median``, ``p_lo = 1/2``,
            ``scale_lo = (median-lower)/z``, ``scale_hi = (upper-median)/z``, ``z = Phi^-1((1+cl)/2)``;
            always exists, density jumps at the median), or ``"auto"`` (continuous when it exists,
            else median split).
    """
    if family not in ("auto", "continuous", "median_split"):
        raise ValueError(f"family must be 'auto', 'continuous' or 'median_split', got {family!r}")
    median, lower, upper, cl = float(median), float(lower), float(upper), float(cl)
    _check_quantiles(median, lower, upper, cl)
    rho = (upper - median) / (median - lower)
    if family == "continuous" or (family == "auto"
                                  and abs(math.log(rho)) < math.log(max_asymmetry(cl)) * (1 - 1e-9)):
        loc, s_lo, s_hi = split_normal_from_quantiles(median, lower, upper, cl)
        return loc, s_lo, s_hi, s_lo / (s_lo + s_hi)
    z = float(np_ndtri((1.0 + cl) / 2.0))
    return median, (median - lower) / z, (upper - median) / z, 0.5


def two_piece_cdf(x, loc, scale_lo, scale_hi, p_lo):
    """Cdf of the two-piece normal in numpy float64 (for checks and credible regions)."""
    from scipy.special import ndtr as np_ndtr
    x = np.asarray(x, dtype=float)
    return np.where(x < loc, 2.0 * p_lo * np_ndtr((x - loc) / scale_lo),
                    p_lo + 2.0 * (1.0 - p_lo) * (np_ndtr((x - loc) / scale_hi) - 0.5))


def two_piece_icdf(q, loc, scale_lo, scale_hi, p_lo):
    """Quantile function of the two-piece normal in numpy float64."""
    q = np.asarray(q, dtype=float)
    ql = np.clip(q / (2.0 * p_lo), 1e-300, 0.5)
    qh = np.clip(0.5 + (q - p_lo) / (2.0 * (1.0 - p_lo)), 0.5, 1.0)
    return np.where(q < p_lo, loc + scale_lo * np_ndtri(ql), loc + scale_hi * np_ndtri(qh))
