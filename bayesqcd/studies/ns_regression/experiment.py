"""``bayesqcd ns-regression`` as a study: train (or resume) an amortized method, apply it to the data.

:func:`run` simulates the EoS sets (training, validation, held out) and then, with
``method="regression"``, fits the four regressors of
:data:`~bayesqcd.studies.ns_regression.regression.FITS` and applies the augmented network
ensemble (and the augmented polynomial) to the observations, or, with ``method="npe"``,
trains a neural posterior estimate and samples its posterior for the observations. Either
way it calibrates the result on the held-out simulations and writes a results folder of the
same form as ``bayesqcd ns-eos`` (``posterior.nc``, ``summary.json``, figures), plus
``calibration.png``.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax

from bayesqcd.inference.amortized import Coupling
from bayesqcd.inference.regression import MLPRegressor
from bayesqcd.precision import x64_scope
from bayesqcd.report import ResultsDir, plot_calibration, results_dir
from bayesqcd.studies.neutron_star import report
from bayesqcd.studies.neutron_star.compare import first_order_fractions
from bayesqcd.studies.neutron_star.data import DataSpec, load_data
from bayesqcd.studies.ns_regression.npe import (
    apply_npe,
    calibrate_segments,
    calibration_summary,
    fit_eos_npe,
    npe_posterior,
    plot_npe_training,
    regression_posterior,
)
from bayesqcd.studies.ns_regression.regression import (
    RegressionSettings,
    RegressionStudy,
    apply_regressor,
    claim_checkpoints,
    plot_training,
    plot_validation,
    study_sets,
    study_summary,
    train_regressors,
)
from bayesqcd.studies.ns_regression.training_set import ObservationModel, observed_inputs

METHODS = ("regression", "npe")
"""``--method``: the four regressors (the augmented MLP ensemble applied to the data), or NPE."""


@dataclass(frozen=True)
class Config:
    """Settings of ``bayesqcd ns-regression`` (its defaults).

    Attributes:
        data: which observations the trained method is applied to.
        method: ``"regression"`` or ``"npe"`` (:data:`METHODS`).
        seed: master seed.
        segments: c_s^2 segments (as the Bayesian ``cs2`` prior).
        n_train, n_val: EoS drawn for training and validation.
        held_out: EoS drawn for calibration only.
        copies: noisy copies per training EoS with augmentation (regression).
        members, width, depth, steps: the MLP ensemble.
        input_draws: re-observations of the data per ensemble member.
        npe_steps: training steps of the NPE (early stopping on the validation set).
        npe_knots: inner knots of the NPE flow's rational-quadratic splines (0: affine coupling
            layers, which compile several times faster: 17 s against 108 s for 8 knots, for
            the training program on 2 loaded CPU cores).
        draws: NPE posterior draws for the data.
        calibration_draws: draws per held-out simulation for the calibration.
        checkpoint_dir: network checkpoints (default: ``OUT.ckpt`` beside the results folder).
    """

    data: DataSpec = field(default_factory=DataSpec)
    method: str = "regression"
    seed: int = 0
    segments: int = 5
    n_train: int = 4000
    n_val: int = 2000
    held_out: int = 300
    copies: int = 20
    members: int = 5
    width: int = 64
    depth: int = 3
    steps: int = 4000
    input_draws: int = 100
    npe_steps: int = 8000
    npe_knots: int = 8
    draws: int = 1000
    calibration_draws: int = 200
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method = {self.method!r}; valid choices are {', '.join(METHODS)}")
        for name in ("segments", "n_train", "n_val", "held_out", "copies", "members", "width", "depth", "steps",
                     "input_draws", "npe_steps", "draws"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)} is outside the valid range [1, inf)")
        if self.npe_knots < 0:
            raise ValueError(f"npe_knots = {self.npe_knots} is outside the valid range [0, inf)")
        if self.calibration_draws < 2:
            raise ValueError(f"calibration_draws = {self.calibration_draws} is outside the valid range [2, inf)")

    def settings(self, n_stars: int) -> RegressionSettings:
        """The :class:`RegressionSettings` of this config for data sets of ``n_stars`` stars."""
        return RegressionSettings(
            n_train=self.n_train, n_val=self.n_val, n_held_out=self.held_out, n_segments=self.segments,
            n_copies=self.copies,
            obs_model=ObservationModel(n_stars=n_stars),
            network=MLPRegressor(width=self.width, depth=self.depth, n_members=self.members,
                                 n_steps=self.steps),
            n_input_draws=self.input_draws, seed=self.seed,
        )


@x64_scope(True)
def run(config: Config = Config(), out: str | os.PathLike[str] | ResultsDir | None = None, *, progress: bool = True,
        settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or resume) ``config.method``, apply it to the data, calibrate it; write ``out`` if given.

    Runs in float64 (:func:`bayesqcd.precision.x64_scope`; the caller's setting is restored).
    Checkpoints go to ``config.checkpoint_dir`` (default ``OUT.ckpt``; none when neither is
    given). Returns ``{"headline", "idata", "calibration", "sets", "study" (regression) or
    "npe", "total_wall_time_s", "checkpoint_dir"}``: the headline numbers on the data, the
    result, its :class:`~bayesqcd.inference.Calibration` on the held-out simulations, the
    simulations and the trained method.
    """
    out = results_dir(out)  # a bad results folder fails here, before any work
    obs, truth = load_data(config.data, config.seed)
    if not obs.mr:
        raise ValueError("the data have no mass-radius sources; the amortized methods need at least one")
    reg = config.settings(n_stars=len(obs.mr))
    x_obs = observed_inputs(obs, reg.obs_model.n_stars)
    ckpt = (Path(config.checkpoint_dir) if config.checkpoint_dir
            else Path(out.user_path.rstrip("/") + ".ckpt") if out is not None else None)
    if ckpt is not None:  # before any work: checkpoints of other settings are refused at once
        claim_checkpoints(ckpt, reg)
    start = time.perf_counter()
    sets = study_sets(reg, progress)
    keys = jax.random.split(jax.random.key(config.seed + 1), 4)
    result: dict[str, Any] = {}
    if config.method == "regression":
        study: RegressionStudy = train_regressors(reg, sets=sets, checkpoint_dir=ckpt, progress=progress)
        idata = apply_regressor(study.fitted["nn_aug"], x_obs, keys[0], reg.n_input_draws,
                                attrs={"regressor": "nn_aug"})
        poly = apply_regressor(study.fitted["poly_aug"], x_obs, keys[0], reg.n_input_draws,
                               attrs={"regressor": "poly_aug"})
        posterior = regression_posterior(study.fitted["nn_aug"], keys[1], reg.n_input_draws)
        n_cal = min(config.calibration_draws, config.members * config.input_draws)
        extra = {"regression": study_summary(study), "polynomial_on_data": report.headline(poly)}
        plots = lambda tmp: (plot_training(study, tmp / "training.png"),  # noqa: E731
                             plot_validation(study, tmp / "validation.png"))
        result["study"] = study
    else:
        npe = fit_eos_npe(sets, keys[2], steps=config.npe_steps, flow=Coupling(knots=config.npe_knots),
                          checkpoint=None if ckpt is None else ckpt / "npe.eqx", progress=progress)
        idata = apply_npe(npe, x_obs, keys[0], config.draws)
        posterior, n_cal = npe_posterior(npe, keys[1], config.calibration_draws), config.calibration_draws
        history = {k: v for k, v in npe.history.items() if k not in ("step", "train_loss", "val_loss")}
        extra = {"npe": {**history, "val_loss_min": float(min(npe.history["val_loss"])),
                         "val_loss_final": float(npe.history["val_loss"][-1]),
                         "n_train": sets.train.n, "n_val": sets.val.n},
                 "generation": asdict(sets.generation)}
        plots = lambda tmp: plot_npe_training(npe, tmp / "training.png")  # noqa: E731
        result["npe"] = npe
    cal, cal_stats = calibrate_segments(posterior, sets.held_out, keys[3], n_draws=n_cal, engine=config.method)
    wall = time.perf_counter() - start
    extra.update({
        "calibration": calibration_summary(cal, cal_stats),
        "first_order": first_order_fractions(idata, config.segments),
        "inference_time_s": idata.posterior.attrs["inference_time_s"],
        "checkpoint_dir": None if ckpt is None else str(ckpt),
    })
    record = {"config": asdict(config), **(settings or {}), "total_wall_time_s": wall}
    if out is not None:
        report.write_results(
            out, idata, observations=obs, settings=record, truth=truth, extra=extra,
            write_extra=lambda tmp: (plots(tmp), plot_calibration(
                cal, labels=[config.method], path=tmp / "calibration.png")),
        )
    return {"headline": report.headline(idata, truth), "idata": idata, "calibration": cal, "sets": sets, **result,
            "total_wall_time_s": wall, "checkpoint_dir": extra["checkpoint_dir"]}
