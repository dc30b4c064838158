"""Linear (variance-preserving) forward SDEs ``dx = f(t) x dt + g(t) dw``.

Every schedule here has a linear drift ``f(x, t) = f(t) x`` and a state-independent
diffusion ``g(t)``, so the transition kernel is Gaussian:
``p(x_t | x_0) = N(alpha_t x_0, sigma_t^2 I)`` with ``alpha_t = exp(int_0^t f)`` and
``sigma_t^2 = 1 - alpha_t^2`` (variance preserving: ``d sigma^2/dt = 2 f sigma^2 + g^2``).
The prior of the generating processes is ``pi = N(0, I)``. Time is dimensionless.

**The window** ``[t_min, T]`` of a schedule is the one definition of where the score model lives:
training draws ``t`` uniformly in it (:func:`~bayesqcd.diffusion.dsm_loss`), the generating
processes run from ``T`` down to ``t_min`` (:func:`~bayesqcd.diffusion.sample_h`), and the NLL
and WKB integrals run from ``t_min`` to ``T`` (:mod:`~bayesqcd.diffusion.likelihood`); none of
them evaluates the score outside it. The paper's schedules start at ``t_min = 0.01``, where its
score was trained (below that the network would be extrapolating); change the window with
:meth:`LinearSDE.with_window`.

Schedules (Hirono, Tanaka, Fukushima, ICML 2024; Song et al. 2021):

* :class:`Simple`: ``f = -(beta/2) t``, ``g^2 = beta t``, ``alpha_t = exp(-beta t^2/4)``;
  window ``[0.01, 1]``.
* :class:`Cosine`: ``f = -(pi/2) tan(pi t/2)``, ``g^2 = pi tan(pi t/2)``,
  ``alpha_t = cos(pi t/2)``; window ``[0.01, 1 - 1e-3]``.
* :class:`VP`: ``beta(t) = beta_min + t (beta_max - beta_min)``, ``f = -beta(t)/2``,
  ``g^2 = beta(t)``, ``alpha_t = exp(-(beta_min t + (beta_max - beta_min) t^2/2)/2)``;
  window ``[1e-5, 1]`` (Song et al.).
* :class:`ConstantVP`: constant ``beta``: the paper's 1-D analytic model; window ``[0, 1]``.
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


class LinearSDE(eqx.Module):
    """Base type of the forward SDEs ``dx = f(t) x dt + g(t) dw`` on the window ``[t_min, T]``
    (training, sampling and likelihood all use this window; see the module docstring)."""

    T: float = eqx.field(static=True, default=1.0)
    t_min: float = eqx.field(static=True, default=0.0)

    @property
    def window(self) -> tuple[float, float]:
        """``(t_min, T)``: the time window of training, sampling and likelihood."""
        return float(self.t_min), float(self.T)

    def with_window(self, t_min: float | None = None, T: float | None = None) -> LinearSDE:
        """The same schedule on another window (``None`` keeps that end); validated like the
        constructor (``0 <= t_min < T``)."""
        changes = {k: float(v) for k, v in (("t_min", t_min), ("T", T)) if v is not None}
        return dataclasses.replace(self, **changes)

    def f(self, t: ArrayLike) -> Float[Array, ""]:
        """Drift coefficient ``f(t)`` (the drift is ``f(t) x``)."""
        raise NotImplementedError

    def g2(self, t: ArrayLike) -> Float[Array, ""]:
        """Squared diffusion coefficient ``g(t)^2``."""
        raise NotImplementedError

    def log_alpha(self, t: ArrayLike) -> Float[Array, ""]:
        """``log alpha_t = int_0^t f(s) ds``."""
        raise NotImplementedError

    def g(self, t: ArrayLike) -> Float[Array, ""]:
        """Diffusion coefficient ``g(t)``."""
        return jnp.sqrt(self.g2(t))

    def alpha(self, t: ArrayLike) -> Float[Array, ""]:
        """Mean scale ``alpha_t`` of ``p(x_t | x_0) = N(alpha_t x_0, sigma_t^2)``."""
        return jnp.exp(self.log_alpha(t))

    def sigma2(self, t: ArrayLike) -> Float[Array, ""]:
        """Variance ``sigma_t^2 = 1 - alpha_t^2`` of the transition kernel."""
        return -jnp.expm1(2.0 * self.log_alpha(t))

    def sigma(self, t: ArrayLike) -> Float[Array, ""]:
        """Standard deviation ``sigma_t`` of the transition kernel."""
        return jnp.sqrt(self.sigma2(t))

    def drift(self, x: Float[Array, "*d"], t: ArrayLike) -> Float[Array, "*d"]:
        """Forward drift ``f(x, t) = f(t) x``."""
        return self.f(t) * x

    def _check(self) -> None:
        if not (0.0 <= self.t_min < self.T):
            raise ValueError(f"t_min must satisfy 0 <= t_min < T={self.T}, got {self.t_min}")


PAPER_T_MIN = 0.01
"""Start of the window of the paper's schedules: its score is trained on ``t`` in ``[0.01, T]``."""


