"""The conv + dense autoencoder trains, and its rotation-invariant code and pose behave as stated;
the normalisations do what they say; the study's Config refuses bad settings, its run writes the
results folder (tiny sizes), and the CLI turns its options into that Config."""

import dataclasses
import json
import math
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bayesqcd.nn import train
from bayesqcd.nn.autoencoder import (ConvAutoencoder, encode_batch, invariance_penalty,
                                     reconstruction_loss, rotate_image, transform_image)
from bayesqcd.topology import render, sample_drawings
from bayesqcd.studies.topology import Config, drawing_config, fit_autoencoder, run
from bayesqcd.topology.frames import (affine_normalise, centre_images, centroid_normalise,
                                      prepare_images, radial_profile, random_zoom_stretch,
                                      shift_to_centroid, stroke_normalise)


@pytest.fixture(scope="module")
def tiny():
    return centre_images(sample_drawings(jax.random.PRNGKey(0), 64).images)


def test_shapes_and_bad_input():
    m = ConvAutoencoder(jax.random.PRNGKey(0), latent=5, channels=(4, 4), hidden=8)
    x = jnp.zeros((32, 32))
    assert eqx.filter_jit(m.encode)(x).shape == (5,)
    y = eqx.filter_jit(m)(x)
    assert y.shape == (32, 32) and float(y.min()) > 0 and float(y.max()) < 1
    with pytest.raises(ValueError, match="size"):
        ConvAutoencoder(jax.random.PRNGKey(0), size=30)
    with pytest.raises(ValueError, match="latent"):
        ConvAutoencoder(jax.random.PRNGKey(0), latent=0)
    with pytest.raises(ValueError, match="rotations"):
        ConvAutoencoder(jax.random.PRNGKey(0), rotations=1)
    with pytest.raises(ValueError, match="pose_dims"):
        ConvAutoencoder(jax.random.PRNGKey(0), pose_dims=-1)


def test_reconstruction_loss_is_minimal_at_the_data():
    """BCE of a perfect reconstruction of a binary image tends to 0; of a uniform guess, log 2."""
    class Fixed(eqx.Module):
        logits: jnp.ndarray

        def reconstruct_logits(self, x):
            return self.logits

    img = (jax.random.uniform(jax.random.PRNGKey(1), (1, 8, 8)) > 0.5).astype(float)
    assert float(reconstruction_loss(Fixed(50.0 * (2 * img[0] - 1)), img)) < 1e-10
    assert float(reconstruction_loss(Fixed(jnp.zeros((8, 8))), img)) == pytest.approx(np.log(2))


def test_autoencoder_trains_on_a_tiny_set(tiny):
    """The rotation-invariant autoencoder (the default) halves its loss in 100 steps."""
    model = ConvAutoencoder(jax.random.PRNGKey(1), latent=4, channels=(8, 8, 8), hidden=32,
                            rotations=4)
    loss = eqx.filter_jit(reconstruction_loss)
    before = float(loss(model, tiny))
    res = train(model, lambda m, b, k: reconstruction_loss(m, b), lambda k: tiny, optax.adam(3e-3),
                100, jax.random.PRNGKey(2), eval_every=50, progress=False, steps_per_call=1)
    after = float(loss(res.model, tiny))
    assert res.history["train_loss"][-1] < res.history["train_loss"][0]
    assert after < 0.5 * before
    z = encode_batch(res.model, tiny)
    assert z.shape == (64, 4) and bool(jnp.all(jnp.isfinite(z)))


def test_rotate_image_is_exact_on_quarter_turns(tiny):
    x = tiny[3]
    np.testing.assert_allclose(np.asarray(rotate_image(x, 0.0)), np.asarray(x), atol=1e-12)
    np.testing.assert_allclose(np.asarray(rotate_image(x, 2 * math.pi)), np.asarray(x), atol=1e-12)
    # a quarter turn maps pixel centres onto pixel centres: no interpolation
    np.testing.assert_allclose(np.asarray(rotate_image(x, math.pi / 2)), np.rot90(np.asarray(x), -1),
                               atol=1e-12)


