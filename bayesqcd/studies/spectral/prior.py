"""The learned diffusion prior of the ``score`` and ``diffusion-prior`` methods."""

from __future__ import annotations

import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from bayesqcd.diffusion.score import train_score
from bayesqcd.diffusion.sde import VP
from bayesqcd.nn.score_nets import MLPScore
from bayesqcd.spectral.prior import LogRhoRepresentation, fit_representation, sample_family

from .config import Config


class SpectralPrior(eqx.Module):
    """A trained diffusion prior: score network, representation and VP SDE (Song et al.).

    Attributes:
        score: the score network ``s(x, t)`` on the representation's ``(k,)`` space.
        representation: ``x (k,) <-> rho`` on the grid (:class:`~bayesqcd.spectral.prior.LogRhoRepresentation`).
        sde: the forward SDE the score was trained with.
    """

    score: Any
    representation: LogRhoRepresentation
    sde: Any


def train_prior(omega: Any, config: Config, *, key: jax.Array,
                progress: bool = True) -> tuple[SpectralPrior, dict[str, Any]]:
    """Train the score on ``config.prior_family`` spectra of
    :func:`~bayesqcd.spectral.prior.sample_family` on the grid ``omega`` (float32 training).

    The representation has ``config.prior_k`` coarse points, the network width
    ``config.prior_width``; ``config.prior_steps`` steps of batch 256, resumed from (and saved
    to) ``config.prior_checkpoint`` when set.

    Returns:
        ``(prior, info)`` with ``info`` = ``train_time_s``, ``steps`` and ``final_val_loss``.
    """
    k_fam, k_net, k_train = jax.random.split(key, 3)
    family = sample_family(k_fam, config.prior_family, omega)
    rep = fit_representation(omega, family, config.prior_k)
    x = rep.encode(family).astype(jnp.float32)
    sde = VP()
    net = MLPScore(config.prior_k, config.prior_width, 3, key=k_net)
    start = time.perf_counter()
    res = train_score(net, sde, x, k_train, n_steps=config.prior_steps, batch_size=256,
                      checkpoint=config.prior_checkpoint, progress=progress, eval_every=500,
                      settings={"study": "spectral prior", "prior_k": config.prior_k,
                                "prior_width": config.prior_width, "prior_family": config.prior_family,
                                "n_omega": int(omega.shape[0]), "omega_max": float(omega[-1]),
                                "seed": config.seed})
    info = {"train_time_s": time.perf_counter() - start, "steps": res.steps,
            "checkpoint": config.prior_checkpoint, "resumed_from_step": res.resumed_step,
            "final_val_loss": res.history["val_loss"][-1] if res.history["val_loss"] else None}
    return SpectralPrior(res.model, rep, sde), info


def to_default_float(tree: Any) -> Any:
    """Cast the floating leaves of ``tree`` to the default float dtype (float64 under x64)."""
    dt = jnp.zeros(()).dtype
    return jax.tree_util.tree_map(lambda a: a.astype(dt) if eqx.is_inexact_array(a) else a, tree)
