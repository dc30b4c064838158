"""Diffusion model as stochastic quantization: proposals with exact densities."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.diffusion.likelihood import log_likelihood
from bayesqcd.diffusion.score import dsm_loss
from bayesqcd.diffusion.sde import VP
from bayesqcd.lattice.action import Phi4Action
from bayesqcd.lattice.diffusion_sq import (PFODEProposal, sample_h_family,
                                           symmetry_augment, train_field_score)


class GaussianScore(eqx.Module):
    """Exact score of iid N(0, c) data diffused by ``sde``, plus an optional nonlinear term."""

    sde: VP
    c: float
    eps: float = 0.0

    def __call__(self, x, t):
        v = self.sde.alpha(t) ** 2 * self.c + self.sde.sigma2(t)
        return -x / v - self.eps * jnp.tanh(x) * jnp.roll(x, 1, axis=0) ** 2


def test_pf_proposal_density_is_exact_for_gaussian_data():
    sde, c, L = VP(), 0.3, 4
    prop = PFODEProposal(GaussianScore(sde, c), sde, L, rtol=1e-7, atol=1e-7)
    x, lq = eqx.filter_jit(lambda p, k: p.sample_and_log_prob(k, 8))(prop, jax.random.key(0))
    v = c * float(sde.alpha(sde.t_min)) ** 2 + float(sde.sigma2(sde.t_min))
    exact = -0.5 * jnp.sum(x**2, axis=(1, 2)) / v - 0.5 * L * L * np.log(2 * np.pi * v)
    np.testing.assert_allclose(lq, exact, rtol=1e-5, atol=1e-5)
    assert float(jnp.var(x)) == pytest.approx(c, rel=0.3)


def test_pf_proposal_density_matches_probability_flow_likelihood():
    """Density integrated along the generating trajectory = the library's forward PF-ODE
    likelihood of the same draw, for a nonlinear score."""
    sde, L = VP(), 4
    score = GaussianScore(sde, 0.5, eps=0.3)
    prop = PFODEProposal(score, sde, L, rtol=1e-7, atol=1e-7)
    x, lq = eqx.filter_jit(lambda p, k: p.sample_and_log_prob(k, 3))(prop, jax.random.key(1))
    ref = eqx.filter_jit(jax.vmap(lambda xi: log_likelihood(score, sde, xi, rtol=1e-7, atol=1e-7)))(x)
    np.testing.assert_allclose(lq, ref, rtol=1e-5, atol=1e-4)


def test_h_family_draws_and_pf_density_for_gaussian_data():
    """With the exact score every h has the data marginal N(0, v) at t_min, and the PF-ODE
    density of the draws is that Gaussian's."""
    sde, c, L = VP(), 0.3, 4
    x, lq = eqx.filter_jit(lambda k: sample_h_family(GaussianScore(sde, c), sde, k, 128, L, 0.5,
                                                     n_steps=50, rtol=1e-6, atol=1e-6))(
        jax.random.key(8))
    v = c * float(sde.alpha(sde.t_min)) ** 2 + float(sde.sigma2(sde.t_min))
    exact = -0.5 * jnp.sum(x**2, axis=(1, 2)) / v - 0.5 * L * L * np.log(2 * np.pi * v)
    np.testing.assert_allclose(lq, exact, rtol=1e-4, atol=1e-4)
    assert float(jnp.var(x)) == pytest.approx(c, rel=0.1)


def test_symmetry_augmentation_preserves_the_action():
    action = Phi4Action(-4.0, 8.0)
    phi = jax.random.normal(jax.random.key(2), (16, 8, 8))
    aug = symmetry_augment(jax.random.key(3), phi)
    np.testing.assert_allclose(jax.vmap(action)(aug), jax.vmap(action)(phi), rtol=1e-12)
    assert not np.allclose(aug, phi)


class LearnableGaussianScore(eqx.Module):
    """Score of iid N(0, exp(log_c)) data: one trainable number."""

    sde: VP
    log_c: jax.Array

    def __call__(self, x, t):
        return -x / (self.sde.alpha(t) ** 2 * jnp.exp(self.log_c) + self.sde.sigma2(t))


def test_score_training_learns_the_data_variance():
    """Augmented DSM training on iid N(0, 0.25) fields recovers c = 0.25 (the loss's minimiser
    is the exact score)."""
    sde, L = VP(), 4
    data = 0.5 * jax.random.normal(jax.random.key(4), (2048, L, L))
    score = LearnableGaussianScore(sde, jnp.zeros(()))
    before = float(dsm_loss(score, sde, data[:512], jax.random.key(6), 1e-3))
    res = train_field_score(score, sde, data, jax.random.key(7), n_steps=400, batch_size=128,
                            learning_rate=2e-2, eval_every=200, progress=False)
    after = float(dsm_loss(res.model, sde, data[:512], jax.random.key(6), 1e-3))
    assert after < before
    assert float(jnp.exp(res.model.log_c)) == pytest.approx(0.25, rel=0.1)
    with pytest.raises(ValueError, match="configs"):
        train_field_score(score, sde, data[:, :, :2], jax.random.key(7), n_steps=1)

