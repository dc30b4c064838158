"""Amortized inference from simulations: regression (a point estimator) and neural posterior
estimation (NPE, a posterior), both trained once and then applied to any data set in one call.

::

    sims = simulate(model, key, 4000, *args, targets=["omega"], observed=["y"], y=None)
    reg = fit_regression(sims, key)          # MLP ensemble or polynomial, predicts targets
    npe = fit_npe(sims, key)                 # conditional normalizing flow (flowjax)
    reg.predict(key, {"y": y_obs});  npe.sample(key, {"y": y_obs}, 4000)   # InferenceData

Both learn in the unconstrained, standardized space of the targets: each target ``theta``
with prior support S becomes ``u = T^{-1}(theta)`` with ``T = numpyro.distributions.biject_to(S)``,
then ``z = (u - mean) / std``. Predictions map back through ``T``, so they always lie in the
support, and nothing is clipped; a training target outside S is an error. The NPE density of
``theta`` is ``q(z) |dz/dtheta|`` (change of variables).

**Observational data augmentation** (:class:`AugmentedSimulations`): every simulation has
``n_copies`` fixed noisy copies of its data, re-drawn from the model's own likelihood given
the same latent values (``n_copies=None``: fresh noise in every minibatch), or from a user's
``noise(key, row) -> {observed site: array}``. Validation uses the simulated data as drawn.

Results carry ``attrs["draws_independent"] = 1``: ensemble members are not Markov chains,
so :func:`bayesqcd.inference.results.check_diagnostics` applies no mixing checks to them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import arviz as az
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flowjax.bijections import RationalQuadraticSpline
from flowjax.distributions import StandardNormal
from flowjax.flows import masked_autoregressive_flow
from jaxtyping import Array, Float, PRNGKeyArray
from numpyro.distributions import biject_to

from bayesqcd.inference.regression import ArrayData, MLPRegressor, PolynomialRegressor, Standardizer
from bayesqcd.inference.results import from_draws
from bayesqcd.inference.simulation import Simulations, stack_rows
from bayesqcd.nn.flows import coupling_flow
from bayesqcd.nn.training import train

Noise = Callable[[PRNGKeyArray, Mapping[str, Array]], Mapping[str, Array]]
"""``noise(key, row) -> {observed site: array}``: new data for one simulation; ``row`` holds
all its sites (targets, latents and observed values)."""


# ----------------------------------------------------------------------------- spaces


@dataclass(frozen=True, eq=False)
class TargetSpace:
    """Targets <-> standardized unconstrained vectors ``z`` of length K.

    Attributes:
        names, shapes: target sites and their shapes (one simulation).
        transforms: ``biject_to(support)`` per target.
        mean, std: standardization of the unconstrained values.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    transforms: tuple[Any, ...]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, sims: Simulations) -> TargetSpace:
        """Transforms from the supports; standardization from the simulations' targets.

        Raises:
            ValueError: when a target value lies outside its support (or maps to a
                non-finite unconstrained value, e.g. on the boundary).
        """
        names = tuple(sims.targets)
        transforms = tuple(biject_to(sims.supports[k]) for k in names)
        shapes = tuple(tuple(sims.targets[k].shape[1:]) for k in names)
        space = cls(names, shapes, transforms, np.zeros(0), np.ones(0))
        u = np.asarray(space.unconstrain(sims.targets))
        mean, std = u.mean(0), u.std(0)
        return cls(names, shapes, transforms, mean, np.where(std > 0, std, 1.0))

    def unconstrain(self, values: Mapping[str, Array], check: bool = True) -> Float[Array, "n K"]:
        """Unconstrained vectors ``u`` of target rows ``(n, *shape)``; with ``check``, refuses
        values outside the supports (``check=False`` inside jit)."""
        parts = []
        for name, t in zip(self.names, self.transforms):
            v = jnp.asarray(values[name])
            ok = np.asarray(t.codomain(v)) if check else np.ones(1, bool)
            if not ok.all():
                bad = np.asarray(v).reshape(v.shape[0], -1)[~ok.reshape(v.shape[0], -1).all(1)][0]
                raise ValueError(f"target {name!r}: {int((~ok).sum())} values lie outside the support "
                                 f"{t.codomain} of its prior (e.g. {bad}); the output transform "
                                 f"{type(t).__name__} cannot reach them")
            u = jax.vmap(t.inv)(v).reshape(v.shape[0], -1)
            if check and not bool(jnp.all(jnp.isfinite(u))):
                raise ValueError(f"target {name!r} has values on the boundary of its support {t.codomain}")
            parts.append(u)
        return jnp.concatenate(parts, axis=1)

    def standardize(self, values: Mapping[str, Array], check: bool = True) -> Float[Array, "n K"]:
        """Standardized unconstrained vectors ``z`` ``(n, K)`` of target rows."""
        return (self.unconstrain(values, check) - self.mean) / self.std

    def _pieces(self, z: Float[Array, "... K"]):
        """``(name, transform, u, event_ndim)`` per target: its unconstrained values ``(..., *ushape)``."""
        u, i = z * self.std + self.mean, 0
        for name, shape, t in zip(self.names, self.shapes, self.transforms):
            ushape = t.inverse_shape(shape)
            size = int(np.prod(ushape, dtype=int))
            yield name, t, u[..., i:i + size].reshape(*u.shape[:-1], *ushape), len(ushape)
            i += size

    def constrain(self, z: Float[Array, "... K"]) -> dict[str, Array]:
        """Targets ``(..., *shape)`` from standardized vectors ``z``."""
        return {name: _apply_rows(t, u, nd) for name, t, u, nd in self._pieces(z)}

    def log_det(self, z: Float[Array, "... K"]) -> Float[Array, "..."]:
        """``log |d theta / d z|`` of :meth:`constrain` (summed over all target components)."""
        total = jnp.sum(jnp.log(self.std)) * jnp.ones(z.shape[:-1])
        for _, t, u, nd in self._pieces(z):
            flat = u.reshape(-1, *u.shape[u.ndim - nd:])
            one = jax.vmap(lambda x, t=t: jnp.sum(t.log_abs_det_jacobian(x, t(x))))(flat)
            total = total + one.reshape(z.shape[:-1])
        return total


