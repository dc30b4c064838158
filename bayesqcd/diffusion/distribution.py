"""A trained diffusion model as a NumPyro distribution (a learned prior).

``DiffusionPrior(score, sde, shape)``:

* ``log_prob(x)`` is the path-integral likelihood: ``log q_0(x)`` of the probability-flow
  ODE (exact divergence, or Hutchinson-Skilling with a fixed probe for high dimension);
  with ``wkb_h > 0`` it is ``log q_0 + wkb_h c_1``, the first-order WKB likelihood of the
  h-process. It is differentiable (diffrax's checkpointed adjoint), so NUTS can run on it.
* ``sample(key, sample_shape)`` runs the h-family of generating processes with
  ``h = sample_h``.

Example::

    def model(y):
        x = numpyro.sample("x", DiffusionPrior(score, Simple(), (2,)))
        numpyro.sample("y", dist.Normal(x, 0.1).to_event(1), obs=y)
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints

from bayesqcd.diffusion.likelihood import Score, log_likelihood, wkb_log_likelihood
from bayesqcd.diffusion.sampling import sample_h
from bayesqcd.diffusion.sde import LinearSDE


class DiffusionPrior(dist.Distribution):
    """Density and sampler of a score-based generative model (nats).

    Args:
        score: ``s_theta(x, t)`` for one point of ``shape``.
        sde: the forward schedule the score was trained with.
        shape: event shape of one sample, e.g. ``(2,)`` or ``(1, 8, 8)``.
        prior: the generating processes' prior (``log_prob``/``sample``); default ``N(0, I)``.
        sample_h: ``h`` of the generating process used by :meth:`sample` (``>= 0``).
        wkb_h: if ``> 0``, ``log_prob`` adds the first-order WKB term ``wkb_h c_1``.
        divergence: ``"exact"`` or ``"hutchinson"`` (then ``probe_key`` fixes the probe, so
            ``log_prob`` is a deterministic function that NUTS can use).
        rtol, atol: ODE tolerances.
        n_steps: steps of the SDE sampler (``sample_h > 0``).
    """

    arg_constraints: dict[str, Any] = {}
    support = constraints.real_vector
    pytree_aux_fields = ("score", "sde", "prior", "options")

    def __init__(self, score: Score, sde: LinearSDE, shape: tuple[int, ...] = (2,), *,
                 prior: Any = None, sample_h: float = 0.0, wkb_h: float = 0.0,
                 divergence: str = "exact", probe_key: jax.Array | None = None,
                 rtol: float = 1e-5, atol: float = 1e-5, n_steps: int = 500,
                 validate_args: bool | None = None):
        if not sample_h >= 0:
            raise ValueError(f"sample_h must be >= 0, got {sample_h}")
        if not wkb_h >= 0:
            raise ValueError(f"wkb_h must be >= 0, got {wkb_h}")
        if divergence not in ("exact", "hutchinson"):
            raise ValueError(f"divergence must be 'exact' or 'hutchinson', got {divergence!r}")
        if wkb_h > 0 and divergence != "exact":
            raise ValueError("wkb_h > 0 needs divergence='exact' (low dimension)")
        self.score, self.sde, self.prior = score, sde, prior
        self.options = dict(sample_h=float(sample_h), wkb_h=float(wkb_h), divergence=divergence,
                            rtol=rtol, atol=atol, n_steps=n_steps,
                            probe_key=jax.random.key(0) if probe_key is None else probe_key)
        shape = tuple(int(s) for s in shape)
        self._shape = shape
        if len(shape) > 1:
            self.support = constraints.independent(constraints.real, len(shape))
        super().__init__(batch_shape=(), event_shape=shape, validate_args=validate_args)

    def _log_prob_one(self, x):
        o = self.options
        if o["wkb_h"] > 0:
            lq0, c1 = wkb_log_likelihood(self.score, self.sde, x, prior=self.prior,
                                         rtol=o["rtol"], atol=o["atol"])
            return lq0 + o["wkb_h"] * c1
        key = o["probe_key"] if o["divergence"] == "hutchinson" else None
        return log_likelihood(self.score, self.sde, x, prior=self.prior, rtol=o["rtol"],
                              atol=o["atol"], divergence=o["divergence"], key=key)

    def log_prob(self, value):
        value = jnp.asarray(value)
        ev = len(self._shape)
        if value.shape[value.ndim - ev:] != self._shape:
            raise ValueError(f"value's trailing shape must be {self._shape}, got {value.shape}")
        batch = value.shape[: value.ndim - ev]
        flat = value.reshape((-1, *self._shape))
        return jax.vmap(self._log_prob_one)(flat).reshape(batch)

    def sample(self, key, sample_shape=()):
        n = math.prod(sample_shape) if sample_shape else 1
        o = self.options
        x = sample_h(self.score, self.sde, key, n, o["sample_h"], shape=self._shape,
                     prior=self.prior, n_steps=o["n_steps"])
        return x.reshape((*sample_shape, *self._shape))
