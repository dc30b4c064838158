"""The neutron-star model, its likelihood, the report and the ``ns-eos`` command."""

from __future__ import annotations

import functools
import json

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro import handlers
from numpyro.infer import Predictive
from numpyro.infer.util import log_density
from scipy import stats

from bayesqcd import eos as E
from bayesqcd import tov
from bayesqcd.cli import main
from bayesqcd.studies.neutron_star import report as ns_report
from bayesqcd.data import load_observations
from bayesqcd.inference.results import from_draws
from bayesqcd.models.neutron_star import (
    EOS_PRIORS,
    M_GRID,
    M_MIN,
    N_GRID,
    NeuralPrior,
    PolytropePrior,
    SoundSpeedPrior,
    neutron_star_model,
    ns_data,
)

CS2 = jnp.array([0.45, 0.3, 0.6, 0.5, 0.4])
PRECISE = tov.SolverConfig(rtol=1e-9, atol=1e-12, max_steps=8192, adjoint=diffrax.ForwardMode())


@pytest.fixture(scope="module")
def real():
    obs = load_observations()
    return obs, ns_data(obs)


@functools.partial(jax.jit, static_argnames="config")
def _sites(data, cs2, config=tov.INFERENCE):
    """Values of the model's sites (and the log-likelihood) at the c_s^2 parameters ``cs2``."""
    model = handlers.substitute(handlers.seed(neutron_star_model, 0), {"cs2": cs2})
    tr = handlers.trace(model).get_trace(data, SoundSpeedPrior(), config=config)
    out = {k: v["value"] for k, v in tr.items() if v["type"] == "deterministic"}
    out["log_lik"] = tr["observations"]["fn"].log_prob(0.0)
    return out


@pytest.mark.expensive(30)
@pytest.mark.xdist_group("ns_model_sites")
def test_likelihood_equals_direct_quadrature(real):
    """The model's log-likelihood equals an independent dense quadrature over each star's mass."""
    obs, data = real
    tr = _sites(data, CS2)
    curve = tov.mass_radius_curve(E.sound_speed(CS2), 200)
    m_tov = float(curve.M_max)
    # the model solves at rtol 1e-3 (tov.INFERENCE): M_TOV to 5e-3, R to 20 m, Lambda to 0.5%
    assert float(tr["M_TOV"]) == pytest.approx(m_tov, abs=6e-3)
    assert float(tr["R_1.4"]) == pytest.approx(float(curve.at_mass(1.4)), abs=0.025)
    lam = float(curve.at_mass(1.4, "Lambda"))
    assert float(tr["Lambda_1.4"]) == pytest.approx(lam, rel=6e-3)
    # reference: trapezoid on 600 masses up to the heaviest stable star, scipy for the radio masses
    m_top = float(np.max(np.where(curve.stable, curve.stars.M, -np.inf)))
    ms = np.linspace(M_MIN, m_top, 600)
    rs = np.asarray(jax.jit(jax.vmap(curve.at_mass))(jnp.asarray(ms)))
    total = 0.0
    for src in obs.mr:
        dens = np.exp(np.asarray(src.M.distribution().log_prob(ms)) + np.asarray(src.R.distribution().log_prob(rs)))
        total += np.log(np.trapezoid(dens, ms) / (m_tov - M_MIN))
    for r in obs.radio:
        mass_in = stats.norm.cdf(m_tov, r.mean, r.sigma) - stats.norm.cdf(M_MIN, r.mean, r.sigma)
        total += np.log(mass_in / (m_tov - M_MIN))
    total += float(obs.tidal[0].dist.distribution().log_prob(lam))
    # with precise stars, the 128-mass trapezoid of the model (its error sits mostly at the kinks
    # of the two-piece normals) is within 0.05 nats of the reference
    precise = _sites(data, CS2, config=PRECISE)
    assert float(precise["log_lik"]) == pytest.approx(total, abs=0.05)


