"""Exact scores and closed forms for testing the diffusion machinery without training.

* :class:`GaussianMixture`: a mixture of diagonal Gaussians with ``log_prob`` and ``sample``;
  it is also the prior type (``N(0, I)`` is :func:`standard_normal`).
* :class:`MixtureScore`: the exact score ``grad log p_t`` of mixture data diffused by a linear
  SDE (``p_t`` is again a mixture: means ``alpha_t mu_k``, variances
  ``alpha_t^2 s_k^2 + sigma_t^2``), optionally scaled by ``1 + eps`` (a deliberately wrong
  score, as in the paper's 1-D analytic model).
* :func:`analytic_model_nll`: the closed-form NLL of the paper's 1-D model at any ``h``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from bayesqcd.diffusion.sde import LinearSDE


class GaussianMixture(eqx.Module):
    """``sum_k w_k N(mu_k, diag(s_k^2))`` in ``d`` dimensions.

    Attributes:
        weights: ``(K,)`` non-negative mixture weights (normalised on use).
        means: ``(K, d)`` component means.
        stds: ``(K, d)`` component standard deviations (> 0).
    """

    weights: Float[Array, " K"]
    means: Float[Array, "K d"]
    stds: Float[Array, "K d"]

    def __init__(self, weights: ArrayLike, means: ArrayLike, stds: ArrayLike):
        means = jnp.atleast_2d(jnp.asarray(means, dtype=float))
        self.weights = jnp.broadcast_to(jnp.asarray(weights, dtype=float), means.shape[:1])
        self.means = means
        self.stds = jnp.broadcast_to(jnp.asarray(stds, dtype=float), means.shape)
        if not isinstance(self.stds, jax.core.Tracer) and bool(jnp.any(self.stds <= 0)):
            raise ValueError(f"stds must be > 0, got {self.stds}")

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def log_prob(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """Log density at one point ``x``."""
        z = (x - self.means) / self.stds
        comp = -0.5 * jnp.sum(z**2 + jnp.log(2 * jnp.pi * self.stds**2), axis=-1)
        logw = jnp.log(self.weights) - jnp.log(jnp.sum(self.weights))
        return jax.scipy.special.logsumexp(logw + comp)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        """``n`` independent draws."""
        kc, kz = jax.random.split(key)
        k = jax.random.categorical(kc, jnp.log(self.weights), shape=(n,))
        z = jax.random.normal(kz, (n, self.dim), dtype=self.means.dtype)
        return self.means[k] + self.stds[k] * z

    def mean(self) -> Float[Array, " d"]:
        w = self.weights / jnp.sum(self.weights)
        return w @ self.means

    def cov(self) -> Float[Array, "d d"]:
        w = self.weights / jnp.sum(self.weights)
        m = self.mean()
        second = jnp.einsum("k,ki,kj->ij", w, self.means, self.means) + jnp.diag(w @ self.stds**2)
        return second - jnp.outer(m, m)

    def diffused(self, sde: LinearSDE, t: ArrayLike) -> GaussianMixture:
        """The marginal ``p_t`` of this data under ``sde`` at time ``t``."""
        a = sde.alpha(t)
        return GaussianMixture(self.weights, a * self.means,
                               jnp.sqrt(a**2 * self.stds**2 + sde.sigma2(t)))


def standard_normal(d: int) -> GaussianMixture:
    """The prior ``pi = N(0, I_d)`` of the generating processes."""
    return GaussianMixture(jnp.ones(1), jnp.zeros((1, d)), jnp.ones((1, d)))


class MixtureScore(eqx.Module):
    """Exact score ``s(x, t) = (1 + eps) grad_x log p_t(x)`` of mixture data under ``sde``."""

    data: GaussianMixture
    sde: LinearSDE
    eps: float = 0.0

    def log_marginal(self, x: Float[Array, " d"], t: ArrayLike) -> Float[Array, ""]:
        """``log p_t(x)``: the exact diffused data density."""
        return self.data.diffused(self.sde, t).log_prob(x)

    def __call__(self, x: Float[Array, " d"], t: ArrayLike) -> Float[Array, " d"]:
        return (1.0 + self.eps) * jax.grad(self.log_marginal)(x, t)


def analytic_model_nll(x0: ArrayLike, h: ArrayLike, *, v0: float, eps: float, beta: float,
                       T: float, prior_var: float = 1.0) -> Float[Array, "..."]:
    """Closed-form NLL of the paper's 1-D analytic model under the h-process.

    Data ``N(0, v0)``, forward SDE ``f = -beta x/2``, ``g^2 = beta``, so
    ``v_t = 1 + c e^{-beta t}`` with ``c = v0 - 1``; score model ``s = -(1 + eps) x / v_t``;
    prior ``N(0, prior_var)`` at ``t = T``. The h-process
    ``dx = [f - (1+h)/2 g^2 s] dt + sqrt(h) g dw_bar`` is linear, so its marginal is
    ``N(0, w_t)`` with ``dw/dt = 2 b(t) w - h beta`` (run from ``T`` down to 0),
    ``b = -beta/2 + k beta/(2 v_t)``, ``k = (1+h)(1+eps)``. With ``Y = e^{beta T}``,
    ``int_0^s beta/v = log((e^{beta s} + c)/v0)`` and

        w_0 = prior_var Y (v0/(Y + c))^k + h v0^k [(Y + c)^{1-k} - v0^{1-k}] / (1 - k)

    (``log((Y + c)/v0)`` replaces the bracket over ``1 - k`` at ``k = 1``).
    Returns ``-log N(x0; 0, w_0)``.
    """
    h = jnp.asarray(h, dtype=float)
    k = (1.0 + h) * (1.0 + eps)
    c = v0 - 1.0
    Y = jnp.exp(beta * T)
    one_minus_k = 1.0 - k
    near_one = jnp.abs(one_minus_k) < 1e-10
    safe = jnp.where(near_one, 1.0, one_minus_k)
    bracket = jnp.where(near_one, jnp.log((Y + c) / v0),
                        ((Y + c) ** safe - v0**safe) / safe)
    w0 = prior_var * Y * (v0 / (Y + c)) ** k + h * v0**k * bracket
    x0 = jnp.asarray(x0, dtype=float)
    return 0.5 * jnp.log(2 * jnp.pi * w0) + 0.5 * x0**2 / w0