def test_rotation_invariant_code_and_equivariant_pose(tiny):
    """Turning the input by one of the K orbit angles leaves the code and the pose numbers
    unchanged, adds the angle to the pose angle, and turns the reconstruction with it (exactly, up
    to rounding); the plain autoencoder's code does change. The pose numbers are not in the code
    but reach the decoder."""
    x = centroid_normalise(tiny[:4])
    m = ConvAutoencoder(jax.random.PRNGKey(4), latent=3, channels=(4, 4), hidden=8, rotations=8,
                        pose_dims=2)
    enc = jax.jit(jax.vmap(m.encode_with_pose))
    rec = jax.jit(jax.vmap(m.reconstruct_logits))
    for k, turned in ((1, jnp.asarray(np.rot90(np.asarray(x), -1, axes=(1, 2)).copy())),
                      (2, jnp.asarray(np.rot90(np.asarray(x), 2, axes=(1, 2)).copy()))):
        (z, q, th), (z2, q2, th2) = enc(x), enc(turned)
        np.testing.assert_allclose(np.asarray(z2), np.asarray(z), atol=1e-10)
        np.testing.assert_allclose(np.asarray(q2), np.asarray(q), atol=1e-10)
        dth = np.angle(np.exp(1j * (np.asarray(th2) - np.asarray(th) - k * math.pi / 2)))
        np.testing.assert_allclose(dth, 0.0, atol=1e-8)
        np.testing.assert_allclose(np.asarray(rec(turned)),
                                   np.rot90(np.asarray(rec(x)), -k, axes=(1, 2)), atol=1e-8)
    assert z.shape == (4, 3) and q.shape == (4, 2)
    np.testing.assert_allclose(np.asarray(jax.vmap(m.encode)(x)), np.asarray(z), atol=1e-12)
    zq = jnp.concatenate([z, q], axis=1)
    moved = jax.vmap(m.decode)(zq.at[:, 3:].add(1.0))
    assert float(jnp.abs(moved - jax.vmap(m.decode)(zq)).max()) > 1e-5
    np.testing.assert_allclose(np.asarray(jax.vmap(m.canonical)(x)), np.asarray(jax.vmap(m.decode)(zq)),
                               atol=1e-12)
    plain = ConvAutoencoder(jax.random.PRNGKey(4), latent=3, channels=(4, 4), hidden=8)
    turned = jnp.asarray(np.rot90(np.asarray(x), -1, axes=(1, 2)).copy())
    assert float(jnp.abs(jax.vmap(plain.encode)(turned) - jax.vmap(plain.encode)(x)).max()) > 1e-3


def _ink_moments(img):
    """Ink centroid (y, x) [px] and second-moment matrix [px^2] of an image."""
    ys, xs = np.meshgrid(np.arange(img.shape[0]), np.arange(img.shape[1]), indexing="ij")
    w = np.asarray(img) / np.asarray(img).sum()
    my, mx = (w * ys).sum(), (w * xs).sum()
    d = np.stack([ys - my, xs - mx])
    return np.array([my, mx]), np.einsum("ijk,ljk,jk->il", d, d, w)


def test_transform_image_maps_moments_as_a_linear_map():
    """A Gaussian blob at the centre: the identity leaves it exactly; the inverse matrix M gives
    second moments M^-1 S M^-T [px^2], up to the bilinear resampling, which widens by at most
    1/6 px^2 per axis; rotate_image turns the moments with the angle."""
    ys, xs = np.meshgrid(np.arange(32) - 15.5, np.arange(32) - 15.5, indexing="ij")
    blob = jnp.asarray(np.exp(-0.5 * (ys ** 2 / 16.0 + xs ** 2 / 9.0)))
    np.testing.assert_array_equal(np.asarray(transform_image(blob, jnp.eye(2))), np.asarray(blob))
    m = jnp.array([[0.8, 0.1], [-0.2, 1.1]])
    _, s_in = _ink_moments(blob)
    c, s_out = _ink_moments(transform_image(blob, m))
    mi = np.linalg.inv(np.asarray(m))
    np.testing.assert_allclose(s_out, mi @ s_in @ mi.T, rtol=0, atol=0.25)
    np.testing.assert_allclose(c, [15.5, 15.5], atol=1e-6)
    a = 0.3
    turn = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    _, s_turned = _ink_moments(rotate_image(blob, a))
    np.testing.assert_allclose(s_turned, turn.T @ s_in @ turn, rtol=0, atol=0.25)
    assert abs(s_turned[0, 1]) > 1.0


