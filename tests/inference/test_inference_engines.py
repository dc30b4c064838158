"""The generic engines (NUTS, SVI) on small models with exact posteriors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer.hmc import HMCState
from numpyro.infer.hmc_util import HMCAdaptState, dual_averaging, welford_covariance

from bayesqcd.inference.cores import default_chains
from bayesqcd.inference.nuts import _pooled_mass, _pooled_step_size, chain_layout, run_nuts
from bayesqcd.inference.results import (DiagnosticsWarning, check_diagnostics, diagnostics, from_draws,
                                        idata_from_samples)
from bayesqcd.inference.svi import run_svi

# Conjugate model: mu ~ N(0, 2^2), tau ~ N(1, 0.5^2) (independent), y_i ~ N(mu + tau x_i, 0.7^2).
X = jnp.array([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
Y = jnp.array([-0.8, -0.1, 0.4, 1.1, 1.3, 2.2])
SIGMA = 0.7


def linear_model(x, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0))
    tau = numpyro.sample("tau", dist.Normal(1.0, 0.5))
    numpyro.deterministic("at_one", mu + tau)
    numpyro.sample("y", dist.Normal(mu + tau * x, SIGMA), obs=y)


def exact_posterior():
    """Mean and covariance of (mu, tau) in closed form (Gaussian prior, linear Gaussian likelihood)."""
    a = np.stack([np.ones_like(X), np.asarray(X)], axis=1)
    prior_prec = np.diag([1 / 2.0**2, 1 / 0.5**2])
    prec = prior_prec + a.T @ a / SIGMA**2
    cov = np.linalg.inv(prec)
    mean = cov @ (prior_prec @ np.array([0.0, 1.0]) + a.T @ np.asarray(Y) / SIGMA**2)
    return mean, cov


def _moments(idata):
    d = np.stack([idata.posterior["mu"].values.ravel(), idata.posterior["tau"].values.ravel()], axis=1)
    return d.mean(0), np.cov(d.T)


@pytest.fixture(scope="module")
def nuts_idata():
    return run_nuts(linear_model, X, Y, key=jax.random.key(0), num_warmup=300, num_samples=1000,
                    num_chains=4, progress=False)


def test_nuts_matches_exact_posterior(nuts_idata):
    mean, cov = exact_posterior()
    m, c = _moments(nuts_idata)
    sd = np.sqrt(np.diag(cov))
    # Monte-Carlo error of the mean with ~4000 draws is ~sd/60; allow 4 of those
    np.testing.assert_allclose(m, mean, atol=4 * sd.max() / 60)
    np.testing.assert_allclose(np.sqrt(np.diag(c)), sd, rtol=0.08)
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood"} <= set(nuts_idata.groups())
    np.testing.assert_allclose(nuts_idata.posterior["at_one"], nuts_idata.posterior["mu"] + nuts_idata.posterior["tau"])
    np.testing.assert_allclose(nuts_idata.observed_data["y"], Y)
    d = diagnostics(nuts_idata, ["mu", "tau"])
    assert d["max_rhat"] < 1.01 and d["min_ess_bulk"] > 400 and d["divergences"] == 0
    assert nuts_idata.posterior.attrs["engine"] == "nuts" and nuts_idata.posterior.attrs["wall_time_s"] > 0


def test_nuts_stops_at_the_ess_target():
    """With an ESS target the sampler stops early, at an ESS at least the target and R-hat <= 1.01,
    and still gives the exact posterior; the posterior predictive reproduces the data's spread."""
    idata = run_nuts(linear_model, X, Y, key=jax.random.key(2), num_warmup=300, num_samples=2000,
                     num_chains=2, ess_target=300, chunk_size=50, progress=False, posterior_predictive=True)
    attrs = idata.posterior.attrs
    assert attrs["stopped_by"] == "ess_target" and attrs["num_samples"] < 2000
    assert idata.posterior.sizes["draw"] == attrs["num_samples"]
    d = diagnostics(idata, ["mu", "tau"])
    assert d["min_ess_bulk"] >= 300 and d["max_rhat"] <= 1.01
    assert attrs["gradient_evaluations"] >= 2 * (300 + attrs["num_samples"])
    assert attrs["compile_time_s"] > 0 and attrs["sampling_time_s"] > 0
    mean, cov = exact_posterior()
    m, _ = _moments(idata)
    np.testing.assert_allclose(m, mean, atol=0.15 * np.sqrt(np.diag(cov)).max())
    pred = idata.posterior_predictive["y"].values  # (chain, draw, 6): mean and noise of the model
    mu, tau = (idata.posterior[v].values[..., None] for v in ("mu", "tau"))
    resid = pred - (mu + tau * np.asarray(X))
    assert pred.shape == (2, attrs["num_samples"], 6)
    np.testing.assert_allclose(resid.std(), SIGMA, rtol=0.05)


