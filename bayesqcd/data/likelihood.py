"""The mass-radius likelihood of an :class:`~bayesqcd.data.observations.ObservationSet`.

For source ``j`` and a point ``(M, R)`` (e.g. a star on an EoS's mass-radius curve),
``log_prob(M, R)[j]`` is the log density of source ``j``'s (M, R) posterior at that point
[log(1/(M_sun km))]:

* summary source: ``log SN(M | M-params) + log SN(R | R-params)``, the product of two two-piece
  normals. *Approximation:* M and R are taken as independent, although the published posteriors
  are correlated (pulse-profile fits constrain mostly the compactness M/R); use posterior samples
  (KDE below) where the correlation matters.
* sample source: the 2-D Gaussian KDE with Scott's-rule bandwidth and full covariance
  (:class:`~bayesqcd.data.samples.MRSamples`), evaluated with ``logsumexp``.

Sources are ordered: all summary sources (in ``obs.mr`` order), then all sample sources (in
``obs.mr`` order); :attr:`MRLikelihood.names` gives that order.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from bayesqcd.data.observations import MRSource, ObservationSet
from bayesqcd.data.samples import MRSamples

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _two_piece_logpdf(x, p):
    """Two-piece normal log density; ``p[..., 0:4] = (loc, scale_lo, scale_hi, p_lo)``."""
    loc, s_lo, s_hi, p_lo = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
    left = x < loc
    s = jnp.where(left, s_lo, s_hi)
    w = jnp.where(left, p_lo, 1.0 - p_lo)
    z = (x - loc) / s
    return jnp.log(2.0 * w) - jnp.log(s) - _HALF_LOG_2PI - 0.5 * z**2


class MRLikelihood(eqx.Module):
    """Per-source (M, R) log densities, vectorized (array fields only; jit/vmap/grad-safe).

    Attributes:
        summary_M, summary_R: ``(S, 4)`` two-piece parameters ``(loc, scale_lo, scale_hi, p_lo)``.
        kde_points: ``(Q, N, 2)`` whitened samples, padded to a common ``N``.
        kde_logw: ``(Q, N)`` log kernel weights: ``-log n_q`` for real samples, ``-inf`` for padding.
        kde_whiten: ``(Q, 2, 2)`` ``L^-1`` with ``L L^T`` the kernel covariance.
        kde_lognorm: ``(Q,)`` ``-log(2 pi) - log det L``.
        names: source names, summary sources first (static).
    """

    summary_M: Float[Array, "S 4"]
    summary_R: Float[Array, "S 4"]
    kde_points: Float[Array, "Q N 2"]
    kde_logw: Float[Array, "Q N"]
    kde_whiten: Float[Array, "Q 2 2"]
    kde_lognorm: Float[Array, " Q"]
    names: tuple[str, ...] = eqx.field(static=True)

    @property
    def n_sources(self) -> int:
        return len(self.names)

    def log_prob(self, M: Float[Array, "*K"], R: Float[Array, "*K"]) -> Float[Array, "n *K"]:
        """Log densities of every source at ``(M [M_sun], R [km])``; returns ``(n_sources, *K)``.

        ``M`` and ``R`` have the same shape (typically ``(K,)``, the points of one M-R curve).
        """
        M, R = jnp.asarray(M), jnp.asarray(R)
        if M.shape != R.shape:
            raise ValueError(f"M and R must have the same shape, got {M.shape} and {R.shape}")
        shape = M.shape
        m, r = M.reshape(-1), R.reshape(-1)
        summ = (_two_piece_logpdf(m[None, :], self.summary_M[:, None, :])
                + _two_piece_logpdf(r[None, :], self.summary_R[:, None, :]))      # (S, K)
        x = jnp.stack([m, r], axis=-1)                                               # (K, 2)
        y = jnp.einsum("qij,kj->qki", self.kde_whiten, x)                            # (Q, K, 2)
        d2 = jnp.sum((y[:, :, None, :] - self.kde_points[:, None, :, :]) ** 2, -1)  # (Q, K, N)
        kde = (jax.nn.logsumexp(-0.5 * d2 + self.kde_logw[:, None, :], axis=-1)
               + self.kde_lognorm[:, None])                                          # (Q, K)
        out = jnp.concatenate([summ.astype(kde.dtype), kde], axis=0)
        return out.reshape((out.shape[0],) + shape)


def mr_likelihood(obs: ObservationSet) -> MRLikelihood:
    """Build the :class:`MRLikelihood` of ``obs.mr`` (summary sources first, then sample sources)."""
    summaries = [s for s in obs.mr if isinstance(s, MRSource)]
    samples = [s for s in obs.mr if isinstance(s, MRSamples)]
    if not summaries and not samples:
        raise ValueError("obs has no mass-radius sources (obs.mr is empty)")

    def params(tp):
        return [tp.loc, tp.scale_lo, tp.scale_hi, tp.p_lo]

    sM = np.array([params(s.M) for s in summaries], dtype=float).reshape(-1, 4)
    sR = np.array([params(s.R) for s in summaries], dtype=float).reshape(-1, 4)
    n_max = max([s.n for s in samples], default=1)
    pts = np.zeros((len(samples), n_max, 2))
    logw = np.full((len(samples), n_max), -np.inf)
    whiten = np.zeros((len(samples), 2, 2))
    lognorm = np.zeros((len(samples),))
    for q, s in enumerate(samples):
        p, w, ln = s.kde()
        pts[q, : s.n] = p
        logw[q, : s.n] = -math.log(s.n)
        whiten[q], lognorm[q] = w, ln
    names = tuple(s.name for s in summaries) + tuple(s.name for s in samples)
    if len(set(names)) != len(names):
        raise ValueError(f"mass-radius source names must be distinct, got {names}")
    return MRLikelihood(jnp.asarray(sM), jnp.asarray(sR), jnp.asarray(pts), jnp.asarray(logw),
                        jnp.asarray(whiten), jnp.asarray(lognorm), names)
