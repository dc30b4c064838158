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
  (:class:`bayesqcd.spectral.prior.LogRhoRepresentation`).
* :func:`data_informed_model`: the posterior of any ``rho = rho_fn(theta)`` with a Gaussian prior
  on ``theta`` (the GP's ``(mu, z)`` at a fixed amplitude, the network's weights) in
  coordinates where the likelihood is Gaussian: what NUTS samples at low noise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
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


# ------------------------------------------------------------------ data-informed coordinates
def data_informed_model(rho_fn: Callable[[Array], Array], prior_scale: ArrayLike, theta_map: ArrayLike,
                        A: ArrayLike, cov: ArrayLike, data: ArrayLike, *,
                        log_prior: Callable[[Array], Array] | None = None, threshold: float = 1.0,
                        newton_steps: int = 100, tol: float = 1e-6) -> tuple[Callable[[], None], int]:
    """The posterior of ``rho = rho_fn(theta)``, ``theta ~ N(0, diag(prior_scale^2))`` (or any
    ``log_prior``), ``D ~ N(A rho, C)``, as a NumPyro model in coordinates in which the
    likelihood is Gaussian.

    Why: at low noise the data fix a few combinations of ``log rho`` to ``1e-4``-``1e-5`` while
    the prior leaves the rest free at order one; through the nonlinear ``rho_fn`` (``exp``,
    ``softplus`` of a network) an order-one move of the free directions shifts the fixed
    combinations by ``~1e4`` noise units, so the posterior in ``theta`` is a thin curved ridge.
    No constant mass matrix fits it (NUTS hits its maximal tree depth on every draw and the
    chains do not mix, whitened by the Hessian at the MAP or not); straightening the ridge does.

    Construction, with ``x = theta / prior_scale`` (for the Gaussian prior ``N(0, I)``) and
    ``g(x) = L^{-1} A rho_fn(prior_scale x)`` (``C = L L^T``): the SVD of ``dg/dx`` at the MAP,
    ``U S V^T``, splits ``x`` into the ``k`` directions the data fix better than the prior
    (``S > threshold``) and the rest, ``x = x_MAP + V_n t + V_k s``. The sampled coordinates are
    ``eta = U_k^T (g(x) - g(x_MAP))`` (``k`` numbers, in noise units) and ``t`` (prior units);
    ``s(eta, t)`` solves that equation (:func:`_newton_root`: damped Newton from ``eta / S``,
    iterated to convergence, at most ``newton_steps`` steps; its derivative by the implicit
    function theorem). The density is
    ``p(x | D) |det dx/d(eta, t)| = p(x | D) / |det(U_k^T (dg/dx) V_k)|``; states where no
    solution is found (residual above ``tol`` noise units) get zero density (NUTS rejects
    them). Sites: ``eta`` and ``t`` (flat base measures), deterministic ``theta`` and ``rho``.

    The solve must run to convergence, not for a fixed number of steps: an order-one move of
    ``t`` offsets the equation by ``~1e5`` noise units when ``rho_fn`` is an exponential of a
    large amplitude (the GP at amplitude 4.5 on Gaussian peaks), and undamped Newton then
    needs up to 15 steps; with a fixed budget of 10, 10-14% of the prior-typical ``(eta, t)``
    had zero density -- holes in the support where NUTS chains started and failed
    ("Cannot find valid initial parameters").

    Args:
        rho_fn: ``theta (d,) -> rho (n_omega,)``, differentiable (pure JAX).
        prior_scale: standard deviations of the Gaussian prior, ``(d,)`` or a scalar; with
            ``log_prior`` only the units in which ``threshold`` is measured.
        theta_map: the expansion point (the MAP, or any point that fits the data), ``(d,)``.
        log_prior: ``theta -> log p(theta)`` (differentiable), e.g. a
            :class:`~bayesqcd.diffusion.distribution.DiffusionPrior`'s ``log_prob``; default the
            Gaussian of ``prior_scale``.
        A, cov, data: forward matrix ``(n_data, n_omega)``, noise covariance, correlator.
        threshold: singular value of ``dg/dx`` above which a direction counts as data-informed.
        newton_steps, tol: the inner solve: at most ``newton_steps`` damped Newton steps; a
            state is valid when the residual is below ``tol`` (noise units).

    Returns:
        ``(model, k)``: the NumPyro model (no arguments) and the number ``k`` of data-informed
        directions (``eta`` has ``k`` components, ``t`` has ``d - k``).
    """
    theta_map = jnp.asarray(theta_map, dtype=float)
    if theta_map.ndim != 1:
        raise ValueError(f"theta_map must be a 1-D vector, got shape {theta_map.shape}")
    d = theta_map.shape[0]
    scale = jnp.broadcast_to(jnp.asarray(prior_scale, dtype=theta_map.dtype), (d,))
    if not bool(jnp.all(scale > 0)):
        raise ValueError("prior_scale must be > 0")
    if not threshold > 0 or int(newton_steps) < 1:
        raise ValueError(f"need threshold > 0 and newton_steps >= 1, got {threshold}, {newton_steps}")
    A, L = _check_problem(A, cov, data)
    G = jax.scipy.linalg.solve_triangular(L, A, lower=True)
    Dw = jax.scipy.linalg.solve_triangular(L, jnp.asarray(data, dtype=A.dtype), lower=True)

    def g(x):
        return G @ rho_fn(scale * x)

    x0 = theta_map / scale
    U, S, Vt = np.linalg.svd(np.asarray(jax.jacfwd(g)(x0)), full_matrices=True)
    k = int(np.sum(S > threshold))
    if k == 0:
        raise ValueError(f"no direction is fixed by the data better than by the prior (largest "
                         f"singular value {S.max():.3g} <= threshold {threshold})")
    Uk, Sk = jnp.asarray(U[:, :k]), jnp.asarray(S[:k])
    Vk, Vn = jnp.asarray(Vt[:k].T), jnp.asarray(Vt[k:].T)
    g0 = g(x0)

    def to_x(eta, t):
        base = x0 + Vn @ t

        def F(s):
            return Uk.T @ (g(base + Vk @ s) - g0) - eta

        s = _newton_root(F, eta / Sk, max_steps=int(newton_steps), tol=1e-3 * tol)
        return base + Vk @ s, jnp.max(jnp.abs(F(s)))

    def model() -> None:
        eta = numpyro.sample("eta", dist.ImproperUniform(constraints.real_vector, (), (k,)))
        t = numpyro.sample("t", dist.ImproperUniform(constraints.real_vector, (), (d - k,)))
        x, residual = to_x(eta, t)
        valid = (residual < tol) & jnp.all(jnp.isfinite(x))
        x = jnp.where(valid, x, x0)  # a failed solve is rejected; never evaluate the prior there
        Jk = jax.jacfwd(lambda s: Uk.T @ g(x + Vk @ s))(jnp.zeros(k, x.dtype))  # k JVPs, not d
        logdet = jnp.linalg.slogdet(Jk)[1]
        log_pr = -0.5 * jnp.sum(x**2) if log_prior is None else log_prior(scale * x)
        log_p = -0.5 * jnp.sum((Dw - g(x)) ** 2) + log_pr - logdet
        numpyro.factor("log_posterior", jnp.where(valid, log_p, -jnp.inf))
        numpyro.deterministic("theta", scale * x)
        numpyro.deterministic("rho", rho_fn(scale * x))

    return model, k


