"""The h-family of generating processes with the exact score keeps the data marginals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.diffusion.analytic import GaussianMixture, MixtureScore
from bayesqcd.diffusion.sampling import sample_h
from bayesqcd.diffusion.sde import Cosine, Simple

MIX = GaussianMixture(jnp.array([0.3, 0.7]), jnp.array([[1.0, 0.5], [-0.5, -1.0]]),
                      jnp.array([[0.3, 0.2], [0.2, 0.4]]))
N = 20000


@pytest.mark.parametrize("sde,h,method", [
    (Simple(), 0.0, "diffrax"), (Simple(), 1.0, "diffrax"), (Simple(), 0.5, "euler"),
    (Cosine(), 0.3, "diffrax"), (Cosine(), 0.2, "heun"), (Cosine(), 1.0, "euler")],
    ids=lambda v: type(v).__name__ if hasattr(v, "T") else str(v))
def test_h_process_reproduces_exact_moments(sde, h, method):
    score = MixtureScore(MIX, sde)
    prior = MIX.diffused(sde, sde.T)
    x = sample_h(score, sde, jax.random.key(7), N, h, prior=prior, method=method, n_steps=300)
    assert x.shape == (N, 2)
    mean, cov = jnp.mean(x, 0), jnp.cov(x.T)
    se = float(jnp.sqrt(jnp.max(jnp.diag(MIX.cov())) / N))
    np.testing.assert_allclose(mean, MIX.mean(), atol=5 * se + 2e-3)
    np.testing.assert_allclose(cov, MIX.cov(), atol=5 * np.sqrt(2) * 0.6 * se + 3e-3)


def test_wrong_score_changes_moments_and_keys_reproduce():
    """A scaled score (eps = 0.3) gives visibly different moments: the test above can fail."""
    sde = Simple()
    prior = MIX.diffused(sde, sde.T)
    bad = sample_h(MixtureScore(MIX, sde, 0.3), sde, jax.random.key(7), 4000, 0.5, prior=prior,
                   method="euler", n_steps=200)
    assert float(jnp.abs(jnp.trace(jnp.cov(bad.T)) - jnp.trace(MIX.cov()))) > 0.1
    a = sample_h(MixtureScore(MIX, sde), sde, jax.random.key(1), 10, 0.5, method="euler")
    b = sample_h(MixtureScore(MIX, sde), sde, jax.random.key(1), 10, 0.5, method="euler")
    np.testing.assert_array_equal(a, b)


def test_bad_sampler_arguments():
    sde = Simple()
    score = MixtureScore(MIX, sde)
    with pytest.raises(ValueError, match="h must be >= 0"):
        sample_h(score, sde, jax.random.key(0), 10, -0.1)
    with pytest.raises(ValueError, match="method"):
        sample_h(score, sde, jax.random.key(0), 10, 0.1, method="rk4")
    with pytest.raises(ValueError, match="n must be"):
        sample_h(score, sde, jax.random.key(0), 0, 0.1)
