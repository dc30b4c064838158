"""The Bayesian Reconstruction (BR) method of Burnier and Rothkopf (PRL 111, 182003 (2013)).

The prior of ``rho > 0`` relative to a default model ``m`` (scale invariant: it depends on
``rho / m`` only, and has no flat directions at ``rho -> 0`` unlike the Shannon-Jaynes entropy):

    S_BR(rho) = alpha sum_l w_l (1 - rho_l / m_l + log(rho_l / m_l)) = -alpha s(rho),
    P(rho | alpha, m) = exp(-alpha s(rho)) / Z(alpha),
    Z(alpha) = prod_l int_0^inf d rho_l exp(-alpha w_l (rho_l/m_l - 1 - log(rho_l/m_l)))
             = prod_l m_l e^{a_l} Gamma(a_l + 1) / a_l^{a_l + 1},       a_l = alpha w_l,

and ``alpha`` is integrated out, not fixed: ``P(rho | m) = int d alpha P(alpha) P(rho | alpha, m)``
with ``P(alpha)`` flat (as in the paper; or Jeffreys ``1/alpha``) on ``[alpha_min, alpha_max]``.
The integral is done numerically (trapezoid rule in ``log alpha`` on :data:`N_ALPHA` points,
exact ``Z(alpha)``), a one-dimensional log-sum-exp: ``-log P(rho | m) = g(s(rho))``,
``g'(s) = <alpha>`` and ``g''(s) = -Var(alpha)``, the mean and variance of ``alpha`` under
``P(alpha | rho) ~ P(alpha) exp(-alpha s) / Z(alpha)``; with the flat ``P(alpha)``,
``<alpha> -> (n_omega / 2 + 1) / s`` for ``alpha w >> 1`` (Stirling: ``Z ~ prod (alpha w)^(-1/2)``)
and ``(n_omega + 1) / s`` for ``alpha w << 1``. The range must hold that posterior
(:attr:`BRResult.alpha_in_range` says whether it does). (With the improper flat prior on ``(0, inf)`` the density
would be infinite at ``rho = m``, ``s = 0``; the finite range keeps it proper, and the
maximum near the data is the physical one, as in the paper.)

The MAP ``rho`` maximises ``-chi^2 / 2 - g(s(rho))`` in the full omega space (no singular-value
subspace: for the BR prior the stationarity condition puts ``m / rho``, not ``log(rho / m)``, in
the column space of ``W^{-1} A^T``); it is found by Levenberg-Marquardt steps on the exact
Hessian in ``u = log(rho / m)`` (:func:`_minimise`): positivity by construction, and the density is
that of ``rho`` (the parametrisation adds no Jacobian), started from the solution at a fixed
``alpha`` = :data:`START_ALPHA` (not at ``rho = m``, the prior's spurious maximum). Error band:
like :func:`~.mem.mem`, the spread of BR solutions for data redrawn from ``N(D, C)``. Plain numpy
float64 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from scipy.linalg import cho_factor, cho_solve

from bayesqcd.spectral.mem import A_CLIP, one_blas_thread, whitened_problem

N_ALPHA = 2000
"""Points of the ``log alpha`` quadrature."""
ALPHA_RANGE = (1e-6, 1e8)
"""Default ``[alpha_min, alpha_max]`` of the prior on ``alpha``."""


@dataclass
class BRResult:
    """Output of :func:`br`.

    Attributes:
        rho: the MAP spectral function (``alpha`` integrated out).
        alpha_mean, alpha_sd: mean and standard deviation of ``alpha`` under
            ``P(alpha | rho)`` at the MAP (the effective regularisation).
        alpha_in_range: whether that distribution lies inside the quadrature range (its mass
            on the outer 5% in ``log alpha`` is below 1e-6).
        default_model: ``m``.
        samples: ``(n_samples, n_omega)`` MAPs for data redrawn from ``N(D, C)`` (empty if none).
        chi2: ``chi^2`` of ``rho``.
        converged: whether every Newton solve converged.
        n_iter: Newton iterations of the main solve.
    """

    rho: np.ndarray
    alpha_mean: float
    alpha_sd: float
    alpha_in_range: bool
    default_model: np.ndarray
    samples: np.ndarray
    chi2: float
    converged: bool
    n_iter: int


def _log_norm(alphas: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``log Z(alpha) - sum_l log m_l`` for each ``alpha`` (exact, through ``gammaln``)."""
    from scipy.special import gammaln

    a = alphas[:, None] * w[None, :]
    return np.sum(a + gammaln(a + 1.0) - (a + 1.0) * np.log(a), axis=1)


