"""MAP estimates, Laplace evidence and chains started from them, for any model.

Layer: inference (imports core, numpy, scipy, optax and NumPyro; never studies or cli).

* :func:`least_squares_solver` -- the MAP of ``theta ~ N(0, diag(s^2))``,
  ``D ~ N(A f(theta), C)`` by a trust-region Gauss-Newton solve (scipy's ``dogbox`` with the
  exact ``jax.jacfwd`` Jacobian), and its Laplace log evidence: :class:`LeastSquaresMAP`.
* :func:`evidence_scan` -- empirical Bayes for one hyperparameter (an amplitude): the value of
  maximal Laplace evidence on a grid, scanned upwards with continuation: :class:`EvidenceScan`.
* :func:`map_estimate` -- the MAP of any NumPyro model by vectorized multi-start L-BFGS
  (optax), in NumPyro's unconstrained space: :class:`MAPEstimate`.
* :func:`run_nuts_chains` -- one NUTS chain per ``(model, initial values)`` pair (each chain
  from its own MAP, or in its own coordinates), joined into one InferenceData.

The Gauss-Newton solver is for problems with a Gaussian likelihood and a Gaussian prior, where
the Hessian spans many decades (ill-posed inversions at low noise) and a generic quasi-Newton
method stops far from the optimum; :func:`map_estimate` is for any model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .nuts import run_nuts

__all__ = [
    "EvidenceScan", "LeastSquaresMAP", "MAPEstimate", "evidence_scan", "least_squares_solver",
    "map_estimate", "run_nuts_chains",
]


# ------------------------------------------------------------------- Gauss-Newton MAP
@dataclass
class LeastSquaresMAP:
    """A MAP found by :func:`least_squares_solver`.

    Attributes:
        theta: the MAP, ``(d,)``, in the units of ``theta``.
        chi2_per_point: ``chi^2 / n_data`` of the data at ``theta``,
            ``|L^{-1} (D - A f(theta))|^2 / n_data``.
        log_evidence: ``log p(D)`` in the Gauss-Newton Laplace approximation, up to a constant
            that depends only on the shapes (and on ``prior_scale``, ``C``):
            ``-|r|^2 / 2 - log det(J^T J) / 2`` with ``r`` and ``J`` the whitened residuals and
            their Jacobian at the MAP (see :func:`least_squares_solver`).
        converged: whether scipy's solver met its tolerance.
    """

    theta: np.ndarray
    chi2_per_point: float
    log_evidence: float
    converged: bool


def least_squares_solver(
    fn: Callable[..., jax.Array],
    prior_scale: ArrayLike,
    A: ArrayLike,
    cov: ArrayLike,
    data: ArrayLike,
    *,
    max_nfev: int = 2000,
) -> Callable[..., LeastSquaresMAP]:
    """A MAP solver for ``theta ~ N(0, diag(prior_scale^2))``, ``D ~ N(A fn(theta, *args), C)``.

    The potential is ``|r|^2 / 2`` with the whitened residuals
    ``r = [L^{-1} (D - A fn(s x, *args)); x]``, ``x = theta / s``, ``s = prior_scale``,
    ``C = L L^T``: a nonlinear least-squares problem. scipy's dogleg trust-region Gauss-Newton
    (``dogbox``; ``trf`` needs 10-50 times longer on the ill-conditioned problems this is for)
    with the exact Jacobian (``jax.jacfwd``, compiled once for all calls) solves it to
    convergence (``xtol = gtol = 1e-10``, ``ftol = 1e-12``). The Laplace log evidence uses the
    Gauss-Newton Hessian ``J^T J`` of ``|r|^2 / 2`` in ``x``.

    Arguments:
        fn: ``(theta (d,), *args) -> (n,)``, differentiable pure JAX (e.g. a spectral function
            on a grid); ``args`` are passed on by the returned solver (hyperparameters).
        prior_scale: standard deviations ``s`` of the Gaussian prior, ``(d,)`` or a scalar.
        A: the linear forward matrix, ``(n_data, n)``.
        cov: the noise covariance ``C``, ``(n_data, n_data)``, symmetric positive definite.
        data: the observed ``D``, ``(n_data,)``.
        max_nfev: maximal number of residual evaluations per solve.

    Returns:
        ``solve(theta_init (d,), *args) -> LeastSquaresMAP``.
    """
    from scipy.optimize import least_squares

    A = jnp.asarray(A, dtype=float)
    Li = jnp.asarray(np.linalg.inv(np.linalg.cholesky(np.asarray(cov, float))))
    G, Dw = Li @ A, Li @ jnp.asarray(data, dtype=float)
    n = int(A.shape[0])

    def residual(x, *args):
        scale = jnp.broadcast_to(jnp.asarray(prior_scale, dtype=x.dtype), x.shape)
        return jnp.concatenate([Dw - G @ fn(scale * x, *args), x])

    r, jac = jax.jit(residual), jax.jit(jax.jacfwd(residual))

    def solve(theta_init: ArrayLike, *args: Any) -> LeastSquaresMAP:
        scale = np.broadcast_to(np.asarray(prior_scale, float), np.shape(theta_init))
        res = least_squares(lambda x: np.asarray(r(jnp.asarray(x), *args)),
                            np.asarray(theta_init, float) / scale,
                            jac=lambda x: np.asarray(jac(jnp.asarray(x), *args)), method="dogbox",
                            x_scale="jac", xtol=1e-10, ftol=1e-12, gtol=1e-10, max_nfev=int(max_nfev))
        logdet = np.linalg.slogdet(res.jac.T @ res.jac)[1]
        return LeastSquaresMAP(res.x * scale, float(np.sum(res.fun[:n] ** 2)) / n,
                               -0.5 * float(res.fun @ res.fun) - 0.5 * float(logdet), bool(res.status > 0))

    return solve


# ------------------------------------------------------------------- evidence scan
@dataclass
class EvidenceScan:
    """The result of :func:`evidence_scan`.

    Attributes:
        amplitude: the scanned value of maximal ``log_evidence``.
        map: the MAP at ``amplitude``.
        amplitudes: the values solved, in increasing order (the scan may stop early), ``(m,)``.
        log_evidence: ``log p(D | a) + log p(a)`` at each of ``amplitudes`` (up to a constant).
        maps: the MAP at each of ``amplitudes``.
        converged: whether every solve met its tolerance.
    """

    amplitude: float
    map: LeastSquaresMAP
    amplitudes: np.ndarray
    log_evidence: np.ndarray
    maps: list[LeastSquaresMAP]
    converged: bool


def evidence_scan(
    solve: Callable[[np.ndarray, float], LeastSquaresMAP],
    theta_init: ArrayLike,
    amplitudes: ArrayLike,
    *,
    log_hyperprior: Callable[[float], float] | None = None,
    continuation: Callable[[np.ndarray, float, float], np.ndarray] | None = None,
    stop_below: float = 10.0,
) -> EvidenceScan:
    """Empirical Bayes for an amplitude ``a``: the grid value of maximal Laplace evidence.

    The amplitudes are solved in increasing order, each solve starting from the previous MAP
    (mapped by ``continuation``: from a fixed start a solver often fails at large ``a``), and the
    scan stops once ``log p(D | a) + log p(a)`` has fallen ``stop_below`` under its maximum.

    Arguments:
        solve: ``(theta_init (d,), a) -> LeastSquaresMAP``, e.g. from
            :func:`least_squares_solver` with ``fn(theta, a)``.
        theta_init: the start of the first solve, ``(d,)``.
        amplitudes: the grid, positive numbers (sorted here).
        log_hyperprior: ``a -> log p(a)`` (default flat: 0).
        continuation: ``(theta_prev_map, a_prev, a) -> theta_init`` (default: the previous MAP).
        stop_below: the drop of the log evidence below its running maximum that ends the scan.

    Returns:
        :class:`EvidenceScan`.

    Raises:
        ValueError: when ``amplitudes`` is not a non-empty 1-D grid of positive numbers.
    """
    amps = np.sort(np.asarray(amplitudes, float))
    if amps.ndim != 1 or amps.size < 1 or np.any(amps <= 0):
        raise ValueError(f"amplitudes must be a 1-D grid of positive numbers, got {amps}")
    if not stop_below > 0:
        raise ValueError(f"stop_below must be > 0, got {stop_below}")
    theta = np.asarray(theta_init, float)
    sols, logev, prev = [], [], None
    for a in amps:
        if prev is not None and continuation is not None:
            theta = continuation(theta, prev, a)
        sol = solve(theta, a)
        theta, prev = sol.theta, a
        sols.append(sol)
        logev.append(sol.log_evidence + (0.0 if log_hyperprior is None else log_hyperprior(a)))
        if logev[-1] < max(logev) - stop_below:
            break
    best = int(np.argmax(logev))
    return EvidenceScan(float(amps[best]), sols[best], amps[: len(logev)], np.asarray(logev), sols,
                        all(s.converged for s in sols))


# ------------------------------------------------------------------- MAP of a NumPyro model
@dataclass
class MAPEstimate:
    """The MAP of a NumPyro model found by :func:`map_estimate`.

    Attributes:
        z: the MAP in NumPyro's unconstrained space (site name -> array).
        potential_energy: ``-log p(z, D)`` at ``z`` (unconstrained, Jacobians included).
        potential_fn: ``z -> -log p(z, D)``.
        postprocess_fn: ``z -> constrained values`` of every site, deterministic ones included.
    """

    z: dict[str, jax.Array]
    potential_energy: float
    potential_fn: Callable[[Any], jax.Array]
    postprocess_fn: Callable[[Any], dict[str, jax.Array]]

    def values(self) -> dict[str, jax.Array]:
        """The MAP in the model's own (constrained) space, deterministic sites included."""
        return self.postprocess_fn(self.z)


