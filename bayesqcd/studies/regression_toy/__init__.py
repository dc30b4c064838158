"""Study: observational data augmentation on a 1-D toy (Fujimoto, Fukushima, Murase, arXiv:2101.08156).

Layer: studies (imports core :mod:`bayesqcd.nn` and :mod:`bayesqcd.report`; never
:mod:`bayesqcd.cli`; there is no subcommand, ``examples/regression_toy.py`` calls :func:`run`).

What it is for: showing, in seconds on a CPU, why the augmentation of the neutron-star
regression (:mod:`bayesqcd.studies.ns_regression`) helps: an over-parametrised MLP trained on
one noisy realisation of 30 samples of a double-peaked function memorises the noise, while the
same network trained on ``n_s`` noisy copies per sample does not (the physics and the measured
numbers are in :mod:`.experiment`)::

    from bayesqcd.studies import regression_toy
    result = regression_toy.run(regression_toy.Config(n_steps=4000), out="results/toy")

* :class:`Config` -- the one settings object (validated on construction);
* :func:`run` -- both trainings; writes ``summary.json`` and ``regression_toy.png`` to ``out``
  atomically; returns the result with loss histories and fits; :func:`headline` -- its numbers;
* :func:`plot_toy` -- loss curves and fits;
* building blocks: :func:`double_peak` (the target), :func:`noisy_samples`,
  :func:`make_regressor`, :func:`fit`; the target's :data:`PEAKS`, :data:`HEIGHTS`,
  :data:`WIDTH`, :data:`X_RANGE`.

Modules: :mod:`.config`, :mod:`.experiment`, :mod:`.plots`. Computes in JAX's current precision.
"""

from bayesqcd.studies.regression_toy.config import VALIDATIONS, Config
from bayesqcd.studies.regression_toy.experiment import (HEIGHTS, PEAKS, WIDTH, X_RANGE, double_peak,
                                                        fit, headline, make_regressor,
                                                        noisy_samples, run)
from bayesqcd.studies.regression_toy.plots import plot_toy

__all__ = [
    "HEIGHTS", "PEAKS", "VALIDATIONS", "WIDTH", "X_RANGE", "Config", "double_peak", "fit",
    "headline", "make_regressor", "noisy_samples", "plot_toy", "run",
]