def scales():
    """Three independent normals with sds 0.01 and 10 (twice): a mass matrix matters."""
    numpyro.sample("a", dist.Normal(0.0, 0.01))
    numpyro.sample("b", dist.Normal(3.0, 10.0).expand([2]).to_event(1))


def test_curvature_mass_matrix_speeds_up_warm_up():
    """Scales 0.01 and 10 apart: starting the warm-up from the potential's curvature
    (``init_mass="hessian"``) needs far fewer gradients than from the identity, and both give
    the exact posterior sds."""
    runs = {m: run_nuts(scales, key=jax.random.key(0), num_warmup=200, num_samples=500, num_chains=2,
                        init_mass=m, progress=False, check=False) for m in ("identity", "hessian")}
    for idata in runs.values():
        # pooling is off by default
        assert idata.posterior.attrs["pooled_mass_windows"] == idata.posterior.attrs["pooled_step_size_chunks"] == 0
        np.testing.assert_allclose(idata.posterior["a"].values.std(), 0.01, rtol=0.1)
        np.testing.assert_allclose(idata.posterior["b"].values.std(), 10.0, rtol=0.1)
    grads = {m: r.posterior.attrs["gradient_evaluations"] for m, r in runs.items()}
    assert grads["hessian"] < 0.2 * grads["identity"], grads
    with pytest.raises(ValueError, match="init_mass = 'laplace'"):
        run_nuts(scales, key=jax.random.key(0), init_mass="laplace", progress=False)


@pytest.mark.parametrize("dense", [False, True])
def test_pooled_mass_matrix_is_numpyros_estimate_over_all_chains(dense):
    """The pooled warm-up mass matrix equals NumPyro's own (regularized Welford) estimate fed with
    the draws of every chain, sites flattened in ``ravel_pytree``'s (sorted) order."""
    rng = np.random.default_rng(0)
    z = {"b": rng.normal(3.0, 10.0, (60, 3, 2)), "a": rng.normal(0.0, 0.01, (60, 3))}
    pooled = _pooled_mass(z, dense)
    init, update, final = welford_covariance(diagonal=not dense)
    state = init(3)
    for t in range(60):
        for c in range(3):
            state = update({"a": z["a"][t, c], "b": z["b"][t, c]}, state)
    for ours, numpyros in zip(pooled, final(state, regularize=True)):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(numpyros), rtol=1e-9, atol=1e-15)
    # its diagonal: the variance of all 180 draws, shrunk towards 1e-3 as Stan does
    flat = np.concatenate([z["a"].reshape(180, 1), z["b"].reshape(180, 2)], axis=1)
    diag = np.diagonal(pooled[0]) if dense else np.asarray(pooled[0])
    np.testing.assert_allclose(diag, 180 / 185 * flat.var(axis=0, ddof=1) + 1e-3 * 5 / 185, rtol=1e-9)


def test_pooled_step_size_is_dual_averaging_on_the_mean_acceptance():
    """Dual averaging is affine in its state and its input: chains that start from the mean of
    their states and adapt on their own acceptance end, on average, where dual averaging on the
    mean acceptance ends; ``_pooled_step_size`` sets every chain to that mean, and the step size
    to the geometric mean of the chains'."""
    init, update = dual_averaging()
    rng = np.random.default_rng(0)
    g = rng.uniform(-0.8, 0.2, (2, 30))  # target - acceptance, per chain and iteration
    start = [init(np.log(10 * s)) for s in (0.05, 0.4)]
    adapt = HMCAdaptState(*[None] * len(HMCAdaptState._fields))._replace(
        step_size=np.array([0.05, 0.4]), ss_state=tuple(np.stack(f) for f in zip(*start)))
    state = HMCState(*[None] * len(HMCState._fields))._replace(adapt_state=adapt)
    pooled = _pooled_step_size(state).adapt_state
    np.testing.assert_allclose(pooled.step_size, [np.sqrt(0.05 * 0.4)] * 2, rtol=1e-12)
    shared = tuple(jnp.asarray(f[0]) for f in pooled.ss_state)
    own = [shared, shared]
    for t in range(30):
        own = [update(g[c, t], own[c]) for c in range(2)]
        shared = update(g[:, t].mean(), shared)
    for f, (a, b) in zip(shared, zip(*own)):
        np.testing.assert_allclose((np.asarray(a) + np.asarray(b)) / 2, f, rtol=1e-12, atol=1e-14)