def map_estimate(
    model: Callable[..., Any],
    *model_args: Any,
    key: jax.Array,
    n_starts: int = 4,
    max_iter: int = 1000,
    init_strategy: Callable | None = None,
    **model_kwargs: Any,
) -> MAPEstimate:
    """The best of ``n_starts`` L-BFGS minimisations of a NumPyro model's potential energy.

    The starts are drawn by ``init_strategy`` (default NumPyro's ``init_to_uniform``: uniform
    in ``(-2, 2)`` in the unconstrained space) with keys ``fold_in(key, i)``; the ``n_starts``
    runs of ``max_iter`` steps of ``optax.lbfgs`` (with its zoom line search) are vectorized in
    one compiled program, and the lowest finite potential wins.

    Arguments:
        model: a NumPyro model; ``model_args`` and ``model_kwargs`` are passed to it.
        key: a ``jax.random`` key.
        n_starts: the number of starts (``>= 1``).
        max_iter: L-BFGS steps per start (``>= 1``); no early stop.
        init_strategy: NumPyro init strategy of the starts.

    Returns:
        :class:`MAPEstimate`.

    Raises:
        ValueError: on ``n_starts`` or ``max_iter`` below 1.
        RuntimeError: when every start ends at a non-finite potential.
    """
    import optax
    from numpyro.infer import init_to_uniform
    from numpyro.infer.util import initialize_model

    if int(n_starts) < 1 or int(max_iter) < 1:
        raise ValueError(f"n_starts = {n_starts} and max_iter = {max_iter} must be >= 1")
    infos = [initialize_model(jax.random.fold_in(key, i), model, model_args=model_args,
                              model_kwargs=model_kwargs, init_strategy=init_strategy or init_to_uniform)
             for i in range(int(n_starts))]
    pot, post = infos[0].potential_fn, infos[0].postprocess_fn
    z0 = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[inf.param_info.z for inf in infos])
    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(pot)

    def run(z):
        def step(carry, _):
            z, state = carry
            value, grad = vg(z, state=state)
            updates, state = opt.update(grad, state, z, value=value, grad=grad, value_fn=pot)
            return (optax.apply_updates(z, updates), state), None

        (z, _), _ = jax.lax.scan(step, (z, opt.init(z)), None, length=int(max_iter))
        return z, pot(z)

    zs, vals = jax.jit(jax.vmap(run))(z0)
    vals = np.where(np.isfinite(np.asarray(vals)), np.asarray(vals), np.inf)
    if not np.isfinite(vals.min()):
        raise RuntimeError("MAP search failed from every start")
    best = int(np.argmin(vals))
    return MAPEstimate(jax.tree_util.tree_map(lambda a: a[best], zs), float(vals[best]), pot, post)


