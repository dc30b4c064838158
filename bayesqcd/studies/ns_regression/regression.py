"""Neural regression of the neutron-star EoS with observational data augmentation, against
polynomial regression (Fujimoto, Fukushima & Murase, JHEP 03 (2021) 273), and its
application to the shipped observations.

:func:`study_sets` draws the training, validation and held-out sets in one ``simulate``
call (:mod:`bayesqcd.studies.ns_regression.training_set`); :func:`train_regressors` fits four
regressors on them -- an MLP ensemble and a degree-2 polynomial, each with and without
augmentation -- and measures their validation errors on c_s^2 and on the reconstructed
mass-radius curves. :func:`apply_regressor` maps real (or mock) observations to EoS draws
(ensemble members x re-observations of the inputs) with the same derived quantities as the
Bayesian posterior, as ``arviz.InferenceData``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np

from bayesqcd.inference.regression import (
    MLPRegressor,
    PolynomialRegressor,
    predictions_to_idata,
    timed_predict,
    validation_errors,
)
from bayesqcd.studies.ns_regression.training_set import (
    AugmentedSet,
    EoSSet,
    GenerationReport,
    ObservationModel,
    SimulationSets,
    derived_batch,
    input_noise_draws,
    mr_errors,
    simulation_sets,
)

FITS = ("nn_aug", "nn_noaug", "poly_aug", "poly_noaug")
"""The four regressors compared: network / polynomial, with / without augmentation."""


@dataclass(frozen=True)
class RegressionSettings:
    """Everything that defines a regression study (defaults: ``bayesqcd ns-regression``).

    Attributes:
        n_train, n_val: EoS drawn for training and validation.
        n_held_out: EoS drawn for calibration only (never trained or validated on).
        n_segments: K, c_s^2 segments (as the Bayesian ``cs2`` prior).
        n_copies: noisy copies per training EoS with augmentation (without: 1).
        obs_model: stars per data set and the ranges of their uncertainties.
        network: the MLP ensemble.
        polynomial: the polynomial baseline.
        n_mr_check: validation EoS whose predicted M-R curves are solved for the M-R error.
        n_input_draws: re-observations of the real inputs per ensemble member.
        seed: master seed.
    """

    n_train: int = 4000
    n_val: int = 2000
    n_held_out: int = 300
    n_segments: int = 5
    n_copies: int = 20
    obs_model: ObservationModel = field(default_factory=ObservationModel)
    network: MLPRegressor = field(default_factory=MLPRegressor)
    polynomial: PolynomialRegressor = field(default_factory=PolynomialRegressor)
    n_mr_check: int = 500
    n_input_draws: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_train", "n_val", "n_held_out", "n_segments", "n_copies", "n_mr_check", "n_input_draws"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)} must be >= 1")
        n_features = 4 * self.obs_model.n_stars  # (M, R, sigma_M, sigma_R) per star
        terms = self.polynomial.n_terms(n_features)
        if self.n_train < terms:  # the un-augmented polynomial fit sees n_train rows
            raise ValueError(f"n_train = {self.n_train} EoS are too few for the degree-{self.polynomial.degree} "
                             f"polynomial on {n_features} inputs ({terms} terms): use --n-train >= {terms}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RegressionStudy:
    """What :func:`train_regressors` returns.

    Attributes:
        settings: the settings used.
        fitted: the four regressors of :data:`FITS`.
        validation: per fit, c_s^2 errors (RMS overall and per segment) and M-R errors.
        training: per fit, wall time [s] and (networks) steps and loss history.
        generation: the report of the one simulation call behind all sets.
    """

    settings: RegressionSettings
    fitted: dict[str, Any]
    validation: dict[str, dict[str, Any]]
    training: dict[str, dict[str, Any]]
    generation: GenerationReport


def study_sets(settings: RegressionSettings, progress: bool = True) -> SimulationSets:
    """The training, validation and held-out simulations of ``settings`` (one simulation call)."""
    s = settings
    key = jax.random.split(jax.random.key(s.seed), 6)[0]
    return simulation_sets(key, s.n_train, s.n_val, s.n_held_out, s.n_segments, s.obs_model, progress=progress)


def train_regressors(settings: RegressionSettings = RegressionSettings(), *, sets: SimulationSets | None = None,
                     checkpoint_dir: str | os.PathLike[str] | None = None,
                     progress: bool = True) -> RegressionStudy:
    """Fit the four regressors of :data:`FITS` on ``sets`` (default :func:`study_sets`), validate them.

    Network checkpoints go to ``checkpoint_dir/{nn_aug,nn_noaug}.eqx``; a re-run with the
    same settings and folder resumes (and, when finished, only reloads) the training.
    """
    s = settings
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt is not None:  # before any work: checkpoints of other settings are refused at once
        claim_checkpoints(ckpt, s)
    keys = jax.random.split(jax.random.key(s.seed), 6)
    sets = sets if sets is not None else study_sets(s, progress)
    train_set, val_set = EoSSet.of(sets.train), EoSSet.of(sets.val)
    val = AugmentedSet(val_set, keys[2], 1, s.obs_model)
    data = {True: AugmentedSet(train_set, keys[3], s.n_copies, s.obs_model),
            False: AugmentedSet(train_set, keys[3], 1, s.obs_model)}
    fitted, training = {}, {}
    for name in FITS:
        augmented = name.endswith("_aug")
        start = time.perf_counter()
        if name.startswith("nn"):
            path = None if ckpt is None else ckpt / f"{name}.eqx"
            fitted[name] = s.network.fit(data[augmented], keys[4], val=val, checkpoint=path, progress=progress,
                                         desc=f"training {name}")
            hist = fitted[name].history
            training[name] = {"steps": hist["steps"], "stopped_early": hist["stopped_early"],
                              "history": {k: hist[k] for k in ("step", "train_loss", "val_loss")},
                              "val_loss_min": float(np.min(hist["val_loss"])),
                              "val_loss_final": float(hist["val_loss"][-1])}
        else:
            fitted[name] = s.polynomial.fit(data[augmented])
            training[name] = {}
        training[name]["wall_time_s"] = time.perf_counter() - start
    truth = derived_batch(val_set.cs2[:min(s.n_mr_check, val_set.size)])
    validation = {name: validate(fitted[name], val, truth) for name in FITS}
    return RegressionStudy(s, fitted, validation, training, sets.generation)


def claim_checkpoints(folder: Path, settings: RegressionSettings) -> None:
    """Create ``folder`` for the checkpoints of ``settings``, or check that the checkpoints
    already there were made with the same settings (resuming others would be wrong)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "settings.json"
    mine = json.dumps(settings.to_dict(), sort_keys=True)
    if stamp.exists():
        theirs = json.dumps(json.loads(stamp.read_text()), sort_keys=True)
        if theirs != mine:
            raise ValueError(f"the checkpoints in {folder} were made with other settings ({stamp}); "
                             f"pass another --checkpoint-dir or delete that folder")
    else:
        stamp.write_text(mine)


