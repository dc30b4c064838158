"""Neural regression of the neutron-star EoS with observational data augmentation
(Fujimoto, Fukushima & Murase, JHEP 03 (2021) 273), against polynomial regression.

Layer: studies (imports core, ``bayesqcd.models.neutron_star``, ``bayesqcd.inference`` and
``bayesqcd.report``; never cli).

* :mod:`.training_set` -- the simulator (a NumPyro model of EoS, stars and their noisy
  observations), EoS sets drawn from it with :func:`bayesqcd.inference.simulate`, and the
  augmented training set of the regressors;
* :mod:`.regression` -- the four regressors, their validation, and their application to data;
* :mod:`.npe` -- neural posterior estimation (:func:`bayesqcd.inference.fit_npe`) and the
  calibration of both methods on held-out simulations;
* :mod:`.experiment` -- :class:`Config` and :func:`run` (``bayesqcd ns-regression``).
"""

from bayesqcd.studies.ns_regression.experiment import METHODS, Config, run
from bayesqcd.studies.ns_regression.npe import apply_npe, calibrate_segments, fit_eos_npe
from bayesqcd.studies.ns_regression.regression import (
    FITS,
    RegressionSettings,
    RegressionStudy,
    apply_regressor,
    train_regressors,
)

__all__ = ["FITS", "METHODS", "Config", "RegressionSettings", "RegressionStudy", "apply_npe", "apply_regressor",
           "calibrate_segments", "fit_eos_npe", "run", "train_regressors"]
