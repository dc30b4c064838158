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
                                                      compare_with_paper, nll_and_coefficient,
                                                      over_trainings, point_stats, run)
from bayesqcd.studies.diffusion_path_integral import experiment


@pytest.mark.parametrize("kwargs, name", [
    (dict(data="moons"), "data"), (dict(sde="vp"), "sde"), (dict(n_eval=1), "n_eval"),
    (dict(n_steps=-1), "n_steps"), (dict(tols=()), "tols"), (dict(tols=(1e-3, 0.0)), "tols"),
    (dict(h_grid=(0.1, 0.2)), "h_grid"), (dict(h_grid=(0.0, -0.1)), "h_grid"),
    (dict(learning_rate=0.0), "learning_rate"), (dict(max_steps=1), "max_steps"),
    (dict(inner_tol=1e-5), "inner_tol"), (dict(wkb_method="fd", inner_tol=0.0), "inner_tol"),
    (dict(wkb_method="central"), "wkb_method"), (dict(t_min=1.0), "t_min"),
    (dict(t_min=-0.1), "t_min"), (dict(seeds=(0, 0)), "seeds"), (dict(seeds=()), "seeds"),
    (dict(runaway_tail=1.0), "runaway_tail"), (dict(fd_step=0.0), "fd_step"),
])
def test_config_refuses_bad_settings(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Config(**kwargs)


def test_config_window_and_checkpoints_per_seed():
    assert Config(sde="cosine").schedule().window == (0.01, 1.0 - 1e-3)
    assert Config(t_min=0.0).schedule().window == (0.0, 1.0)
    assert Config(checkpoint="c/score.eqx").checkpoint_for(3) == "c/score.eqx"
    assert Config(checkpoint="c/score.eqx", seeds=(0, 3)).checkpoint_for(3) == "c/score-seed3.eqx"


def test_statistics_over_points_and_trainings():
    """Exact values: per-point statistics (10% trimmed from each end), their combination over
    trainings and the comparison with a paper's number."""
    x = np.array([-40.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    st = point_stats(x)
    assert st["mean"] == pytest.approx(0.5) and st["median"] == pytest.approx(4.5)
    assert st["trimmed_mean"] == pytest.approx(np.mean(x[1:9]))  # one point off each end
    assert st["sem"] == pytest.approx(np.std(x, ddof=1) / np.sqrt(10)) and st["n_points"] == 10
    a, b = point_stats(np.array([1.0, 3.0])), point_stats(np.array([3.0, 5.0]))
    both = over_trainings([a, b])
    assert both["mean"] == pytest.approx(3.0) and both["n_trainings"] == 2
    assert both["sem"] == pytest.approx(np.sqrt(2 * 1.0**2) / 2)
    assert both["sd_over_trainings"]["mean"] == pytest.approx(np.sqrt(2.0))
    assert over_trainings([a])["sd_over_trainings"] is None
    cmp = compare_with_paper(both, 0.0, 1.0)
    combined = np.sqrt(2.0 * 1.5 + 1.0)
    assert cmp["combined"] == pytest.approx(combined) and cmp["z"] == pytest.approx(3.0 / combined)
    assert cmp["within_2_combined"] and not compare_with_paper(both, -3.0, 0.1)["within_2_combined"]


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


def test_nll_and_coefficient_marks_failing_and_runaway_points_and_evaluates_the_others():
    """A score that explodes right of x = 10 makes the solves of a point there overflow; one
    that pushes outwards left of x = -3 carries a point there to |x_T| ~ 1e4 with every solve
    finishing (a run-away). Both are NaN (the mask of the study) with the run-away check, the
    run-away only without it; the other points of their chunks are finite."""
    sde = Simple()
    mix = GaussianMixture(jnp.ones(1), jnp.array([[0.5, -1.0]]), jnp.array([[0.6, 0.3]]))
    exact = MixtureScore(mix, sde)
    score = lambda x, t: exact(x, t) - 1e4 * x * (x[0] > 10.0) - 2.0 * x * (x[0] < -3.0)
    points = jnp.array([[0.1, -0.9], [12.0, 0.0], [0.6, -1.2], [-4.0, 0.0]])
    nll, coef = nll_and_coefficient(score, sde, points, 1e-3, chunk=2, progress=False,
                                    max_radius=7.43)
    assert (np.isfinite(nll) & np.isfinite(coef)).tolist() == [True, False, True, False]
    free, _ = nll_and_coefficient(score, sde, points, 1e-3, chunk=2, progress=False)
    assert free[3] > 1e6  # what the run-away would have contributed to a mean of NLLs
    np.testing.assert_array_equal(free[[0, 2]], nll[[0, 2]])


SMALL = dict(data="25gauss", sde="simple", n_steps=20, n_eval=4, n_samples=100, sampler_steps=20,
             h_grid=(0.0, 0.1), tols=(1e-3,))


def test_run_reports_failed_points_and_reuses_its_trained_network(tmp_path, monkeypatch):
    real = experiment.nll_and_coefficient
    seen = {}

    def point_2_runs_away(model, sde, points, tol, **kwargs):
        """Point 2 fails the run-away check (NaN with it, its real values without)."""
        nll, coef = real(model, sde, points, tol, **kwargs)
        if kwargs.get("max_radius") is None:
            seen["coef_2"] = coef[0]
            return nll, coef
        seen["nll"], nll, coef = nll, nll.copy(), coef.copy()
        nll[2] = coef[2] = np.nan
        return nll, coef

    monkeypatch.setattr(experiment, "nll_and_coefficient", point_2_runs_away)
    out = tmp_path / "res"
    s = run(Config(**SMALL), out, progress=False)
    written = json.loads((out / "summary.json").read_text())
    assert written["window"]["t_min"] == 0.01 and written["window"]["T"] == 1.0
    f = written["failed_points"]["seed=0"]["tol=0.001"]
    assert f["count"] == 1 and [p["index"] for p in f["points"]] == [2]
    assert f["points"][0]["reason"] == "run-away"
    assert f["points"][0]["coefficient"] == pytest.approx(seen["coef_2"], rel=1e-12)
    assert written["failed_points"]["run_away_radius"] == pytest.approx(7.434, abs=1e-3)
    assert written["nll_h0"]["n_points"] == 3
    assert written["nll_h0"]["mean"] == pytest.approx(np.mean(seen["nll"][[0, 1, 3]]), rel=1e-12)
    assert written["nll_h0"]["median"] == pytest.approx(np.median(seen["nll"][[0, 1, 3]]), rel=1e-12)
    c = written["first_order"]["tol=0.001"]
    assert c["n_points"] == 3 and np.isfinite(c["mean"]) and c["sd_over_trainings"] is None
    assert "10%" in c["trim"] and np.isfinite(c["trimmed_mean"])
    ckpt = tmp_path / "res.ckpt" / "score.eqx"
    train = written["training"][0]
    assert ckpt.exists() and train["checkpoint"] == str(ckpt)
    assert train["resumed_from_step"] == 0 and not train["checkpoint_reused"]
    assert "coefficients.png" in written["figures"]

    # a rerun into the same place reuses the network; a step limit no solve can meet fails
    # every point, and the folder is still written
    monkeypatch.setattr(experiment, "nll_and_coefficient", real)
    again = run(Config(**SMALL, max_steps=2, runaway_tail=None), ResultsDir(out, overwrite=True),
                progress=False)
    written = json.loads((out / "summary.json").read_text())
    train = written["training"][0]
    assert train["resumed_from_step"] == 20 and train["checkpoint_reused"]
    f = written["failed_points"]["seed=0"]["tol=0.001"]
    assert f["count"] == 4 and {p["reason"] for p in f["points"]} == {"solver"}
    assert written["nll_h0"]["mean"] is None and written["nll_h0"]["n_points"] == 0
    assert again["w2_vs_h"]["w2"] == s["w2_vs_h"]["w2"]  # the same network

    # the kept network is not reused under other settings: refused before training
    with pytest.raises(ValueError, match="other settings"):
        run(Config(**{**SMALL, "data": "swiss-roll"}), ResultsDir(out, overwrite=True), progress=False)
    assert json.loads((out / "summary.json").read_text())["case"]["data"] == "25gauss"