def _apply_rows(t: Any, u: Array, event_ndim: int) -> Array:
    """``t`` applied to every ``event``-shaped row of ``u`` (transforms act on one site value)."""
    batch = u.shape[:u.ndim - event_ndim]
    flat = u.reshape(-1, *u.shape[u.ndim - event_ndim:])
    out = jax.vmap(t)(flat)
    return out.reshape(*batch, *out.shape[1:])


@dataclass(frozen=True, eq=False)
class InputSpace:
    """Observed sites <-> flat input rows ``(n, F)``."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, sims: Simulations) -> InputSpace:
        return cls(tuple(sims.observed), tuple(tuple(v.shape[1:]) for v in sims.observed.values()))

    def flatten(self, data: Mapping[str, Any]) -> Float[Array, "n F"]:
        """Rows of a batch ``{site: (n, *shape)}``."""
        return stack_rows({k: jnp.asarray(data[k]) for k in self.names}, self.names)

    def one(self, data: Mapping[str, Any]) -> Float[Array, "1 F"]:
        """The row of a single data set ``{site: shape}``; refuses missing sites or wrong shapes."""
        for name, shape in zip(self.names, self.shapes):
            if name not in data:
                raise ValueError(f"data lacks the observed site {name!r} (expected {list(self.names)})")
            if tuple(np.shape(data[name])) != shape:
                raise ValueError(f"data[{name!r}] has shape {np.shape(data[name])}; the simulations have {shape}")
        return self.flatten({k: jnp.asarray(data[k])[None] for k in self.names})


# ----------------------------------------------------------------------------- augmentation


class AugmentedSimulations(eqx.Module):
    """Training rows ``(x, z)`` with observational data augmentation (a ``RegressionData``).

    Row ``(i, c)`` pairs the standardized targets of simulation ``i`` with copy ``c`` of its
    data, re-drawn with the key ``fold_in(fold_in(key, i), c)``; ``n_copies=None`` draws
    fresh data in every minibatch (online augmentation).

    Attributes:
        rows: every site of every simulation (targets, latents, observed), ``(n, ...)``.
        z: standardized unconstrained targets ``(n, K)``.
        key: noise key.
        n_copies: fixed copies per simulation, or ``None`` (online).
        draw: ``draw(key, row) -> {observed site: array}`` (the model's likelihood or a user noise).
        inputs: the observed sites' layout.
    """

    rows: dict[str, Array]
    z: Float[Array, "n K"]
    key: PRNGKeyArray
    n_copies: int | None = eqx.field(static=True)
    draw: Callable[..., Any] = eqx.field(static=True)
    inputs: InputSpace = eqx.field(static=True)

    def __check_init__(self) -> None:
        if self.n_copies is not None and self.n_copies < 1:
            raise ValueError(f"n_copies = {self.n_copies} must be >= 1 (or None for online augmentation)")

    def _x(self, keys: PRNGKeyArray, idx: Array) -> Float[Array, "b F"]:
        def one(k, i):
            row = {name: v[i] for name, v in self.rows.items()}
            return self.inputs.flatten({n: v[None] for n, v in self.draw(k, row).items()})[0]

        return jax.vmap(one)(keys, idx)

    def batch(self, key: PRNGKeyArray, size: int) -> tuple[Float[Array, "b F"], Float[Array, "b K"]]:
        """``size`` random rows (simulation and copy drawn uniformly, with replacement)."""
        k_i, k_c = jax.random.split(key)
        idx = jax.random.randint(k_i, (size,), 0, self.z.shape[0])
        if self.n_copies is None:
            keys = jax.random.split(k_c, size)
        else:
            copy = jax.random.randint(k_c, (size,), 0, self.n_copies)
            keys = jax.vmap(lambda i, c: jax.random.fold_in(jax.random.fold_in(self.key, i), c))(idx, copy)
        return self._x(keys, idx), self.z[idx]

    def arrays(self) -> tuple[Float[Array, "n F"], Float[Array, "n K"]]:
        """All rows, simulation-major (online augmentation: one copy per simulation)."""
        c = 1 if self.n_copies is None else self.n_copies
        idx = jnp.repeat(jnp.arange(self.z.shape[0]), c)
        copy = jnp.tile(jnp.arange(c), self.z.shape[0])
        keys = jax.vmap(lambda i, k: jax.random.fold_in(jax.random.fold_in(self.key, i), k))(idx, copy)
        return eqx.filter_jit(AugmentedSimulations._x)(self, keys, idx), self.z[idx]


def augmented(sims: Simulations, space: TargetSpace, key: PRNGKeyArray, n_copies: int | None,
              noise: Noise | None = None) -> AugmentedSimulations:
    """The :class:`AugmentedSimulations` of ``sims``: noise from the model's likelihood (its
    observed sites re-drawn given the latent values) or from ``noise``."""
    if noise is None:
        resample = sims.resampler()
        latents = tuple(sims.latents)

        def draw(k, row):
            return resample(k, {n: row[n] for n in latents})
    else:
        draw = noise
    rows = {**sims.latents, **sims.targets, **sims.observed}
    return AugmentedSimulations({k: jnp.asarray(v) for k, v in rows.items()}, space.standardize(sims.targets),
                                key, n_copies, draw, InputSpace.of(sims))


def _split(sims: Simulations, val_fraction: float) -> tuple[Simulations, Simulations]:
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction = {val_fraction} must lie in (0, 1)")
    n_val = max(1, int(round(val_fraction * sims.n)))
    if n_val >= sims.n:
        raise ValueError(f"{sims.n} simulations are too few to hold out val_fraction = {val_fraction}")
    train_sims, val_sims = sims.split(sims.n - n_val)
    return train_sims, val_sims


def _one_data_set(fitted: Any, key: PRNGKeyArray, data: Mapping[str, Any], n: int, name: str,
                  engine: str) -> az.InferenceData:
    """``fitted._draws`` for one data set as InferenceData (chains: members), with the wall
    time of the jitted call as ``attrs["inference_time_s"]``."""
    if n < 1:
        raise ValueError(f"{name} = {n} must be >= 1")
    x = fitted.inputs.one(data)
    start = time.perf_counter()
    draws = jax.block_until_ready(fitted._draws(key, x, n))
    t = time.perf_counter() - start
    m = fitted.members
    post = {k: np.asarray(v[0]).reshape(m, n, *v.shape[2:]) for k, v in draws.items()}
    attrs = {"engine": engine, "draws_independent": 1, "inference_time_s": t, "members": m, name: n}
    return from_draws(post, observed_data={k: np.asarray(v) for k, v in data.items()}, attrs=attrs)


# ----------------------------------------------------------------------------- regression

_MEAN_DRAWS = 32
"""Draws of the likelihood whose mean centres the noise of a re-observation."""


@dataclass(frozen=True, eq=False)
class FittedRegression:
    """A regressor from data to targets (an estimator: its spread is not a posterior width).

    Attributes:
        fitted: the trained :class:`~bayesqcd.inference.regression.FittedEnsemble` or polynomial.
        targets, inputs: the target and data layouts.
        sims: the training simulations (model and supports, for re-observations).
        wall_time_s: training time [s].
    """

    fitted: Any
    targets: TargetSpace
    inputs: InputSpace
    sims: Simulations
    wall_time_s: float

    @property
    def members(self) -> int:
        """Ensemble members (1 for a polynomial)."""
        return int(getattr(self.fitted, "n_members", 1))

    @eqx.filter_jit
    def _draws(self, key: PRNGKeyArray, x: Float[Array, "N F"], n_input_draws: int) -> dict[str, Array]:
        """Target draws ``(N, members * n_input_draws, *shape)`` for input rows ``x``."""
        xs = x[:, None]
        if n_input_draws > 1:
            z_hat = jnp.mean(self.fitted.predict(x), axis=0)
            est = self.targets.constrain(z_hat)
            resample = self.sims.resampler()
            fix = [k for k in self.sims.latents if k in est]

            def noise(k, i):  # (n_input_draws - 1, F): fresh noise of the likelihood at the estimate
                ys = jax.vmap(lambda kk: self.inputs.flatten(
                    {n: v[None] for n, v in resample(kk, {n: est[n][i] for n in fix}).items()})[0])(
                    jax.random.split(k, n_input_draws - 1 + _MEAN_DRAWS))
                return ys[:n_input_draws - 1] - jnp.mean(ys[n_input_draws - 1:], axis=0)

            keys = jax.random.split(key, x.shape[0])
            shifts = jax.vmap(noise)(keys, jnp.arange(x.shape[0]))
            xs = jnp.concatenate([xs, x[:, None] + shifts], axis=1)
        n, d, f = xs.shape
        z = self.fitted.predict(xs.reshape(n * d, f))  # (M, n d, K)
        m = z.shape[0]
        z = jnp.moveaxis(z.reshape(m, n, d, -1), 1, 0).reshape(n, m * d, -1)
        return self.targets.constrain(z)

    def predict(self, key: PRNGKeyArray, data: Mapping[str, Any], n_input_draws: int = 1) -> az.InferenceData:
        """Predicted targets for one data set ``{observed site: array}``.

        Chains are ensemble members (one for a polynomial); draws are the data itself and,
        with ``n_input_draws > 1``, re-observations: the data shifted by fresh noise of the
        model's likelihood at the ensemble-mean estimate, ``y* - E[y*]`` (the mean over
        32 draws; exact for additive noise). Their spread is the estimator's response to
        noise, not a posterior width. ``attrs["inference_time_s"]``: the wall time [s] of the
        jitted call (compilation included on the first call for a given ``n_input_draws``).
        """
        return _one_data_set(self, key, data, n_input_draws, "n_input_draws", "regression")


def fit_regression(sims: Simulations, key: PRNGKeyArray, *, n_copies: int | None = 20, method: str = "mlp",
                   members: int = 5, steps: int = 4000, width: int = 64, depth: int = 3, degree: int = 2,
                   batch_size: int = 256, learning_rate: float = 1e-3, noise: Noise | None = None,
                   val_fraction: float = 0.1, checkpoint: str | os.PathLike[str] | None = None,
                   progress: bool = True) -> FittedRegression:
    """Train a regressor from the observed sites to the targets of ``sims``.

    Args:
        sims: training simulations (a ``val_fraction`` of them is held out for validation
            and early stopping).
        key: PRNG key.
        n_copies: noisy copies of the data per simulation (1: no augmentation beyond one
            re-draw; ``None``: fresh noise every minibatch).
        method: ``"mlp"`` (an ensemble of ``members`` networks, ``width`` x ``depth``,
            ``steps`` Adam steps) or ``"polynomial"`` (least squares of ``degree``).
        noise: a user noise function replacing the model's likelihood (see :data:`Noise`).
        checkpoint: network checkpoint file (resumed when it exists).
        progress: show a progress bar.

    Returns:
        :class:`FittedRegression`; targets are regressed in their standardized unconstrained
        space (MSE), so predictions stay inside each prior's support.
    """
    if method not in ("mlp", "polynomial"):
        raise ValueError(f"method = {method!r}; valid choices are 'mlp', 'polynomial'")
    space = TargetSpace.fit(sims)
    train_sims, val_sims = _split(sims, val_fraction)
    k_aug, k_fit = jax.random.split(key)
    data = augmented(train_sims, space, k_aug, n_copies, noise)
    val = ArrayData(InputSpace.of(sims).flatten(val_sims.observed), space.standardize(val_sims.targets))
    start = time.perf_counter()
    if method == "mlp":
        reg = MLPRegressor(width=width, depth=depth, n_members=members, output="linear", n_steps=steps,
                           batch_size=batch_size, learning_rate=learning_rate)
        fitted = reg.fit(data, k_fit, val=val, checkpoint=checkpoint, progress=progress, desc="fitting regression")
    else:
        fitted = PolynomialRegressor(degree).fit(data)
    return FittedRegression(fitted, space, InputSpace.of(sims), sims, time.perf_counter() - start)


# ----------------------------------------------------------------------------- NPE


@dataclass(frozen=True)
class Coupling:
    """A coupling flow (RealNVP-type) of fused rational-quadratic spline layers
    (:func:`bayesqcd.nn.flows.coupling_flow`, flowjax bijections): density and sampling cost
    one pass each (the default of :func:`fit_npe`).

    Attributes:
        layers: flow layers; width, depth: conditioner network size.
        knots: inner spline knots per dimension (0: affine layers); interval: the spline acts
            on [-interval, interval] of the standardized space (identity outside).
        dtype: the conditioner networks' float type (the splines and densities are computed
            in the inputs' precision, float64 here; float32 networks only round the spline
            parameters, so the flow stays an exact bijection with an exact density).
    """

    layers: int = 5
    width: int = 64
    depth: int = 1
    knots: int = 8
    interval: float = 4.0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("layers", "width", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)} must be >= 1")
        if self.knots < 0 or not self.interval > 0:
            raise ValueError(f"knots = {self.knots} must be >= 0 and interval = {self.interval} > 0")

    def __call__(self, key: PRNGKeyArray, dim: int, cond_dim: int) -> Any:
        """The untrained flow on R^dim conditioned on R^cond_dim."""
        return coupling_flow(key, dim, cond_dim, layers=self.layers, knots=self.knots, interval=self.interval,
                             width=self.width, depth=self.depth, dtype=self.dtype)


@dataclass(frozen=True)
class MAF(Coupling):
    """A masked autoregressive flow (flowjax's own, with its scalar spline bijections), same
    settings as :class:`Coupling` (``dtype`` aside: flowjax's networks use the default float
    type): each layer conditions every dimension on the previous ones; the density costs one
    pass, sampling one pass per target dimension."""

    def __call__(self, key: PRNGKeyArray, dim: int, cond_dim: int) -> Any:
        tr = RationalQuadraticSpline(knots=self.knots, interval=self.interval) if self.knots else None
        return masked_autoregressive_flow(key, base_dist=StandardNormal((dim,)), transformer=tr, cond_dim=cond_dim,
                                          flow_layers=self.layers, nn_width=self.width, nn_depth=self.depth,
                                          nn_activation=jax.nn.silu)


class FittedNPE(eqx.Module):
    """A trained conditional flow ``q(theta | data)``: an amortized posterior.

    Attributes:
        flows: ``members`` flows (parameters stacked along a leading axis).
        scaler: standardization of the flattened data.
        targets, inputs: layouts of the targets and of the data.
        history: training history (steps, losses, early stopping).
    """

    flows: Any
    scaler: Standardizer
    targets: TargetSpace = eqx.field(static=True)
    inputs: InputSpace = eqx.field(static=True)
    history: dict[str, Any] = eqx.field(static=True, default_factory=dict)

    @property
    def members(self) -> int:
        return int(jax.tree_util.tree_leaves(eqx.filter(self.flows, eqx.is_array))[0].shape[0])

    @eqx.filter_jit
    def _z(self, key: PRNGKeyArray, x: Float[Array, "N F"], n: int) -> Float[Array, "M n N K"]:
        c = self.scaler(x)
        keys = jax.random.split(key, self.members)
        return eqx.filter_vmap(lambda f, k: f.sample(k, (n,), condition=c))(self.flows, keys)

    @eqx.filter_jit
    def _draws(self, key: PRNGKeyArray, x: Float[Array, "N F"], n: int) -> dict[str, Array]:
        """Posterior draws ``(N, members * n, *shape)`` for input rows ``x``."""
        z = self._z(key, x, n)
        m, _, big_n, k = z.shape
        return self.targets.constrain(jnp.moveaxis(z, 2, 0).reshape(big_n, m * n, k))

    def sample(self, key: PRNGKeyArray, data: Mapping[str, Any], n: int) -> az.InferenceData:
        """``n`` posterior draws per member for one data set ``{observed site: array}``.

        Chains are ensemble members. ``attrs["inference_time_s"]``: the wall time [s] of the
        jitted sampling call (compilation included on the first call for a given ``n``).
        """
        return _one_data_set(self, key, data, n, "n", "npe")

    def log_prob(self, theta: Mapping[str, Array], data: Mapping[str, Array]) -> Float[Array, " b"]:
        """``log q(theta | data)`` in the targets' own (constrained) space, the members'
        equal-weight mixture. ``theta``: ``{target: (b, *shape)}``; ``data``:
        ``{observed site: (b, *shape)}`` or a single data set (broadcast).

        Raises:
            ValueError: for ``theta`` outside the support of its prior.
        """
        theta = {k: jnp.asarray(theta[k]) for k in self.targets.names}
        self.targets.unconstrain(theta)  # refuses values outside the supports
        return self._log_prob(theta, {k: jnp.asarray(data[k]) for k in self.inputs.names})

    @eqx.filter_jit
    def _log_prob(self, theta: Mapping[str, Array], data: Mapping[str, Array]) -> Float[Array, " b"]:
        z = self.targets.standardize(theta, check=False)
        x = self.inputs.flatten({k: jnp.broadcast_to(jnp.asarray(data[k]), (z.shape[0], *s))
                                 for k, s in zip(self.inputs.names, self.inputs.shapes)})
        lp = eqx.filter_vmap(lambda f: f.log_prob(z, self.scaler(x)))(self.flows)
        return jax.nn.logsumexp(lp, axis=0) - jnp.log(lp.shape[0]) - self.targets.log_det(z)


def fit_npe(sims: Simulations, key: PRNGKeyArray, *, n_copies: int | None = None, noise: Noise | None = None,
            flow: Callable[[PRNGKeyArray, int, int], Any] = Coupling(), steps: int = 8000, members: int = 1,
            batch_size: int = 256, learning_rate: float = 1e-3, val_fraction: float = 0.1,
            patience: int | None = 10, eval_every: int = 100, checkpoint: str | os.PathLike[str] | None = None,
            progress: bool = True) -> FittedNPE:
    """Neural posterior estimation: a conditional flow trained by maximum likelihood on
    (target, augmented data) pairs.

    Args:
        sims: training simulations (``val_fraction`` held out for validation).
        key: PRNG key.
        n_copies, noise: augmentation, as for :func:`fit_regression`; the default ``None``
            draws fresh noise for every minibatch (on the damped oscillator of
            ``examples/your_own_model.py``, with flowjax's coupling flow, 8000 steps of it
            brought the NPE widths to 0.97-1.6x NUTS's, where 3000 steps with 20 fixed
            copies left them 1.4-3x wider).
        flow: ``flow(key, dim, cond_dim) -> flowjax distribution`` (default :class:`Coupling`;
            :class:`MAF` for a masked autoregressive flow).
        steps, batch_size, learning_rate: Adam with cosine decay to 1%, gradient clipping at 1.
        members: independently initialized flows (each on its own minibatches); their
            equal-weight mixture is the posterior.
        patience, eval_every: early stopping on the validation loss (``None``: all steps).
        checkpoint: checkpoint file (resumed when it exists; other settings are refused).
        progress: show a progress bar.

    Returns:
        :class:`FittedNPE`.
    """
    for name, v in (("steps", steps), ("members", members), ("batch_size", batch_size), ("eval_every", eval_every)):
        if v < 1:
            raise ValueError(f"{name} = {v} must be >= 1")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate = {learning_rate} must be > 0")
    space = TargetSpace.fit(sims)
    train_sims, val_sims = _split(sims, val_fraction)
    k_aug, k_init, k_train = jax.random.split(key, 3)
    data = augmented(train_sims, space, k_aug, n_copies, noise)
    inputs = InputSpace.of(sims)
    scaler = Standardizer.fit(inputs.flatten(train_sims.observed))
    xv, zv = scaler(inputs.flatten(val_sims.observed)), space.standardize(val_sims.targets)
    k_dim, f_dim = zv.shape[1], xv.shape[1]
    flows = eqx.filter_vmap(lambda k: flow(k, k_dim, f_dim))(jax.random.split(k_init, members))

    def batch_fn(k):
        x, z = jax.vmap(lambda km: data.batch(km, batch_size))(jax.random.split(k, members))
        return scaler(x), z

    def loss_fn(model, batch, _k):
        return -jnp.mean(eqx.filter_vmap(lambda f, x, z: f.log_prob(z, x))(model, *batch))

    def val_loss(model):
        return -jnp.mean(eqx.filter_vmap(lambda f: f.log_prob(zv, xv))(model))

    sched = optax.cosine_decay_schedule(learning_rate, steps, alpha=0.01)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(sched))
    settings = {"engine": "npe", "n_sims": sims.n, "targets": list(space.names), "observed": list(inputs.names),
                "n_copies": n_copies, "flow": repr(flow), "steps": steps, "members": members,
                "batch_size": batch_size, "learning_rate": learning_rate, "val_fraction": val_fraction,
                "noise": None if noise is None else getattr(noise, "__name__", repr(noise))}
    res = train(flows, loss_fn, batch_fn, opt, steps, k_train, val_loss=val_loss, eval_every=eval_every,
                patience=patience, checkpoint=checkpoint, progress=progress, desc="training NPE", settings=settings)
    hist = {**res.history, "steps": res.steps, "stopped_early": res.stopped_early}
    return FittedNPE(res.model, scaler, space, inputs, hist)
