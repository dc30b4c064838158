"""The line-drawing generator: exact labels, exact winding numbers, rendering, input checks."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.topology import (DrawingConfig, pixel_statistics, render, sample_drawings,
                               topological_class, winding_number)


@pytest.fixture(scope="module")
def batch():
    return sample_drawings(jax.random.PRNGKey(0), 256)


def _circle(turns, centre=(0.0, 0.0), radius=1.0, n=400, sign=1.0):
    t = jnp.linspace(0.0, 1.0, n)
    th = sign * 2 * math.pi * turns * t
    return jnp.stack([centre[0] + radius * jnp.cos(th), centre[1] + radius * jnp.sin(th)], -1)


def test_labels_agree_with_exact_winding_number_on_every_image(batch):
    labels = np.asarray(batch.labels)
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    got = np.asarray(jax.vmap(topological_class)(batch.curves, batch.centres))
    np.testing.assert_array_equal(got, labels)
    w = np.asarray(jax.vmap(winding_number)(batch.curves, batch.centres))
    closed = labels > 0
    # closed curves: an integer to rounding, equal in modulus to the label
    np.testing.assert_allclose(np.abs(w[closed]), labels[closed], atol=1e-9)
    # open arcs sweep less than a turn around their centre
    assert np.all(np.abs(w[~closed]) < 1.0)


def test_open_arcs_have_a_visible_gap(batch):
    labels = np.asarray(batch.labels)
    gap = np.linalg.norm(np.asarray(batch.curves[:, -1] - batch.curves[:, 0]), axis=-1)
    widths = np.asarray(batch.widths)
    assert np.all(gap[labels > 0] == 0.0)
    assert np.all(gap[labels == 0] > widths[labels == 0] + 1.0)


def test_drawings_fit_in_the_image(batch):
    cfg = DrawingConfig()
    c = np.asarray(batch.curves)
    assert c.min() >= cfg.margin - 1e-9 and c.max() <= cfg.size - cfg.margin + 1e-9
    img = np.asarray(batch.images)
    assert img.shape == (256, 32, 32) and img.min() >= 0.0 and img.max() <= 1.0
    assert np.all(img[:, 0, :] == 0) and np.all(img[:, :, 0] == 0)


def test_winding_number_of_hand_made_curves():
    centre = jnp.zeros(2)
    assert float(winding_number(_circle(1), centre)) == pytest.approx(1.0, abs=1e-12)
    assert float(winding_number(_circle(2), centre)) == pytest.approx(2.0, abs=1e-12)
    assert float(winding_number(_circle(3, sign=-1.0), centre)) == pytest.approx(-3.0, abs=1e-12)
    # a circle that does not enclose the point winds zero times around it
    assert float(winding_number(_circle(1, centre=(3.0, 0.0)), centre)) == pytest.approx(0.0, abs=1e-12)
    # a figure eight around the centre of one lobe winds once
    t = jnp.linspace(0, 2 * math.pi, 801)
    eight = jnp.stack([jnp.sin(t), jnp.sin(t) * jnp.cos(t)], -1)
    assert float(winding_number(eight, jnp.array([0.5, 0.0]))) == pytest.approx(-1.0, abs=1e-12)
    assert int(topological_class(eight, jnp.array([0.5, 0.0]))) == 1
    # a half circle is open: class 0, half a turn swept
    half = _circle(0.5)
    assert float(winding_number(half, centre)) == pytest.approx(0.5, abs=1e-12)
    assert int(topological_class(half, centre)) == 0


def test_render_is_antialiased_stroke_of_the_right_area():
    seg = jnp.array([[6.0, 16.0], [26.0, 16.0]])
    img = render(seg, jnp.asarray(2.0), 32)
    # area of a width-2 stroke of length 20 with round caps: 20 * 2 + pi
    assert float(img.sum()) == pytest.approx(40.0 + math.pi, rel=0.03)
    assert float(img[15, 16]) == 1.0 and float(img[0, 0]) == 0.0


def test_same_key_same_drawings_and_float32():
    a = sample_drawings(jax.random.PRNGKey(3), 8, dtype=jnp.float32)
    b = sample_drawings(jax.random.PRNGKey(3), 8, dtype=jnp.float32)
    assert a.images.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(a.images), np.asarray(b.images))
    got = np.asarray(jax.vmap(topological_class)(a.curves, a.centres))
    np.testing.assert_array_equal(got, np.asarray(a.labels))


def test_requested_labels_and_larger_winding():
    cfg = DrawingConfig(max_winding=5, n_points=400)
    labels = jnp.array([0, 1, 2, 3, 4, 5])
    d = sample_drawings(jax.random.PRNGKey(1), 6, cfg, labels=labels)
    np.testing.assert_array_equal(np.asarray(d.labels), np.asarray(labels))
    w = np.asarray(jax.vmap(winding_number)(d.curves, d.centres))
    np.testing.assert_allclose(np.abs(w[1:]), np.arange(1, 6), atol=1e-9)


def test_ink_does_not_give_the_class_away(batch):
    """Mean ink per class stays within 30% of the overall mean, and the spread within each class
    is larger than the spread between class means."""
    ink = np.asarray(pixel_statistics(batch.images)[:, 0])
    labels = np.asarray(batch.labels)
    means = np.array([ink[labels == c].mean() for c in range(4)])
    within = np.mean([ink[labels == c].std() for c in range(4)])
    assert np.all(np.abs(means / ink.mean() - 1) < 0.3)
    assert means.std() < within


@pytest.mark.parametrize("kwargs", [dict(size=4), dict(max_winding=0), dict(width=(2.0, 1.0)),
                                    dict(arc_sweep=(0.5, 0.95)), dict(loop_offset=(0.5, 0.85)),
                                    dict(ink_balance=1.5), dict(radius=0.0)])
def test_bad_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        DrawingConfig(**kwargs)


def test_bad_sampling_input_is_refused():
    with pytest.raises(ValueError, match="n must be"):
        sample_drawings(jax.random.PRNGKey(0), 0)
    with pytest.raises(ValueError, match="labels must lie"):
        sample_drawings(jax.random.PRNGKey(0), 2, labels=jnp.array([0, 4]))
