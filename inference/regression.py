"""Amortized regression: a map from observed data to model parameters, learnt from simulations.

Two regressors share one interface::

    fitted = regressor.fit(train, key, val=val)      # train / val: RegressionData
    y = fitted.predict(x)                            # (members, n, K); one jitted call

* :class:`MLPRegressor` -- an ensemble of Equinox MLPs (trained together, vmapped over
  members, each on its own minibatches and initialization), optax Adam with cosine decay,
  validation loss, early stopping, progress bar and checkpoints that a re-run resumes from
  (:func:`bayesqcd.nn.training.train`). Sigmoid outputs keep targets in (0, 1) when asked.
* :class:`PolynomialRegressor` -- the conventional baseline: least squares (with a small
  ridge term) on all monomials of the standardized inputs up to a degree.

A data set is anything with ``batch(key, size) -> (x, y)`` (pure JAX, for minibatches)
and ``arrays() -> (x, y)`` (all rows); :class:`ArrayData` wraps fixed arrays and
:class:`bayesqcd.studies.ns_regression.training_set.AugmentedSet` generates noisy copies on the fly.
:func:`predictions_to_idata` turns predictions into ``arviz.InferenceData``, ensemble
members as chains and input draws as draws.
"""

from __future__ import annotations

import math

import itertools
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

import arviz as az
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from bayesqcd.inference.results import from_draws
from bayesqcd.nn.training import train


class RegressionData(Protocol):
    """Inputs ``x`` ``(n, F)`` and targets ``y`` ``(n, K)``."""

    def batch(self, key: PRNGKeyArray, size: int) -> tuple[Array, Array]: ...

    def arrays(self) -> tuple[Array, Array]: ...


class ArrayData(eqx.Module):
    """Fixed arrays as a :class:`RegressionData`."""

    x: Float[Array, "n F"]
    y: Float[Array, "n K"]

    def __check_init__(self) -> None:
        if self.x.ndim != 2 or self.y.ndim != 2 or self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x and y must be 2-D with equal rows, got shapes {self.x.shape} and {self.y.shape}")

    def batch(self, key: PRNGKeyArray, size: int) -> tuple[Array, Array]:
        idx = jax.random.randint(key, (size,), 0, self.x.shape[0])
        return self.x[idx], self.y[idx]

    def arrays(self) -> tuple[Array, Array]:
        return self.x, self.y


class Standardizer(eqx.Module):
    """``(x - mean) / std`` per feature, fitted on training inputs."""

    mean: Float[Array, " F"]
    std: Float[Array, " F"]

    @classmethod
    def fit(cls, x: Float[Array, "n F"]) -> "Standardizer":
        std = jnp.std(x, axis=0)
        return cls(jnp.mean(x, axis=0), jnp.where(std > 0, std, 1.0))

    def __call__(self, x: Array) -> Array:
        return (x - self.mean) / self.std


def _check_inputs(x: Array, n_features: int) -> Array:
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[1] != n_features:
        raise ValueError(f"inputs must have shape (n, {n_features}), got {x.shape}")
    return x


# ----------------------------------------------------------------------------- polynomial


def monomial_exponents(n_features: int, degree: int) -> np.ndarray:
    """Exponent vectors ``(P, F)`` of all monomials of total degree 0..``degree``."""
    rows = [np.zeros(n_features, int)]
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(n_features), d):
            e = np.zeros(n_features, int)
            np.add.at(e, list(combo), 1)
            rows.append(e)
    return np.stack(rows)


class FittedPolynomial(eqx.Module):
    """A fitted polynomial regressor (one "member")."""

    scaler: Standardizer
    exponents: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    coef: Float[Array, "P K"]

    def design(self, x: Array) -> Array:
        """Monomials of the standardized inputs, ``(n, P)``."""
        z = self.scaler(x)
        return jnp.prod(z[:, None, :] ** jnp.asarray(self.exponents)[None], axis=-1)

    @eqx.filter_jit
    def predict(self, x: Float[Array, "n F"]) -> Float[Array, "1 n K"]:
        """Predictions, shape ``(1, n, K)`` (a single member)."""
        return (self.design(x) @ self.coef)[None]


