"""The path-integral study as a library: ``Config`` refuses bad settings before any training,
and the 1-D analytic check runs in float64 without changing the caller's precision."""

import jax
import numpy as np
import pytest

from bayesqcd.studies.diffusion_path_integral import Config, analytic_finite_h, run


@pytest.mark.parametrize("kwargs, name", [
    (dict(data="moons"), "data"), (dict(sde="vp"), "sde"), (dict(n_eval=1), "n_eval"),
    (dict(n_steps=-1), "n_steps"), (dict(tols=()), "tols"), (dict(tols=(1e-3, 0.0)), "tols"),
    (dict(h_grid=(0.1, 0.2)), "h_grid"), (dict(h_grid=(0.0, -0.1)), "h_grid"),
    (dict(learning_rate=0.0), "learning_rate"),
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