def test_random_zoom_stretch_stays_in_its_ranges():
    """On a round blob, the output's second moments are sigma^2 exp(2 (l +- s)): their geometric
    mean gives the zoom l, their ratio the stretch s; both fill their ranges and never leave them."""
    ys, xs = np.meshgrid(np.arange(32) - 15.5, np.arange(32) - 15.5, indexing="ij")
    blob = jnp.asarray(np.exp(-0.5 * (ys ** 2 + xs ** 2) / 9.0))
    _, s0 = _ink_moments(blob)
    out = jax.vmap(lambda k: random_zoom_stretch(k, blob))(jax.random.split(jax.random.PRNGKey(3), 64))
    zooms, stretches = [], []
    for img in np.asarray(out):
        ev = np.linalg.eigvalsh(_ink_moments(img)[1]) / s0[0, 0]
        zooms.append(0.25 * np.log(ev[0] * ev[1]))
        stretches.append(0.25 * np.log(ev[1] / ev[0]))
    zooms, stretches = np.array(zooms), np.array(stretches)
    assert -0.3 - 0.02 <= zooms.min() < -0.2 and 0.0 < zooms.max() <= 0.1 + 0.02
    assert 0.0 <= stretches.min() < 0.05 and 0.15 < stretches.max() <= 0.2 + 0.02


