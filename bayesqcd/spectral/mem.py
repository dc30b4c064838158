"""The Maximum Entropy Method (MEM), the field's standard baseline for spectral inversion.

Maximise ``Q(rho) = alpha S(rho) - chi^2(rho) / 2`` with the Shannon-Jaynes entropy
``S = sum_i w_i [rho_i - m_i - rho_i log(rho_i / m_i)]`` relative to a default model ``m`` and
``chi^2 = (D - A rho)^T C^{-1} (D - A rho)``.

Bryan's subspace (Bryan, Eur. Biophys. J. 18, 165 (1990); Asakawa, Hatsuda, Nakahara,
Prog. Part. Nucl. Phys. 46, 459 (2001)): at the maximum ``alpha w a = -A^T C^{-1} (A rho - D)``
with ``a = log(rho / m)``, so ``a`` lies in the column space of ``W^{-1} A^T``: ``a = B u`` with
``B`` its left singular vectors (at most ``n_data`` of them). The maximum is found by
trust-region Newton steps in ``u`` with the exact Hessian (scipy's ``trust-exact``); at the
maximum it is ``B^T H_a B``, ``H_a = alpha diag(w rho) + diag(rho) A^T C^{-1} A diag(rho)``.
``rho = m exp(a) > 0`` always.

``alpha`` (classic MEM) maximises the evidence
``log P(alpha | D) = Q(rho_alpha) + 1/2 sum_k log(alpha / (alpha + lambda_k)) - log alpha``
(Jeffreys prior ``1/alpha``), ``lambda_k`` the eigenvalues of
``diag(sqrt(rho/w)) A^T C^{-1} A diag(sqrt(rho/w))``. Error band: the spread of MEM solutions (at the chosen ``alpha``) for data redrawn from
``N(D, C)``, the parametric-bootstrap analogue of the jackknife used with lattice data; every
draw is ``m exp(B u) > 0``. (A Laplace approximation of the MEM posterior is no substitute:
its pointwise variance ``~ rho / (alpha w)`` is set by the entropic prior and grows without
bound as the grid is refined, and in Bryan's subspace its log-space version overflows in the
tails, where ``rho`` is tiny.)
Plain numpy float64 throughout.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from threadpoolctl import threadpool_limits


def one_blas_thread(fn):
    """Run ``fn`` with the BLAS/LAPACK thread pools limited to one thread (``threadpoolctl``,
    a dependency of scikit-learn). The Newton solves here factor small matrices (25 to 500 rows) a few
    hundred times; with several BLAS threads on a loaded machine each factorisation waited
    for busy threads: BR's 176 Newton steps at 200 omega points took 8-25 s with 2 OpenBLAS
    threads on a shared 2-core machine, 0.27 s with one."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1):
            return fn(*args, **kwargs)

    return wrapper


