"""Neural regression of the neutron-star EoS with observational data augmentation
(Fujimoto, Fukushima & Murase, JHEP 03 (2021) 273), against polynomial regression.

Layer: studies (imports core, ``bayesqcd.models.neutron_star``, ``bayesqcd.inference`` and
``bayesqcd.report``; never cli).

* :mod:`.training_set` -- EoS sets from the c_s^2 prior (sharded TOV batches), noisy
  observations and the augmented training set;
* :mod:`.regression` -- the four regressors, their validation, and their application to data;
* :mod:`.experiment` -- :class:`Config` and :func:`run` (``bayesqcd ns-regression``).
"""

from bayesqcd.studies.ns_regression.experiment import Config, run
from bayesqcd.studies.ns_regression.regression import (
    FITS,
    RegressionSettings,
    RegressionStudy,
    apply_regressor,
    train_regressors,
)

__all__ = ["FITS", "Config", "RegressionSettings", "RegressionStudy", "apply_regressor", "run",
           "train_regressors"]