def validate(fitted: Any, val: AugmentedSet, truth: dict[str, np.ndarray]) -> dict[str, Any]:
    """c_s^2 errors on the whole validation set and M-R errors on its first EoS, whose true
    ``R_of_M`` and ``M_TOV`` (:func:`derived_batch`) are ``truth`` (ensemble-mean predictions;
    predictions outside [0, 1] count as invalid EoS)."""
    x, y = val.arrays()
    pred = np.asarray(jnp.mean(fitted.predict(x), axis=0))
    out = validation_errors(pred, y)
    n = len(truth["M_TOV"])
    out.update(mr_errors(truth["R_of_M"], truth["M_TOV"], derived_batch(pred[:n])))
    out["n_mr_check"] = n
    return out


def apply_regressor(fitted: Any, x_obs: np.ndarray, key: jax.Array, n_input_draws: int = 100,
                    *, attrs: dict[str, Any] | None = None) -> az.InferenceData:
    """EoS draws for observed inputs ``x_obs`` ``(4 N,)``: every ensemble member applied to
    ``n_input_draws`` re-observations of the inputs (each star shifted within its own
    sigmas), with the derived quantities of the Bayesian model (``M_TOV``, ``R_1.4``,
    ``Lambda_1.4``, ``p_of_eps``, ``cs2_of_n``, ``R_of_M``). Chains: ensemble members.

    ``attrs`` gains ``inference_time_s``: the wall time of one jitted prediction for the
    observed inputs (the amortized cost of a new data set).
    """
    x = jnp.asarray(x_obs)[None]
    _, t_single = timed_predict(fitted, x)
    xs = jnp.concatenate([x, input_noise_draws(key, x[0], n_input_draws - 1)])
    cs2 = np.asarray(fitted.predict(xs))  # (members, draws, K)
    m, d, k = cs2.shape
    derived = derived_batch(cs2.reshape(m * d, k))
    draws = {"cs2": cs2, **{name: v.reshape(m, d, *v.shape[1:]) for name, v in derived.items()}}
    a = {"inference_time_s": t_single, "n_input_draws": n_input_draws}
    a.update(attrs or {})
    return predictions_to_idata(draws, attrs=a, observed={"inputs": np.asarray(x_obs)})


