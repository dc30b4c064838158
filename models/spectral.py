"""NumPyro models for the spectral inversion ``D = A rho + n``, ``n ~ N(0, C)``.

All models take the forward matrix ``A`` (``n_data x n_omega``, quadrature included, see
:mod:`bayesqcd.spectral`), the noise covariance ``C`` and the data, and expose ``rho`` on the
grid as a deterministic site; ``rho > 0`` by construction in every model.

* :func:`gp_model`: smoothness prior on ``log rho``:
  ``rho(w) = w exp(mu + a f(w))``, ``f ~ GP(0, exp(-(w - w')^2 / (2 l^2)))`` in its truncated
  Karhunen-Loeve form ``f = U sqrt(lambda) z``, ``z ~ N(0, I)`` (:func:`gp_basis`),
  ``mu ~ N(0, 3^2)``, ``a ~ HalfNormal(2)``. The factor ``w`` makes ``rho(w) -> 0`` as
  ``w -> 0``, as for physical spectral functions.
* :func:`nn_model`: ``rho(w) = w softplus(NN(w / w_max))`` (Wang, Shi, Zhou,
  arXiv:2111.14760) with an Equinox MLP whose weights all get ``N(0, prior_scale^2)`` priors:
  the physics-driven representation, made Bayesian.
* :func:`diffusion_prior_model`: ``x ~ DiffusionPrior`` (a trained score model, the exact
  probability-flow likelihood), ``rho = representation.to_rho(x)``
  (:class:`bayesqcd.spectral_prior.LogRhoRepresentation`).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray


def _check_problem(A: ArrayLike, cov: ArrayLike, data: ArrayLike | None, n_omega: int | None = None):
    A = jnp.asarray(A)
    if A.ndim != 2:
        raise ValueError(f"A must be a (n_data, n_omega) matrix, got shape {A.shape}")
    if n_omega is not None and A.shape[1] != n_omega:
        raise ValueError(f"A has {A.shape[1]} omega columns but the prior has {n_omega} omega points")
    cov = jnp.asarray(cov, dtype=A.dtype)
    if cov.shape != (A.shape[0], A.shape[0]):
        raise ValueError(f"cov must be ({A.shape[0]}, {A.shape[0]}), got {cov.shape}")
    if data is not None and jnp.shape(data) != (A.shape[0],):
        raise ValueError(f"data must have shape ({A.shape[0]},), got {jnp.shape(data)}")
    if not isinstance(cov, jax.core.Tracer):
        c = np.asarray(cov)
        if not np.allclose(c, c.T) or np.linalg.eigvalsh(c).min() <= 0:
            raise ValueError("cov (noise covariance) must be symmetric positive definite: every "
                             "noise variance > 0")
    return A, jnp.linalg.cholesky(cov)


def _likelihood(A, L, rho, data):
    numpyro.sample("D", dist.MultivariateNormal(A @ rho, scale_tril=L), obs=data)


# ------------------------------------------------------------------------------- GP prior
def gp_basis(omega: ArrayLike, length_scale: float = 1.0, n_modes: int = 48) -> Float[Array, "n k"]:
    """``U sqrt(lambda)`` of the leading ``n_modes`` eigenpairs of the squared-exponential
    covariance ``exp(-(w - w')^2 / (2 l^2))`` on the grid (unit amplitude)."""
    omega = np.asarray(omega, float)
    if not length_scale > 0:
        raise ValueError(f"length_scale must be > 0, got {length_scale}")
    if not 1 <= int(n_modes) <= omega.shape[0]:
        raise ValueError(f"n_modes must be in [1, {omega.shape[0]}], got {n_modes}")
    K = np.exp(-0.5 * ((omega[:, None] - omega[None, :]) / length_scale) ** 2)
    lam, U = np.linalg.eigh(K)
    lam, U = lam[::-1][: int(n_modes)], U[:, ::-1][:, : int(n_modes)]
    return jnp.asarray(U * np.sqrt(np.maximum(lam, 0.0)))


def gp_model(A: ArrayLike, cov: ArrayLike, omega: ArrayLike, basis: ArrayLike,
             data: ArrayLike | None = None, amplitude: float | None = None) -> None:
    """``rho = w exp(mu + a basis @ z)`` with the likelihood ``D ~ N(A rho, C)`` (module doc).

    ``amplitude``: a fixed GP amplitude ``a`` (e.g. an empirical-Bayes plug-in) instead of the
    ``HalfNormal(2)`` prior; the product ``a z`` makes ``(a, z)`` a curved ridge that NUTS
    crosses slowly, while with ``a`` fixed ``log rho`` is linear in the parameters."""
    basis = jnp.asarray(basis)
    A, L = _check_problem(A, cov, data, basis.shape[0])
    if amplitude is not None and not amplitude > 0:
        raise ValueError(f"amplitude must be > 0 or None, got {amplitude}")
    omega = jnp.asarray(omega)
    mu = numpyro.sample("mu", dist.Normal(0.0, 3.0))
    amp = numpyro.sample("amplitude", dist.HalfNormal(2.0)) if amplitude is None else amplitude
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([basis.shape[1]]).to_event(1))
    rho = numpyro.deterministic("rho", omega * jnp.exp(mu + amp * (basis @ z)))
    _likelihood(A, L, rho, data)


# ------------------------------------------------------------------------------- NN prior
class SpectralMLP(eqx.Module):
    """``rho(w) = w softplus(MLP(w / w_max))``: a scalar MLP with ``tanh`` hidden layers."""

    mlp: eqx.nn.MLP
    omega_max: float = eqx.field(static=True)

    def __init__(self, width: int = 16, depth: int = 2, omega_max: float = 20.0, *, key: PRNGKeyArray):
        if width < 1 or depth < 1 or not omega_max > 0:
            raise ValueError(f"need width, depth >= 1 and omega_max > 0; got {width}, {depth}, {omega_max}")
        self.mlp = eqx.nn.MLP("scalar", "scalar", width, depth, activation=jnp.tanh, key=key)
        self.omega_max = float(omega_max)

    def __call__(self, omega: Float[Array, " n"]) -> Float[Array, " n"]:
        out = jax.vmap(self.mlp)(omega / self.omega_max)
        return omega * jax.nn.softplus(out)


def nn_model(A: ArrayLike, cov: ArrayLike, omega: ArrayLike, net: SpectralMLP,
             data: ArrayLike | None = None, prior_scale: float = 1.0) -> None:
    """Bayesian ``rho = w softplus(NN(w))``: every weight and bias ``~ N(0, prior_scale^2)``.

    ``net`` only fixes the architecture (its values are ignored); the sites are
    ``w0, w1, ...`` in the order of ``jax.tree_util.tree_leaves``.
    """
    if not prior_scale > 0:
        raise ValueError(f"prior_scale must be > 0, got {prior_scale}")
    omega = jnp.asarray(omega)
    A, L = _check_problem(A, cov, data, omega.shape[0])
    params, static = eqx.partition(net, eqx.is_inexact_array)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    new = [numpyro.sample(f"w{i}", dist.Normal(0.0, prior_scale).expand(leaf.shape).to_event(leaf.ndim))
           for i, leaf in enumerate(leaves)]
    model = eqx.combine(jax.tree_util.tree_unflatten(treedef, new), static)
    rho = numpyro.deterministic("rho", model(omega))
    _likelihood(A, L, rho, data)


# ------------------------------------------------------------------------------- diffusion prior
def diffusion_prior_model(A: ArrayLike, cov: ArrayLike, prior: Any, representation: Any,
                          data: ArrayLike | None = None) -> None:
    """``x ~ prior`` (e.g. :class:`bayesqcd.diffusion.distribution.DiffusionPrior` on the
    representation's ``(k,)`` space), ``rho = representation.to_rho(x)``, ``D ~ N(A rho, C)``."""
    A, L = _check_problem(A, cov, data, representation.omega.shape[0])
    x = numpyro.sample("x", prior)
    rho = numpyro.deterministic("rho", representation.to_rho(x))
    _likelihood(A, L, rho, data)
