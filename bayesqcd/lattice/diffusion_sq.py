"""Diffusion models as stochastic quantization (Wang, Aarts, Zhou, arXiv:2309.17082).

The forward SDE ``dx = f(t) x dt + g(t) dw`` of :mod:`bayesqcd.diffusion.sde` turns the field
distribution ``exp(-S[phi]) / Z`` into noise; its reversal, driven by a score ``s(x, t)``
learned from HMC configurations by denoising score matching, is a Langevin (stochastic
quantization) process that generates new configurations. Here:

* :class:`FieldScore`: the periodic U-Net of :mod:`bayesqcd.nn.score_nets` on ``(L, L)`` fields.
* :func:`train_field_score`: the ``g^2``-weighted DSM loss of :mod:`bayesqcd.diffusion.score`
  on HMC configurations, each batch augmented by the symmetries of the action (random
  translations, the reflection ``x_0 <-> x_1`` and ``phi -> -phi``).
* :class:`PFODEProposal`: draws of the probability-flow ODE (``h = 0``) with their exact log
  density, integrated *along the generating trajectory* from ``x_T ~ N(0, I)`` at ``T`` down to
  ``t_min``: ``d ell / dt = -div f_PF``, ``ell(T) = log N(x_T)``, so that
  ``ell(t_min) = log q(x(t_min))`` -- the probability-flow likelihood of
  :func:`bayesqcd.diffusion.likelihood.log_likelihood`, without a second solve. It is a
  proposal for :func:`bayesqcd.inference.flow.sample_independence_metropolis`, which makes
  the samples exact.
* :func:`sample_h_family`: draws of any member ``h`` of the h-family
  (:func:`bayesqcd.diffusion.sampling.sample_h`) with their probability-flow log density
  (:func:`~bayesqcd.diffusion.likelihood.log_likelihood`). For ``h > 0`` this density is only
  that of the draws up to the score error, so the Metropolis step is exact only at ``h = 0``.

The divergence of the drift is the exact Jacobian trace (``L^2`` forward-mode tangents).
"""

from __future__ import annotations

from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from bayesqcd.diffusion.likelihood import log_likelihood, pf_drift
from bayesqcd.diffusion.sampling import sample_h
from bayesqcd.diffusion.score import dsm_loss
from bayesqcd.diffusion.sde import LinearSDE
from bayesqcd.nn.score_nets import UNetScore
from bayesqcd.nn.training import TrainResult, train


class FieldScore(eqx.Module):
    """``s_theta(phi, t)`` for one ``(L, L)`` field: :class:`UNetScore` with one channel
    (``L`` divisible by 4)."""

    net: UNetScore

    def __init__(self, width: int = 8, t_dim: int = 16, *, key: PRNGKeyArray):
        self.net = UNetScore(channels=1, width=width, t_dim=t_dim, key=key)

    def __call__(self, x: Float[Array, "L L"], t: ArrayLike) -> Float[Array, "L L"]:
        return self.net(x[None], t)[0]


def symmetry_augment(key: PRNGKeyArray, phi: Float[Array, "B L L"]) -> Float[Array, "B L L"]:
    """Apply a random symmetry of the action to each field: translation, reflection
    ``x_0 <-> x_1`` and sign flip."""
    B, L = phi.shape[0], phi.shape[-1]
    k1, k2, k3, k4 = jax.random.split(key, 4)
    s0 = jax.random.randint(k1, (B,), 0, L)
    s1 = jax.random.randint(k2, (B,), 0, L)
    flip = jax.random.bernoulli(k3, 0.5, (B,))
    sign = jnp.where(jax.random.bernoulli(k4, 0.5, (B,)), -1.0, 1.0).astype(phi.dtype)

    def one(x, a, b, f, s):
        x = jnp.roll(jnp.roll(x, a, axis=0), b, axis=1)
        return s * jnp.where(f, x.T, x)

    return jax.vmap(one)(phi, s0, s1, flip, sign)


