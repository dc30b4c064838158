"""Simulation, amortized regression, neural posterior estimation and calibration
(bayesqcd.inference.simulation / amortized / calibration) against exact answers."""

import warnings
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from bayesqcd.inference import (
    MAF,
    Coupling,
    DiagnosticsWarning,
    MLPRegressor,
    Simulations,
    calibrate,
    check_diagnostics,
    fit_npe,
    fit_regression,
    from_draws,
    simulate,
)
from bayesqcd.inference.regression import ArrayData

A = np.array([[1.0, 0.5], [0.2, 1.0], [0.7, -0.3]])
NOISE = 0.5
Y0 = np.array([0.5, -0.3, 1.0])


def linear_gaussian(y=None, z=None):
    """theta ~ N(0, 1)^2, y = A theta + N(0, NOISE^2); log tau ~ N(0, 1), z = log tau + N(0, NOISE^2) (4 points):
    the posterior of (theta, log tau) is Gaussian and exact."""
    theta = numpyro.sample("theta", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
    tau = numpyro.sample("tau", dist.LogNormal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(jnp.asarray(A) @ theta, NOISE).to_event(1), obs=y)
    numpyro.sample("z", dist.Normal(jnp.log(tau), NOISE).expand([4]).to_event(1), obs=z)


def exact_posterior(y):
    """Mean (2,) and covariance (2, 2) of theta given y."""
    cov = np.linalg.inv(np.eye(2) + A.T @ A / NOISE**2)
    return cov @ A.T @ np.asarray(y) / NOISE**2, cov


def exact_log_tau(z):
    """Posterior mean and sd of log tau given the 4 points z."""
    prec = 1 + 4 / NOISE**2
    return np.sum(z, axis=-1) / NOISE**2 / prec, prec**-0.5


SITES = {"targets": ["theta", "tau"], "observed": ["y", "z"]}
DATA = {"y": Y0, "z": np.full(4, np.log(2.0))}


@pytest.fixture(scope="module")
def lg_sims():
    sims = simulate(linear_gaussian, jax.random.key(0), 4000, **SITES, batch_size=2000, progress=False)
    return sims.split(3800)


@pytest.fixture(scope="module")
def npe(lg_sims):
    return fit_npe(lg_sims[0], jax.random.key(2), n_copies=None, flow=Coupling(layers=3, width=32),
                   steps=1000, eval_every=100, progress=False)


@pytest.mark.slow  # ~15 s of CPU on 2 idle cores (most of it compiling the flow), up to 80 s wall on a loaded one
def test_npe_recovers_the_exact_linear_gaussian_posterior_and_is_calibrated(lg_sims, npe):
    post = npe.sample(jax.random.key(3), DATA, 8000)
    draws = np.column_stack([post.posterior["theta"].values.reshape(-1, 2),
                             np.log(post.posterior["tau"].values.reshape(-1))])
    mean, cov = exact_posterior(Y0)
    m_tau, s_tau = exact_log_tau(DATA["z"])
    mean, sd = np.append(mean, m_tau), np.append(np.sqrt(np.diag(cov)), s_tau)
    assert np.all(np.abs(draws.mean(0) - mean) < 0.1 * sd), (draws.mean(0), mean, sd)
    assert np.all(np.abs(draws.std(0) / sd - 1) < 0.1), (draws.std(0), sd)
    assert post.posterior.attrs["engine"] == "npe" and post.posterior.attrs["draws_independent"] == 1
    # log_prob is a normalized density: on the exact Gaussian's draws its mean log ratio is the KL (small)
    cov = np.diag(sd**2)
    cov[:2, :2] = exact_posterior(Y0)[1]
    exact = np.random.default_rng(0).multivariate_normal(mean, cov, 2000)
    tau = np.exp(exact[:, 2])
    lq = np.asarray(npe.log_prob({"theta": exact[:, :2], "tau": tau}, DATA))
    lp = (-0.5 * np.einsum("ni,ij,nj->n", exact - mean, np.linalg.inv(cov), exact - mean)
          - 0.5 * np.log(np.linalg.det(2 * np.pi * cov)) - np.log(tau))  # density of tau, not log tau
    assert 0 <= np.mean(lp - lq) < 0.05
    cal = calibrate(npe, lg_sims[1], jax.random.key(5), n_draws=200, levels=(0.5, 0.68, 0.95))
    assert cal.in_band == {"theta": True, "tau": True}, cal.coverage


def _gaussian_posterior(scale: float, seed: int = 0):
    """A callable data -> InferenceData drawing the exact posterior with its sd times ``scale``."""
    rng = np.random.default_rng(seed)

    def posterior(data):
        mean, cov = exact_posterior(data["y"])
        m_tau, s_tau = exact_log_tau(data["z"])
        return from_draws({"theta": rng.multivariate_normal(mean, scale**2 * cov, (1, 400)),
                           "tau": np.exp(rng.normal(m_tau, scale * s_tau, (1, 400)))})

    return posterior


def test_calibration_accepts_the_exact_posterior_and_rejects_an_overconfident_one(lg_sims):
    held = lg_sims[1]
    levels = (0.5, 0.68, 0.95)
    exact = calibrate(_gaussian_posterior(1.0), held, jax.random.key(4), n_draws=200, levels=levels)
    assert exact.in_band == {"theta": True, "tau": True}, exact.coverage
    assert exact.rank_pvalue("theta") > 1e-3 and exact.rank_pvalue("tau") > 1e-3
    tight = calibrate(_gaussian_posterior(0.5), held, jax.random.key(4), n_draws=200, levels=levels)
    assert tight.in_band == {"theta": False, "tau": False}
    # sd x 0.5: the central 68% interval covers P(|z| < 0.5) = 38%
    assert abs(tight.coverage["theta"][1] - 0.383) < 0.08
    assert tight.rank_pvalue("theta") < 1e-6
    summary = tight.to_dict()
    assert summary["in_band"] == {"theta": False, "tau": False} and len(summary["rank_histogram"]["theta"]) == 10


def _sqrt_model(y=None):
    theta = numpyro.sample("theta", dist.Uniform(-1.0, 3.0))
    numpyro.deterministic("root", jnp.sqrt(theta))  # NaN for theta < 0: a quarter of the prior
    numpyro.sample("y", dist.Normal(jnp.sqrt(theta), 0.1).expand([3]).to_event(1), obs=y)


def test_simulate_drops_and_counts_non_finite_draws_and_resamples_the_likelihood(tmp_path, lg_sims):
    sims = simulate(_sqrt_model, jax.random.key(6), 2000, targets=["theta", "root"], observed=["y"],
                    batch_size=512, progress=False)
    assert sims.n + sims.n_dropped == sims.n_requested == 2000
    assert abs(sims.n_dropped - 500) < 4 * np.sqrt(2000 * 0.25 * 0.75)
    assert np.all(sims.targets["theta"] >= 0) and np.all(np.isfinite(sims.observed["y"]))
    assert sims.targets["root"].shape == (sims.n,) and sims.observed["y"].shape == (sims.n, 3)
    # re-drawn data given the same latents: y - A theta is the likelihood's noise, sd NOISE
    lg = lg_sims[0]
    resample = jax.jit(jax.vmap(lg.resampler()))
    y = resample(jax.random.split(jax.random.key(7), lg.n), lg.latents)["y"]
    resid = np.asarray(y) - lg.targets["theta"] @ A.T
    assert abs(resid.std() / NOISE - 1) < 0.03 and not np.allclose(y, lg.observed["y"])
    lg.save(tmp_path / "sims.npz")
    back = Simulations.load(tmp_path / "sims.npz", linear_gaussian)
    assert np.array_equal(back.observed["y"], lg.observed["y"]) and back.n_requested == lg.n_requested
    with pytest.raises(ValueError, match="not in the model"):
        simulate(linear_gaussian, jax.random.key(0), 10, targets=["omega"], observed=["y"], progress=False)
    with pytest.raises(ValueError, match="data argument"):
        simulate(linear_gaussian, jax.random.key(0), 10, Y0, **SITES, progress=False)


def test_regression_output_follows_the_support_without_a_cap(lg_sims):
    # E[log tau | z] = 4 mean(z) / (4 + NOISE^2) and E[theta | y] are linear in the data, so the degree-1
    # polynomial in the unconstrained space is exact; tau is predicted as exp of it: positive, never capped
    reg = fit_regression(lg_sims[0], jax.random.key(9), method="polynomial", degree=1, n_copies=4)
    for tau in (0.3, 3.0):  # 3 lies far above a sigmoid's cap of 1
        data = {"y": Y0, "z": np.full(4, np.log(tau))}
        post = reg.predict(jax.random.key(10), data, n_input_draws=10)
        draws = post.posterior["tau"].values
        assert draws.shape == (1, 10) and np.all(draws > 0)
        exact = np.exp(exact_log_tau(data["z"])[0])
        assert abs(draws[0, 0] / exact - 1) < 0.03, (tau, draws[0, 0], exact)
        assert 0 < np.std(np.log(draws)) < NOISE  # re-observations: sd(mean z) ~ NOISE / 2
    assert np.allclose(post.posterior["theta"].values[0, 0], exact_posterior(Y0)[0], atol=0.03)
    assert post.posterior.attrs["draws_independent"] == 1
    negative = replace(lg_sims[0], targets={**lg_sims[0].targets, "tau": -lg_sims[0].targets["tau"]})
    with pytest.raises(ValueError, match="outside the support"):
        fit_regression(negative, jax.random.key(9), method="polynomial")
    x = np.linspace(0, 1, 64)[:, None]
    with pytest.raises(ValueError, match="output='sigmoid'"):
        MLPRegressor(n_steps=10).fit(ArrayData(x, 3 * x), jax.random.key(0), progress=False)


def test_chain_checks_are_skipped_for_independent_draws():
    shifted = np.arange(4.0)[:, None] + np.random.default_rng(0).normal(size=(4, 200))  # members disagree
    with pytest.warns(DiagnosticsWarning, match="not mixed"):
        check_diagnostics(from_draws({"a": shifted}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiagnosticsWarning)
        d = check_diagnostics(from_draws({"a": shifted}, attrs={"draws_independent": 1}))
    assert d["draws_independent"] and np.isnan(d["max_rhat"])


@pytest.mark.parametrize("flow", [Coupling(layers=2, width=8, knots=4), MAF(layers=2, width=8, knots=4)])
def test_both_flow_families_draw_and_score_for_one_or_many_data_sets(flow):
    """fit_npe's two flow builders give flowjax distributions with its shape conventions:
    draws ``sample_shape + condition batch + (dim,)``, finite log densities at the draws."""
    q = flow(jax.random.key(0), 3, 5)
    one, many = jnp.ones(5), jnp.ones((4, 5))
    assert q.sample(jax.random.key(1), (7,), condition=one).shape == (7, 3)
    z = q.sample(jax.random.key(1), (7,), condition=many)
    assert z.shape == (7, 4, 3)
    lp = q.log_prob(z, many)
    assert lp.shape == (7, 4) and bool(jnp.all(jnp.isfinite(lp)))
