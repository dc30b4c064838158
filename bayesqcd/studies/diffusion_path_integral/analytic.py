"""Beyond the paper, where the answer is exact: NLL at finite ``h`` for the 1-D analytic model."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayesqcd.diffusion.analytic import GaussianMixture, MixtureScore, analytic_model_nll
from bayesqcd.diffusion.likelihood import wkb_log_likelihood
from bayesqcd.diffusion.sde import ConstantVP
from bayesqcd.precision import x64_scope


def analytic_finite_h(hs: np.ndarray, *, v0: float = 2.0, eps: float = 0.1, beta: float = 1.0,
                      T: float = 5.0, x0: float = 0.7) -> dict[str, Any]:
    """The paper's 1-D analytic model: exact NLL(h) (closed form) against the WKB line
    ``NLL(0) + h dNLL/dh`` computed by :func:`~bayesqcd.diffusion.wkb_log_likelihood`
    (adjoint method, tolerance 1e-7, float64 for the call).

    Returns:
        ``model`` (its parameters), ``h``, ``exact_nll`` and ``wkb_nll`` at each ``h`` (nats),
        and the two first-order coefficients ``wkb_coefficient``, ``exact_coefficient``.
    """
    with x64_scope(True):
        sde = ConstantVP(beta=beta, T=T)
        data = GaussianMixture(jnp.ones(1), jnp.zeros((1, 1)), jnp.full((1, 1), np.sqrt(v0)))
        score = MixtureScore(data, sde, eps)
        lq0, c1 = wkb_log_likelihood(score, sde, jnp.array([x0]), rtol=1e-7, atol=1e-7)
        exact = [float(analytic_model_nll(x0, h, v0=v0, eps=eps, beta=beta, T=T)) for h in hs]
        wkb = [float(-lq0 - h * c1) for h in hs]
        return {"model": {"v0": v0, "eps": eps, "beta": beta, "T": T, "x0": x0},
                "h": list(map(float, hs)), "exact_nll": exact, "wkb_nll": wkb,
                "wkb_coefficient": float(-c1),
                "exact_coefficient": float(jax.grad(lambda h: analytic_model_nll(
                    x0, h, v0=v0, eps=eps, beta=beta, T=T))(0.0))}