@dataclass(frozen=True)
class PolynomialRegressor:
    """Least-squares polynomial regression.

    Attributes:
        degree: highest total degree of the monomials (2: all squares and pairwise products).
        ridge: Tikhonov term, relative to the mean diagonal of the normal matrix.
        chunk: rows per block when accumulating the normal equations.
    """

    degree: int = 2
    ridge: float = 1e-8
    chunk: int = 16384

    def __post_init__(self) -> None:
        if self.degree < 1:
            raise ValueError(f"degree = {self.degree} must be >= 1")
        if self.ridge < 0:
            raise ValueError(f"ridge = {self.ridge} must be >= 0")

    def n_terms(self, n_features: int) -> int:
        """Number of monomials of total degree <= ``degree`` in ``n_features`` inputs (the fewest rows a fit needs)."""
        return math.comb(n_features + self.degree, self.degree)

    def fit(self, train: RegressionData, key: PRNGKeyArray | None = None, *, val: RegressionData | None = None,
            **_: Any) -> FittedPolynomial:
        """Solve the (ridge-regularized) normal equations on all rows of ``train``.

        ``key`` and ``val`` are accepted for interface compatibility (the fit is exact).
        """
        del key, val
        x, y = train.arrays()
        scaler = Standardizer.fit(x)
        exps = tuple(map(tuple, monomial_exponents(x.shape[1], self.degree).tolist()))
        model = FittedPolynomial(scaler, exps, jnp.zeros((len(exps), y.shape[1]), x.dtype))
        n_terms = len(exps)
        if x.shape[0] < n_terms:
            raise ValueError(f"{x.shape[0]} training rows for {n_terms} polynomial terms: "
                             f"use more data or a lower degree than {self.degree}")
        # normal equations accumulated in chunks (the design matrix of an augmented set is large)
        gram = jnp.zeros((n_terms, n_terms), x.dtype)
        rhs = jnp.zeros((n_terms, y.shape[1]), x.dtype)
        for i in range(0, x.shape[0], self.chunk):
            a = _design_jit(model, x[i:i + self.chunk])
            gram, rhs = gram + a.T @ a, rhs + a.T @ y[i:i + self.chunk]
        lam = self.ridge * jnp.trace(gram) / n_terms
        coef = jnp.linalg.solve(gram + lam * jnp.eye(n_terms, dtype=gram.dtype), rhs)
        return eqx.tree_at(lambda m: m.coef, model, coef)


@eqx.filter_jit
def _design_jit(model: FittedPolynomial, x: Array) -> Array:
    return model.design(x)


# ----------------------------------------------------------------------------- networks


class FittedEnsemble(eqx.Module):
    """A trained ensemble of MLPs (parameters stacked along a leading member axis).

    Attributes:
        scaler: input standardization.
        members: the vmapped MLPs.
        history: training history (steps, train and validation loss).
    """

    scaler: Standardizer
    members: eqx.nn.MLP
    history: dict[str, list[float]] = eqx.field(static=True, default_factory=dict)

    @property
    def n_members(self) -> int:
        return int(jax.tree_util.tree_leaves(eqx.filter(self.members, eqx.is_array))[0].shape[0])

    @eqx.filter_jit
    def predict(self, x: Float[Array, "n F"]) -> Float[Array, "M n K"]:
        """Predictions of every member, shape ``(members, n, K)``."""
        z = self.scaler(x)
        return eqx.filter_vmap(lambda m: jax.vmap(m)(z))(self.members)


def _ensemble_mse(members: eqx.nn.MLP, x: Array, y: Array) -> Array:
    """Mean squared error averaged over members; ``x`` ``(M, b, F)`` or ``(b, F)``."""
    if x.ndim == 2:
        pred = eqx.filter_vmap(lambda m: jax.vmap(m)(x))(members)
    else:
        pred = eqx.filter_vmap(lambda m, xi: jax.vmap(m)(xi))(members, x)
    return jnp.mean((pred - y) ** 2)


