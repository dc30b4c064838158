"""Inference engines (installed as ``bayesqcd.inference``); each returns ``arviz.InferenceData``.

Layer: inference (imports core only; never models, report, studies or cli). An engine takes
any NumPyro model -- a user's as much as ours -- and its arguments:

* :func:`run_nuts` (:mod:`.nuts`), :func:`run_svi` (:mod:`.svi`), :func:`run_hmc` (:mod:`.hmc`);
* :func:`sample_posterior` (:mod:`.score_posterior`): score-based (diffusion) posterior sampling;
* :mod:`.flow`: reverse-KL training of a normalizing flow and independence Metropolis;
* :mod:`.regression`: amortized regression (MLP ensembles, polynomials) with augmentation;
* :func:`simulate` (:mod:`.simulation`), :func:`fit_regression`, :func:`fit_npe` (:mod:`.amortized`),
  :func:`calibrate` (:mod:`.calibration`): simulations of any model, amortized regression and
  neural posterior estimation with data augmentation, simulation-based calibration;
* :mod:`.optimize`: MAP estimates (multi-start, Gauss-Newton), Laplace evidence, NUTS chains
  from given starting points;
* :mod:`.results`: InferenceData from raw draws, diagnostics (R-hat, ESS, divergences).

Names are imported on first use: ``from bayesqcd.inference import run_nuts, run_svi``.
"""

from bayesqcd._lazy import lazy_exports

_EXPORTS = {
    "chain_layout": ".nuts",
    "run_nuts": ".nuts",
    "run_svi": ".svi",
    "run_hmc": ".hmc",
    "sample_posterior": ".score_posterior",
    "TweedieGuidedScore": ".score_posterior",
    "tweedie_mean": ".score_posterior",
    "train_reverse_kl": ".flow",
    "independence_metropolis": ".flow",
    "sample_independence_metropolis": ".flow",
    "ess_fraction": ".flow",
    "MLPRegressor": ".regression",
    "PolynomialRegressor": ".regression",
    "predictions_to_idata": ".regression",
    "validation_errors": ".regression",
    "least_squares_solver": ".optimize",
    "LeastSquaresMAP": ".optimize",
    "evidence_scan": ".optimize",
    "EvidenceScan": ".optimize",
    "map_estimate": ".optimize",
    "MAPEstimate": ".optimize",
    "run_nuts_chains": ".optimize",
    "from_draws": ".results",
    "diagnostics": ".results",
    "check_diagnostics": ".results",
    "set_attrs": ".results",
    "DiagnosticsWarning": ".results",
    "simulate": ".simulation",
    "Simulations": ".simulation",
    "fit_regression": ".amortized",
    "FittedRegression": ".amortized",
    "fit_npe": ".amortized",
    "FittedNPE": ".amortized",
    "MAF": ".amortized",
    "Coupling": ".amortized",
    "calibrate": ".calibration",
    "Calibration": ".calibration",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
