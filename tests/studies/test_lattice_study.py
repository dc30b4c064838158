"""The lattice study as a library: ``Config`` refuses bad settings, ``run`` writes its folder,
and the precision is the config's for the run only."""

import json

import jax
import numpy as np
import pytest

from bayesqcd.studies.lattice import Config, compute, run

TINY = dict(L=4, hmc_chains=2, hmc_warmup=50, hmc_samples=100)


@pytest.mark.parametrize("kwargs, name", [
    (dict(L=5), "L"), (dict(L=6, method="diffusion"), "L"), (dict(method="mcmc"), "method"),
    (dict(lam=-1.0), "lam"), (dict(m2=float("nan")), "m2"), (dict(hmc_chains=0), "hmc_chains"),
    (dict(flow_steps=-1), "flow_steps"), (dict(flow_hidden=()), "flow_hidden"),
    (dict(score_lr=0.0), "score_lr"), (dict(ode_tol=0.0), "ode_tol"), (dict(h=-0.1), "h"),
])
def test_config_refuses_bad_settings(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Config(**kwargs)


def test_run_writes_folder_in_float32_and_restores_precision(tmp_path):
    assert jax.config.jax_enable_x64  # the suite runs in float64 (conftest)
    out = tmp_path / "hmc"
    summary = run(Config(**TINY), out, progress=False)
    assert jax.config.jax_enable_x64  # restored after the float32 run
    phi = np.load(out / "configs.npz")["phi"]
    assert phi.dtype == np.float32 and phi.shape == (2, 100, 4, 4)
    s = json.loads((out / "summary.json").read_text())
    assert s["figures"] == ["observables.png"] and (out / "observables.png").stat().st_size > 1000
    assert s["config"]["x64"] is False and "versions" in s
    assert s["observables"]["abs_M"] == pytest.approx(summary["observables"]["abs_M"])
    # the Schwinger-Dyson identity holds within errors whatever the sampler's precision
    w = summary["observables"]["ward_identity"]
    assert abs(w["value"] - 1.0) < 5 * w["error"] + 0.05
    assert [p.name for p in tmp_path.iterdir()] == ["hmc"]  # no temporary folder left


def test_x64_config_runs_in_float64_and_switches_back(tmp_path):
    jax.config.update("jax_enable_x64", False)
    try:
        _, idata = compute(Config(**TINY, x64=True), progress=False)
        assert not jax.config.jax_enable_x64
    finally:
        jax.config.update("jax_enable_x64", True)
    assert idata.posterior["phi"].values.dtype == np.float64
    assert list(tmp_path.iterdir()) == []  # compute writes nothing


def test_run_refuses_anything_but_its_config():
    with pytest.raises(TypeError, match="Config"):
        run({"L": 4})


def test_run_refuses_a_folder_it_did_not_write_before_any_work(tmp_path, monkeypatch):
    import bayesqcd.studies.lattice.experiment as experiment

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled before checking the results folder")

    monkeypatch.setattr(experiment, "compute", no_sampling)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="did not"):
        run(Config(**TINY), tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