def _newton_root(F: Callable[[Array], Array], s0: Array, *, max_steps: int, tol: float) -> Array:
    """A root of ``F: R^k -> R^k`` by Newton steps halved until ``|F|`` decreases (at most 30
    halvings; a non-finite ``F`` counts as no decrease), from ``s0`` until ``max |F| < tol`` or
    ``max_steps`` steps. Differentiable: ``jax.lax.custom_root`` gives the derivative of the
    root with respect to what ``F`` closes over by the implicit function theorem (no
    differentiation through the iterations)."""

    def solve(F, s0):
        def step(carry):
            i, s, f = carry
            delta = jnp.linalg.solve(jax.jacfwd(F)(s), f)
            norm = jnp.sum(f**2)

            def worse(c):  # not (|F(s - lam delta)|^2 <= (1 - 1e-4 lam) |F(s)|^2); NaN is worse
                lam, f_new = c
                return ~(jnp.sum(f_new**2) <= (1.0 - 1e-4 * lam) * norm) & (lam > 2.0**-30)

            lam, f_new = jax.lax.while_loop(worse, lambda c: (0.5 * c[0], F(s - 0.5 * c[0] * delta)),
                                            (jnp.ones((), s.dtype), F(s - delta)))
            return i + 1, s - lam * delta, f_new

        def go_on(carry):
            i, _, f = carry
            return (i < max_steps) & ~(jnp.max(jnp.abs(f)) < tol)

        return jax.lax.while_loop(go_on, step, (0, s0, F(s0)))[1]

    def tangent_solve(linear, y):
        return jnp.linalg.solve(jax.jacfwd(linear)(y), y)

    return jax.lax.custom_root(F, s0, solve, tangent_solve)
