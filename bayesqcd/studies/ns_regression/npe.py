"""Neural posterior estimation (NPE) of the neutron-star EoS, and the calibration of the
amortized methods on held-out simulations.

:func:`fit_eos_npe` trains the generic :func:`bayesqcd.inference.fit_npe` (a conditional
normalizing flow for c_s^2 given the observed stars) on the simulations of
:func:`~bayesqcd.studies.ns_regression.training_set.star_model`, with the generic
observational data augmentation: every minibatch re-draws each simulation's ``stars`` site
(new sigmas per star, new noise, sorted) from the model given its true stars.
:func:`apply_npe` turns its posterior for one data set into the InferenceData of a Bayesian
EoS result (the derived quantities solved for every draw). :func:`calibrate_segments`
measures the coverage and SBC ranks of any of the amortized methods per c_s^2 segment with
:func:`bayesqcd.inference.calibrate`.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import arviz as az
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from bayesqcd.inference.amortized import Coupling, FittedNPE, fit_npe
from bayesqcd.inference.calibration import Calibration, calibrate
from bayesqcd.inference.regression import predictions_to_idata
from bayesqcd.inference.results import from_draws
from bayesqcd.inference.simulation import Simulations
from bayesqcd.studies.ns_regression.training_set import SimulationSets, derived_batch, input_noise_draws


def fit_eos_npe(sets: SimulationSets, key: PRNGKeyArray, *, steps: int = 8000, flow: Any = Coupling(),
                checkpoint: str | os.PathLike[str] | None = None, progress: bool = True) -> FittedNPE:
    """Train the NPE on ``sets.train`` with ``sets.val`` for early stopping (online
    augmentation: fresh observations of the true stars in every minibatch).

    Args:
        sets: simulations of :func:`~bayesqcd.studies.ns_regression.training_set.star_model`.
        key: PRNG key.
        steps: Adam steps (batches of 256; early stopping on the validation loss).
        flow: the conditional flow (:class:`bayesqcd.inference.Coupling` or ``MAF``).
        checkpoint: checkpoint file (resumed when it exists).
        progress: progress bar.
    """
    data = sets.train_val
    return fit_npe(data, key, n_copies=None, flow=flow, steps=steps, val_fraction=sets.val.n / data.n,
                   checkpoint=checkpoint, progress=progress)


def apply_npe(npe: FittedNPE, x_obs: np.ndarray, key: PRNGKeyArray, n_draws: int = 1000,
              *, attrs: dict[str, Any] | None = None) -> az.InferenceData:
    """The NPE posterior for observed inputs ``x_obs`` ``(4 N,)`` (the ``stars`` site: sorted
    ``[M, R, sigma_M, sigma_R]``), with the derived quantities of the Bayesian model (``M_TOV``,
    ``R_1.4``, ``Lambda_1.4``, ``p_of_eps``, ``cs2_of_n``, ``R_of_M``) solved for every draw.

    Draws whose EoS has no star of 1.4 M_sun (``R_1.4`` or ``Lambda_1.4`` NaN, or an invalid
    curve) are dropped, as the Bayesian model excludes them (its GW170817 term needs
    Lambda_1.4): the flow's mass outside the region the data allow. Their fraction is
    ``attrs["dropped_fraction"]``; chains (flow members) keep equal lengths. ``attrs`` gains
    ``inference_time_s``, the wall time of the jitted sampling call (the amortized cost of a
    new data set, without the TOV solves).
    """
    npe.sample(key, {"stars": x_obs}, n_draws)  # compile, so that the time below is one call
    post = npe.sample(jax.random.fold_in(key, 1), {"stars": x_obs}, n_draws)
    cs2 = np.asarray(post.posterior["cs2"].values)  # (members, draws, K)
    m, d, k = cs2.shape
    derived = {name: v.reshape(m, d, *v.shape[1:]) for name, v in derived_batch(cs2.reshape(m * d, k)).items()}
    ok = np.isfinite(derived["M_TOV"]) & np.isfinite(derived["R_1.4"]) & np.isfinite(derived["Lambda_1.4"])
    keep = int(ok.sum(axis=1).min())
    if keep < 2:
        raise ValueError(f"of {n_draws} NPE draws per member at most {keep} have a star of 1.4 M_sun: the flow "
                         f"puts its mass outside the EoS the data allow (train longer or on more simulations)")
    draws = {name: np.stack([v[i][ok[i]][:keep] for i in range(m)]) for name, v in {"cs2": cs2, **derived}.items()}
    a = {"engine": "npe", "inference_time_s": post.posterior.attrs["inference_time_s"], "n_draws": n_draws,
         "dropped_fraction": float(1.0 - ok.mean())}
    a.update(attrs or {})
    return predictions_to_idata(draws, attrs=a, observed={"inputs": np.asarray(x_obs)})


# ----------------------------------------------------------------------------- calibration

Posterior = Callable[[Mapping[str, Any]], Array]
"""``posterior(data) -> (draws, K)`` c_s^2 draws for one data set ``{"stars": (4 N,)}``."""


def _data_key(key: PRNGKeyArray, data: Mapping[str, Any]) -> PRNGKeyArray:
    """A key of its own for each data set (the same in whatever order, or on whichever
    process, the data sets come): ``key`` folded with a checksum of the data."""
    return jax.random.fold_in(key, zlib.crc32(np.asarray(data["stars"], np.float64).tobytes()) & 0x7FFFFFFF)


def npe_posterior(npe: FittedNPE, key: PRNGKeyArray, n_draws: int) -> Posterior:
    """The NPE's c_s^2 draws for a data set (``n_draws`` per member)."""

    def posterior(data: Mapping[str, Any]) -> Array:
        v = npe.sample(_data_key(key, data), data, n_draws).posterior["cs2"].values
        return v.reshape(-1, v.shape[-1])

    return posterior