class AlphaMarginal:
    """``g(s) = -log int d alpha P(alpha) exp(-alpha s) / Z(alpha)`` and its first two derivatives.

    Arguments:
        w: quadrature weights ``(n_omega,)``.
        alpha_range: ``(alpha_min, alpha_max)``.
        alpha_prior: ``"flat"`` (``P(alpha) = 1``) or ``"jeffreys"`` (``1 / alpha``).
        n_alpha: quadrature points in ``log alpha``.
    """

    def __init__(self, w: np.ndarray, alpha_range: tuple[float, float] = ALPHA_RANGE,
                 alpha_prior: str = "flat", n_alpha: int = N_ALPHA) -> None:
        lo, hi = (float(v) for v in alpha_range)
        if not (0 < lo < hi < np.inf):
            raise ValueError(f"alpha_range = {alpha_range} is not valid: need 0 < alpha_min < alpha_max < inf")
        if alpha_prior not in ("flat", "jeffreys"):
            raise ValueError(f"alpha_prior = {alpha_prior!r} is not valid; choose from flat, jeffreys")
        if int(n_alpha) < 3:
            raise ValueError(f"n_alpha = {n_alpha} is outside the valid range: integers >= 3")
        t = np.linspace(np.log(lo), np.log(hi), int(n_alpha))
        self.alphas = np.exp(t)
        trap = np.full(t.shape, t[1] - t[0])
        trap[[0, -1]] *= 0.5
        # int d alpha f = int d log(alpha) alpha f; Jeffreys: int d log(alpha) f
        log_weight = np.log(trap) + (t if alpha_prior == "flat" else 0.0)
        self.log_c = log_weight - _log_norm(self.alphas, np.asarray(w, float))

    def posterior(self, s: float) -> np.ndarray:
        """``P(alpha_k | rho)`` on the quadrature points (normalised weights)."""
        e = self.log_c - self.alphas * s
        p = np.exp(e - e.max())
        return p / p.sum()

    def __call__(self, s: float) -> tuple[float, float, float]:
        """``(g(s), g'(s), g''(s)) = (-log int ..., <alpha>, -Var(alpha))``."""
        e = self.log_c - self.alphas * s
        top = e.max()
        p = np.exp(e - top)
        z = p.sum()
        p /= z
        mean = float(p @ self.alphas)
        var = float(p @ (self.alphas - mean) ** 2)
        return -(top + np.log(z)), mean, -var

    def in_range(self, s: float) -> bool:
        """Whether ``P(alpha | rho)`` has mass below 1e-6 on the outer 5% (in ``log alpha``) at
        either end of the range."""
        p = self.posterior(s)
        k = max(1, p.shape[0] // 20)
        return bool(p[:k].sum() + p[-k:].sum() < 1e-6)


START_ALPHA = 1.0
"""The fixed ``alpha`` of the first solve, which takes ``rho`` from the default model to the data."""
MAX_STEP = 5.0
"""Largest change of any ``u_l = log(rho_l / m_l)`` in one Newton step (a factor ``e^5``)."""


def _minimise(u, marg, m, w, Aw, dw, max_iter, tol):
    """Minimise ``F(u) = |Aw rho - dw|^2 / 2 + g(s)`` with ``rho = m exp(u)``: Levenberg-Marquardt
    steps on the exact Hessian; returns ``(u, converged, iterations)``.

    ``H = J^T J + diag(rho A^T r + <alpha> w x) - Var(alpha) v v^T`` (``J = Aw diag(rho)``,
    ``x = rho / m``, ``v = w (x - 1)``). The step ``-(H + lam I)^{-1} g`` (Cholesky; ``lam``
    grows until ``H + lam I`` is positive definite), at most :data:`MAX_STEP` in any ``u_l``,
    is accepted when ``F`` falls by at least a quarter of the predicted amount; ``lam`` then
    shrinks 3 times (to 0 below ``1e-10 max diag H``), else grows 4 times (from at least
    ``1e-8 max diag H``) and the step is retried. Converged when ``H`` is positive definite
    and the Newton decrement ``g^T H^{-1} g`` is below ``tol``. Entries of ``J`` below
    ``1e-120 max|J|`` are set to 0 and the Cholesky factorisation is of ``H`` scaled to unit
    diagonal: subnormal numbers made each iteration ~10 times slower (Euclidean kernel,
    ``exp(-omega tau) ~ 1e-135``). (scipy's
    ``trust-exact`` finds the same points, 2-10 times slower.)"""

    def parts(u):
        x = np.exp(np.clip(u, -A_CLIP, A_CLIP))  # a far trial step must not overflow exp
        rho = m * x
        r = Aw @ rho - dw
        s = float(np.sum(w * (x - 1.0 - u)))
        return x, rho, r, s

    def fun(u):
        _, _, r, s = parts(u)
        return 0.5 * r @ r + marg(s)[0]

    def solve(H, lam, g):
        """``(H + lam I)^{-1} g``, or ``None`` when ``H + lam I`` is not positive definite;
        Cholesky of the matrix scaled to unit diagonal, entries below 1e-30 set to 0 (no
        subnormal numbers in the factorisation, where they cost ~10 times more)."""
        diag = np.diag(H) + lam
        if not np.all(diag > 0):
            return None
        d = np.sqrt(diag)
        S = H / d[:, None] / d[None, :]
        S[np.diag_indices_from(S)] = 1.0
        S[np.abs(S) < 1e-30] = 0.0
        try:
            return cho_solve(cho_factor(S, lower=True, check_finite=False), g / d, check_finite=False) / d
        except np.linalg.LinAlgError:
            return None

    f, lam = fun(u), 0.0
    converged, it = False, 0
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for it in range(1, int(max_iter) + 1):
            x, rho, r, s = parts(u)
            _, a_mean, neg_var = marg(s)
            v = w * (x - 1.0)
            g = rho * (Aw.T @ r) + a_mean * v
            J = Aw * rho[None, :]
            J[np.abs(J) < 1e-120 * np.max(np.abs(J))] = 0.0  # no subnormal products (slow)
            H = J.T @ J + neg_var * np.outer(v, v)
            H[np.diag_indices_from(H)] += rho * (Aw.T @ r) + a_mean * w * x
            if not np.all(np.isfinite(H)):
                break
            top = float(np.max(np.abs(np.diag(H))))
            newton = solve(H, 0.0, g)
            if newton is not None and float(g @ newton) < tol:
                converged = True
                break
            for _ in range(80):
                d = newton if lam == 0.0 else solve(H, lam, g)
                if d is None:
                    lam = max(4.0 * lam, 1e-8 * top)
                    continue
                step = -d * min(1.0, MAX_STEP / float(np.max(np.abs(d))))
                predicted = -float(g @ step + 0.5 * step @ (H @ step))
                f_new = fun(u + step)
                if predicted > 0 and np.isfinite(f_new) and f - f_new >= 0.25 * predicted:
                    lam = lam / 3.0 if lam > 1e-10 * top else 0.0
                    break
                lam = max(4.0 * lam, 1e-8 * top)
            else:
                break  # no step lowers F: at its precision
            u, f = u + step, f_new
    return u, converged, it


@one_blas_thread
def br(A: ArrayLike, data: ArrayLike, cov: ArrayLike, weights: ArrayLike, *,
       default_model: ArrayLike | float | None = None, alpha_range: tuple[float, float] = ALPHA_RANGE,
       alpha_prior: str = "flat", n_alpha: int = N_ALPHA, max_iter: int = 1000, tol: float = 1e-6,
       n_samples: int = 0, seed: int = 0) -> BRResult:
    """The BR MAP with ``alpha`` integrated out, and a band from redrawn data (module doc).

    Args:
        A: forward matrix ``(n_data, n_omega)`` (quadrature included).
        data, cov: the correlator ``(n_data,)`` and its covariance (SPD).
        weights: quadrature weights ``w_l > 0`` ``(n_omega,)`` of the prior.
        default_model: ``m`` (array or constant, ``> 0``); default the flat ``m`` fitted to the
            data (as :func:`~.mem.mem`).
        alpha_range, alpha_prior, n_alpha: the prior on ``alpha`` and its quadrature
            (:class:`AlphaMarginal`).
        max_iter, tol: Newton iterations; converged when the Newton decrement is below ``tol``.
        n_samples: redrawn data sets for the error band (``0``: none).
        seed: seed of the redrawn noise (numpy ``default_rng``).
    """
    if int(n_samples) < 0:
        raise ValueError(f"n_samples = {n_samples} is outside the valid range: integers >= 0")
    Aw, dw, w, m = whitened_problem(A, data, cov, weights, default_model)
    nd, nw = Aw.shape
    marg = AlphaMarginal(w, alpha_range, alpha_prior, n_alpha)
    # first chi^2/2 + START_ALPHA s(rho) from rho = m, then the marginal from there: started at
    # rho = m itself, where s = 0 and the marginal prior has its spurious maximum (alpha runs to
    # alpha_max), the solve can stop there (bw1 at eps 1e-2: chi^2/point 2000, alpha 1e8)
    fixed_alpha = lambda s_: (START_ALPHA * s_, START_ALPHA, 0.0)  # noqa: E731 (g, g', g'') of alpha s
    u0, _, _ = _minimise(np.zeros(nw), fixed_alpha, m, w, Aw, dw, max_iter, tol)
    u, ok_all, nit = _minimise(u0, marg, m, w, Aw, dw, max_iter, tol)
    rho = m * np.exp(np.clip(u, -A_CLIP, A_CLIP))
    s = float(np.sum(w * (rho / m - 1.0 - np.log(rho / m))))
    _, a_mean, neg_var = marg(s)
    chi2 = float(np.sum((Aw @ rho - dw) ** 2))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(int(n_samples)):
        u_k, ok, _ = _minimise(u, marg, m, w, Aw, dw + rng.standard_normal(nd), max_iter, tol)
        ok_all &= ok
        draws.append(m * np.exp(np.clip(u_k, -A_CLIP, A_CLIP)))
    samples = np.asarray(draws).reshape(int(n_samples), nw)
    return BRResult(rho=rho, alpha_mean=a_mean, alpha_sd=float(np.sqrt(max(-neg_var, 0.0))),
                    alpha_in_range=marg.in_range(s), default_model=m, samples=samples, chi2=chi2,
                    converged=bool(ok_all), n_iter=nit)