def train_field_score(score: FieldScore, sde: LinearSDE, configs: Float[Array, "N L L"],
                      key: PRNGKeyArray, *, n_steps: int, batch_size: int = 128,
                      learning_rate: float = 1e-3, t_lo: float = 1e-3, eval_every: int = 200,
                      checkpoint: str | None = None, progress: bool = True,
                      settings: dict[str, Any] | None = None) -> TrainResult:
    """Adam on :func:`bayesqcd.diffusion.score.dsm_loss` over symmetry-augmented batches of
    the configurations (``t`` uniform in ``[t_lo, T]``). The checkpoint records the
    hyperparameters and the caller's ``settings``; resuming under others is refused."""
    dtype = jax.tree_util.tree_leaves(eqx.filter(score, eqx.is_inexact_array))[0].dtype
    configs = jnp.asarray(configs, dtype)
    if configs.ndim != 3 or configs.shape[1] != configs.shape[2] or configs.shape[0] < 2:
        raise ValueError(f"configs must have shape (N >= 2, L, L), got {configs.shape}")
    if batch_size < 1 or not learning_rate > 0:
        raise ValueError(f"need batch_size >= 1 and learning_rate > 0, got {batch_size}, "
                         f"{learning_rate}")
    if not 0 <= t_lo < sde.T:
        raise ValueError(f"t_lo must be in [0, T={sde.T}), got {t_lo}")
    n = configs.shape[0]

    def batch_fn(k):
        ki, ka = jax.random.split(k)
        return symmetry_augment(ka, configs[jax.random.randint(ki, (batch_size,), 0, n)])

    k_val, k_vb, k_train = jax.random.split(key, 3)
    val = symmetry_augment(k_vb, configs[jax.random.randint(k_vb, (1024,), 0, n)])
    return train(score, lambda m, b, k: dsm_loss(m, sde, b, k, t_lo), batch_fn,
                 optax.adam(learning_rate), n_steps, k_train,
                 val_loss=lambda m: dsm_loss(m, sde, val, k_val, t_lo), eval_every=eval_every,
                 checkpoint=checkpoint, progress=progress, desc="score matching",
                 settings={"batch_size": batch_size, "learning_rate": learning_rate, "t_lo": t_lo,
                           **(settings or {})})


def _prior_log_prob(x: Array) -> Array:
    return -0.5 * jnp.sum(x**2) - 0.5 * x.size * jnp.log(2 * jnp.pi).astype(x.dtype)


class PFODEProposal(eqx.Module):
    """Probability-flow ODE sampler with the exact log density of its draws (``h = 0``).

    Attributes:
        score: ``s(phi, t)`` on ``(L, L)`` fields.
        sde: the forward schedule; the ODE runs from ``sde.T`` to ``sde.t_min``.
        L: lattice extent.
        rtol, atol: tolerances of the adaptive Dopri5 solver.
    """

    score: eqx.Module
    sde: LinearSDE
    L: int = eqx.field(static=True)
    rtol: float = eqx.field(static=True, default=1e-5)
    atol: float = eqx.field(static=True, default=1e-5)
    max_steps: int = eqx.field(static=True, default=4096)

    def _one(self, xT: Float[Array, " D"]) -> tuple[Float[Array, " D"], Float[Array, ""]]:
        shape = (self.L, self.L)
        s = lambda x, t: jnp.reshape(self.score(jnp.reshape(x, shape), t), (-1,))

        def vf(t, y, args):
            x, _ = y
            fn = lambda z: pf_drift(s, self.sde, z, t)
            fx, jac = fn(x), jax.jacfwd(fn)(x)
            return fx, -jnp.trace(jac)

        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vf), diffrax.Dopri5(), self.sde.T, self.sde.t_min, None,
            (xT, _prior_log_prob(xT)),
            stepsize_controller=diffrax.PIDController(rtol=self.rtol, atol=self.atol),
            max_steps=self.max_steps)
        return sol.ys[0][-1], sol.ys[1][-1]

    def sample_and_log_prob(self, key: PRNGKeyArray, n: int, dtype=None
                            ) -> tuple[Float[Array, "n L L"], Float[Array, " n"]]:
        """``n`` draws ``(n, L, L)`` and their log densities (nats)."""
        dtype = jnp.zeros(()).dtype if dtype is None else dtype
        xT = jax.random.normal(key, (n, self.L * self.L), dtype)
        x, lq = jax.vmap(self._one)(xT)
        return x.reshape(n, self.L, self.L), lq


def sample_h_family(score: eqx.Module, sde: LinearSDE, key: PRNGKeyArray, n: int, L: int,
                    h: float, *, n_steps: int = 200, rtol: float = 1e-5, atol: float = 1e-5
                    ) -> tuple[Float[Array, "n L L"], Float[Array, " n"]]:
    """``n`` draws of the h-process (fixed-step Heun, ``n_steps``) and their probability-flow
    log densities (a separate PF-ODE solve per draw, exact divergence)."""
    x = sample_h(score, sde, key, n, h, shape=(L, L), method="heun", n_steps=n_steps)
    lq = jax.vmap(lambda xi: log_likelihood(score, sde, xi, rtol=rtol, atol=atol))(x)
    return x, lq


class HFamilyProposal(eqx.Module):
    """:func:`sample_h_family` as a proposal (``sample_and_log_prob``) for independence
    Metropolis. Exact only as far as the PF-ODE density is that of the h-process draws (``h = 0``,
    or a perfect score); use :class:`PFODEProposal` for ``h = 0``."""

    score: eqx.Module
    sde: LinearSDE
    L: int = eqx.field(static=True)
    h: float = eqx.field(static=True, default=0.1)
    n_steps: int = eqx.field(static=True, default=200)
    rtol: float = eqx.field(static=True, default=1e-5)
    atol: float = eqx.field(static=True, default=1e-5)

    def sample_and_log_prob(self, key: PRNGKeyArray, n: int
                            ) -> tuple[Float[Array, "n L L"], Float[Array, " n"]]:
        return sample_h_family(self.score, self.sde, key, n, self.L, self.h, n_steps=self.n_steps,
                               rtol=self.rtol, atol=self.atol)