def regression_posterior(fitted: Any, key: PRNGKeyArray, n_input_draws: int) -> Posterior:
    """A regressor's c_s^2 for a data set as :func:`~bayesqcd.studies.ns_regression.apply_regressor`
    gives it: every member applied to the data and ``n_input_draws - 1`` re-observations of
    it (each star shifted within its own sigmas). Not a posterior: its spread is the
    estimator's response to noise, and calibration shows how far that is from a posterior's."""

    @eqx.filter_jit
    def draws(f: Any, k: PRNGKeyArray, x: Array) -> Array:
        xs = jnp.concatenate([x[None], input_noise_draws(k, x, n_input_draws - 1)])
        out = f.predict(xs)  # (members, n_input_draws, K)
        return out.reshape(-1, out.shape[-1])

    def posterior(data: Mapping[str, Any]) -> Array:
        return draws(fitted, _data_key(key, data), jnp.asarray(data["stars"]))

    return posterior


def calibrate_segments(posterior: Posterior, held_out: Simulations, key: PRNGKeyArray, *, n_draws: int = 200,
                       engine: str = "") -> tuple[Calibration, dict[str, Any]]:
    """Coverage and SBC ranks of ``posterior`` per c_s^2 segment over ``held_out`` simulations
    (:func:`bayesqcd.inference.calibrate`, shared out over the processes of a multi-process run).

    Returns:
        The :class:`~bayesqcd.inference.Calibration` (targets ``cs2_1`` ... ``cs2_K``) and
        ``{"rms_mean": [...], "mean_width68": [...]}`` per segment: the RMS error of the
        draws' mean against the truth and the mean width of the central 68% interval (the
        prior's: 0.29, 0.68).
    """
    truth = held_out.targets["cs2"]
    names = [f"cs2_{j + 1}" for j in range(truth.shape[1])]
    view = replace(held_out, targets={n: truth[:, j] for j, n in enumerate(names)},
                   supports={n: held_out.supports["cs2"].base_constraint for n in names})

    def per_segment(data: Mapping[str, Any]) -> az.InferenceData:
        d = np.asarray(posterior(data))  # (S, K)
        return from_draws({n: d[None, :, j] for j, n in enumerate(names)})

    per_segment.__name__ = engine or "posterior"
    cal = calibrate(per_segment, view, key, n_draws=n_draws)
    draws = [np.asarray(posterior(held_out.data(i))) for i in range(held_out.n)]
    err = np.stack([d.mean(0) for d in draws]) - truth
    lo, hi = np.quantile(np.stack(draws), [0.16, 0.84], axis=1)
    stats = {"rms_mean": np.sqrt(np.mean(err**2, axis=0)).tolist(), "mean_width68": np.mean(hi - lo, axis=0).tolist()}
    return cal, stats


def calibration_summary(cal: Calibration, stats: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-ready: :meth:`Calibration.to_dict`, the coverage at 68% and 95% per segment, and ``stats``."""
    at = {f"{lv:.2f}": {n: float(np.interp(lv, cal.levels, c)) for n, c in cal.coverage.items()}
          for lv in (0.68, 0.95)}
    return {**cal.to_dict(), "coverage_at": at, **dict(stats)}


def plot_npe_training(npe: FittedNPE, path: str | os.PathLike[str]) -> None:
    """Training and validation loss (negative log density of c_s^2 in the flow's space)."""
    from bayesqcd.report import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    h = npe.history
    ax.plot(h["step"], h["train_loss"], "--", label="train")
    ax.plot(h["step"][:len(h["val_loss"])], h["val_loss"], label="validation")
    ax.set(xlabel="step", ylabel="negative log density (standardized space)")
    ax.legend(fontsize="x-small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