def study_summary(study: RegressionStudy) -> dict[str, Any]:
    """JSON-ready numbers of a study: validation errors, training and generation."""
    train = {n: {k: v for k, v in t.items() if k != "history"} for n, t in study.training.items()}
    return {
        "validation": study.validation,
        "training": train,
        "generation": asdict(study.generation),
        "settings": study.settings.to_dict(),
    }


def plot_training(study: RegressionStudy, path: str | os.PathLike[str]) -> None:
    """Training and validation loss of the networks with and without augmentation."""
    from bayesqcd.report import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, name in enumerate(n for n in FITS if n.startswith("nn")):
        h = study.training[name]["history"]
        label = "with augmentation" if name.endswith("_aug") else "without augmentation"
        ax.plot(h["step"], h["train_loss"], color=f"C{i}", ls="--", label=f"train, {label}")
        ax.plot(h["step"], h["val_loss"], color=f"C{i}", label=f"validation, {label}")
    for i, name in enumerate(n for n in FITS if n.startswith("poly")):
        ax.axhline(study.validation[name]["mse"], color=f"C{i}", ls=":", label=f"polynomial, {name[5:]}")
    ax.set(xlabel="step", ylabel=r"MSE of $c_s^2$", yscale="log")
    ax.legend(fontsize="x-small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def plot_validation(study: RegressionStudy, path: str | os.PathLike[str]) -> None:
    """RMS error of c_s^2 per segment for the four regressors (prior RMS 1/sqrt(12) for reference)."""
    from bayesqcd.report import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    k = study.settings.n_segments
    width = 0.2
    for i, name in enumerate(FITS):
        ax.bar(np.arange(k) + (i - 1.5) * width, study.validation[name]["rms_per_target"], width, label=name)
    ax.axhline(1 / np.sqrt(12), color="k", ls="--", lw=1, label="prior (no information)")
    ax.set(xlabel="density segment", ylabel=r"RMS error of $c_s^2$", xticks=np.arange(k),
           xticklabels=[str(i + 1) for i in range(k)])
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    save_figure(fig, path)


def with_overrides(settings: RegressionSettings, **network: Any) -> RegressionSettings:
    """``settings`` with some network fields replaced (``None`` values ignored)."""
    net = {k: v for k, v in network.items() if v is not None}
    return replace(settings, network=replace(settings.network, **net)) if net else settings
