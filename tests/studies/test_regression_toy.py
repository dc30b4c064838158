"""Observational data augmentation on the toy problem: it tames overfitting without dropout.

One fixed-seed experiment (same data, network, initial weights, optimiser, batch size and steps for
both runs; 4000 Adam steps, n_s = 1000) is shared by the tests. Thresholds were set from seeds 0-3
at these settings (float64): final/min validation loss, unaugmented 1.29-2.29 (seed 0: 2.29),
augmented 1.00-1.15 (seed 0: 1.00); augmented/unaugmented final validation loss 0.003-0.005;
final training loss, augmented 0.0222-0.0228 (sigma^2 = 0.0225), unaugmented 0.003-0.007.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.studies.regression_toy import (HEIGHTS, PEAKS, Config, double_peak, headline,
                                             make_regressor, noisy_samples, plot_toy, run)

SETTINGS = dict(seed=0, n_train=30, n_s=1000, n_steps=4000, sigma=0.15, eval_every=100)


@pytest.fixture(scope="module")
def result():
    return run(Config(**SETTINGS), progress=False)


@pytest.mark.expensive(30)  # with its module fixture
@pytest.mark.xdist_group("regression_toy_result")
def test_both_runs_share_steps_and_evaluations(result):
    u, a = result["unaugmented"]["history"], result["augmented"]["history"]
    assert u["step"] == a["step"] == list(range(100, 4001, 100))


@pytest.mark.xdist_group("regression_toy_result")
def test_augmented_network_ends_with_lower_validation_loss(result):
    assert result["final_val_aug_over_unaug"] < 0.05
    # and the augmented end is better than the best the unaugmented run ever reached
    assert result["augmented"]["final_val_loss"] < result["unaugmented"]["min_val_loss"]


@pytest.mark.xdist_group("regression_toy_result")
def test_unaugmented_network_overfits_and_augmented_does_not(result):
    u, a = result["unaugmented"], result["augmented"]
    assert u["final_over_min"] > 1.2
    assert u["min_step"] < SETTINGS["n_steps"] // 2  # the minimum comes early, then it rises
    assert a["final_over_min"] < 1.2
    assert a["final_val_loss"] - a["min_val_loss"] < 0.1 * (u["final_val_loss"] - u["min_val_loss"])


@pytest.mark.xdist_group("regression_toy_result")
def test_training_losses_show_memorised_versus_averaged_noise(result):
    sigma2 = SETTINGS["sigma"] ** 2
    # the augmented targets scatter by sigma around f: the best possible training MSE is sigma^2
    assert result["augmented"]["final_train_loss"] == pytest.approx(sigma2, rel=0.1)
    # the unaugmented network goes well below the noise: it has learned the noise
    assert result["unaugmented"]["final_train_loss"] < 0.5 * sigma2


@pytest.mark.xdist_group("regression_toy_result")
def test_validation_loss_is_the_error_to_the_truth(result):
    for name in ("unaugmented", "augmented"):
        assert result[name]["final_val_loss"] == pytest.approx(result[name]["mse_truth"], rel=1e-6)
        fit = result[name]["fit_grid"]
        mse = np.mean((fit - result["data"]["f_grid"]) ** 2)
        assert mse == pytest.approx(result[name]["mse_truth"], rel=1e-6)


def test_single_copy_augmentation_is_the_unaugmented_run():
    """n_s = 1 leaves exactly the unaugmented data set: the two runs must coincide."""
    r = run(Config(seed=3, n_train=10, n_s=1, n_steps=100, eval_every=50, width=16, depth=2),
            progress=False)
    assert r["augmented"]["history"] == r["unaugmented"]["history"]
    np.testing.assert_array_equal(r["augmented"]["fit_grid"], r["unaugmented"]["fit_grid"])


def test_augmented_copies_scatter_around_the_truth_with_sigma():
    x, y = noisy_samples(jax.random.key(5), 50, 0.2, n_s=400)
    assert y.shape == (400, 50)
    resid = y - double_peak(x)[None, :]
    assert float(jnp.mean(resid)) == pytest.approx(0.0, abs=4 * 0.2 / np.sqrt(y.size))
    assert float(jnp.std(resid)) == pytest.approx(0.2, rel=0.02)
    assert float(jnp.min(x)) >= -2.5 and float(jnp.max(x)) <= 2.5


def test_target_has_its_two_peaks_where_documented():
    grid = jnp.linspace(-2.5, 2.5, 5_001)
    f = double_peak(grid)
    left, right = grid < 0, grid > 0
    assert float(grid[left][jnp.argmax(f[left])]) == pytest.approx(PEAKS[0], abs=1e-3)
    assert float(grid[right][jnp.argmax(f[right])]) == pytest.approx(PEAKS[1], abs=1e-3)
    df = jax.vmap(jax.grad(double_peak))(jnp.asarray(PEAKS))
    assert np.all(np.abs(np.asarray(df)) < 1e-8)
    np.testing.assert_allclose(np.asarray(double_peak(jnp.asarray(PEAKS))), HEIGHTS, atol=1e-8)
    # a dip between them: the minimum on [x_1, x_2] is at 0 (w = 0.3, A = 1, 0.7) and is small
    between = (grid > PEAKS[0]) & (grid < PEAKS[1])
    assert float(jnp.min(f[between])) < 0.01 * min(HEIGHTS)


@pytest.mark.xdist_group("regression_toy_result")
def test_plot_is_written(result, tmp_path):
    path = tmp_path / "toy.png"
    plot_toy(result, path)
    assert path.stat().st_size > 10_000


def test_run_writes_a_results_folder_with_the_same_numbers(tmp_path):
    """``out`` adds summary.json and the figure; the numbers are those of a run without it."""
    cfg = Config(seed=3, n_train=10, n_s=2, n_steps=100, eval_every=50, width=16, depth=2)
    out = tmp_path / "toy"
    r = run(cfg, out, progress=False)
    s = json.loads((out / "summary.json").read_text())
    assert s["unaugmented"] == headline(r)["unaugmented"]
    assert s["histories"]["augmented"] == r["augmented"]["history"]
    assert s["config"]["n_s"] == 2 and "versions" in s
    assert (out / "regression_toy.png").stat().st_size > 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]  # no temporary folder left
    again = run(cfg, progress=False)
    assert again["augmented"]["history"] == r["augmented"]["history"]


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_s=0), "n_s"), (dict(n_s=2.5), "n_s"), (dict(sigma=0.0), "sigma"),
    (dict(sigma=-0.1), "sigma"), (dict(sigma=float("nan")), "sigma"), (dict(n_train=1), "n_train"),
    (dict(n_steps=0), "n_steps"), (dict(eval_every=10, n_steps=5), "eval_every"),
    (dict(batch_size=0), "batch_size"), (dict(learning_rate=0.0), "learning_rate"),
    (dict(width=0), "width"), (dict(validation="test"), "validation"), (dict(seed=-1), "seed"),
])
def test_bad_inputs_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Config(**kwargs)


def test_bad_inputs_of_the_building_blocks_are_refused():
    with pytest.raises(ValueError, match="sigma"):
        noisy_samples(jax.random.key(0), 5, 0.0)
    with pytest.raises(ValueError, match="n_s"):
        noisy_samples(jax.random.key(0), 5, 0.1, n_s=0)
    with pytest.raises(ValueError, match="depth"):
        make_regressor(jax.random.key(0), 8, 0)


@pytest.mark.slow
def test_residual_overfitting_falls_with_the_number_of_copies():
    """Finite n_s leaves noise sigma / sqrt(n_s) in the copy means: more copies, lower final loss."""
    final = {}
    for n_s in (1, 10, 100, 1000):
        r = run(Config(**{**SETTINGS, "n_s": n_s}), progress=False)
        final[n_s] = r["augmented"]["final_val_loss"]
        if n_s == 1:
            assert final[1] == pytest.approx(r["unaugmented"]["final_val_loss"], rel=1e-12)
    assert final[1] > 2 * final[10] > 4 * final[100] > 8 * final[1000]