# ------------------------------------------------------------------- chains from given starts
def run_nuts_chains(
    chains: Sequence[tuple[Callable[..., Any], dict[str, Any]]],
    *,
    key: jax.Array,
    **nuts_kwargs: Any,
) -> az.InferenceData:
    """One NUTS chain per ``(model, initial values)``, run one after the other and joined.

    Each chain may have its own model (e.g. the same posterior in coordinates about its own
    start) and starts at its values (``init_to_value``); chain ``c`` uses key
    ``fold_in(key, c)``. Sequential single chains, never batched: models with small LAPACK
    solves inside (``jnp.linalg.solve`` under ``vmap``) can deadlock XLA's CPU thread pool when
    vectorized (see :mod:`bayesqcd.inference.score_posterior`).

    Arguments:
        chains: ``(model, {site: initial value})`` pairs; models take no arguments (bind them
            with ``functools.partial``).
        key: a ``jax.random`` key.
        nuts_kwargs: passed to :func:`~bayesqcd.inference.nuts.run_nuts` (``num_warmup``,
            ``num_samples``, ``max_tree_depth``, ``target_accept``, ``progress``, ...);
            ``num_chains``, ``init_strategy`` and ``check`` are set here.

    Returns:
        InferenceData with ``chain`` = index in ``chains``; ``attrs`` those of the first run with
        ``num_chains`` and ``wall_time_s`` (the sum over the chains). No convergence warnings:
        read :func:`~bayesqcd.inference.results.diagnostics`.
    """
    from numpyro.infer import init_to_value

    if not chains:
        raise ValueError("chains must hold at least one (model, initial values) pair")
    for name in ("num_chains", "init_strategy", "check"):
        if name in nuts_kwargs:
            raise ValueError(f"{name} is set by run_nuts_chains; do not pass it")
    runs = [run_nuts(model, init_strategy=init_to_value(values=init),
                     **{**nuts_kwargs, "key": jax.random.fold_in(key, c), "num_chains": 1, "check": False})
            for c, (model, init) in enumerate(chains)]
    idata = az.concat(*runs, dim="chain") if len(runs) > 1 else runs[0]
    wall = float(sum(r.posterior.attrs["wall_time_s"] for r in runs))
    for group in idata.groups():
        getattr(idata, group).attrs.update(runs[0].posterior.attrs)
        getattr(idata, group).attrs.update(num_chains=len(runs), wall_time_s=wall)
    return idata
