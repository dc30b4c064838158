"""``bayesqcd ns-regression`` as a study: train (or resume) the regressors, apply them to the data.

:func:`run` generates the EoS sets, fits the four regressors of
:data:`~bayesqcd.studies.ns_regression.regression.FITS`, applies the augmented network
ensemble (and the augmented polynomial) to the observations and writes the results folder.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax

from bayesqcd.inference.regression import MLPRegressor
from bayesqcd.precision import x64_scope
from bayesqcd.report import ResultsDir, results_dir
from bayesqcd.studies.neutron_star import report
from bayesqcd.studies.neutron_star.compare import first_order_fractions
from bayesqcd.studies.neutron_star.data import DataSpec, load_data
from bayesqcd.studies.ns_regression.regression import (
    RegressionSettings,
    RegressionStudy,
    apply_regressor,
    plot_training,
    plot_validation,
    study_summary,
    train_regressors,
)
from bayesqcd.studies.ns_regression.training_set import ObservationModel, observed_inputs


@dataclass(frozen=True)
class Config:
    """Settings of ``bayesqcd ns-regression`` (its defaults).

    Attributes:
        data: which observations the trained ensemble is applied to.
        seed: master seed.
        segments: c_s^2 segments (as the Bayesian ``cs2`` prior).
        n_train, n_val: EoS drawn for training and validation.
        copies: noisy copies per training EoS with augmentation.
        members, width, depth, steps: the MLP ensemble.
        input_draws: re-observations of the data per ensemble member.
        checkpoint_dir: network checkpoints (default: ``OUT.ckpt`` beside the results folder).
    """

    data: DataSpec = field(default_factory=DataSpec)
    seed: int = 0
    segments: int = 5
    n_train: int = 4000
    n_val: int = 2000
    copies: int = 20
    members: int = 5
    width: int = 64
    depth: int = 3
    steps: int = 4000
    input_draws: int = 100
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("segments", "n_train", "n_val", "copies", "members", "width", "depth", "steps",
                     "input_draws"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)} is outside the valid range [1, inf)")

    def settings(self, n_stars: int) -> RegressionSettings:
        """The :class:`RegressionSettings` of this config for data sets of ``n_stars`` stars."""
        return RegressionSettings(
            n_train=self.n_train, n_val=self.n_val, n_segments=self.segments, n_copies=self.copies,
            obs_model=ObservationModel(n_stars=n_stars),
            network=MLPRegressor(width=self.width, depth=self.depth, n_members=self.members,
                                 n_steps=self.steps),
            n_input_draws=self.input_draws, seed=self.seed,
        )


@x64_scope(True)
def run(config: Config = Config(), out: str | os.PathLike[str] | ResultsDir | None = None, *, progress: bool = True,
        settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or resume) the regressors and apply them to the data; write ``out`` if given.

    Runs in float64 (:func:`bayesqcd.precision.x64_scope`; the caller's setting is restored).
    Checkpoints go to ``config.checkpoint_dir`` (default
    ``OUT.ckpt``; none when neither is given). Returns ``{"headline", "study",
    "total_wall_time_s", "checkpoint_dir"}``: the ensemble's headline numbers on the data and
    the trained :class:`RegressionStudy`.
    """
    out = results_dir(out)  # a bad results folder fails here, before any work
    obs, truth = load_data(config.data, config.seed)
    if not obs.mr:
        raise ValueError("the data have no mass-radius sources; the regression needs at least one")
    reg = config.settings(n_stars=len(obs.mr))
    x_obs = observed_inputs(obs, reg.obs_model.n_stars)
    ckpt = (Path(config.checkpoint_dir) if config.checkpoint_dir
            else Path(out.user_path.rstrip("/") + ".ckpt") if out is not None else None)
    start = time.perf_counter()
    study: RegressionStudy = train_regressors(reg, checkpoint_dir=ckpt, progress=progress)
    key = jax.random.key(config.seed + 1)
    idata = apply_regressor(study.fitted["nn_aug"], x_obs, key, reg.n_input_draws, attrs={"regressor": "nn_aug"})
    poly = apply_regressor(study.fitted["poly_aug"], x_obs, key, reg.n_input_draws,
                           attrs={"regressor": "poly_aug"})
    wall = time.perf_counter() - start
    extra = {
        "regression": study_summary(study),
        "polynomial_on_data": report.headline(poly),
        "first_order": first_order_fractions(idata, config.segments),
        "inference_time_s": idata.posterior.attrs["inference_time_s"],
        "checkpoint_dir": None if ckpt is None else str(ckpt),
    }
    record = {"config": asdict(config), **(settings or {}), "total_wall_time_s": wall}
    if out is not None:
        report.write_results(
            out, idata, observations=obs, settings=record, truth=truth, extra=extra,
            write_extra=lambda tmp: (plot_training(study, tmp / "training.png"),
                                     plot_validation(study, tmp / "validation.png")),
        )
    return {"headline": report.headline(idata, truth), "study": study, "total_wall_time_s": wall,
            "checkpoint_dir": extra["checkpoint_dir"]}