def whitened_problem(A: ArrayLike, data: ArrayLike, cov: ArrayLike, weights: ArrayLike,
                     default_model: ArrayLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The inputs of MEM and BR checked and whitened: ``(L^-1 A, L^-1 data, weights, m)`` with
    ``C = L L^T`` the Cholesky factor of ``cov`` and ``m`` the default model (flat, fitted to the
    data, when ``default_model`` is None).

    Raises:
        ValueError: for shapes that do not match ``A`` (n_data, n_omega), weights or a default
            model that are not > 0, or a covariance that is not symmetric positive definite.
    """
    A, d, C, w = (np.asarray(v, float) for v in (A, data, cov, weights))
    if A.ndim != 2:
        raise ValueError(f"A must be (n_data, n_omega), got shape {A.shape}")
    nd, nw = A.shape
    if d.shape != (nd,) or C.shape != (nd, nd) or w.shape != (nw,):
        raise ValueError(f"shapes do not match A {A.shape}: data {d.shape}, cov {C.shape}, "
                         f"weights {w.shape}")
    if np.any(w <= 0):
        raise ValueError("weights must be > 0")
    try:
        Lc = np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        raise ValueError("cov must be symmetric positive definite") from None
    Aw, dw = np.linalg.solve(Lc, A), np.linalg.solve(Lc, d)
    if default_model is None:
        m = np.full(nw, _flat_default(Aw, dw))
    else:
        m = np.broadcast_to(np.asarray(default_model, float), (nw,)).copy()
        if np.any(m <= 0):
            raise ValueError("default_model must be > 0 everywhere")
    return Aw, dw, w, m


@dataclass
class MEMResult:
    """Output of :func:`mem`.

    Attributes:
        rho: the MEM spectral function at the chosen ``alpha``.
        alpha: the ``alpha`` of maximal evidence.
        alphas, log_evidence: the scanned ``alpha`` grid and ``log P(alpha | D)`` (up to a constant).
        default_model: ``m``.
        samples: ``(n_samples, n_omega)`` MEM solutions at ``alpha`` for data redrawn from
            ``N(D, C)`` (the error band; empty if ``n_samples = 0``).
        chi2: ``chi^2`` of ``rho``.
        converged: whether Newton converged at every ``alpha``.
    """

    rho: np.ndarray
    alpha: float
    alphas: np.ndarray
    log_evidence: np.ndarray
    default_model: np.ndarray
    samples: np.ndarray
    chi2: float
    converged: bool


def _flat_default(Aw: np.ndarray, dw: np.ndarray) -> float:
    """Least-squares constant ``m0`` with ``A (m0 1) ~ D`` (weighted by ``C^{-1}``)."""
    g = Aw.sum(axis=1)
    m0 = float(g @ dw / (g @ g))
    if not m0 > 0:
        raise ValueError("the data give a non-positive flat default model; pass default_model")
    return m0


A_CLIP = 200.0
"""``|log(rho / m)|`` is clipped here inside the Newton solve: a trust-region trial step far out
would overflow ``exp`` and give scipy a non-finite Hessian (seen on bw1 at eps 1e-2 during the
redrawn-data band); such steps have an astronomically worse ``Q`` and are rejected anyway."""


def _maximise(u, alpha, B, m, w, Aw, dw, max_iter, tol):
    """Maximise ``Q(m exp(B u))`` for one alpha (trust-region Newton, exact Hessian).

    Returns ``(u, converged)``; converged when the Newton decrement ``g^T H^{-1} g`` (the
    predicted remaining gain of ``Q``) is below ``tol``.
    """
    from scipy.optimize import minimize

    def parts(u):
        a = np.clip(B @ u, -A_CLIP, A_CLIP)  # trial steps of the trust region may overflow exp
        rho = m * np.exp(a)
        return a, rho, Aw @ rho - dw

    def neg_q(u):
        a, rho, r = parts(u)
        return -(alpha * np.sum(w * (rho - m - rho * a)) - 0.5 * r @ r)

    def grad(u):
        a, rho, r = parts(u)
        return B.T @ (alpha * w * rho * a + rho * (Aw.T @ r))

    def hess(u):
        a, rho, r = parts(u)
        ArB = Aw @ (rho[:, None] * B)
        diag = alpha * w * rho * (1.0 + a) + rho * (Aw.T @ r)
        return B.T @ (diag[:, None] * B) + ArB.T @ ArB

    with np.errstate(over="ignore", invalid="ignore"):
        res = minimize(neg_q, u, jac=grad, hess=hess, method="trust-exact",
                       options={"maxiter": int(max_iter), "gtol": 1e-10})
        g, H = grad(res.x), hess(res.x)
        try:
            decrement = float(g @ np.linalg.solve(H, g))
        except np.linalg.LinAlgError:
            decrement = np.inf
    return res.x, bool(0 <= decrement < tol)


@one_blas_thread
def mem(A: ArrayLike, data: ArrayLike, cov: ArrayLike, weights: ArrayLike, *,
        default_model: ArrayLike | float | None = None, alphas: ArrayLike | None = None,
        max_iter: int = 300, tol: float = 1e-6, svd_cut: float = 1e-10, n_samples: int = 0,
        seed: int = 0) -> MEMResult:
    """Classic MEM: Bryan's algorithm at every ``alpha``, ``alpha`` of maximal evidence.

    Args:
        A: forward matrix ``(n_data, n_omega)`` (quadrature included).
        data, cov: the correlator ``(n_data,)`` and its covariance (SPD).
        weights: quadrature weights ``(n_omega,)`` (``> 0``) used in the entropy.
        default_model: ``m`` (array or constant, ``> 0``); default a flat ``m`` fitted to the data.
        alphas: the ``alpha`` grid (default ``logspace(-2, 5, 36)``), scanned from large to small;
            the scan stops once ``log P(alpha | D)`` has fallen 10 below its maximum.
        max_iter, tol: Newton iterations; a maximum counts as converged when the Newton
            decrement (predicted remaining gain of ``Q``) is below ``tol``.
        svd_cut: singular values below ``svd_cut * s_max`` are dropped from Bryan's subspace.
        n_samples: redrawn data sets for the error band (``0``: none).
        seed: seed of the redrawn noise (numpy ``default_rng``).
    """
    if int(n_samples) < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    Aw, dw, w, m = whitened_problem(A, data, cov, weights, default_model)
    nd, nw = Aw.shape
    alphas = np.logspace(-2, 5, 36) if alphas is None else np.asarray(alphas, float)
    if alphas.ndim != 1 or alphas.size < 1 or np.any(alphas <= 0):
        raise ValueError(f"alphas must be a 1-D grid of positive numbers, got {alphas}")
    alphas = np.sort(alphas)[::-1]
    U, s, _ = np.linalg.svd(Aw.T / w[:, None], full_matrices=False)
    B = U[:, s > svd_cut * s[0]]
    u = np.zeros(B.shape[1])
    sols, logev, ok_all = [], [], True
    for alpha in alphas:
        u, ok = _maximise(u, alpha, B, m, w, Aw, dw, max_iter, tol)
        ok_all &= ok
        a = B @ u
        rho = m * np.exp(a)
        r = Aw @ rho - dw
        q = alpha * np.sum(w * (rho - m - rho * a)) - 0.5 * r @ r
        G = Aw * np.sqrt(rho / w)[None, :]
        lam = np.clip(np.linalg.eigvalsh(G @ G.T), 0.0, None)
        logev.append(q + 0.5 * np.sum(np.log(alpha / (alpha + lam))) - np.log(alpha))
        sols.append(rho)
        if logev[-1] < max(logev) - 10.0:
            break
    logev = np.asarray(logev)
    alphas = alphas[: logev.shape[0]]
    best = int(np.argmax(logev))
    rho, alpha = sols[best], float(alphas[best])
    chi2 = float(np.sum((Aw @ rho - dw) ** 2))
    u_best = np.linalg.lstsq(B, np.log(rho / m), rcond=None)[0]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(int(n_samples)):
        u_k, ok = _maximise(u_best, alpha, B, m, w, Aw, dw + rng.standard_normal(nd), max_iter, tol)
        ok_all &= ok
        draws.append(m * np.exp(B @ u_k))
    samples = np.asarray(draws).reshape(int(n_samples), nw)
    return MEMResult(rho=rho, alpha=alpha, alphas=alphas, log_evidence=logev, default_model=m,
                     samples=samples, chi2=chi2, converged=bool(ok_all))
