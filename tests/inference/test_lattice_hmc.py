"""HMC on the lattice: the free theory's exact propagator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.inference.hmc import run_hmc
from bayesqcd.lattice import stats
from bayesqcd.lattice.action import Phi4Action
from bayesqcd.lattice.observables import two_point, ward_identity


def test_hmc_reproduces_free_propagator():
    """lambda = 0, m^2 = 0.5 on 4 x 4: <phi(0) phi(x)> = [2(-Lap + m^2)]^{-1}(0, x) at every x."""
    L = 4
    action = Phi4Action(m2=0.5, lam=0.0)
    idata = run_hmc(action, jnp.zeros((L, L)), key=jax.random.key(0), num_warmup=300,
                    num_samples=1500, num_chains=16, num_steps=10, progress=False, var_name="phi")
    phi = idata.posterior["phi"].values
    assert phi.shape == (16, 1500, L, L)
    assert 0.6 < idata.posterior.attrs["mean_accept_prob"] < 1.0
    C = np.asarray(two_point(jnp.asarray(phi)))            # (chain, draw, L, L)
    tau = stats.tau_int(C[..., 0, 0])[0]
    bins = stats.bin_means(C, stats.bin_size_for(tau))
    mean, err = stats.jackknife(lambda c: c, bins)
    exact = np.asarray(action.free_propagator(L))
    z = (mean - exact) / err
    assert np.all(np.abs(z) < 4.0), z
    # the test can fail: a wrong normalisation (no factor 2 in the precision) is far outside
    assert np.all(np.abs((mean - 2 * exact) / err) > 10)
    # Schwinger-Dyson identity <(1/V) sum phi dS/dphi> = 1
    w = np.asarray(ward_identity(jax.grad(action), jnp.asarray(phi)))
    v, e = stats.jackknife(lambda a: a, stats.bin_means(w, stats.bin_size_for(stats.tau_int(w)[0])))
    assert abs(v - 1.0) < 4 * e and e < 0.02
    # mean field is zero
    M = phi.mean(axis=(-2, -1))
    assert abs(M.mean()) < 4 * M.std() / np.sqrt(M.size / (2 * stats.tau_int(M)[0]))


def test_hmc_samples_a_gaussian_potential():
    """Generic engine: U(x) = |x|^2 / 2 / s^2 in 3 dimensions -> N(0, s^2)."""
    s = 2.0
    idata = run_hmc(lambda x: 0.5 * jnp.sum(x**2) / s**2, jnp.zeros(3), key=jax.random.key(1),
                    num_warmup=200, num_samples=1000, num_chains=4, progress=False)
    x = idata.posterior["x"].values.reshape(-1, 3)
    np.testing.assert_allclose(x.var(axis=0), s**2, rtol=0.1)


def test_hmc_refuses_bad_input():
    U = lambda x: 0.5 * jnp.sum(x**2)
    with pytest.raises(ValueError, match="num_chains"):
        run_hmc(U, jnp.zeros((3, 2)), key=jax.random.key(0), num_chains=4, batched_init=True)
    with pytest.raises(ValueError, match="target_accept"):
        run_hmc(U, jnp.zeros(2), key=jax.random.key(0), target_accept=1.5)
