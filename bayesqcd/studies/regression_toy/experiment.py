"""The toy problem of observational data augmentation (Fujimoto, Fukushima, Murase, arXiv:2101.08156).

Why does augmentation help a regressor trained on noisy data? A small, over-parametrised network
fitted to one fixed noisy realisation of a few samples learns the noise: its training loss goes
to zero while its validation loss, after a minimum, grows again (overfitting). The paper's remedy
for neural-network inference of the neutron-star equation of state is to give every training
sample ``n_s`` copies, each with its own fresh draw of the observational noise, so that the network
sees the spread of possible observations instead of one of them. This module shows the effect on a
one-dimensional problem that trains in seconds on a CPU.

Target (dimensionless ``x`` and ``y``): a sum of two Gaussians of equal width,

    f(x) = A_1 exp(-(x - x_1)^2 / (2 w^2)) + A_2 exp(-(x - x_2)^2 / (2 w^2)),
    x_1 = -1, x_2 = +1, A_1 = 1, A_2 = 0.7, w = 0.3,

whose two maxima lie at ``x_1`` and ``x_2`` (the tails of the other peak move them by less than
``1e-9``) with a minimum of depth ``f(0) ~ 0.0066`` between them. Data live on ``[-2.5, 2.5]``.

Data and augmentation (the same noise model for both runs):

* ``n_train`` abscissae are drawn stratified: ``x_i`` uniform in the ``i``-th of ``n_train``
  equal bins of the interval (random positions without the chance gaps of plain uniform draws,
  which the network cannot bridge with or without augmentation); noise ``eps_ik ~ N(0, 1)``,
  ``k = 0..n_s-1``, is drawn once.
* Without augmentation the network trains on ``(x_i, f(x_i) + sigma eps_i0)``: one fixed noisy
  realisation per sample, i.e. the usual noisy training set.
* With augmentation it trains on all ``n_train * n_s`` pairs ``(x_i, f(x_i) + sigma eps_ik)``:
  each sample replaced by ``n_s`` copies with fresh noise of the same ``sigma``, redrawn around
  the generating value ``f(x_i)``. The unaugmented set is the ``k = 0`` copy, so the only
  difference is the ``n_s - 1`` extra noise draws. This is the paper's procedure: its training
  data are synthetic (an EoS and its exact mass-radius points), and augmentation attaches ``n_s``
  independent draws of the observational noise to each exact point, so the network learns the map
  averaged over the observational uncertainty instead of one accidental realisation of it. (Copies
  redrawn around the *noisy* value ``y_i`` keep ``y_i`` as the mean target and barely help: at
  the test settings their final validation loss is 0.86 times the unaugmented one, against 0.004
  times for copies redrawn around ``f(x_i)``.)

With a finite ``n_s`` the mean of the copies of sample ``i`` still carries noise of standard
deviation ``sigma / sqrt(n_s)``, which a long enough training memorises in turn: the residual
overfitting is of order ``sigma^2 / n_s`` in the squared error at the training points. Measured
(seed 0, 20 000 steps, float32): final validation loss 1.8e-4 for ``n_s = 100`` (final/min 1.25)
and 4.0e-5 for ``n_s = 1000`` (final/min 1.16), against 2.9e-2 without augmentation (final/min
3.7). The default is ``n_s = 1000``.

Both runs use the same network (an :class:`equinox.nn.MLP`, ``tanh``, no dropout, no weight
decay), the same initial weights, the same optimiser (optax Adam), the same batch size, the same
number of steps and the same evaluation schedule, through :func:`bayesqcd.nn.training.train`.
Validation (default ``validation="truth"``): the mean squared error to the true ``f`` on an
even grid of :data:`X_RANGE`. For a fresh noisy validation set drawn like the training data (never
augmented; ``validation="noisy"``) the expected loss is ``E[(net - f)^2] + sigma^2``, i.e. the
same curve shifted by the constant ``sigma^2`` plus the sampling noise of a finite set; the grid
version has neither, so the minimum and the rise after it are read off without dilution.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from bayesqcd.nn.training import TrainResult, minibatch, train
from bayesqcd.report import ResultsDir, atomic_results_dir, results_dir, versions, write_json
from bayesqcd.studies.regression_toy.config import Config, _int, _positive
from bayesqcd.studies.regression_toy.plots import plot_toy

PEAKS: tuple[float, float] = (-1.0, 1.0)
"""Positions ``x_1, x_2`` of the two maxima of :func:`double_peak`."""
HEIGHTS: tuple[float, float] = (1.0, 0.7)
"""Amplitudes ``A_1, A_2`` of the two Gaussians."""
WIDTH: float = 0.3
"""Common standard deviation ``w`` of the two Gaussians."""
X_RANGE: tuple[float, float] = (-2.5, 2.5)
"""Interval on which training and validation abscissae are drawn."""


def double_peak(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """The target ``f(x) = sum_j A_j exp(-(x - x_j)^2 / (2 w^2))`` (see the module docstring)."""
    x = jnp.asarray(x)
    return sum(a * jnp.exp(-0.5 * ((x - c) / WIDTH) ** 2) for a, c in zip(HEIGHTS, PEAKS))


def noisy_samples(
    key: PRNGKeyArray, n: int, sigma: float, n_s: int = 1
) -> tuple[Float[Array, " n"], Float[Array, "n_s n"]]:
    """``n`` stratified abscissae on :data:`X_RANGE` and ``n_s`` noisy observations of each.

    ``x_i = a + (i + u_i) (b - a) / n`` with ``u_i ~ U(0, 1)``: one point in each of ``n`` equal
    bins of ``[a, b]``, in increasing order.

    Returns ``(x, y)`` with ``y[k, i] = f(x_i) + sigma * eps_ik``, ``eps_ik ~ N(0, 1)``.
    Row ``k = 0`` is the unaugmented data set; rows ``0..n_s-1`` together the augmented one.
    """
    n, sigma, n_s = _int("n", n, 1), _positive("sigma", sigma), _int("n_s", n_s, 1)
    kx, ke = jax.random.split(key)
    lo, hi = X_RANGE
    x = lo + (jnp.arange(n) + jax.random.uniform(kx, (n,))) * ((hi - lo) / n)
    eps = jax.random.normal(ke, (n_s, n), dtype=x.dtype)
    return x, double_peak(x)[None, :] + sigma * eps


def make_regressor(key: PRNGKeyArray, width: int = 128, depth: int = 3) -> eqx.nn.MLP:
    """A scalar-to-scalar MLP with ``depth`` hidden layers of ``width`` tanh units (no dropout)."""
    width, depth = _int("width", width, 1), _int("depth", depth, 1)
    return eqx.nn.MLP("scalar", "scalar", width, depth, activation=jnp.tanh, key=key)


def _mse(model: Any, x: Array, y: Array) -> Array:
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


def fit(
    model: Any,
    x: Float[Array, " n"],
    y: Float[Array, " n"],
    key: PRNGKeyArray,
    *,
    x_val: Float[Array, " m"],
    y_val: Float[Array, " m"],
    n_steps: int,
    batch_size: int,
    learning_rate: float,
    eval_every: int,
    progress: bool = False,
    desc: str = "toy",
) -> TrainResult:
    """Minimise the mean squared error on ``(x, y)`` with Adam, recording the validation MSE.

    The step size follows a cosine decay from ``learning_rate`` to ``learning_rate / 100`` over
    ``n_steps``, so the end of training is not dominated by minibatch jitter.
    """
    return train(model, lambda m, b, k: _mse(m, *b), minibatch((x, y), batch_size),
                 optax.adam(optax.cosine_decay_schedule(learning_rate, n_steps, alpha=0.01)),
                 n_steps, key,
                 val_loss=lambda m: _mse(m, x_val, y_val), eval_every=eval_every,
                 progress=progress, desc=desc)


def _summary(history: dict[str, list[float]]) -> dict[str, float]:
    val = np.asarray(history["val_loss"])
    i = int(np.argmin(val))
    return {"min_val_loss": float(val[i]), "min_step": int(history["step"][i]),
            "final_val_loss": float(val[-1]), "final_over_min": float(val[-1] / val[i]),
            "final_train_loss": float(history["train_loss"][-1])}


def run(config: Config, out: str | os.PathLike[str] | ResultsDir | None = None, *,
        progress: bool = True) -> dict[str, Any]:
    """Train the same network with and without augmentation and compare validation losses.

    Computes in JAX's current precision (the numbers above: float32; the tests: float64).
    When ``out`` is given, writes ``summary.json`` (:func:`headline`, the loss ``histories``,
    ``seconds``, ``versions``) and ``regression_toy.png`` (:func:`plot_toy`) atomically; ``out``
    is checked first (:func:`bayesqcd.report.results_dir`), before any work.

    Returns:
        A dict with ``config`` (the fields of ``config`` and the target's parameters); ``data``
        (``x_train``, ``y_train`` = the unaugmented set, ``x_grid``, ``f_grid``); for
        ``"unaugmented"`` and ``"augmented"`` each: ``history`` (``step``, ``train_loss``,
        ``val_loss``), ``fit_grid`` (network on ``x_grid``), ``mse_truth`` (MSE to ``f`` on the
        grid at the end) and the headline numbers ``min_val_loss``, ``min_step``,
        ``final_val_loss``, ``final_over_min``, ``final_train_loss``;
        ``final_val_aug_over_unaug``; and ``seconds`` (wall time of both trainings).
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a bayesqcd.studies.regression_toy.Config, got {type(config)}")
    out = results_dir(out)  # a bad results folder fails here, before any work
    c = config
    t0 = time.perf_counter()
    k_data, k_val, k_init, k_train = jax.random.split(jax.random.key(c.seed), 4)
    x, y = noisy_samples(k_data, c.n_train, c.sigma, c.n_s)
    if c.validation == "truth":
        x_val = jnp.linspace(*X_RANGE, c.n_val, dtype=x.dtype)
        y_val = double_peak(x_val)
    else:
        x_val, y_val = noisy_samples(k_val, c.n_val, c.sigma)
        y_val = y_val[0]
    model0 = make_regressor(k_init, c.width, c.depth)
    x_grid = jnp.linspace(*X_RANGE, 501, dtype=x.dtype)
    f_grid = double_peak(x_grid)
    sets = {"unaugmented": (x, y[0]),
            "augmented": (jnp.tile(x, c.n_s), y.reshape(-1))}
    result: dict[str, Any] = {
        "config": {**dataclasses.asdict(c), "target": "double_peak", "peaks": PEAKS,
                   "heights": HEIGHTS, "peak_width": WIDTH},
        "data": {"x_train": np.asarray(x), "y_train": np.asarray(y[0]),
                 "x_grid": np.asarray(x_grid), "f_grid": np.asarray(f_grid)},
    }
    for name, (xs, ys) in sets.items():
        res = fit(model0, xs, ys, k_train, x_val=x_val, y_val=y_val, n_steps=c.n_steps,
                  batch_size=c.batch_size, learning_rate=c.learning_rate,
                  eval_every=c.eval_every, progress=progress, desc=name)
        pred = jax.vmap(res.model)(x_grid)
        result[name] = {"history": res.history, "fit_grid": np.asarray(pred),
                        "mse_truth": float(jnp.mean((pred - f_grid) ** 2)), **_summary(res.history)}
    result["final_val_aug_over_unaug"] = (result["augmented"]["final_val_loss"]
                                          / result["unaugmented"]["final_val_loss"])
    result["seconds"] = time.perf_counter() - t0
    if out is not None:
        with atomic_results_dir(out) as tmp:
            histories = {n: result[n]["history"] for n in ("unaugmented", "augmented")}
            write_json(tmp / "summary.json", {**headline(result), "histories": histories,
                                              "seconds": result["seconds"],
                                              "versions": versions()})
            plot_toy(result, tmp / "regression_toy.png")
    return result


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The numbers of :func:`run` without histories and curves (JSON-sized)."""
    keys = ("min_val_loss", "min_step", "final_val_loss", "final_over_min", "final_train_loss",
            "mse_truth")
    return {"config": result["config"],
            **{name: {k: result[name][k] for k in keys} for name in ("unaugmented", "augmented")},
            "final_val_aug_over_unaug": result["final_val_aug_over_unaug"]}