def test_invariance_penalty():
    """0 for equal codes, 2 on average for independent ones, the mean squared change over the
    variance on a hand-made case, and blind to a common scale of the codes."""
    z = jnp.array([[0.0], [2.0]])
    assert float(invariance_penalty(z, z)) == 0.0
    assert float(invariance_penalty(z, jnp.array([[1.0], [1.0]]))) == pytest.approx(1.0)
    a, b = jax.random.normal(jax.random.PRNGKey(0), (2, 20000, 3))
    assert float(invariance_penalty(a, b)) == pytest.approx(2.0, rel=0.03)
    assert float(invariance_penalty(7 * a, 7 * (a + 0.1 * b))) == pytest.approx(
        float(invariance_penalty(a, a + 0.1 * b)), rel=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        invariance_penalty(a, b[:, :2])


def test_shift_to_centroid_centres_the_ink(tiny):
    """The ink centroid lands on the centre; drawings whose ink stays inside keep all of it; the
    result does not depend on where the drawing was."""
    raw = sample_drawings(jax.random.PRNGKey(0), 64).images
    out = np.asarray(shift_to_centroid(raw))
    kept = out.sum((1, 2)) / np.asarray(raw.sum((1, 2)))
    assert np.median(kept) > 0.999 and kept.min() > 0.8
    for img, f in zip(out, kept):
        if f > 0.999:
            np.testing.assert_allclose(_ink_moments(img)[0], [15.5, 15.5], atol=0.05)
    np.testing.assert_allclose(np.asarray(shift_to_centroid(tiny)), out, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(prepare_images(raw, "centre", None, None)), out)
    assert float(jnp.abs(shift_to_centroid(jnp.zeros((1, 8, 8)))).max()) == 0.0


def test_centroid_normalise_fixes_position_and_size_and_commutes_with_turns(tiny):
    out = np.asarray(centroid_normalise(tiny, 20.0))
    idx = np.arange(32, dtype=float)
    ys, xs = np.meshgrid(idx, idx, indexing="ij")
    for img in out:
        w = img / img.sum()
        mx, my = (w * xs).sum(), (w * ys).sum()
        assert abs(mx - 15.5) < 0.5 and abs(my - 15.5) < 0.5
        r = np.hypot(xs - 15.5, ys - 15.5)[img > 0.05]
        assert 9.0 <= r.max() <= 11.5  # farthest ink at extent / 2, to the resampled stroke edge
    turned = np.rot90(np.asarray(tiny), 1, axes=(1, 2)).copy()
    np.testing.assert_allclose(np.asarray(centroid_normalise(jnp.asarray(turned), 20.0)),
                               np.rot90(out, 1, axes=(1, 2)), atol=1e-10)
    assert float(jnp.abs(centroid_normalise(jnp.zeros((1, 32, 32)))).max()) == 0.0
    with pytest.raises(ValueError, match="extent"):
        centroid_normalise(tiny, 31.0)
    with pytest.raises(ValueError, match="square"):
        centroid_normalise(jnp.zeros((1, 32, 16)))


def test_affine_normalise_undoes_stretch_and_shear_up_to_a_turn():
    """The output ink has isotropic second moments, its centroid at the centre and its farthest
    ink at extent / 2. Drawing the same curves through a stretch + shear (det 1, aspect ~2.3)
    changes the output only by a turn: over 120 turns, the closest one matches to ~25% (relative
    L2 after the stroke normalisation; what is left is the stroke, which the warp does not
    stretch, and resampling), against ~65% after the centroid normalisation alone. The map
    commutes with quarter turns; empty images pass through; bad input is refused."""
    d = sample_drawings(jax.random.PRNGKey(1), 8)
    m = d.curves.mean(axis=1, keepdims=True)
    curves = 0.6 * (d.curves - m) + 16.0
    a = jnp.array([[1.0, 0.3], [0.0, 1.0]]) @ jnp.diag(jnp.array([math.exp(0.35), math.exp(-0.35)]))
    warped = (curves - 16.0) @ a.T + 16.0
    draw = jax.vmap(lambda c, w: render(c, w, 32))
    x, xw = draw(curves, d.widths), draw(warped, d.widths)

    out, out_w = np.asarray(affine_normalise(x, 20.0)), np.asarray(affine_normalise(xw, 20.0))
    sxx, syy, sxy, _, _ = _moments(np.concatenate([out, out_w]))
    spread = sxx + syy
    assert np.all(np.abs(sxx - syy) < 0.04 * spread) and np.all(np.abs(sxy) < 0.02 * spread)
    idx = np.arange(32, dtype=float)
    ys, xs = np.meshgrid(idx, idx, indexing="ij")
    for img in np.concatenate([out, out_w]):
        w = img / img.sum()
        assert abs((w * xs).sum() - 15.5) < 0.5 and abs((w * ys).sum() - 15.5) < 0.5
        assert 9.0 <= np.hypot(xs - 15.5, ys - 15.5)[img > 0.05].max() <= 11.5

    angles = jnp.linspace(0.0, 2 * math.pi, 120, endpoint=False)

    def turn_gap(f):
        o, ow = stroke_normalise(f(x, 20.0)), stroke_normalise(f(xw, 20.0))
        turned = jax.vmap(lambda t: jax.vmap(lambda im: rotate_image(im, t))(o))(angles)
        err = jnp.linalg.norm(turned - ow, axis=(2, 3)) / jnp.linalg.norm(ow, axis=(1, 2))
        return np.asarray(err.min(axis=0))

    affine_gap, centroid_gap = turn_gap(affine_normalise), turn_gap(centroid_normalise)
    assert np.all(affine_gap < 0.4), affine_gap
    assert np.mean(affine_gap) < 0.5 * np.mean(centroid_gap), (affine_gap, centroid_gap)

    turned = np.rot90(np.asarray(x), 1, axes=(1, 2)).copy()
    np.testing.assert_allclose(np.asarray(affine_normalise(jnp.asarray(turned), 20.0)),
                               np.rot90(out, 1, axes=(1, 2)), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(prepare_images(x, "affine", 20.0, None)), out)
    assert float(jnp.abs(affine_normalise(jnp.zeros((1, 32, 32)))).max()) == 0.0
    with pytest.raises(ValueError, match="extent"):
        affine_normalise(x, 31.0)
    with pytest.raises(ValueError, match="square"):
        affine_normalise(jnp.zeros((1, 32, 16)))


def test_radial_profile_finds_a_ring_and_ignores_turns(tiny):
    """A circle of radius 6 px about the image centre puts its mean intensity in the annulus
    [6, 7.5) px (bin 4 of 1.5 px) and none in the bins below 3 px; a quarter turn changes no
    profile; bad bins are refused."""
    t = jnp.linspace(0.0, 2 * math.pi, 200)
    ring = render(jnp.stack([16 + 6.2 * jnp.cos(t), 16 + 6.2 * jnp.sin(t)], axis=-1), 1.0, 32)
    prof = np.asarray(radial_profile(ring[None]))[0]
    assert prof.shape == (11,) and int(np.argmax(prof)) == 4 and np.all(prof[:2] == 0.0)
    turned = np.rot90(np.asarray(tiny), 1, axes=(1, 2)).copy()
    np.testing.assert_allclose(np.asarray(radial_profile(jnp.asarray(turned))),
                               np.asarray(radial_profile(tiny)), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="n_bins"):
        radial_profile(tiny, 0)


def test_stroke_normalise_removes_most_of_the_width():
    """The same curves drawn 0.6 and 1.8 px wide differ by ~60% (relative L2); after the
    normalisation by less than half of that. Every inked image peaks at 1; bad blurs are refused.
    ``prepare_images`` with frame ``"none"`` applies the stroke normalisation alone."""
    d = sample_drawings(jax.random.PRNGKey(0), 6)
    thin = jax.vmap(lambda c: render(c, 0.6, 32))(d.curves)
    thick = jax.vmap(lambda c: render(c, 1.8, 32))(d.curves)
    rel = lambda a, b: np.linalg.norm(np.asarray(a - b), axis=(1, 2)) / np.linalg.norm(np.asarray(b), axis=(1, 2))  # noqa: E731
    before, after = rel(thin, thick), rel(stroke_normalise(thin), stroke_normalise(thick))
    assert np.all(before > 0.5) and np.all(after < 0.5 * before)
    np.testing.assert_allclose(np.asarray(stroke_normalise(thick).max(axis=(1, 2))), 1.0, atol=1e-12)
    assert float(jnp.abs(stroke_normalise(jnp.zeros((1, 32, 32)))).max()) == 0.0
    with pytest.raises(ValueError, match="sigma"):
        stroke_normalise(thin, 0.0)
    with pytest.raises(ValueError, match="frame"):
        prepare_images(thin, "polar")
    # the "none" frame leaves the geometry as drawn: only the stroke normalisation acts
    np.testing.assert_array_equal(np.asarray(prepare_images(thin, "none", None)),
                                  np.asarray(stroke_normalise(thin)))
    np.testing.assert_array_equal(np.asarray(prepare_images(thin, "none", None, None)), np.asarray(thin))


def test_centre_images_centres_the_ink_without_losing_any(tiny):
    raw = sample_drawings(jax.random.PRNGKey(0), 64).images
    np.testing.assert_allclose(np.asarray(tiny.sum((1, 2))), np.asarray(raw.sum((1, 2))), rtol=1e-12)
    idx = np.arange(32)
    for img in np.asarray(tiny) > 0.05:
        for m in (img.any(axis=1), img.any(axis=0)):
            lo, hi = idx[m].min(), idx[m].max()
            assert abs((lo + hi) / 2 - 15.5) <= 0.5
    # a centred image is a fixed point
    np.testing.assert_array_equal(np.asarray(centre_images(tiny)), np.asarray(tiny))


SCORED = ("codes", "pixels", "pca", "pca_2", "pixel_statistics", "raw_pixels", "raw_pca",
          "radial_profile")
METRICS = ("kmeans_accuracy", "kmeans_nmi", "gmm_accuracy", "gmm_nmi", "probe_accuracy")
TINY = dict(n_train=48, n_test=24, n_val=16, steps=8, batch_size=16, latent=5, rotations=4)


@pytest.mark.slow  # the atomic results folder itself is tested in tests/report
def test_study_run_writes_the_results_folder_atomically(tmp_path):
    out = tmp_path / "topo"
    summary = run(Config(**TINY), out, progress=False)
    s = json.loads((out / "summary.json").read_text())
    assert s["rotations"] == 4 and s["frame"] == "centre" and s["stroke_sigma"] == 0.8
    assert s["pose_dims"] == 3 and s["invariance"] == 1.0 and s["seed"] == 0 and s["steps"] == 8
    assert s["settings"]["n_val"] == 16 and s["settings"]["channels"] == [16, 32, 32]
    assert s["scores"] == summary["scores"] and set(s["scores"]) == set(SCORED)
    for name in SCORED:
        for metric in METRICS:
            assert 0.0 <= s["scores"][name][metric] <= 1.0
    assert set(s["validation_scores_codes"]) == set(METRICS)
    assert set(s["single_statistic_probe_accuracy"]) == {"ink", "inked_area", "radius_of_gyration",
                                                         "extent", "peak"}
    assert set(json.loads((out / "history.json").read_text())) >= {"train_loss", "val_loss"}
    codes = np.load(out / "codes_test.npz")
    assert codes["codes"].shape == (24, 5) and codes["labels"].shape == (24,)
    assert (out / "latent.png").stat().st_size > 0 and (out / "reconstructions.png").stat().st_size > 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "codes_test.npz", "history.json", "latent.png", "reconstructions.png", "summary.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("kwargs, field", [
    (dict(n_train=7), "n_train"), (dict(n_test=3), "n_test"), (dict(n_val=0), "n_val"),
    (dict(latent=1), "latent"), (dict(steps=-1), "steps"), (dict(batch_size=0), "batch_size"),
    (dict(rotations=1), "rotations"), (dict(pose_dims=-1), "pose_dims"),
    (dict(invariance=-1.0), "invariance"), (dict(lr=0.0), "lr"), (dict(schedule="linear"), "schedule"),
    (dict(frame="polar"), "frame"), (dict(extent=31.0), "extent"),
    (dict(frame="affine", extent=None), "extent"), (dict(stroke_sigma=0.0), "stroke_sigma"),
    (dict(channels=(8, 8, 8, 8, 8, 8)), "channels"), (dict(hidden=0), "hidden"),
    (dict(n_train=9, drawing=drawing_config(max_winding=5)), "n_train"),
])
def test_config_refuses_bad_settings_naming_the_field(kwargs, field):
    value = next(v for k, v in kwargs.items() if k == field)
    with pytest.raises(ValueError,
                       match=re.escape(f"Config.{field} = {value!r} is outside the valid range")):
        Config(**kwargs)


