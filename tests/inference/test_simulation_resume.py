"""Resumable simulations: ``simulate(..., checkpoint_dir=...)`` keeps every batch, a killed run
resumes from its last completed batch with the set of an uninterrupted run, and a folder made
with other settings is refused (tiny problems: 5 batches of 8 draws)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from bayesqcd.inference import simulation, simulate

X = jnp.linspace(0.0, 1.0, 4)
N, BATCH = 37, 8  # 5 batches, the last one of 5 draws


def model(x):
    theta = numpyro.sample("theta", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
    numpyro.deterministic("root", jnp.sqrt(theta[0]))  # NaN (dropped) for theta_0 < 0
    numpyro.sample("y", dist.Normal(theta[1] * x, 0.1).to_event(1))


def run(folder=None, key=1, n=N, **kw):
    kw = {"targets": ["theta", "root"], "observed": ["y"], "batch_size": BATCH, **kw}
    return simulate(model, jax.random.key(key), n, X, progress=False, checkpoint_dir=folder, **kw)


def same(a, b):
    assert (a.n_requested, a.n_dropped) == (b.n_requested, b.n_dropped)
    for group in ("targets", "observed", "latents"):
        x, y = getattr(a, group), getattr(b, group)
        assert sorted(x) == sorted(y)
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])


@pytest.fixture(scope="module")
def reference():
    return run()


def test_a_resumed_run_gives_the_uninterrupted_set(tmp_path, reference, monkeypatch):
    folder = tmp_path / "sims"
    write = simulation._BatchStore.write
    calls = []

    def killed_after_two(self, b, arrays):  # the run dies while writing its third batch
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(b)
        write(self, b, arrays)

    monkeypatch.setattr(simulation._BatchStore, "write", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        run(folder)
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == ["batch-000000.npz", "batch-000001.npz", "settings.json"]

    computed = []
    draw = simulation._batch_fn

    def counting(*args):  # which batches the resumed run computes
        fn = draw(*args)
        return lambda key: computed.append(key) or fn(key)

    monkeypatch.setattr(simulation, "_batch_fn", counting)
    resumed = run(folder)
    assert len(computed) == 3
    same(resumed, reference)
    assert 0 < reference.n_dropped < N
    done = json.loads((folder / "done.json").read_text())
    assert done == {"n_requested": N, "n_dropped": reference.n_dropped, "n_kept": reference.n}

    # kill after the last batch: remove it and the done marker; a complete folder computes nothing
    (folder / "batch-000004.npz").unlink()
    (folder / "done.json").unlink()
    computed.clear()
    same(run(folder), reference)
    assert len(computed) == 1
    computed.clear()
    same(run(folder), reference)
    assert computed == []
    assert sorted(p.name for p in folder.iterdir()) == [
        *(f"batch-00000{i}.npz" for i in range(5)), "done.json", "settings.json"]


def test_the_batch_key_depends_on_the_batch_only(reference):
    # batch b draws from fold_in(key, b): the first n rows of a longer run with the same batches agree
    longer = run(n=N + 11)
    np.testing.assert_array_equal(longer.targets["theta"][:reference.n], reference.targets["theta"])


@pytest.mark.parametrize("change, words", [
    ({"n": N + 1}, "n (37 there, 38 here)"),
    ({"key": 2}, "key ("),
    ({"batch_size": 4}, "batch_size (8 there, 4 here)"),
    ({"targets": ["theta"]}, "targets ("),
])
def test_a_folder_of_other_settings_is_refused_naming_them(tmp_path, reference, change, words):
    folder = tmp_path / "sims"
    same(run(folder), reference)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(ValueError, match="other settings") as err:
        run(folder, **change)
    assert words in str(err.value)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # untouched


def test_other_model_arguments_and_foreign_folders_are_refused(tmp_path):
    folder = tmp_path / "sims"
    run(folder, n=8)
    with pytest.raises(ValueError, match="model_arguments"):
        simulate(model, jax.random.key(1), 8, X + 1.0, targets=["theta", "root"], observed=["y"], batch_size=BATCH,
                 progress=False, checkpoint_dir=folder)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty and has no settings.json"):
        run(foreign, n=8)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
