"""MAP, Laplace evidence and chains from given starts (bayesqcd.inference.optimize) on
linear-Gaussian problems, where the MAP and the evidence are known in closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from bayesqcd.inference.optimize import evidence_scan, least_squares_solver, map_estimate, run_nuts_chains


def linear_problem(n_data=12, d=4, seed=0):
    """``D = A P theta + n``: a random ``A (n_data, 8)``, ``P (8, d)``, correlated noise."""
    rng = np.random.default_rng(seed)
    A, P = rng.normal(size=(n_data, 8)), rng.normal(size=(8, d))
    M = rng.normal(size=(n_data, n_data)) * 0.1
    C = 0.05 * np.eye(n_data) + M @ M.T
    s = np.array([0.5, 1.0, 2.0, 3.0])[:d]
    D = A @ P @ (s * rng.normal(size=d)) + np.linalg.cholesky(C) @ rng.normal(size=n_data)
    return A, P, C, s, D


def closed_form(A, P, C, s, D, a=1.0):
    """Posterior mean (= MAP) of theta and log p(D) for theta ~ N(0, S), D ~ N(a A P theta, C)."""
    J, S = a * A @ P, np.diag(s**2)
    Ci = np.linalg.inv(C)
    theta = np.linalg.solve(np.linalg.inv(S) + J.T @ Ci @ J, J.T @ Ci @ D)
    cov_D = C + J @ S @ J.T
    log_ev = -0.5 * D @ np.linalg.solve(cov_D, D) - 0.5 * np.linalg.slogdet(2 * np.pi * cov_D)[1]
    return theta, log_ev


def test_least_squares_solver_is_exact_for_a_linear_gaussian_model():
    """MAP = (S^-1 + J^T C^-1 J)^-1 J^T C^-1 D; the Laplace evidence is exact up to the constant
    -log det(2 pi C) / 2, which depends only on C."""
    A, P, C, s, D = linear_problem()
    solve = least_squares_solver(lambda theta, a: a * (jnp.asarray(P) @ theta), s, A, C, D)
    const = -0.5 * np.linalg.slogdet(2 * np.pi * C)[1]
    for a in (0.5, 1.0, 3.0):
        sol = solve(np.zeros(4), a)
        theta, log_ev = closed_form(A, P, C, s, D, a)
        assert sol.converged
        np.testing.assert_allclose(sol.theta, theta, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(sol.log_evidence + const, log_ev, rtol=1e-10)
        r = np.linalg.solve(np.linalg.cholesky(C), D - a * A @ P @ theta)
        np.testing.assert_allclose(sol.chi2_per_point, r @ r / 12, rtol=1e-8)


def test_evidence_scan_finds_the_amplitude_of_maximal_evidence():
    A, P, C, s, D = linear_problem(seed=1)
    solve = least_squares_solver(lambda theta, a: a * (jnp.asarray(P) @ theta), s, A, C, D)
    grid = np.geomspace(0.01, 1e3, 41)
    scan = evidence_scan(solve, np.zeros(4), grid[::-1], log_hyperprior=lambda a: -a**2 / 8.0,
                         continuation=lambda th, prev, a: th * prev / a)
    exact = np.array([closed_form(A, P, C, s, D, a)[1] - a**2 / 8.0 for a in scan.amplitudes])
    np.testing.assert_allclose(np.diff(scan.log_evidence), np.diff(exact), rtol=1e-8, atol=1e-8)
    assert scan.amplitude == scan.amplitudes[np.argmax(exact)] and scan.converged
    assert scan.map is scan.maps[int(np.argmax(scan.log_evidence))]
    # the scan (in increasing order) stops once the evidence has fallen 10 below its maximum
    assert len(scan.amplitudes) < len(grid) and scan.log_evidence[-1] < scan.log_evidence.max() - 10
    ev = scan.log_evidence
    assert all(ev[i] >= ev[: i + 1].max() - 10 for i in range(len(ev) - 1))
    with pytest.raises(ValueError, match="amplitudes"):
        evidence_scan(solve, np.zeros(4), [0.0, 1.0])


def gaussian_model(A, sigma, s, y=None):
    x = numpyro.sample("x", dist.Normal(0.0, jnp.asarray(s)).to_event(1))
    numpyro.deterministic("Ax", A @ x)
    numpyro.sample("y", dist.Normal(A @ x, sigma).to_event(1), obs=y)


def test_map_estimate_matches_the_closed_form():
    A, P, _, s, _ = linear_problem()
    J = jnp.asarray(A @ P)
    y = jnp.asarray(np.random.default_rng(2).normal(size=12))
    est = map_estimate(gaussian_model, J, 0.3, s, key=jax.random.key(0), n_starts=3, max_iter=200, y=y)
    theta, _ = closed_form(np.asarray(J), np.eye(4), 0.09 * np.eye(12), s, np.asarray(y))
    np.testing.assert_allclose(est.z["x"], theta, rtol=1e-6, atol=1e-8)
    values = est.values()
    np.testing.assert_allclose(values["Ax"], J @ values["x"], rtol=1e-12)
    np.testing.assert_allclose(est.potential_energy, float(est.potential_fn(est.z)), rtol=1e-12)
    with pytest.raises(ValueError, match="n_starts"):
        map_estimate(gaussian_model, J, 0.3, s, key=jax.random.key(0), n_starts=0, y=y)


def test_run_nuts_chains_joins_one_chain_per_start():
    def model(loc):
        numpyro.sample("x", dist.Normal(loc, 1.0).expand([2]).to_event(1))

    from functools import partial

    chains = [(partial(model, 0.0), {"x": jnp.zeros(2)}), (partial(model, 5.0), {"x": jnp.full(2, 5.0)})]
    idata = run_nuts_chains(chains, key=jax.random.key(0), num_warmup=100, num_samples=200, progress=False)
    x = idata.posterior["x"].values
    assert x.shape == (2, 200, 2)
    np.testing.assert_allclose(x.mean(axis=(1, 2)), [0.0, 5.0], atol=0.35)  # each chain its own model
    assert idata.posterior.attrs["num_chains"] == 2 and idata.posterior.attrs["wall_time_s"] > 0
    with pytest.raises(ValueError, match="num_chains"):
        run_nuts_chains(chains, key=jax.random.key(0), num_chains=2)