@pytest.mark.xdist_group("ns_model_sites")
def test_deterministic_grids_are_physical(real):
    tr = _sites(real[1], CS2)
    p = np.asarray(tr["p_of_eps"])
    c = np.asarray(tr["cs2_of_n"])
    r = np.asarray(tr["R_of_M"])
    assert np.all(np.diff(p) > 0)
    # c_s^2 reproduces the segment values above 1.1 n_0 (five equal segments up to 8 n_0)
    seg = np.minimum(((N_GRID[1:] - 1.1) / (6.9 / 5)).astype(int), 4)
    np.testing.assert_allclose(c[1:], np.asarray(CS2)[seg], atol=1e-5)  # table interpolation
    m_tov = float(tr["M_TOV"])
    assert np.all(np.isfinite(r[M_GRID < m_tov - 0.01])) and np.all(np.isnan(r[M_GRID > m_tov]))


@pytest.mark.expensive(40)
@pytest.mark.xdist_group("ns_model_sites")
def test_gradient_matches_finite_differences(real):
    """Forward-mode derivative of the log density (what NUTS uses) against central differences
    of the log-likelihood (the same function of c_s^2 inside the prior's unit box, where the
    prior density is flat; `_sites` at these settings is the program the quadrature test
    compiles)."""
    data = real[1]

    def logp(cs2):
        model = handlers.substitute(neutron_star_model, {"cs2": cs2})
        return log_density(model, (data, SoundSpeedPrior()), {"config": PRECISE}, {})[0]

    g = jax.jit(jax.jacfwd(logp))(CS2)
    h = 1e-4

    def f(cs2):
        return float(_sites(data, cs2, config=PRECISE)["log_lik"])

    fd = np.array([(f(CS2.at[i].add(h)) - f(CS2.at[i].add(-h))) / (2 * h) for i in range(5)])
    # the large components (the segments the data constrain) to 2e-3 relative; the small ones to
    # 1e-3 of the gradient's norm (the finite differences are noisy at that level)
    np.testing.assert_allclose(np.asarray(g), fd, rtol=2e-3, atol=1e-3 * np.linalg.norm(fd))


@pytest.mark.parametrize("name", ["polytrope", "nn"])
def test_other_priors_give_physical_eos(name):
    """Prior draws of the polytrope and neural EoS: finite stars, causal network EoS."""
    prior = EOS_PRIORS[name]()
    draws = Predictive(neutron_star_model, num_samples=6)(jax.random.key(1), None, prior)
    m = np.asarray(draws["M_TOV"])
    assert np.isfinite(m).sum() >= 3 and np.all(m[np.isfinite(m)] > 0.1)
    p = np.asarray(draws["p_of_eps"])
    for row in p:  # pressure never decreases with energy density (thermodynamic stability)
        ok = np.isfinite(row)
        assert np.all(np.diff(row[ok]) >= 0)
    if name == "nn":
        c = np.asarray(draws["cs2_of_n"])[:, 1:]
        assert np.all((c >= 0) & (c <= 1))
        assert NeuralPrior().n_weights == draws["nn_weights"].shape[1]
    else:
        assert isinstance(prior, PolytropePrior) and draws["gamma"].shape == (6, 3)


@pytest.fixture(scope="module")
def prior_idata(real):
    draws = Predictive(neutron_star_model, num_samples=16)(jax.random.key(2), None, SoundSpeedPrior())
    return from_draws({k: np.asarray(v)[None] for k, v in draws.items()}, attrs={"wall_time_s": 1.0})


@pytest.mark.xdist_group("ns_prior_draws")
def test_results_folder_contents(tmp_path, real, prior_idata):
    out = tmp_path / "res"
    ns_report.write_results(out, prior_idata, observations=real[0], settings={"engine": "prior"},
                            truth={"R_1.4": 11.7, "M_TOV": 2.05, "Lambda_1.4": 300.0})
    names = {p.name for p in out.iterdir()}
    assert {"posterior.nc", "summary.json", "summary.csv", "eos_band.png", "mass_radius.png", "corner.png",
            "R14.png"} <= names
    summary = json.loads((out / "summary.json").read_text())
    h = summary["headline"]["R_1.4"]
    assert h["ci95"][0] <= h["ci68"][0] <= h["median"] <= h["ci68"][1] <= h["ci95"][1]
    assert "truth_in_ci90" in h and summary["versions"]["jax"]
    assert len(summary["observations"]) >= 5


