"""The shared training loop: it learns, stops early, and a resumed run equals an uninterrupted one."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bayesqcd.nn import minibatch, train

X = jnp.linspace(-1.0, 1.0, 128)[:, None]
Y = jnp.sin(3.0 * X)


def _loss(model, batch, key):
    x, y = batch
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


def _model():
    return eqx.nn.MLP(1, 1, 16, 2, key=jax.random.key(0))


def _run(steps, checkpoint=None):
    return train(_model(), _loss, minibatch((X, Y), 32), optax.adam(1e-2), steps, jax.random.key(1),
                 eval_every=50, checkpoint=checkpoint, progress=False)


def test_training_lowers_the_loss():
    res = _run(300)
    assert res.history["train_loss"][-1] < 0.2 * res.history["train_loss"][0]
    assert res.steps == 300


def test_resume_gives_the_same_model_as_an_uninterrupted_run(tmp_path):
    ckpt = tmp_path / "model.eqx"
    _run(150, ckpt)  # "interrupted" after 150 steps
    resumed = _run(300, ckpt)
    straight = _run(300)
    assert resumed.history["train_loss"] == straight.history["train_loss"]
    for a, b in zip(jax.tree_util.tree_leaves(eqx.filter(resumed.model, eqx.is_array)),
                    jax.tree_util.tree_leaves(eqx.filter(straight.model, eqx.is_array))):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_returns_the_best_validation_model():
    val = lambda m: _loss(m, (X, -Y), None) + 0.0  # noqa: E731  (worse the better it fits Y)
    res = train(_model(), _loss, minibatch((X, Y), 32), optax.adam(1e-2), 2000, jax.random.key(1),
                val_loss=val, eval_every=20, patience=3, progress=False)
    assert res.stopped_early and res.steps < 2000
    assert float(val(res.model)) == pytest.approx(min(res.history["val_loss"]))


def test_bad_arguments():
    with pytest.raises(ValueError, match="patience needs a val_loss"):
        train(_model(), _loss, minibatch((X, Y), 32), optax.adam(1e-2), 10, jax.random.key(1), patience=2)


def test_a_diverging_training_stops_with_a_clear_error(tmp_path):
    from bayesqcd.nn import TrainingDiverged

    ckpt = tmp_path / "model.eqx"
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        train(_model(), _loss, minibatch((X, Y), 32), optax.sgd(1e8), 200, jax.random.key(1),
              eval_every=50, checkpoint=ckpt, progress=False)
    assert not ckpt.exists()  # nothing non-finite was saved


def test_checkpoints_remember_their_settings_and_refuse_others(tmp_path):
    ckpt = tmp_path / "model.eqx"
    kw = dict(eval_every=50, checkpoint=ckpt, progress=False)
    train(_model(), _loss, minibatch((X, Y), 32), optax.adam(1e-2), 100, jax.random.key(1),
          settings={"data": "sin(3x)", "lr": 1e-2}, **kw)
    with pytest.raises(ValueError, match="other settings"):
        train(_model(), _loss, minibatch((X, Y), 32), optax.adam(1e-2), 200, jax.random.key(1),
              settings={"data": "cos(3x)", "lr": 1e-2}, **kw)
    ckpt.write_bytes(ckpt.read_bytes()[:20])  # truncated
    with pytest.raises(ValueError, match="model.eqx cannot be read"):
        train(_model(), _loss, minibatch((X, Y), 32), optax.adam(1e-2), 200, jax.random.key(1),
              settings={"data": "sin(3x)", "lr": 1e-2}, **kw)