def test_config_defaults_and_drawings():
    c = Config()
    assert (c.n_train, c.n_test, c.n_val, c.latent, c.rotations, c.pose_dims, c.steps) == (
        2000, 1000, 500, 8, 16, 3, 1000)
    assert c.drawing == drawing_config() and drawing_config(max_winding=4).n_points == 336
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.steps = 3
    assert Config(channels=[8, 8]).channels == (8, 8)


def test_run_refuses_bad_input_before_training(tmp_path):
    with pytest.raises(TypeError, match="Config"):
        run({"steps": 3})
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="existing file"):
        run(Config(), tmp_path / "file")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="did not write"):
        run(Config(), tmp_path / "theirs")


def _fake_summary():
    scores = {name: dict.fromkeys(METRICS, 0.5) for name in SCORED}
    return {"scores": scores, "validation_scores_codes": dict.fromkeys(METRICS, 0.5),
            "single_statistic_probe_accuracy": {"ink": 0.3}, "chance_accuracy": 0.25}


def test_cli_builds_the_study_config(tmp_path, monkeypatch, capsys):
    """The command only turns its options into a Config and calls the study: its defaults are
    Config()'s; 0 means None for --extent and --stroke-sigma; bad options exit with 2 before
    the study runs."""
    import bayesqcd.studies.topology as study
    from bayesqcd.cli import main

    calls = []
    monkeypatch.setattr(study, "run", lambda config, out, progress=True: calls.append(
        (config, out, progress)) or _fake_summary())
    assert main(["topology", "--out", str(tmp_path / "a")]) == 0
    config, out, progress = calls[-1]
    assert config == Config() and progress and out.path == tmp_path / "a"
    assert "codes" in capsys.readouterr().out
    assert main(["topology", "--out", str(tmp_path / "b"), "--seed", "3", "--extent", "0",
                 "--stroke-sigma", "0", "--frame", "box", "--max-winding", "4", "--size", "64",
                 "--no-progress", "--n-train", "40", "--latent", "3", "--schedule", "constant"]) == 0
    config, _, progress = calls[-1]
    assert not progress and config == Config(
        seed=3, extent=None, stroke_sigma=None, frame="box", drawing=drawing_config(64, 4),
        n_train=40, latent=3, schedule="constant")
    n = len(calls)
    for bad in (["--steps", "-1"], ["--extent", "-1"], ["--max-winding", "0"], ["--frame", "affine",
                                                                               "--extent", "0"]):
        assert main(["topology", "--out", str(tmp_path / "bad"), *bad]) == 2
    assert len(calls) == n and not (tmp_path / "bad").exists()


