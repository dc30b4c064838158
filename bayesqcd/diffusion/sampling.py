"""The h-family of generating processes, run from ``t = T`` down to ``t_min``:

    dx = [f(t) x - (1 + h)/2 g(t)^2 s(x, t)] dt + sqrt(h) g(t) dw_bar,   x_T ~ pi.

``h = 0`` is the probability-flow ODE, ``h = 1`` the reverse SDE; with the exact score every
``h`` has the data marginals ``p_t``. Solvers:

* ``"diffrax"``: at ``h = 0`` adaptive Dopri5; at ``h > 0`` Heun (Stratonovich = Ito here,
  the noise being additive) on the ``n_steps`` steps of :func:`time_grid`, in the reversed
  time ``tau = T - t``.
* ``"heun"``: that fixed-step Heun solver for every ``h``, ``h = 0`` included (use it to
  compare different ``h`` with the same discretisation).
* ``"euler"``: plain Euler-Maruyama on ``n_steps`` steps of a grid refined near ``T``
  (:func:`time_grid`: steps shrink towards ``T``, where COSINE's ``g`` diverges).

Batched over samples with ``jax.vmap``; one PRNG key gives the same samples every time.
"""

from __future__ import annotations

from typing import Any, Literal

import diffrax
import equinox as eqx
import jax
import lineax as lx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from bayesqcd.diffusion.analytic import standard_normal
from bayesqcd.diffusion.likelihood import Score
from bayesqcd.diffusion.sde import LinearSDE


def _check(h: float, n: int, n_steps: int, method: str) -> None:
    if not h >= 0:
        raise ValueError(f"h must be >= 0, got {h}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if method not in ("diffrax", "heun", "euler"):
        raise ValueError(f"method must be 'diffrax', 'heun' or 'euler', got {method!r}")


def time_grid(sde: LinearSDE, n_steps: int) -> Float[Array, " n"]:
    """Decreasing times ``T = t_0 > ... > t_n = t_min``, ``t = t_min + (T - t_min)(1 - (1-u)^2)``
    for uniform ``u``: steps shrink linearly towards ``T`` (where COSINE's ``g`` diverges)."""
    u = jnp.linspace(1.0, 0.0, n_steps + 1)
    return sde.t_min + (sde.T - sde.t_min) * (1.0 - (1.0 - u) ** 2)


def sample_h(score: Score, sde: LinearSDE, key: PRNGKeyArray, n: int, h: float, *,
             shape: tuple[int, ...] = (2,), prior: Any = None,
             method: Literal["diffrax", "heun", "euler"] = "diffrax", n_steps: int = 500,
             rtol: float = 1e-4, atol: float = 1e-4, max_steps: int = 16384) -> Float[Array, "n ..."]:
    """``n`` samples of the h-process at ``t_min``.

    Args:
        score: ``s_theta(x, t)`` for one point of ``shape``.
        sde: forward schedule.
        key: PRNG key (prior draws and Brownian paths).
        n: number of samples.
        h: the "Planck constant" of the generating process (``>= 0``).
        shape: shape of one sample.
        prior: object with ``sample(key, n) -> (n, D)``; default ``N(0, I)``.
        method: ``"diffrax"``, ``"heun"`` or ``"euler"`` (Euler-Maruyama); see above.
        n_steps: steps of the fixed-step SDE solvers (``h > 0``, or ``method='euler'``).
        rtol, atol: tolerances of the adaptive ODE solver (``h = 0``, ``method='diffrax'``).
        max_steps: diffrax step limit.
    """
    h = float(h)
    _check(h, n, n_steps, method)
    D = 1
    for k in shape:
        D *= k
    prior = standard_normal(D) if prior is None else prior
    k_prior, k_noise = jax.random.split(key)
    xT = prior.sample(k_prior, n)
    adaptive = h == 0.0 and method == "diffrax"
    x = _run(score, sde, xT, k_noise, jnp.asarray(h, xT.dtype), shape, method, adaptive, n_steps,
             rtol, atol, max_steps)
    return x.reshape((n, *shape))


@eqx.filter_jit
def _run(score, sde, xT, k_noise, h, shape, method, adaptive, n_steps, rtol, atol, max_steps):
    """The compiled sampler; ``h`` is traced, so a scan over ``h`` compiles once."""
    n, D = xT.shape
    s = lambda x, t: jnp.reshape(score(jnp.reshape(x, shape), t), (-1,))

    def drift(x, t):
        return sde.f(t) * x - 0.5 * (1.0 + h) * sde.g2(t) * s(x, t)

    if method == "euler":
        ts = time_grid(sde, n_steps).astype(xT.dtype)
        keys = jax.random.split(k_noise, n_steps)

        def step(x, inp):
            t, t_next, k = inp
            dt = t - t_next
            noise = jax.random.normal(k, x.shape, x.dtype)
            x = x - jax.vmap(drift, in_axes=(0, None))(x, t) * dt
            return x + jnp.sqrt(h * sde.g2(t) * dt) * noise, None

        x, _ = jax.lax.scan(step, xT, (ts[:-1], ts[1:], keys))
        return x

    ctrl = diffrax.PIDController(rtol=rtol, atol=atol)
    tau1 = sde.T - sde.t_min
    if adaptive:
        def one(x):
            sol = diffrax.diffeqsolve(diffrax.ODETerm(lambda t, y, a: drift(y, t)), diffrax.Dopri5(),
                                      sde.T, sde.t_min, None, x, stepsize_controller=ctrl,
                                      max_steps=max_steps)
            return sol.ys[-1]

        return jax.vmap(one)(xT)

    taus = (sde.T - time_grid(sde, n_steps)).astype(xT.dtype)

    def one(x, k):
        bm = diffrax.UnsafeBrownianPath(shape=(D,), key=k)
        terms = diffrax.MultiTerm(
            diffrax.ODETerm(lambda tau, y, a: -drift(y, sde.T - tau)),
            diffrax.ControlTerm(lambda tau, y, a: lx.DiagonalLinearOperator(
                jnp.sqrt(h * sde.g2(sde.T - tau)) * jnp.ones_like(y)), bm))
        sol = diffrax.diffeqsolve(terms, diffrax.Heun(), 0.0, tau1, None, x,
                                  stepsize_controller=diffrax.StepTo(taus),
                                  adjoint=diffrax.DirectAdjoint(), max_steps=n_steps)
        return sol.ys[-1]

    keys = jax.random.split(k_noise, n)
    return jax.vmap(one)(xT, keys)
