"""Spectral functions from noisy correlators: one mock problem (or a user's correlator file), six methods, one summary.

Layer: study (imports core :mod:`bayesqcd.spectral`, :mod:`bayesqcd.models.spectral`,
:mod:`bayesqcd.inference` and :mod:`bayesqcd.report`; never cli). The ``bayesqcd spectral``
command is a thin front end to :func:`run`.

What it is for: recover ``rho(omega) >= 0`` from ``D = A rho + n`` (a mock of
:data:`bayesqcd.spectral.MOCKS`: peaks, threshold continuum, transport peak; Kallen-Lehmann,
Euclidean or thermal kernel, relative or absolute noise) with GP-prior
NUTS, a Bayesian network, score-based posterior sampling with a learned diffusion prior,
diffusion-prior NUTS, MEM and the Bayesian Reconstruction (BR), and compare MSE, KL, band
coverage and wall time. A user's correlator (``Config(data=FILE, kernel=...)``) goes through
the same loop: only the problem differs (:func:`make_problems`), and without a truth the
summary holds what needs none (chi^2/point against the data, R-hat, status).

Modules: :mod:`.config` (:class:`Config`, :func:`make_problem`, :func:`make_problems`),
:mod:`.methods` (one function per method, registered in :data:`METHODS`), :mod:`.gp` (empirical
Bayes for the GP amplitude),
:mod:`.prior` (the diffusion prior), :mod:`.plots`, :mod:`.experiment` (:func:`evaluate`,
:func:`run`).

Example::

    from bayesqcd.studies import spectral

    summary = spectral.run(spectral.Config(mock="bw1", methods=("nuts", "mem"), eps=(1e-3, 1e-4)),
                           out="results/bw1")

:func:`run` runs in float64 (:func:`bayesqcd.precision.x64_scope`); call :func:`bayesqcd.enable_x64`
yourself before using the pieces (:func:`run_method`, :func:`evaluate`) directly.
"""

from .config import METHOD_NAMES, NEEDS_PRIOR, Config, make_problem, make_problems
from .experiment import RHAT_MAX, evaluate, failures, format_table, run, run_one, table_row
from .gp import GP_MU_SCALE, GPEvidence, gp_empirical_bayes, gp_prior_scale, gp_rho
from .methods import (
    METHODS,
    br_band,
    diffusion_prior_nuts,
    gp_nuts,
    guided_draws,
    mem_band,
    nn_nuts,
    run_method,
    score_sampler,
)
from .plots import plot_bands
from .prior import SpectralPrior, to_default_float, train_prior

__all__ = [
    "GP_MU_SCALE", "GPEvidence", "METHODS", "METHOD_NAMES", "NEEDS_PRIOR", "RHAT_MAX", "Config",
    "SpectralPrior", "br_band", "diffusion_prior_nuts", "evaluate", "failures", "format_table", "gp_empirical_bayes",
    "gp_nuts", "gp_prior_scale",
    "gp_rho", "guided_draws", "make_problem", "make_problems", "mem_band", "nn_nuts", "plot_bands", "run", "run_method",
    "run_one", "score_sampler", "table_row", "to_default_float", "train_prior",
]
