"""ProbitUniform: the Uniform(0, 1) prior, seen by NUTS in probit coordinates."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro.distributions.transforms import biject_to
from numpyro.infer.util import initialize_model

from bayesqcd.priors import ProbitTransform, ProbitUniform


def _model():
    numpyro.sample("x", ProbitUniform().expand([3]).to_event(1))


def test_probit_uniform_is_uniform_and_standard_normal_in_its_coordinates():
    d = ProbitUniform()
    x = jnp.array([1e-9, 0.3, 0.5, 1.0 - 1e-9])
    np.testing.assert_array_equal(np.asarray(d.log_prob(x)), 0.0)  # density 1 on [0, 1]
    draws = np.asarray(d.sample(jax.random.key(0), (20000,)))
    assert draws.min() >= 0.0 and draws.max() <= 1.0 and abs(draws.mean() - 0.5) < 0.01
    assert isinstance(biject_to(d.support), ProbitTransform)
    u = jnp.array([-6.0, -1.0, 0.0, 2.5, 6.0])
    np.testing.assert_allclose(np.asarray(biject_to(d.support).inv(biject_to(d.support)(u))), u, atol=1e-6)
    # the potential NUTS sees: u^2/2 + log(2 pi)/2 per coordinate (the standard normal), with
    # gradient u in forward and reverse mode
    info = initialize_model(jax.random.key(0), _model)
    pot = lambda z: info.potential_fn({"x": z})  # noqa: E731
    z = jnp.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(float(pot(z)), 0.5 * float(jnp.sum(z**2)) + 1.5 * np.log(2 * np.pi), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.grad(pot)(z)), np.asarray(z), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.jacfwd(pot)(z)), np.asarray(z), rtol=1e-6)