def test_pooled_warm_up_samples_the_posterior():
    """With the mass matrix and the step size pooled over chains (``pooled_mass=True``,
    ``pooled_step_size=True``), NUTS still gives the exact posterior sds. The warm-up of 150
    iterations has one mass-matrix window (iterations 75-99), pooled at the end of the fourth
    chunk of 25, and a last window (100-149) pooled at its start (where every chain restarts
    its step size) and at the end of its two chunks: the chains then sample with one step size."""
    idata = run_nuts(scales, key=jax.random.key(1), num_warmup=150, num_samples=400, num_chains=2,
                     init_mass="hessian", pooled_mass=True, pooled_step_size=True, progress=False, check=False)
    attrs = idata.posterior.attrs
    assert attrs["pooled_mass_windows"] == 1 and attrs["pooled_step_size_chunks"] == 3
    step = idata.sample_stats["step_size"].values
    assert np.all(step == step[0, 0]), step[:, 0]
    np.testing.assert_allclose(idata.posterior["a"].values.std(), 0.01, rtol=0.1)
    np.testing.assert_allclose(idata.posterior["b"].values.std(), 10.0, rtol=0.1)


@pytest.mark.parametrize("guide", ["fullrank", "flow"])
def test_svi_agrees_with_nuts(nuts_idata, guide):
    idata = run_svi(linear_model, X, Y, key=jax.random.key(1), guide=guide, num_steps=2500,
                    learning_rate=1e-2, num_draws=2000, progress=False, check=False,
                    posterior_predictive=guide == "fullrank")
    m_svi, c_svi = _moments(idata)
    m_nuts, c_nuts = _moments(nuts_idata)
    sd = np.sqrt(np.diag(c_nuts))
    np.testing.assert_allclose(m_svi, m_nuts, atol=0.25 * sd.max())
    np.testing.assert_allclose(np.sqrt(np.diag(c_svi)), sd, rtol=0.2)
    corr = lambda c: c[0, 1] / np.sqrt(c[0, 0] * c[1, 1])  # noqa: E731
    assert abs(corr(c_svi) - corr(c_nuts)) < 0.15
    assert idata.posterior.sizes["chain"] == 1 and idata.posterior.sizes["draw"] == 2000
    loss = idata["elbo"]["loss"].values
    assert loss.shape == (2500,) and loss[-100:].mean() < loss[:100].mean()
    if guide == "fullrank":  # the exact family here: importance weights are well behaved
        assert idata.posterior.attrs["pareto_k"] < 0.7
        pred = idata.posterior_predictive["y"].values  # data drawn anew: the observed noise level
        mean = idata.posterior["mu"].values[..., None] + idata.posterior["tau"].values[..., None] * np.asarray(X)
        np.testing.assert_allclose((pred - mean).std(), SIGMA, rtol=0.05)


def test_svi_rejects_unknown_guide():
    with pytest.raises(ValueError, match="guide = 'laplace'"):
        run_svi(linear_model, X, Y, key=jax.random.key(0), guide="laplace")