def test_cli_frames_are_the_library_frames():
    """The CLI spells out the frames (it imports JAX only when run): the same list, same default."""
    from bayesqcd.cli import build_parser
    from bayesqcd.topology.frames import FRAMES

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["topology"]
    frame = next(a for a in sub._actions if a.dest == "frame")
    assert tuple(frame.choices) == FRAMES and frame.default == FRAMES[0]


def test_unknown_learning_rate_schedule_is_refused(tiny):
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="schedule"):
        fit_autoencoder(key, key, tiny, tiny[:8], steps=1, schedule="linear", progress=False)
    with pytest.raises(ValueError, match="invariance"):
        fit_autoencoder(key, key, tiny, tiny[:8], steps=1, invariance=-1.0, progress=False)


def test_checkpoint_of_other_settings_is_refused(tiny, tmp_path):
    """A checkpoint remembers the settings it was trained with: the same settings resume it (no
    new steps), other settings are refused before any step."""
    key, ckpt = jax.random.PRNGKey(0), tmp_path / "ae.eqx"
    small = dict(latent=2, channels=(4,), hidden=4, rotations=0, steps=4, batch_size=8,
                 checkpoint=ckpt, progress=False)
    _, first = fit_autoencoder(key, key, tiny, tiny[:8], settings={"seed": 0}, **small)
    _, again = fit_autoencoder(key, key, tiny, tiny[:8], settings={"seed": 0}, **small)
    assert first.steps == again.steps == 4 and again.history == first.history
    with pytest.raises(ValueError, match="other settings"):
        fit_autoencoder(key, key, tiny, tiny[:8], settings={"seed": 1}, **small)


