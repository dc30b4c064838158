"""Score-based posterior sampling for ``y = A(x) + n``, ``n ~ N(0, C)``, with a diffusion prior.

The engine knows only a prior score ``s(x, t) ~ grad log p_t(x)`` of a linear (VP) forward SDE
(:mod:`bayesqcd.diffusion.sde`: ``p(x_t | x_0) = N(alpha_t x_0, sigma_t^2 I)``), a
differentiable forward operator ``A: x -> y`` and the noise covariance ``C``. The posterior
score is ``grad log p_t(x | y) = s(x, t) + grad_x log p(y | x_t = x)`` and the likelihood of a
noisy state is approximated through Tweedie's formulas,

    x0_hat(x) = E[x_0 | x_t = x] = (x + sigma_t^2 s(x, t)) / alpha_t,
    Sigma_t(x) = Cov[x_0 | x_t = x] = (sigma_t^2 / alpha_t^2) (I + sigma_t^2 grad s(x, t)).

Guidance (``guidance=``):

* ``"tweedie"`` (Gaussian projection of ``p(x_0 | x_t)``, as in Boys et al. 2023, "Tweedie
  moment projected diffusions"): ``p(y | x_t) ~ N(y; A(x0_hat), C + J Sigma_t J^T)`` with
  ``J = dA/dx`` at ``x0_hat``, so
  ``grad log p(y | x_t) = (1/alpha_t) (I + sigma_t^2 grad s)^T J^T M^{-1} (y - A(x0_hat))``,
  ``M = C + J Sigma_t J^T``, solved in noise-whitened form: with ``C = L L^T``, ``G = L^{-1} J``,
  ``J^T M^{-1} r = G^T (I + L^{-1} J Sigma_t J^T L^{-T})^{-1} L^{-1} r``; the prior part is
  projected onto the positive semi-definite cone (a learned score's Jacobian can make it
  indefinite), so the matrix is ``>= I`` and its exact Cholesky pivots are ``>= 1``. When
  ``G G^T`` spans many more orders of magnitude than round-off allows (a smooth kernel and tiny
  noise), cancellation ruins later pivots: a computed pivot below 1/2 counts as a breakdown and
  that state's guidance at that time is dropped (as below); flooring such pivots instead
  applies a finite but wrong correction, and a third of the spectral draws ran away. No LAPACK kernel runs inside the samplers'
  loops (see :func:`_cholesky` for why).
  For a Gaussian prior and linear ``A`` this is the exact posterior score at every ``t``, so the
  probability-flow ODE (``solver="ode"``) then samples the exact Gaussian posterior up to the
  ODE tolerance and ``p_T ~ N(0, I)``.
* ``"dps"`` (diffusion posterior sampling, Chung et al., ICLR 2023, Alg. 1): after each
  Euler-Maruyama step of the reverse SDE with the prior score,
  ``x <- x - zeta grad_x |r| `` times 2, with ``r = L^{-1} (y - A(x0_hat(x)))`` the residual
  whitened by ``C = L L^T`` (Chung's ``zeta_i = zeta / |r|`` on ``grad |r|^2``). Approximate;
  ``zeta`` is a tuning constant.

Where the linearised likelihood overflows -- ``A(x0_hat)`` not finite, which happens with
learned scores near ``t = T``, where ``1/alpha_t`` amplifies score errors and ``x0_hat`` leaves
the forward model's domain -- the guidance term of that state at that time is set to zero
(the prior score alone moves it); for Gaussian priors and linear ``A`` this never happens.

With the reverse SDE, a draw can still run away where an explicit step is too long for the
stiff guided drift (a sharp likelihood, a learned score): ``runaway_radius`` draws such draws
again, from new noise, with 4 and then 16 times the steps, and counts them.

:func:`sample_posterior` returns :class:`arviz.InferenceData` (``chain = 1``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray
from tqdm.auto import tqdm

from bayesqcd.diffusion.sampling import sample_h, time_grid
from bayesqcd.diffusion.sde import LinearSDE
from bayesqcd.inference.results import from_draws

Score = Callable[[Array, Array], Array]
Forward = Callable[[Array], Array]


def tweedie_mean(score: Score, sde: LinearSDE, x: Float[Array, " D"], t: ArrayLike) -> Float[Array, " D"]:
    """``E[x_0 | x_t = x] = (x + sigma_t^2 s(x, t)) / alpha_t``."""
    return (x + sde.sigma2(t) * score(x, t)) / sde.alpha(t)


def _finite_or_zero(g: Array) -> Array:
    """The guidance term, or zero where it is not finite (documented in the module doc)."""
    return jnp.where(jnp.all(jnp.isfinite(g)), g, jnp.zeros_like(g))


def _cholesky(m: Float[Array, "n n"], floor: Float[Array, " n"]) -> Float[Array, "n n"]:
    """Lower ``L`` with ``L L^T = sym(m)``: Cholesky column by column in plain JAX ops; ``NaN``
    (a breakdown, like LAPACK's) if a pivot ``d_j`` falls below ``floor_j``, a lower bound the
    caller knows the exact pivots obey (so a smaller one is round-off by cancellation).

    Written out instead of ``jnp.linalg``: under ``vmap`` inside a compiled loop, jaxlib 0.10's
    batched LAPACK kernels on CPU fan their batch out into XLA's intra-op thread pool and block
    a pool thread until it is done; when as many such kernels run at once as the pool has
    threads (two, on a two-core machine), no thread is left to do the work and the program
    deadlocks (0% CPU, every thread in a futex wait). The sampler therefore runs no LAPACK
    call inside its loops."""
    m = 0.5 * (m + m.T)
    idx = jnp.arange(m.shape[0])

    def column(j, L):
        lj = L[j]  # row j: entries k < j are final, the rest still zero
        d = m[j, j] - lj @ lj
        ljj = jnp.where(d >= floor[j], jnp.sqrt(jnp.abs(d)), jnp.nan)
        c = (m[:, j] - L @ lj) / ljj
        return L.at[:, j].set(jnp.where(idx > j, c, jnp.where(idx == j, ljj, 0.0)))

    return jax.lax.fori_loop(0, m.shape[0], column, jnp.zeros_like(m))


def _cho_solve(L: Float[Array, "n n"], b: Float[Array, " n"]) -> Float[Array, " n"]:
    """``(L L^T)^{-1} b`` by forward and back substitution (plain JAX ops, see :func:`_cholesky`)."""
    n = b.shape[0]
    z = jax.lax.fori_loop(0, n, lambda j, z: z.at[j].set((b[j] - L[j] @ z) / L[j, j]), jnp.zeros_like(b))
    return jax.lax.fori_loop(
        0, n, lambda i, x: x.at[n - 1 - i].set((z[n - 1 - i] - L[:, n - 1 - i] @ x) / L[n - 1 - i, n - 1 - i]),
        jnp.zeros_like(b))


def _psd_part(m: Float[Array, "n n"], n_iter: int = 100) -> Float[Array, "n n"]:
    """Projection of ``sym(m)`` onto the positive semi-definite cone, ``(S + S sign(S)) / 2``
    (negative eigenvalues set to zero), with the matrix sign function from the Newton-Schulz
    iteration ``X <- X (3 I - X^2) / 2`` started at ``S / |S|_F`` (plain matrix products, no
    LAPACK; see :func:`_cholesky`). Each step multiplies a small eigenvalue ratio by 1.5 until
    it nears 1, so ``n_iter = 100`` resolves every eigenvalue above ``~1e-17 |S|_F`` (round-off);
    a smaller one keeps part of its sign, an error of at most its own size."""
    S = 0.5 * (m + m.T)
    eye = jnp.eye(S.shape[0], dtype=S.dtype)
    norm = jnp.sqrt(jnp.sum(S * S))
    X = jax.lax.fori_loop(0, n_iter, lambda _, X: 0.5 * X @ (3.0 * eye - X @ X),
                          S / jnp.where(norm > 0, norm, 1.0))
    SX = S @ X
    return 0.5 * S + 0.25 * (SX + SX.T)


class TweedieGuidedScore(eqx.Module):
    """Posterior score ``s(x, t) + grad_x log N(y; A(x0_hat), C + J Sigma_t J^T)`` (see module doc).

    Acts on flat vectors ``x`` of length ``D``; ``score`` and ``forward`` take the reshaped
    ``shape``. ``covariance="jacobian"``: ``Sigma_t`` from the score's Jacobian (Tweedie,
    exact for any Gaussian prior). ``covariance="isotropic"``: ``Sigma_t = r_t^2 I``,
    ``r_t^2 = v sigma_t^2 / (alpha_t^2 v + sigma_t^2)`` and ``d x0_hat / dx = alpha_t r_t^2 /
    sigma_t^2 I``, the moments of an ``N(mu, v I)`` prior (``v = prior_var``; Song et al.'s
    PiGDM choice): exact for such a prior, and robust for learned scores, whose Jacobian is
    unreliable at large ``t`` where ``I + sigma_t^2 grad s`` is a small difference.
    ``x0_clip = c``: the likelihood is linearised at ``clip(x0_hat, -c, c)`` (the thresholding of
    the ``x_0`` prediction that DDPM samplers apply; for standardised data, ``c`` a few units),
    which keeps off-manifold predictions of a learned score out of the forward model.
    """

    score: Any
    sde: LinearSDE
    forward: Any
    y: Float[Array, " m"]
    cov: Float[Array, "m m"]
    shape: tuple[int, ...] = eqx.field(static=True)
    covariance: str = eqx.field(static=True)
    prior_var: float = eqx.field(static=True)
    x0_clip: float | None = eqx.field(static=True)
    whiten: Float[Array, "m m"]  # L^{-1} for cov = L L^T

    def __init__(self, score, sde, forward, y, cov, shape, covariance="jacobian", prior_var=1.0,
                 x0_clip=None):
        self.score, self.sde, self.forward, self.y, self.cov = score, sde, forward, y, cov
        self.shape, self.covariance, self.prior_var, self.x0_clip = tuple(shape), covariance, prior_var, x0_clip
        self.whiten = _whitener(cov)

    @property
    def _ones(self):
        return jnp.ones(self.y.shape[0], dtype=self.y.dtype)

    def _s(self, x, t):
        return jnp.reshape(self.score(jnp.reshape(x, self.shape), t), (-1,))

    def _A(self, x):
        return jnp.reshape(self.forward(jnp.reshape(x, self.shape)), (-1,))

    def __call__(self, x: Float[Array, " D"], t: ArrayLike) -> Float[Array, " D"]:
        a, s2 = self.sde.alpha(t), self.sde.sigma2(t)
        s, s_vjp = jax.vjp(lambda z: self._s(z, t), x)
        x0 = (x + s2 * s) / a
        if self.x0_clip is not None:  # DDPM-style thresholding of the x_0 prediction
            x0 = jnp.clip(x0, -self.x0_clip, self.x0_clip)
        y_hat, A_vjp = jax.vjp(self._A, x0)
        J = jax.vmap(lambda e: A_vjp(e)[0])(jnp.eye(y_hat.shape[0], dtype=x.dtype))  # (m, D)
        if self.covariance == "isotropic":  # Sigma_t = r^2 I, d x0_hat / dx = a r^2 / s2 I
            r2 = self.prior_var * s2 / (a**2 * self.prior_var + s2)
            G = self.whiten @ J
            L = _cholesky(jnp.eye(G.shape[0], dtype=G.dtype) + r2 * (G @ G.T), 0.5 * self._ones)
            return s + _finite_or_zero((a * r2 / s2) * (G.T @ _cho_solve(L, self.whiten @ (self.y - y_hat))))
        # grad s J^T, column by column (forward mode): Sigma_t J^T = s2/a^2 (J^T + s2 grad s J^T)
        gsJt = jax.vmap(lambda v: jax.jvp(lambda z: self._s(z, t), (x,), (v,))[1])(J)  # (m, D)
        JSJ = (s2 / a**2) * (J @ J.T + s2 * J @ gsJt.T)
        G = self.whiten @ J
        S = self.whiten @ JSJ @ self.whiten.T
        L = _cholesky(jnp.eye(G.shape[0], dtype=G.dtype) + _psd_part(S), 0.5 * self._ones)
        u = G.T @ _cho_solve(L, self.whiten @ (self.y - y_hat))
        return s + _finite_or_zero((u + s2 * s_vjp(u)[0]) / a)


def _whitener(cov: Float[Array, "m m"]) -> Float[Array, "m m"]:
    return jnp.linalg.inv(jnp.linalg.cholesky(cov))


def geometric_grid(sde: LinearSDE, n_steps: int) -> Float[Array, " n"]:
    """Decreasing times from ``T`` to ``t_end = max(t_min, 1e-4 T)``, uniform in ``log t``:
    steps proportional to ``t``, which keeps explicit steps stable where the (posterior) score
    is stiff, near ``t = 0``."""
    t_end = max(float(sde.t_min), 1e-4 * float(sde.T))
    return sde.T * (t_end / sde.T) ** jnp.linspace(0.0, 1.0, int(n_steps) + 1)


@eqx.filter_jit
def _reverse_sde(post, sde, xT, key, n_steps):
    """Euler-Maruyama reverse SDE with ``post(x, t)`` on :func:`geometric_grid`; returns
    ``x_{t_end} / alpha_{t_end}`` (no final denoising jump: with a sharp likelihood, a Tweedie
    step through the guided score is a full Gauss-Newton step on the linearised forward model
    and overshoots when the model is strongly nonlinear)."""
    ts = geometric_grid(sde, n_steps).astype(xT.dtype)
    keys = jax.random.split(key, n_steps)

    def one(x, t, t_next, k):
        dt = t - t_next
        drift = sde.f(t) * x - sde.g2(t) * post(x, t)
        return x - drift * dt + jnp.sqrt(sde.g2(t) * dt) * jax.random.normal(k, x.shape, x.dtype)

    def step(x, inp):
        t, t_next, k = inp
        ks = jax.random.split(k, x.shape[0])
        return jax.vmap(one, in_axes=(0, None, None, 0))(x, t, t_next, ks), None

    x, _ = jax.lax.scan(step, xT, (ts[:-1], ts[1:], keys))
    return x / sde.alpha(ts[-1])


@eqx.filter_jit
def _dps(score, sde, forward, y, Linv, xT, key, zeta, n_steps, shape):
    """Euler-Maruyama reverse SDE with the prior score, DPS correction after each step."""
    s = lambda x, t: jnp.reshape(score(jnp.reshape(x, shape), t), (-1,))
    A = lambda x: jnp.reshape(forward(jnp.reshape(x, shape)), (-1,))
    ts = time_grid(sde, n_steps).astype(xT.dtype)
    keys = jax.random.split(key, n_steps)

    def res_norm(x, t):
        return jnp.linalg.norm(Linv @ (y - A(tweedie_mean(s, sde, x, t))))

    def one(x, t, t_next, k):
        dt = t - t_next
        drift = sde.f(t) * x - sde.g2(t) * s(x, t)
        x_new = x - drift * dt + jnp.sqrt(sde.g2(t) * dt) * jax.random.normal(k, x.shape, x.dtype)
        return x_new - 2.0 * zeta * jax.grad(res_norm)(x, t)

    def step(x, inp):
        t, t_next, k = inp
        ks = jax.random.split(k, x.shape[0])
        return jax.vmap(one, in_axes=(0, None, None, 0))(x, t, t_next, ks), None

    x, _ = jax.lax.scan(step, xT, (ts[:-1], ts[1:], keys))
    return x


def _runaway(x: np.ndarray, radius: float) -> np.ndarray:
    """Draws (rows) with a non-finite entry or one beyond ``radius`` in absolute value."""
    return ~np.all(np.isfinite(x) & (np.abs(x) <= radius), axis=1)


def _refine_runaways(post, sde, x: np.ndarray, key: PRNGKeyArray, n_steps: int, radius: float,
                     refinements: int) -> tuple[np.ndarray, int, int]:
    """Draw the run-away rows of ``x`` again, from new noise, with 4, 16, ... times ``n_steps``;
    returns ``(x, number drawn again, number still out)``. The re-drawn rows are padded to a
    power of two (fewer compilations)."""
    bad = np.flatnonzero(_runaway(x, radius))
    refined = len(bad)
    for level in range(1, refinements + 1):
        if len(bad) == 0:
            break
        m = 1 << (len(bad) - 1).bit_length()
        k1, k2 = jax.random.split(jax.random.fold_in(key, 1_000_000 + level))
        new = np.asarray(_reverse_sde(post, sde, jax.random.normal(k1, (m, x.shape[1]), dtype=x.dtype), k2,
                                      n_steps * 4**level))[:len(bad)]
        x = x.copy()
        x[bad] = new
        bad = bad[_runaway(new, radius)]
    return x, refined, len(bad)


def _check_inputs(y, cov, shape, forward, n_samples, batch_size):
    y = jnp.atleast_1d(jnp.asarray(y))
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D data vector, got shape {y.shape}")
    cov = jnp.asarray(cov, dtype=y.dtype)
    if cov.ndim == 0:
        cov = cov * jnp.eye(y.shape[0], dtype=y.dtype)
    elif cov.ndim == 1:
        cov = jnp.diag(cov)
    if cov.shape != (y.shape[0], y.shape[0]):
        raise ValueError(f"noise_cov must be a scalar variance, ({y.shape[0]},) variances or a "
                         f"({y.shape[0]}, {y.shape[0]}) matrix; got shape {cov.shape}")
    c = np.asarray(cov)
    if not np.allclose(c, c.T) or np.any(~np.isfinite(c)) or np.linalg.eigvalsh(c).min() <= 0:
        raise ValueError("noise_cov must be symmetric positive definite (all variances > 0)")
    if int(n_samples) < 1 or (batch_size is not None and int(batch_size) < 1):
        raise ValueError(f"n_samples and batch_size must be >= 1, got {n_samples}, {batch_size}")
    probe = jax.eval_shape(forward, jax.ShapeDtypeStruct(shape, y.dtype))
    if tuple(probe.shape) not in ((y.shape[0],),):
        raise ValueError(f"forward maps a point of shape {shape} to shape {probe.shape}, but y has "
                         f"shape {y.shape}")
    return y, cov


def sample_posterior(
    score: Score,
    sde: LinearSDE,
    forward: Forward,
    y: ArrayLike,
    noise_cov: ArrayLike,
    key: PRNGKeyArray,
    *,
    shape: tuple[int, ...],
    n_samples: int = 1000,
    guidance: Literal["tweedie", "dps"] = "tweedie",
    solver: Literal["ode", "sde"] = "ode",
    n_steps: int = 500,
    zeta: float = 1.0,
    covariance: Literal["jacobian", "isotropic"] = "jacobian",
    prior_var: float = 1.0,
    x0_clip: float | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    runaway_radius: float | None = None,
    refinements: int = 2,
    batch_size: int | None = None,
    transform: Callable[[Array], dict[str, Array]] | None = None,
    var_name: str = "x",
    progress: bool = True,
):
    """Draw ``n_samples`` from the guided posterior; returns :class:`arviz.InferenceData`.

    Args:
        score: prior score ``s(x, t)`` on points of ``shape`` (trained with ``sde``).
        sde: the forward SDE of the prior (linear, ``p_T ~ N(0, I)``).
        forward: differentiable ``A(x) -> y`` (1-D output).
        y: observed data ``(m,)``.
        noise_cov: ``C``: a variance, ``(m,)`` variances or an ``(m, m)`` SPD matrix.
        key: PRNG key.
        shape: shape of one ``x``.
        n_samples: number of posterior draws (independent).
        guidance: ``"tweedie"`` or ``"dps"`` (see the module docstring).
        solver: for ``"tweedie"``, ``"ode"`` (probability flow, adaptive Dopri5 with ``rtol``,
            ``atol``; exact up to tolerance, but slow when the guided score is stiff) or
            ``"sde"`` (reverse SDE, Euler-Maruyama on ``n_steps`` of :func:`geometric_grid`, stopped
            at ``t_end``); ``"dps"`` always runs its own Euler-Maruyama loop with
            ``n_steps``.
        zeta: DPS step-size constant.
        covariance, prior_var, x0_clip: options of the Tweedie guidance (:class:`TweedieGuidedScore`).
        runaway_radius: for the reverse SDE (``solver="sde"``): a draw with a non-finite entry
            or an entry beyond ``runaway_radius`` in absolute value has run away (an explicit
            step too long for the stiff guided drift, not a posterior draw); it is drawn again
            from new noise with 4 times the steps, up to ``refinements`` times (4^k n_steps).
            ``None``: no check. Draws still out after the last refinement are kept and counted
            (``attrs["runaway_left"]``; ``attrs["refined"]``: draws drawn again).
        refinements: the most refinements of a run-away draw.
        batch_size: draws per compiled call (memory); default all at once.
        transform: optional ``x -> {name: array}`` of derived quantities (one draw), stored
            in the posterior next to ``x``.
        var_name: posterior name of ``x``.
        progress: tqdm bar over batches.

    Returns:
        InferenceData: ``posterior[var_name]`` ``(1, n_samples, *shape)`` plus ``transform``
        outputs, ``observed_data["y"]``; attrs ``engine``, ``guidance``, ``wall_time_s``.
    """
    shape = tuple(int(s) for s in shape)
    y, cov = _check_inputs(y, noise_cov, shape, forward, n_samples, batch_size)
    if guidance not in ("tweedie", "dps"):
        raise ValueError(f"guidance must be 'tweedie' or 'dps', got {guidance!r}")
    if solver not in ("ode", "sde"):
        raise ValueError(f"solver must be 'ode' or 'sde', got {solver!r}")
    if covariance not in ("jacobian", "isotropic"):
        raise ValueError(f"covariance must be 'jacobian' or 'isotropic', got {covariance!r}")
    if x0_clip is not None and not x0_clip > 0:
        raise ValueError(f"x0_clip must be > 0 or None, got {x0_clip}")
    if not prior_var > 0:
        raise ValueError(f"prior_var must be > 0, got {prior_var}")
    if int(n_steps) < 1 or not zeta >= 0:
        raise ValueError(f"need n_steps >= 1 and zeta >= 0, got {n_steps}, {zeta}")
    if runaway_radius is not None and not runaway_radius > 0:
        raise ValueError(f"runaway_radius must be > 0 or None, got {runaway_radius}")
    if int(refinements) < 0:
        raise ValueError(f"refinements must be >= 0, got {refinements}")
    D = int(np.prod(shape))
    bs = int(n_samples) if batch_size is None else min(int(batch_size), int(n_samples))
    n_batches = -(-int(n_samples) // bs)
    start = time.perf_counter()
    out = []
    refined, left = 0, 0
    for i in tqdm(range(n_batches), desc=f"score posterior ({guidance})", disable=not progress):
        k = jax.random.fold_in(key, i)
        if guidance == "tweedie":
            post = TweedieGuidedScore(score, sde, forward, y, cov, shape, covariance, float(prior_var),
                                      None if x0_clip is None else float(x0_clip))
            if solver == "ode":
                x = sample_h(post, sde, k, bs, 0.0, shape=(D,), method="diffrax", rtol=rtol, atol=atol)
            else:
                k1, k2 = jax.random.split(k)
                x = _reverse_sde(post, sde, jax.random.normal(k1, (bs, D), dtype=y.dtype), k2, int(n_steps))
                if runaway_radius is not None:
                    x, n_refined, n_left = _refine_runaways(post, sde, np.asarray(x), k, int(n_steps),
                                                            float(runaway_radius), int(refinements))
                    refined, left = refined + n_refined, left + n_left
        else:
            k1, k2 = jax.random.split(k)
            xT = jax.random.normal(k1, (bs, D), dtype=y.dtype)
            x = _dps(score, sde, forward, y, _whitener(cov), xT, k2, jnp.asarray(zeta, y.dtype),
                     int(n_steps), shape)
        out.append(np.asarray(x))
    x = np.concatenate(out)[: int(n_samples)].reshape((int(n_samples), *shape))
    posterior = {var_name: x[None]}
    if transform is not None:
        derived = jax.vmap(transform)(jnp.asarray(x))
        posterior.update({k: np.asarray(v)[None] for k, v in derived.items()})
    wall = time.perf_counter() - start
    return from_draws(posterior, observed_data={"y": np.asarray(y)},
                      attrs={"engine": "score_posterior", "guidance": guidance, "solver": solver,
                             "covariance": covariance, "n_steps": int(n_steps), "wall_time_s": float(wall),
                             **({} if runaway_radius is None else
                                {"runaway_radius": float(runaway_radius), "refined": refined,
                                 "runaway_left": left})})