class Simple(LinearSDE):
    """SIMPLE schedule: ``f = -(beta/2) t``, ``g = sqrt(beta t)``; ``beta = 20``, window
    ``[0.01, 1]``."""

    t_min: float = eqx.field(static=True, default=PAPER_T_MIN)
    beta: float = eqx.field(static=True, default=20.0)

    def __check_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        self._check()

    def f(self, t):
        return -0.5 * self.beta * jnp.asarray(t)

    def g2(self, t):
        return self.beta * jnp.asarray(t)

    def log_alpha(self, t):
        return -0.25 * self.beta * jnp.asarray(t) ** 2


class Cosine(LinearSDE):
    """COSINE schedule: ``alpha_t = cos(pi t/2)``, ``f = -(pi/2) tan(pi t/2)``,
    ``g = sqrt(pi tan(pi t/2))``; window ``[0.01, 1 - 1e-3]`` (``g`` diverges at ``t = 1``)."""

    T: float = eqx.field(static=True, default=1.0 - 1e-3)
    t_min: float = eqx.field(static=True, default=PAPER_T_MIN)

    def __check_init__(self) -> None:
        if not 0 < self.T < 1:
            raise ValueError(f"T must be in (0, 1) for the cosine schedule, got {self.T}")
        self._check()

    def f(self, t):
        return -0.5 * math.pi * jnp.tan(0.5 * math.pi * jnp.asarray(t))

    def g2(self, t):
        return math.pi * jnp.tan(0.5 * math.pi * jnp.asarray(t))

    def log_alpha(self, t):
        return jnp.log(jnp.cos(0.5 * math.pi * jnp.asarray(t)))


class VP(LinearSDE):
    """Variance-preserving SDE of Song et al.: ``beta(t) = beta_min + t (beta_max - beta_min)``."""

    beta_min: float = eqx.field(static=True, default=0.1)
    beta_max: float = eqx.field(static=True, default=20.0)
    t_min: float = eqx.field(static=True, default=1e-5)

    def __check_init__(self) -> None:
        if not 0 <= self.beta_min <= self.beta_max or self.beta_max <= 0:
            raise ValueError(
                f"need 0 <= beta_min <= beta_max, beta_max > 0; got {self.beta_min}, {self.beta_max}")
        self._check()

    def _beta(self, t):
        return self.beta_min + jnp.asarray(t) * (self.beta_max - self.beta_min)

    def f(self, t):
        return -0.5 * self._beta(t)

    def g2(self, t):
        return self._beta(t)

    def log_alpha(self, t):
        t = jnp.asarray(t)
        return -0.5 * (self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2)


class ConstantVP(LinearSDE):
    """Constant-rate VP SDE ``f = -beta/2``, ``g = sqrt(beta)`` (the paper's 1-D analytic model)."""

    beta: float = eqx.field(static=True, default=1.0)

    def __check_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        self._check()

    def f(self, t):
        return -0.5 * self.beta * jnp.ones_like(jnp.asarray(t, dtype=float))

    def g2(self, t):
        return self.beta * jnp.ones_like(jnp.asarray(t, dtype=float))

    def log_alpha(self, t):
        return -0.5 * self.beta * jnp.asarray(t)


SDES = {"simple": Simple, "cosine": Cosine, "vp": VP}


def get_sde(name: str) -> LinearSDE:
    """The schedule called ``name`` (``simple``, ``cosine`` or ``vp``) with the paper's settings."""
    try:
        return SDES[name.lower()]()
    except KeyError:
        raise ValueError(f"sde must be one of {sorted(SDES)}, got {name!r}") from None
