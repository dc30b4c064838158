"""Neural and polynomial regression of the EoS (issue 4): training sets, augmentation,
regressors, resume, application to data and comparison with a posterior."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.cli import main
from bayesqcd.data import load_observations
from bayesqcd.eos import sound_speed
from bayesqcd.inference.regression import ArrayData, MLPRegressor, PolynomialRegressor, monomial_exponents
from bayesqcd.models.neutron_star import TABLE_NODES
from bayesqcd.intervals import interval_overlap
from bayesqcd.studies.neutron_star.compare import band_agreement, first_order_fractions, write_comparison
from bayesqcd.studies.ns_regression.regression import apply_regressor
from bayesqcd.studies.ns_regression.training_set import (
    AugmentedSet,
    ObservationModel,
    derived_batch,
    features,
    generate_eos_set,
    observed_inputs,
    solve_batch,
)
from bayesqcd.inference.results import from_draws
from bayesqcd.tov import DEFAULT, mass_radius_curve

TINY = MLPRegressor(width=32, depth=2, n_members=2, n_steps=600, batch_size=128, eval_every=100,
                    learning_rate=3e-3, patience=None)


@pytest.fixture(scope="module")
def eos_sets():
    """A small training and validation set (precise stars: small observational noise)."""
    om = ObservationModel(n_stars=5, sigma_m=(0.01, 0.03), sigma_r=(0.05, 0.2))
    train, rep = generate_eos_set(jax.random.key(0), 2048, 3, om, progress=False)
    val, _ = generate_eos_set(jax.random.key(1), 256, 3, om, progress=False)
    return om, train, val, rep


# ----------------------------------------------------------------------------- regressors


def test_polynomial_regression_is_exact_on_polynomials_and_fails_below_their_degree():
    x = jax.random.normal(jax.random.key(0), (400, 3))
    y = jnp.stack([1 + 2 * x[:, 0] - x[:, 1] * x[:, 2], 0.5 * x[:, 2] ** 2 - x[:, 0]], axis=1)
    data = ArrayData(x, y)
    fit2 = PolynomialRegressor(2, ridge=0.0).fit(data)
    assert np.max(np.abs(fit2.predict(x)[0] - y)) < 1e-9
    fit1 = PolynomialRegressor(1, ridge=0.0).fit(data)
    assert np.max(np.abs(fit1.predict(x)[0] - y)) > 0.5
    assert monomial_exponents(3, 2).shape == (10, 3)  # 1 + 3 + 6 monomials


def test_regressors_share_one_interface_and_the_network_fits_a_smooth_map():
    x = jax.random.uniform(jax.random.key(1), (2000, 2), minval=-1, maxval=1)
    y = jax.nn.sigmoid(2 * jnp.sin(3 * x[:, :1]) + x[:, 1:] ** 2)
    train, val = ArrayData(x[:1600], y[:1600]), ArrayData(x[1600:], y[1600:])
    err, fits = {}, {}
    for name, reg in (("nn", TINY), ("poly", PolynomialRegressor(2))):
        fitted = reg.fit(train, jax.random.key(2), val=val, progress=False)
        pred = fitted.predict(val.x)
        fits[name] = fitted
        assert pred.ndim == 3 and pred.shape[1:] == (400, 1)
        err[name] = float(jnp.sqrt(jnp.mean((pred.mean(0) - val.y) ** 2)))
    assert err["nn"] < 0.5 * err["poly"]  # sin(3x) is not quadratic; the network captures it
    members = fits["nn"].predict(val.x)
    assert float(jnp.max(jnp.abs(members[0] - members[1]))) > 1e-4  # members differ


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="degree"):
        PolynomialRegressor(0)
    with pytest.raises(ValueError, match="output"):
        MLPRegressor(output="softmax")
    with pytest.raises(ValueError, match="sigma_r"):
        ObservationModel(sigma_r=(1.0, 0.5))
    with pytest.raises(ValueError, match="x and y"):
        ArrayData(jnp.zeros((3, 2)), jnp.zeros((4, 1)))
    with pytest.raises(ValueError, match="n_copies"):
        AugmentedSet(None, jax.random.key(0), 0, ObservationModel())
    with pytest.raises(ValueError, match="rows for"):
        PolynomialRegressor(3).fit(ArrayData(jnp.zeros((10, 4)), jnp.zeros((10, 1))))


# ----------------------------------------------------------------------------- training sets


def test_training_stars_lie_on_their_mass_radius_curves(eos_sets):
    """The stars of the training set against an independent solve at DEFAULT precision
    (rtol 1e-6, zoomed maximum): radii within the 20 m stated for the INFERENCE settings."""
    om, train, _, rep = eos_sets
    assert rep.n_kept + rep.n_dropped == rep.n_drawn == 2048
    assert rep.n_kept == train.size

    @jax.jit
    def radii(cs2, masses):
        curve = mass_radius_curve(sound_speed(cs2, n_grid=TABLE_NODES), 64, config=DEFAULT)
        return jax.vmap(lambda m: curve.at_mass(m, "R"))(masses), curve.M_max

    for i in (0, 7):
        r_ref, m_max = radii(train.cs2[i], train.M[i])
        assert np.max(np.abs(np.asarray(r_ref) - np.asarray(train.R[i]))) < 0.02
        assert abs(float(m_max) - float(train.M_TOV[i])) < 5e-3
    assert float(jnp.min(train.M)) >= om.m_min
    assert np.all(np.asarray(train.M) <= np.asarray(train.M_TOV)[:, None] + 0.01)


def test_invalid_eos_are_dropped_and_counted():
    om = ObservationModel(m_min=2.0)  # stars from 2.0 M_sun up: soft EoS cannot host them
    cs2 = jax.random.uniform(jax.random.split(jax.random.key(0))[0], (256, 3))  # as drawn inside
    eos_set, rep = generate_eos_set(jax.random.key(0), 256, 3, om, progress=False)
    assert rep.n_dropped > 10 and rep.n_kept == eos_set.size
    # kept: the heaviest star exceeds m_min + 0.1 = 2.1 M_sun
    top = derived_batch(cs2)["M_TOV"]
    assert int(np.sum(top > 2.11)) <= rep.n_kept <= int(np.sum(top > 2.09))
    assert np.allclose(np.sort(np.asarray(eos_set.cs2), axis=0), np.sort(np.asarray(cs2)[top > 2.1], axis=0))


def test_augmentation_copies_are_fixed_noisy_observations(eos_sets):
    om, train, _, _ = eos_sets
    aug = AugmentedSet(train, jax.random.key(5), 4, om)
    x, y = aug.arrays()
    assert x.shape == (4 * train.size, 20) and y.shape == (4 * train.size, 3)
    assert np.allclose(aug.arrays()[0], x)  # the same finite set of copies every time
    n = 5
    m_obs, r_obs, sm, sr = x[:, :n], x[:, n:2 * n], x[:, 2 * n:3 * n], x[:, 3 * n:]
    assert np.all(np.diff(np.asarray(m_obs), axis=1) >= 0)  # sorted by observed mass
    assert float(sm.min()) >= 0.01 and float(sm.max()) <= 0.03
    assert float(sr.min()) >= 0.05 and float(sr.max()) <= 0.2
    # copies of one EoS differ; noise is centred with the stated sigmas: pulls ~ N(0, 1)
    assert float(jnp.max(jnp.abs(x[0] - x[1]))) > 1e-3
    true_sorted = jnp.sort(jnp.repeat(train.M, 4, axis=0), axis=1)
    pulls = np.asarray((m_obs - true_sorted) / sm).ravel()
    assert abs(pulls.mean()) < 0.05 and 0.9 < pulls.std() < 1.1  # sorting barely reorders: tiny sigmas


@pytest.mark.slow  # devices: chains over two devices stay in the default suite (tests/inference)
def test_solve_batch_sharded_over_two_devices_matches_one_device():
    cs2 = jax.random.uniform(jax.random.key(3), (5, 3))  # odd: padded to the device count
    u = jax.random.uniform(jax.random.key(4), (5, 4))
    ref = solve_batch(cs2, u, 1.0)
    script = (
        "import jax, json, numpy as np\n"
        "jax.config.update('jax_enable_x64', True)\n"
        "from bayesqcd.studies.ns_regression.training_set import solve_batch\n"
        "assert jax.local_device_count() == 2\n"
        f"cs2 = jax.numpy.asarray({np.asarray(cs2).tolist()}); u = jax.numpy.asarray({np.asarray(u).tolist()})\n"
        "out = solve_batch(cs2, u, 1.0)\n"
        "print(json.dumps({k: np.asarray(v, float).tolist() for k, v in out.items()}))\n"
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for k in ("M", "R", "M_TOV"):
        assert np.allclose(np.asarray(out[k]), np.asarray(ref[k]), rtol=1e-10, atol=0), k


def test_observed_inputs_from_the_shipped_data():
    obs = load_observations()
    x = observed_inputs(obs, 5)
    m, r, sm, sr = x[:5], x[5:10], x[10:15], x[15:]
    assert np.all(np.diff(m) > 0)
    j0437 = int(np.argmin(np.abs(m - 1.418)))  # Choudhury+2024: 1.418 +- 0.037, 11.36 +0.95/-0.63 km
    assert abs(m[j0437] - 1.418) < 1e-9 and abs(sm[j0437] - 0.037) < 2e-3
    assert abs(r[j0437] - 11.36) < 1e-9 and 0.63 < sr[j0437] < 0.95
    with pytest.raises(ValueError, match="take 4 mass-radius sources"):
        observed_inputs(obs, 4)
    assert np.allclose(features(jnp.array([2.0, 1.0]), jnp.array([11.0, 12.0]), jnp.array([0.1, 0.2]),
                                jnp.array([0.3, 0.4])), [1.0, 2.0, 12.0, 11.0, 0.2, 0.1, 0.4, 0.3])


# ----------------------------------------------------------------------------- science


def test_network_recovers_the_sound_speed_of_mock_eos(eos_sets):
    """Mock data from known EoS (held-out EoS of the prior, their true stars observed with
    small errors): every segment within 3x the validation RMS of that segment, and the
    low-density segment learnt (RMS well below the prior's 1/sqrt(12) = 0.29)."""
    om, train, val_set, _ = eos_sets
    val = AugmentedSet(val_set, jax.random.key(2), 1, om)
    fitted = TINY.fit(AugmentedSet(train, jax.random.key(3), 8, om), jax.random.key(4), val=val, progress=False)
    xv, yv = val.arrays()
    rms = np.sqrt(np.mean((np.asarray(fitted.predict(xv).mean(0)) - np.asarray(yv)) ** 2, axis=0))
    assert rms[0] < 0.1
    for j in (0, 1, 2):
        x = features(val_set.M[j], val_set.R[j], jnp.full(5, 0.02), jnp.full(5, 0.1))  # noise-free values
        pred = np.asarray(fitted.predict(x[None]).mean(0)[0])
        assert np.all(np.abs(pred - np.asarray(val_set.cs2[j])) < 3 * rms), (j, pred, val_set.cs2[j], rms)


def test_resume_after_interruption_gives_the_uninterrupted_result(tmp_path, monkeypatch, eos_sets):
    import bayesqcd.nn.training as training

    om, train, val_set, _ = eos_sets
    reg = MLPRegressor(width=16, depth=1, n_members=2, n_steps=300, batch_size=64, eval_every=50, patience=None)
    data = AugmentedSet(train, jax.random.key(3), 4, om)
    val = AugmentedSet(val_set, jax.random.key(2), 1, om)
    whole = reg.fit(data, jax.random.key(7), val=val, progress=False)
    saves = {"n": 0}
    real_save = training._save

    def flaky_save(*args, **kwargs):
        real_save(*args, **kwargs)
        saves["n"] += 1
        if saves["n"] == 3:
            raise KeyboardInterrupt  # interrupted after 150 of 300 steps

    monkeypatch.setattr(training, "_save", flaky_save)
    ckpt = tmp_path / "nn.eqx"
    with pytest.raises(KeyboardInterrupt):
        reg.fit(data, jax.random.key(7), val=val, checkpoint=ckpt, progress=False)
    monkeypatch.setattr(training, "_save", real_save)
    resumed = reg.fit(data, jax.random.key(7), val=val, checkpoint=ckpt, progress=False)
    x, _ = val.arrays()
    assert np.allclose(resumed.predict(x), whole.predict(x), rtol=1e-10, atol=1e-12)
    assert resumed.history["step"] == whole.history["step"]


def _fake_result(cs2_of_n: np.ndarray, shift: float = 0.0):
    n = cs2_of_n.shape[0]
    g = np.linspace(0, 1, 33)
    return from_draws({
        "cs2_of_n": cs2_of_n[None],
        "p_of_eps": (np.geomspace(1, 500, 40)[None, None] * (1 + 0.1 * np.random.default_rng(0).random((1, n, 1)))),
        "R_of_M": 12 + shift + np.zeros((1, n, 33)) + g,
        "R_1.4": np.full((1, n), 12.0 + shift), "M_TOV": np.full((1, n), 2.2), "Lambda_1.4": np.full((1, n), 400.0),
    }, attrs={"engine": "regression"})


def test_band_agreement_and_first_order_histogram_on_known_draws():
    assert interval_overlap((0.0, 1.0), (0.5, 1.5)) == pytest.approx(1 / 3)
    assert interval_overlap((0.0, 1.0), (2.0, 3.0)) == 0.0
    from bayesqcd.models.neutron_star import N_GRID

    # 40 draws: the first 10 soft (c_s^2 = 0.05) in the segment 2.48-3.86 n_0, the rest 0.5
    cs2 = np.full((40, N_GRID.size), 0.5)
    seg2 = (N_GRID > 2.48) & (N_GRID < 3.86)
    cs2[:10, seg2] = 0.05
    a = _fake_result(cs2)
    hist = first_order_fractions(a, 5, 0.1)
    assert hist["counts"] == [0, 10, 0, 0, 0] and hist["fractions"][1] == 0.25
    same = band_agreement(a, a)
    assert same["cs2_of_n"]["overlap"] == pytest.approx(1.0)
    far = band_agreement(a, _fake_result(cs2, shift=5.0))
    assert far["R_of_M"]["overlap"] == 0.0 and far["R_1.4"]["median_difference"] == pytest.approx(-5.0)


def test_apply_and_compare_write_complete_results(tmp_path, eos_sets):
    om, train, val_set, _ = eos_sets
    fitted = PolynomialRegressor(1).fit(AugmentedSet(train, jax.random.key(3), 1, om))
    x = observed_inputs(load_observations(), 5)
    idata = apply_regressor(fitted, x, jax.random.key(0), 16)
    post = idata.posterior
    assert post.sizes["chain"] == 1 and post.sizes["draw"] == 16
    assert {"cs2", "R_1.4", "M_TOV", "p_of_eps", "cs2_of_n", "R_of_M"} <= set(post.data_vars)
    assert post.attrs["inference_time_s"] > 0
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        idata.to_netcdf(str(tmp_path / d / "posterior.nc"))
    summary = write_comparison(tmp_path / "cmp", tmp_path / "a", tmp_path / "b")
    assert summary["agreement"]["variables"]["R_of_M"]["overlap"] == pytest.approx(1.0)
    assert {p.name for p in (tmp_path / "cmp").iterdir()} == {"summary.json", "comparison.png", "first_order.png",
                                                             ".bayesqcd-results"}
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "missing"), "--out", str(tmp_path / "c2")]) == 2
    assert not (tmp_path / "c2").exists()
    assert main(["ns-regression", "--steps", "0", "--out", str(tmp_path / "r")]) == 2


def test_settings_that_cannot_work_are_refused_at_once():
    from bayesqcd.studies.ns_regression.regression import RegressionSettings

    with pytest.raises(ValueError, match="too few for the degree-2 polynomial on 20 inputs .*--n-train >= 231"):
        RegressionSettings(n_train=100)


def test_checkpoints_of_other_settings_are_not_resumed(tmp_path):
    from bayesqcd.studies.ns_regression.regression import RegressionSettings, _claim_checkpoints

    _claim_checkpoints(tmp_path, RegressionSettings())
    _claim_checkpoints(tmp_path, RegressionSettings())  # same settings: resume
    with pytest.raises(ValueError, match="other settings"):
        _claim_checkpoints(tmp_path, RegressionSettings(n_train=300))
