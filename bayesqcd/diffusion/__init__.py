"""Diffusion models through Feynman's path integral (Hirono, Tanaka, Fukushima, ICML 2024).

Layer: core (imports jax, equinox, diffrax, lineax, optax, numpyro's distribution base, scipy,
numpy and :mod:`bayesqcd.nn`; never argparse, matplotlib, models, inference, studies or cli).

* :mod:`.sde` -- forward schedules :class:`Simple`, :class:`Cosine`, :class:`VP`,
  :class:`ConstantVP` (``f``, ``g``, ``alpha_t``, ``sigma_t``); :func:`get_sde` by name. Each
  carries its time window ``[t_min, T]``, the one place that says where training, sampling and
  likelihood use the score (the paper's schedules: ``t_min = 0.01``).
* :mod:`.score` -- ``g^2``-weighted denoising score matching (:func:`dsm_loss`) and
  :func:`train_score`.
* :mod:`.sampling` -- :func:`sample_h`, the h-family of generating processes (``h = 0``: the
  probability-flow ODE; ``h = 1``: the reverse SDE).
* :mod:`.likelihood` -- exact NLL at ``h = 0`` (:func:`log_likelihood`) and the first-order WKB
  term (:func:`wkb_log_likelihood`, batched :func:`wkb_log_likelihood_batch`), with a run-away
  check (:func:`prior_radius`).
* :mod:`.distribution` -- :class:`DiffusionPrior`, a score model as a NumPyro distribution.
* :mod:`.analytic` -- Gaussian mixtures with exact scores, the paper's 1-D closed form.
* :mod:`.data` (swiss roll, 25 Gaussians), :mod:`.metrics` (:func:`wasserstein2`).

The reproduction of the paper (Table 1, W2 against h, finite h) is the study
:mod:`bayesqcd.studies.diffusion_path_integral` (``bayesqcd diffusion``); the diffusion model of
lattice fields is :mod:`bayesqcd.lattice.diffusion_sq`.

Every name below is importable from here (``from bayesqcd.diffusion import sample_h``); the
submodules load on first use, so that ``import bayesqcd.diffusion`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bayesqcd._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # forward processes
    "LinearSDE": "sde", "Simple": "sde", "Cosine": "sde", "VP": "sde", "ConstantVP": "sde",
    "SDES": "sde", "get_sde": "sde", "PAPER_T_MIN": "sde",
    # training
    "dsm_loss": "score", "train_score": "score",
    # generation
    "sample_h": "sampling", "time_grid": "sampling",
    # likelihood
    "Score": "likelihood", "WKB_METHODS": "likelihood", "pf_drift": "likelihood",
    "log_likelihood": "likelihood", "wkb_log_likelihood": "likelihood",
    "wkb_log_likelihood_batch": "likelihood", "prior_radius": "likelihood",
    "RUNAWAY_TAIL": "likelihood",
    # as a NumPyro prior
    "DiffusionPrior": "distribution",
    # exact references
    "GaussianMixture": "analytic", "MixtureScore": "analytic", "standard_normal": "analytic",
    "analytic_model_nll": "analytic",
    # data and metrics
    "DATASETS": "data", "make_data": "data", "swiss_roll": "data", "gaussians25": "data",
    "wasserstein2": "metrics",
}
_SUBMODULES = frozenset({"analytic", "data", "distribution", "likelihood", "metrics", "sampling",
                         "score", "sde"})

__all__ = sorted(_EXPORTS) + sorted(_SUBMODULES)

if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from bayesqcd.diffusion import (analytic, data, distribution, likelihood, metrics, sampling,
                                    score, sde)
    from bayesqcd.diffusion.analytic import (GaussianMixture, MixtureScore, analytic_model_nll,
                                             standard_normal)
    from bayesqcd.diffusion.data import DATASETS, gaussians25, make_data, swiss_roll
    from bayesqcd.diffusion.distribution import DiffusionPrior
    from bayesqcd.diffusion.likelihood import (RUNAWAY_TAIL, WKB_METHODS, Score, log_likelihood,
                                               pf_drift, prior_radius, wkb_log_likelihood,
                                               wkb_log_likelihood_batch)
    from bayesqcd.diffusion.metrics import wasserstein2
    from bayesqcd.diffusion.sampling import sample_h, time_grid
    from bayesqcd.diffusion.score import dsm_loss, train_score
    from bayesqcd.diffusion.sde import (PAPER_T_MIN, SDES, VP, ConstantVP, Cosine, LinearSDE,
                                        Simple, get_sde)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)
