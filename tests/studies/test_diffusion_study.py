"""The path-integral study as a library: ``Config`` refuses bad settings before any training,
the 1-D analytic check runs in float64 without changing the caller's precision, evaluation
points whose solves fail are reported instead of ending the run, and the trained network is
kept beside the results folder and reused."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.diffusion.analytic import GaussianMixture, MixtureScore
from bayesqcd.diffusion.sde import Simple
from bayesqcd.report import ResultsDir
from bayesqcd.studies.diffusion_path_integral import (Config, analytic_finite_h,
                                                      nll_and_coefficient, run)
from bayesqcd.studies.diffusion_path_integral import experiment


@pytest.mark.parametrize("kwargs, name", [
    (dict(data="moons"), "data"), (dict(sde="vp"), "sde"), (dict(n_eval=1), "n_eval"),
    (dict(n_steps=-1), "n_steps"), (dict(tols=()), "tols"), (dict(tols=(1e-3, 0.0)), "tols"),
    (dict(h_grid=(0.1, 0.2)), "h_grid"), (dict(h_grid=(0.0, -0.1)), "h_grid"),
    (dict(learning_rate=0.0), "learning_rate"), (dict(max_steps=1), "max_steps"),
])
def test_config_refuses_bad_settings(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Config(**kwargs)


def test_run_refuses_anything_but_its_config():
    with pytest.raises(TypeError, match="Config"):
        run({"data": "25gauss"})


def test_analytic_model_wkb_matches_exact_first_order_in_float64():
    jax.config.update("jax_enable_x64", False)
    try:
        res = analytic_finite_h(np.linspace(0.0, 0.2, 3))
        assert not jax.config.jax_enable_x64  # the caller's precision is restored
    finally:
        jax.config.update("jax_enable_x64", True)
    assert res["wkb_coefficient"] == pytest.approx(res["exact_coefficient"], rel=1e-5, abs=1e-7)
    assert res["wkb_nll"][0] == pytest.approx(res["exact_nll"][0], abs=1e-6)
    # WKB is first order: its error grows like h^2
    assert abs(res["wkb_nll"][1] - res["exact_nll"][1]) < abs(res["wkb_nll"][2] - res["exact_nll"][2])


def test_nll_and_coefficient_marks_a_failing_point_and_evaluates_the_others():
    """A score that explodes right of x = 10 makes the solves of a point there overflow: that
    point is NaN (the mask of the study), the others of its chunk are finite."""
    sde = Simple()
    mix = GaussianMixture(jnp.ones(1), jnp.array([[0.5, -1.0]]), jnp.array([[0.6, 0.3]]))
    exact = MixtureScore(mix, sde)
    score = lambda x, t: exact(x, t) - 1e4 * x * (x[0] > 10.0)
    points = jnp.array([[0.1, -0.9], [12.0, 0.0], [0.6, -1.2]])
    nll, coef = nll_and_coefficient(score, sde, points, 1e-3, chunk=2, progress=False)
    ok = np.isfinite(nll) & np.isfinite(coef)
    assert ok.tolist() == [True, False, True]


SMALL = dict(data="25gauss", sde="simple", n_steps=20, n_eval=4, n_samples=100, sampler_steps=20,
             h_grid=(0.0, 0.1), tols=(1e-3,))


def test_run_reports_failed_points_and_reuses_its_trained_network(tmp_path, monkeypatch):
    real = experiment.nll_and_coefficient
    seen = {}

    def point_2_fails(model, sde, points, tol, **kwargs):
        nll, coef = real(model, sde, points, tol, **kwargs)
        seen["nll"], coef = nll, coef.copy()
        coef[2] = np.nan
        return nll, coef

    monkeypatch.setattr(experiment, "nll_and_coefficient", point_2_fails)
    out = tmp_path / "res"
    s = run(Config(**SMALL), out, progress=False)
    written = json.loads((out / "summary.json").read_text())
    f = written["failed_points"]["tol=0.001"]
    assert f["count"] == 1 and f["indices"] == [2] and len(f["points"]) == 1
    assert written["nll_h0"]["n_points"] == 3
    assert written["nll_h0"]["value"] == pytest.approx(np.mean(seen["nll"][[0, 1, 3]]), rel=1e-12)
    assert written["first_order_coefficient"]["tol=0.001"]["n_points"] == 3
    assert np.isfinite(written["first_order_coefficient"]["tol=0.001"]["value"])
    ckpt = tmp_path / "res.ckpt" / "score.eqx"
    assert ckpt.exists() and written["training"]["checkpoint"] == str(ckpt)
    assert written["training"]["resumed_from_step"] == 0 and not written["training"]["checkpoint_reused"]

    # a rerun into the same place reuses the network; a step limit no solve can meet fails
    # every point, and the folder is still written
    monkeypatch.setattr(experiment, "nll_and_coefficient", real)
    again = run(Config(**SMALL, max_steps=2), ResultsDir(out, overwrite=True), progress=False)
    written = json.loads((out / "summary.json").read_text())
    assert written["training"]["resumed_from_step"] == 20 and written["training"]["checkpoint_reused"]
    assert written["failed_points"]["tol=0.001"]["count"] == 4
    assert written["nll_h0"]["value"] is None and written["nll_h0"]["n_points"] == 0
    assert again["w2_vs_h"]["w2"] == s["w2_vs_h"]["w2"]  # the same network

    # the kept network is not reused under other settings: refused before training
    with pytest.raises(ValueError, match="other settings"):
        run(Config(**{**SMALL, "data": "swiss-roll"}), ResultsDir(out, overwrite=True), progress=False)
    assert json.loads((out / "summary.json").read_text())["case"]["data"] == "25gauss"