def test_normalise_images_fixes_position_and_size(tiny):
    """Every drawing's ink box ends up centred with its longer side ~ extent; a drawing already
    at that size and place is (almost) a fixed point; bad extents are refused."""
    from bayesqcd.topology.frames import normalise_images

    out = np.asarray(normalise_images(tiny, 20.0))
    idx = np.arange(32)
    for img in out > 0.05:
        (ylo, yhi), (xlo, xhi) = [(idx[m].min(), idx[m].max()) for m in (img.any(1), img.any(0))]
        assert abs((ylo + yhi) / 2 - 15.5) <= 1.0 and abs((xlo + xhi) / 2 - 15.5) <= 1.0
        assert 18 <= max(yhi - ylo, xhi - xlo) <= 22
    # a centred square whose ink box spans exactly `extent` pixels maps onto itself
    sq = np.zeros((1, 32, 32))
    sq[0, 5:27, 5] = sq[0, 5:27, 26] = sq[0, 5, 5:27] = sq[0, 26, 5:27] = 1.0
    np.testing.assert_allclose(np.asarray(normalise_images(jnp.asarray(sq), 21.0)), sq, atol=1e-12)
    # an empty image stays empty
    assert float(jnp.abs(normalise_images(jnp.zeros((1, 32, 32)))).max()) == 0.0
    with pytest.raises(ValueError, match="extent"):
        normalise_images(tiny, 31.0)