@dataclass(frozen=True)
class MLPRegressor:
    """An ensemble of fully connected networks trained on mean squared error.

    Attributes:
        width, depth: hidden units per layer and number of hidden layers.
        n_members: networks in the ensemble (their spread estimates the model uncertainty).
        output: ``"sigmoid"`` (outputs in (0, 1), e.g. c_s^2; :meth:`fit` refuses targets
            outside [0, 1], which a sigmoid cannot reach) or ``"linear"``.
        activation: hidden activation (``"silu"``, ``"tanh"`` or ``"relu"``).
        n_steps, batch_size, learning_rate: Adam with cosine decay to 1% over ``n_steps``.
        eval_every, patience: validation cadence and early-stopping patience (evaluations);
            ``patience=None`` trains all steps and returns the final networks.
    """

    width: int = 64
    depth: int = 3
    n_members: int = 5
    output: str = "sigmoid"
    activation: str = "silu"
    n_steps: int = 4000
    batch_size: int = 256
    learning_rate: float = 1e-3
    eval_every: int = 200
    patience: int | None = 8

    def __post_init__(self) -> None:
        for name in ("width", "depth", "n_members", "n_steps", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)} must be >= 1")
        if self.output not in ("sigmoid", "linear"):
            raise ValueError(f"output = {self.output!r}; valid choices are 'sigmoid', 'linear'")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation = {self.activation!r}; valid choices are {sorted(_ACTIVATIONS)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate = {self.learning_rate} must be > 0")

    def init(self, key: PRNGKeyArray, n_in: int, n_out: int) -> eqx.nn.MLP:
        """The untrained ensemble (parameters stacked over members)."""
        final = jax.nn.sigmoid if self.output == "sigmoid" else (lambda v: v)

        def one(k):
            return eqx.nn.MLP(n_in, n_out, self.width, self.depth, activation=_ACTIVATIONS[self.activation],
                              final_activation=final, key=k)

        return eqx.filter_vmap(one)(jax.random.split(key, self.n_members))

    def fit(self, train_data: RegressionData, key: PRNGKeyArray, *, val: RegressionData | None = None,
            checkpoint: str | os.PathLike[str] | None = None, progress: bool = True,
            desc: str = "training ensemble") -> FittedEnsemble:
        """Train the ensemble; resumes from ``checkpoint`` when it exists.

        Each member draws its own minibatches. Inputs are standardized with statistics of
        4096 training rows drawn with ``key`` (so a resumed run uses the same ones).
        """
        k_scale, k_init, k_train = jax.random.split(key, 3)
        x0, y0 = train_data.batch(k_scale, 4096)
        if self.output == "sigmoid":
            for name, y in (("training", y0), ("validation", None if val is None else val.arrays()[1])):
                if y is not None and not bool(jnp.all((y >= 0) & (y <= 1))):
                    raise ValueError(f"{name} targets span [{float(jnp.min(y)):.4g}, {float(jnp.max(y)):.4g}], "
                                     "outside the range [0, 1] of output='sigmoid': use output='linear' "
                                     "(or bayesqcd.inference.fit_regression, which follows each prior's support)")
        scaler = Standardizer.fit(x0)
        members = self.init(k_init, x0.shape[1], y0.shape[1])
        n_m, bs = self.n_members, self.batch_size

        def batch_fn(k):
            x, y = jax.vmap(lambda km: train_data.batch(km, bs))(jax.random.split(k, n_m))
            return scaler(x), y

        def loss_fn(model, batch, _k):
            return _ensemble_mse(model, *batch)

        val_fn = None
        if val is not None:
            xv, yv = val.arrays()
            xv = scaler(xv)
            val_fn = lambda model: _ensemble_mse(model, xv, yv)  # noqa: E731
        sched = optax.cosine_decay_schedule(self.learning_rate, self.n_steps, alpha=0.01)
        opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(sched))
        res = train(members, loss_fn, batch_fn, opt, self.n_steps, k_train, val_loss=val_fn,
                    eval_every=self.eval_every, patience=self.patience if val is not None else None,
                    checkpoint=checkpoint, progress=progress, desc=desc)
        hist = dict(res.history)
        hist["stopped_early"] = res.stopped_early
        hist["steps"] = res.steps
        return FittedEnsemble(scaler, res.model, hist)


_ACTIVATIONS = {"silu": jax.nn.silu, "tanh": jnp.tanh, "relu": jax.nn.relu}


# ----------------------------------------------------------------------------- evaluation


def validation_errors(pred: Float[Array, "n K"], y: Float[Array, "n K"]) -> dict[str, Any]:
    """RMS error of predictions (e.g. an ensemble mean) against targets: overall and per component."""
    err = np.asarray(pred) - np.asarray(y)
    return {"rms": float(np.sqrt(np.mean(err**2))),
            "rms_per_target": np.sqrt(np.mean(err**2, axis=0)).tolist(),
            "mse": float(np.mean(err**2))}


def timed_predict(fitted: Any, x: Array, repeats: int = 20) -> tuple[np.ndarray, float]:
    """Predictions and the mean wall time [s] of one (already compiled) call."""
    out = jax.block_until_ready(fitted.predict(x))
    start = time.perf_counter()
    for _ in range(repeats):
        out = jax.block_until_ready(fitted.predict(x))
    return np.asarray(out), (time.perf_counter() - start) / repeats


def predictions_to_idata(draws: dict[str, np.ndarray], *, attrs: dict[str, Any] | None = None,
                         observed: dict[str, np.ndarray] | None = None) -> az.InferenceData:
    """InferenceData from ``(members, draws, ...)`` arrays: members as chains.

    The same plots and summaries as for a posterior then apply; ``engine`` is recorded
    as ``"regression"``.
    """
    a = {"engine": "regression", "draws_independent": 1}
    a.update(attrs or {})
    return from_draws(posterior={k: np.asarray(v) for k, v in draws.items()},
                      observed_data=observed, attrs=a)
