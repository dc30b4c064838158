"""The NumPyro distribution wrapping a score model, tested with an analytic Gaussian score."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer import MCMC, NUTS

from bayesqcd.diffusion.analytic import GaussianMixture, MixtureScore, analytic_model_nll
from bayesqcd.diffusion.distribution import DiffusionPrior
from bayesqcd.diffusion.sde import ConstantVP, Simple

MEAN, STD = jnp.array([0.5, -1.0]), jnp.array([0.6, 0.3])
GAUSS = GaussianMixture(jnp.ones(1), MEAN[None], STD[None])
SDE = Simple()


def prior_dist(**kw):
    return DiffusionPrior(MixtureScore(GAUSS, SDE), SDE, (2,), prior=GAUSS.diffused(SDE, SDE.T), **kw)


def test_log_prob_is_exact_and_batches():
    d = prior_dist(rtol=1e-7, atol=1e-7)
    x = jax.random.normal(jax.random.key(0), (2, 3, 2))
    lp = d.log_prob(x)
    assert lp.shape == (2, 3)
    exact = jax.vmap(jax.vmap(GAUSS.diffused(SDE, SDE.t_min).log_prob))(x)  # p at t_min = 0.01
    np.testing.assert_allclose(lp, exact, atol=1e-4)
    assert d.sample(jax.random.key(1), (4, 5)).shape == (4, 5, 2)
    with pytest.raises(ValueError, match="trailing shape"):
        d.log_prob(jnp.zeros(3))


def test_wkb_log_prob_matches_finite_h_closed_form():
    """log_prob with wkb_h = h is log q_h of the 1-D analytic model to O(h^2)."""
    sde = ConstantVP(beta=1.0, T=5.0)
    data = GaussianMixture(jnp.ones(1), jnp.zeros((1, 1)), jnp.full((1, 1), np.sqrt(2.0)))
    h = 0.005
    d = DiffusionPrior(MixtureScore(data, sde, 0.1), sde, (1,), wkb_h=h, rtol=1e-7, atol=1e-7)
    x = jnp.array([[0.3], [1.5]])
    exact = -analytic_model_nll(x[:, 0], h, v0=2.0, eps=0.1, beta=1.0, T=5.0)
    np.testing.assert_allclose(d.log_prob(x), exact, atol=3e-5)


def test_log_prob_gradient_is_the_exact_score():
    """What NUTS differentiates: the gradient of log_prob (reverse mode through the
    probability-flow ODE) is the exact score of the Gaussian at t_min, at two points at once."""
    d = prior_dist(rtol=1e-6, atol=1e-6)
    x = jnp.array([[0.2, -0.7], [1.1, -1.4]])
    g = jax.jit(jax.grad(lambda y: d.log_prob(y).sum()))(x)
    exact = jax.vmap(jax.grad(GAUSS.diffused(SDE, SDE.t_min).log_prob))(x)
    np.testing.assert_allclose(g, exact, rtol=2e-3, atol=2e-3)


@pytest.mark.slow  # ~90 s on 2 loaded cores: reverse mode through the probability-flow ODE at every leapfrog step
def test_nuts_on_the_diffusion_prior_recovers_mean_and_variance():
    d = prior_dist(rtol=1e-3, atol=1e-3)

    def model():
        numpyro.sample("x", d)

    mcmc = MCMC(NUTS(model), num_warmup=100, num_samples=400, progress_bar=False)
    mcmc.run(jax.random.key(2))
    x = mcmc.get_samples()["x"]
    np.testing.assert_allclose(jnp.mean(x, 0), MEAN, atol=0.12)
    np.testing.assert_allclose(jnp.std(x, 0), STD, rtol=0.2)


def test_bad_distribution_arguments():
    with pytest.raises(ValueError, match="sample_h"):
        prior_dist(sample_h=-1.0)
    with pytest.raises(ValueError, match="divergence"):
        prior_dist(divergence="trace")
    with pytest.raises(ValueError, match="wkb_h"):
        prior_dist(wkb_h=0.1, divergence="hutchinson")