def test_diagnostics_warn_on_unmixed_chains():
    rng = np.random.default_rng(0)
    stuck = rng.normal(size=(4, 200)) + np.arange(4)[:, None] * 3.0  # four chains in four places
    idata = from_draws({"x": stuck}, sample_stats={"diverging": np.zeros((4, 200), bool)})
    with pytest.warns(DiagnosticsWarning, match="R-hat"):
        d = check_diagnostics(idata)
    assert d["max_rhat"] > 1.5
    good = from_draws({"x": rng.normal(size=(4, 500))}, sample_stats={"diverging": np.zeros((4, 500), bool)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiagnosticsWarning)
        check_diagnostics(good)
    div = np.zeros((4, 500), bool)
    div[0, :10] = True
    with pytest.warns(DiagnosticsWarning, match="10 divergent"):
        check_diagnostics(from_draws({"x": rng.normal(size=(4, 500))}, sample_stats={"diverging": div}))


def test_draws_are_post_processed_in_padded_batches_and_observed_sites_found():
    """21 draws in batches of 4 (the last one padded): every draw keeps its own constrained and
    deterministic values, in order; the observed site is found by tracing the model abstractly."""
    z = {"mu": np.arange(21.0).reshape(3, 7) / 10, "tau": -np.arange(21.0).reshape(3, 7) / 10}

    def postprocess(draw):
        return {**draw, "twice": 2.0 * draw["mu"]}

    idata = idata_from_samples(linear_model, postprocess, z, {"lp": np.zeros((3, 7))}, (X,), {"y": Y}, batch_size=4)
    np.testing.assert_array_equal(idata.posterior["mu"].values, z["mu"])
    np.testing.assert_array_equal(idata.posterior["twice"].values, 2.0 * z["mu"])
    np.testing.assert_allclose(idata.observed_data["y"].values, Y)
    last = dist.Normal(z["mu"][2, 6] + z["tau"][2, 6] * X, SIGMA).log_prob(Y)
    np.testing.assert_allclose(idata.log_likelihood["y"].values[2, 6], last, rtol=1e-6)


def test_from_draws_validates_shapes():
    with pytest.raises(ValueError, match=r"posterior\['x'\] has shape \(5,\)"):
        from_draws({"x": np.zeros(5)})
    with pytest.raises(ValueError, match="disagree"):
        from_draws({"x": np.zeros((2, 5)), "y": np.zeros((2, 6))})
    assert isinstance(from_draws({"x": np.zeros((1, 5, 3))}), az.InferenceData)


def test_default_chains_one_per_core_two_to_four():
    assert [default_chains(c) for c in (1, 2, 3, 4, 16)] == [2, 2, 3, 4, 4]
    assert 2 <= default_chains() <= 4
    with pytest.raises(ValueError, match="cores = 0"):
        default_chains(0)


def test_chain_layout():
    assert chain_layout(4, 1) == 1
    assert chain_layout(2, 2) == 2 and chain_layout(2, 4) == 2
    assert chain_layout(4, 2) == 2
    with pytest.raises(ValueError, match="num_chains = 3 cannot be split evenly over 2 devices"):
        chain_layout(3, 2)


def test_nuts_on_two_devices():
    """Chains spread over two (forced CPU) devices give the exact posterior too."""
    script = textwrap.dedent(
        """
        import json, jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        import sys; sys.path.insert(0, %r)
        from test_inference_engines import X, Y, linear_model, exact_posterior
        from bayesqcd.inference.nuts import run_nuts
        assert jax.local_device_count() == 2
        idata = run_nuts(linear_model, X, Y, key=jax.random.key(0), num_warmup=200, num_samples=500,
                         num_chains=4, progress=False)
        mean, cov = exact_posterior()
        m = [float(idata.posterior[v].mean()) for v in ("mu", "tau")]
        lone = run_nuts(linear_model, X, Y, key=jax.random.key(1), num_warmup=40, num_samples=20,
                        num_chains=2, progress=False, check=False)  # one chain per device: no vmap
        print(json.dumps({"n_devices": idata.posterior.attrs["n_devices"], "mean": m, "exact": mean.tolist(),
                          "sd": np.sqrt(np.diag(cov)).tolist(), "chains": idata.posterior.sizes["chain"],
                          "lone_devices": lone.posterior.attrs["n_devices"],
                          "lone_mu": lone.posterior["mu"].values.tolist()}))
        """
        % os.path.dirname(__file__)
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["n_devices"] == 2 and res["chains"] == 4
    np.testing.assert_allclose(res["mean"], res["exact"], atol=0.1 * max(res["sd"]))
    # a chain's draws do not depend on the layout: unbatched on a device of its own, vectorized here
    assert res["lone_devices"] == 2
    here = run_nuts(linear_model, X, Y, key=jax.random.key(1), num_warmup=40, num_samples=20, num_chains=2,
                    progress=False, check=False)
    assert here.posterior.attrs["n_devices"] == 1
    np.testing.assert_allclose(res["lone_mu"], here.posterior["mu"].values, rtol=1e-6)
