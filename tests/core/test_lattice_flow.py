"""Normalizing flow on lattice fields: exact log density, independence Metropolis, physics."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.inference.flow import (ess_fraction, independence_metropolis,
                                     sample_independence_metropolis, train_reverse_kl)
from bayesqcd.inference.hmc import run_hmc
from bayesqcd.lattice.action import Phi4Action
from bayesqcd.lattice.flow import LatticeFlow, checkerboard
from bayesqcd.lattice.observables import summarize


def randomized_flow(L, key):
    """A flow with O(1) random weights (far from the identity it is initialised near)."""
    flow = LatticeFlow(L, n_layers=4, hidden=(4,), key=key)
    params, static = eqx.partition(flow, eqx.is_inexact_array)
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
    leaves = [0.5 * jax.random.normal(k, l.shape, l.dtype) for k, l in zip(keys, leaves)]
    return eqx.combine(jax.tree_util.tree_unflatten(tree, leaves), static)


def test_checkerboard_masks_are_complementary():
    m0, m1 = checkerboard(4, 0), checkerboard(4, 1)
    np.testing.assert_array_equal(m0 + m1, 1.0)
    assert float(m0.sum()) == 8.0
    with pytest.raises(ValueError, match="L must be even"):
        LatticeFlow(5, key=jax.random.key(0))


def test_flow_log_density_is_change_of_variables_with_brute_force_jacobian():
    L = 4
    flow = eqx.filter_jit(lambda k: randomized_flow(L, k))(jax.random.key(0))
    z = jax.random.normal(jax.random.key(1), (L, L))
    x, logdet = eqx.filter_jit(flow.forward)(z)
    jac = eqx.filter_jit(jax.jacfwd(lambda v: flow.forward(v.reshape(L, L))[0].ravel()))
    J = jac(z.ravel())
    sign, brute = np.linalg.slogdet(np.asarray(J))
    assert sign == 1.0
    assert abs(float(logdet)) > 0.5  # a non-trivial map
    assert float(logdet) == pytest.approx(brute, rel=1e-10, abs=1e-10)
    # the density of a draw: sample_and_log_prob and log_prob (inverse map) both equal
    # log N(z) - log|det J| from the brute-force Jacobian
    xs, lq = eqx.filter_jit(lambda f, k: f.sample_and_log_prob(k, 3))(flow, jax.random.key(2))
    inverse, log_prob = eqx.filter_jit(flow.inverse), eqx.filter_jit(flow.log_prob)
    for xi, lqi in zip(xs, lq):
        zi, _ = inverse(xi)
        Ji = jac(zi.ravel())
        ref = -0.5 * float(jnp.sum(zi**2)) - 0.5 * L * L * np.log(2 * np.pi) \
            - np.linalg.slogdet(np.asarray(Ji))[1]
        assert float(lqi) == pytest.approx(ref, rel=1e-10)
        assert float(log_prob(xi)) == pytest.approx(ref, rel=1e-10)
    zb, _ = inverse(x)
    np.testing.assert_allclose(zb, z, atol=1e-10)


def test_ess_fraction_limits():
    assert float(ess_fraction(jnp.zeros(100))) == pytest.approx(1.0)
    assert float(ess_fraction(jnp.array([0.0] + [-1e3] * 99))) == pytest.approx(0.01)


def test_independence_metropolis_is_exact_for_a_wrong_proposal():
    """Target N(1, 0.5^2), proposal N(0, 1.5^2): the chain has the target's moments."""
    n = 40000
    k1, k2 = jax.random.split(jax.random.key(3))
    x = 1.5 * jax.random.normal(k1, (n,))
    log_q = -0.5 * (x / 1.5) ** 2
    log_p = -0.5 * ((x - 1.0) / 0.5) ** 2
    chain, acc = independence_metropolis(k2, x, log_p - log_q)
    assert 0.2 < float(acc.mean()) < 0.9
    assert float(chain.mean()) == pytest.approx(1.0, abs=0.03)
    assert float(chain.std()) == pytest.approx(0.5, abs=0.02)


def test_reverse_kl_training_and_metropolis_sampling_of_a_shifted_gaussian():
    """Target: every site N(1, 0.5^2), log Z known. A tiny flow trained by reverse KL moves its
    loss towards the floor -log Z; the Metropolis-corrected chain of its proposals has the
    target's moments whatever the training left over."""
    L = 2
    def log_p(x):
        return -0.5 * jnp.sum(((x - 1.0) / 0.5) ** 2)

    floor = -L * L * np.log(np.sqrt(2 * np.pi) * 0.5)  # -log Z
    flow = LatticeFlow(L, n_layers=2, hidden=(4,), key=jax.random.key(0))
    res = train_reverse_kl(flow, log_p, jax.random.key(1), n_steps=400, batch_size=64,
                           learning_rate=1e-2, eval_every=200, progress=False)
    first, last = res.history["train_loss"][0], res.history["train_loss"][-1]
    assert last - floor < 0.3 * (first - floor), (first, last, floor)
    idata = sample_independence_metropolis(res.model, log_p, jax.random.key(2), 8000, batch_size=4000,
                                           var_name="phi", progress=False)
    chain = idata.posterior["phi"].values.reshape(-1, L * L)
    assert idata.posterior.attrs["acceptance"] > 0.3
    np.testing.assert_allclose(chain.mean(0), 1.0, atol=0.05)
    np.testing.assert_allclose(chain.std(0), 0.5, atol=0.04)


@pytest.mark.slow  # a reproduction (60-110 s); its parts are default tests: the flow's exact
# density (above), independence Metropolis with a wrong proposal (above), HMC against the free
# propagator (tests/inference/test_lattice_hmc.py) and the lattice study end to end
def test_metropolis_corrected_flow_reproduces_hmc():
    """L = 4 at the tutorial couplings (m^2 = -4, lambda = 8): a small flow trained for 600
    reverse-KL steps, corrected by independence Metropolis, gives HMC's <|M|> and chi."""
    L = 4
    action = Phi4Action(m2=-4.0, lam=8.0)
    flow = LatticeFlow(L, n_layers=8, hidden=(8, 8), key=jax.random.key(1))
    res = train_reverse_kl(flow, action.log_prob, jax.random.key(3), n_steps=600, batch_size=64,
                           learning_rate=3e-3, eval_every=300, progress=False)
    assert res.history["train_loss"][-1] < res.history["train_loss"][0]
    idata = sample_independence_metropolis(res.model, action.log_prob, jax.random.key(4), 20000,
                                           batch_size=5000, var_name="phi", progress=False)
    assert idata.posterior.attrs["ess_per_n"] > 0.05
    assert idata.posterior.attrs["acceptance"] > 0.2
    flow_obs = summarize(idata.posterior["phi"].values)
    hmc = run_hmc(action, jnp.zeros((L, L)), key=jax.random.key(5), num_warmup=300,
                  num_samples=2000, num_chains=8, progress=False, var_name="phi")
    hmc_obs = summarize(hmc.posterior["phi"].values)
    for name in ("abs_M", "chi"):
        a, b = flow_obs[name], hmc_obs[name]
        print(name, a, b)
        z = (a["value"] - b["value"]) / np.hypot(a["error"], b["error"])
        assert abs(z) < 3.5, (name, a, b)
        assert a["error"] < 0.1 * abs(a["value"])  # errors small enough for the test to bite