@pytest.mark.xdist_group("ns_prior_draws")
def test_interrupted_run_leaves_no_partial_folder(tmp_path, real, prior_idata, monkeypatch):
    from bayesqcd.report import MARKER, ResultsDir

    out = tmp_path / "res"
    out.mkdir()
    (out / MARKER).write_text("{}")  # an earlier bayesqcd result, replaced only on success
    (out / "old.txt").write_text("previous results")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ns_report, "plot_r14", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ns_report.write_results(ResultsDir(out, overwrite=True), prior_idata, observations=real[0])
    assert [p.name for p in tmp_path.iterdir()] == ["res"]  # no temporary folder left behind
    assert (out / "old.txt").read_text() == "previous results"  # the old results are untouched


def test_bad_data_file_fails_with_its_line(tmp_path, capsys):
    bad = tmp_path / "obs.csv"
    bad.write_text("kind,name,quantity,median,lower,upper,cl,use,source\n"
                   "mr,X,M,1.4,1.3,1.5,0.68,1,me\n"
                   "mr,X,R,twelve,11,13,0.68,1,me\n")
    code = main(["ns-eos", "--data", str(bad), "--out", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert code == 2 and "obs.csv" in err and "line 3" in err and "median" in err
    assert not (tmp_path / "res").exists()


@pytest.mark.expensive(130)
def test_mock_sly_is_recovered_by_nuts(tmp_path):
    """A short NUTS chain on mock SLy data: the true R_1.4 and M_TOV lie in the 90% intervals.
    (One chain: several chains compile a separate vectorised initialisation, ~30 s more here;
    chains over devices are tested on the conjugate model in test_inference_engines.)"""
    out = tmp_path / "mock"
    code = main(["ns-eos", "--mock", "SLy", "--n-obs", "6", "--seed", "1", "--segments", "3", "--chains", "1",
                 "--warmup", "50", "--samples", "100", "--no-progress", "--out", str(out)])
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    for name in ("R_1.4", "M_TOV"):
        assert s["headline"][name]["truth_in_ci90"], s["headline"][name]
    assert s["headline"]["R_1.4"]["truth"] == pytest.approx(11.706, abs=0.01)
    assert s["diagnostics"]["n_chains"] == 1 and s["diagnostics"]["n_draws"] == 100
    # --noise-free: each source at its true radius, the radio mass at its true value
    from bayesqcd.studies.neutron_star import mock_observations

    free, truth = mock_observations("SLy", 6, 1, scatter=False)
    curve_m, curve_r = truth["curves"]["M"], truth["curves"]["R"]
    order = np.argsort(curve_m)
    for src in free.mr:
        assert src.R.loc == pytest.approx(np.interp(src.M.loc, curve_m[order], curve_r[order]), abs=0.01)
    assert free.radio[0].mean == pytest.approx(min(2.0, truth["M_TOV"] - 0.05), abs=1e-12)


@pytest.mark.xdist_group("ns_model_sites")
def test_sample_file_source_matches_its_summary(tmp_path, real):
    """A source given as posterior samples (KDE) drawn from its own summary gives ~ the same likelihood."""
    from bayesqcd.cli import build_parser
    from bayesqcd.cli.ns_eos import data_spec
    from bayesqcd.studies.neutron_star import load_data

    obs, data = real
    src = obs.mr[0]
    key_m, key_r = jax.random.split(jax.random.key(3))
    m = np.asarray(src.M.distribution().sample(key_m, (4000,)))
    r = np.asarray(src.R.distribution().sample(key_r, (4000,)))
    path = tmp_path / "j0030.txt"
    np.savetxt(path, np.stack([r, m], axis=1), header="R M", comments="")
    args = build_parser().parse_args(["ns-eos", "--mr-samples", f"{src.name}={path}", "--out", str(tmp_path / "o")])
    with_samples, _ = load_data(data_spec(args))
    lik = ns_data(with_samples)
    assert src.name in lik.mr.names and len(lik.mr.names) == len(data.mr.names)
    a, b = float(_sites(data, CS2)["log_lik"]), float(_sites(lik, CS2)["log_lik"])
    assert np.isfinite(b) and abs(a - b) < 0.3