def _moments(images):
    """Centroid-frame second moments (xx, yy, xy) and third moments (x, y) of the ink [px^k]."""
    idx = np.arange(images.shape[-1], dtype=float)
    ys, xs = np.meshgrid(idx, idx, indexing="ij")
    w = images / images.sum(axis=(1, 2), keepdims=True)
    dx = xs - (w * xs).sum(axis=(1, 2), keepdims=True)
    dy = ys - (w * ys).sum(axis=(1, 2), keepdims=True)
    m = lambda f: (w * f).sum(axis=(1, 2))  # noqa: E731
    return m(dx * dx), m(dy * dy), m(dx * dy), m(dx**3), m(dy**3)


def test_orient_images_gives_the_principal_frame_whatever_the_orientation(tiny):
    """In the output the ink's second moments are diagonal with the larger one along x, both
    third moments are >= 0 and the ink box is centred with longer side ~ extent; turning or
    mirroring the input by the exact symmetries of the pixel grid (90-degree turns,
    transposition, flips) changes nothing, up to rounding; empty images pass through; bad
    shapes and extents are refused."""
    from bayesqcd.topology.frames import orient_images

    x = np.asarray(tiny, dtype=np.float64)
    out = np.asarray(orient_images(jnp.asarray(x), 20.0))
    sxx, syy, sxy, tx, ty = _moments(out)
    spread = sxx + syy
    assert np.all(np.abs(sxy) < 0.02 * spread)
    assert np.all(sxx >= syy - 0.02 * spread)
    assert np.all(tx > -0.02 * spread**1.5) and np.all(ty > -0.02 * spread**1.5)
    idx = np.arange(32)
    for img in out > 0.05:
        (ylo, yhi), (xlo, xhi) = [(idx[m].min(), idx[m].max()) for m in (img.any(1), img.any(0))]
        assert abs((ylo + yhi) / 2 - 15.5) <= 1.0 and abs((xlo + xhi) / 2 - 15.5) <= 1.0
        assert 18 <= max(yhi - ylo, xhi - xlo) <= 22
    for turned in (np.rot90(x, 1, axes=(1, 2)), np.rot90(x, 2, axes=(1, 2)), x.transpose(0, 2, 1),
                   x[:, ::-1, :], x[:, :, ::-1]):
        again = np.asarray(orient_images(jnp.asarray(np.ascontiguousarray(turned)), 20.0))
        np.testing.assert_allclose(again, out, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(prepare_images(jnp.asarray(x), "axes", 20.0, None)), out)
    assert float(jnp.abs(orient_images(jnp.zeros((2, 32, 32)))).max()) == 0.0
    with pytest.raises(ValueError, match="square"):
        orient_images(jnp.zeros((1, 32, 16)))
    with pytest.raises(ValueError, match="extent"):
        orient_images(tiny, 31.0)
    with pytest.raises(ValueError, match="extent"):
        prepare_images(tiny, "axes", None)


@pytest.mark.slow
def test_invariance_penalty_keeps_zoom_and_stretch_out_of_the_code():
    """Trained with the penalty, the code changes far less under random zooms and stretches than
    the code of the same autoencoder trained without it (same data, steps and seeds), while the
    reconstruction still improves."""
    x = shift_to_centroid(sample_drawings(jax.random.PRNGKey(5), 96).images)
    moved = jax.vmap(random_zoom_stretch)(jax.random.split(jax.random.PRNGKey(6), 96), x)
    key = jax.random.PRNGKey(7)
    change, losses = {}, {}
    untrained = ConvAutoencoder(key, latent=3, channels=(4, 8), hidden=16, rotations=4, pose_dims=2)
    start = float(reconstruction_loss(untrained, stroke_normalise(x[:16])))
    for weight in (0.0, 3.0):
        model, res = fit_autoencoder(key, key, x, x[:16], latent=3, channels=(4, 8), hidden=16,
                                     rotations=4, pose_dims=2, invariance=weight, stroke_sigma=0.8,
                                     steps=60, batch_size=32, lr=5e-3, progress=False)
        z, z_moved = (encode_batch(model, stroke_normalise(a)) for a in (x, moved))
        change[weight] = float(invariance_penalty(z, z_moved))
        losses[weight] = res.history["val_loss"][-1]
    assert change[3.0] < 0.5 * change[0.0]
    assert losses[3.0] < 0.8 * start
