"""Winding numbers of line drawings learnt without labels (Fukushima, Funai, Iida, arXiv:1908.00281).

Layer: studies (imports core -- :mod:`bayesqcd.topology` for the drawings and their
normalisations, :mod:`bayesqcd.nn` for the autoencoder and its training --, :mod:`bayesqcd.report`
for the results folder and figures, and scikit-learn for clustering, PCA and the linear probe;
never :mod:`bayesqcd.cli`). Runs in JAX's current precision, float32 unless the caller
switched: the study does not change it.

An autoencoder is trained on drawings of open arcs and closed curves winding 1..W times; k-means
and a Gaussian mixture cluster its codes of held-out drawings, and the clusters are scored against
the winding number next to the same clustering of pixels, PCA and pixel statistics::

    from bayesqcd.studies.topology import Config, run
    summary = run(Config(seed=0), out="results/topology")    # = bayesqcd topology --out ...
    summary["scores"]["codes"]["gmm_accuracy"]

* :mod:`.config` -- :class:`Config`, the one settings object (defaults of ``bayesqcd topology``);
* :mod:`.experiment` -- :func:`run` (the results folder), :func:`run_experiment` (the numbers,
  the model and the arrays), :func:`fit_autoencoder`;
* :mod:`.scoring` -- clustering and probe scores on held-out data (scikit-learn estimators,
  Hungarian-matched accuracy);
* :mod:`.figures` -- the latent-space and reconstruction figures.
"""

from bayesqcd.studies.topology.config import Config, drawing_config
from bayesqcd.studies.topology.experiment import fit_autoencoder, run, run_experiment
from bayesqcd.studies.topology.figures import plot_latent, plot_reconstructions
from bayesqcd.studies.topology.scoring import (STATISTICS, evaluate_features, logistic_probe,
                                               matched_accuracy, random_state,
                                               score_representations, whiten)

__all__ = [
    "STATISTICS", "Config", "drawing_config", "evaluate_features", "fit_autoencoder",
    "logistic_probe", "matched_accuracy", "plot_latent", "plot_reconstructions", "random_state",
    "run", "run_experiment", "score_representations", "whiten",
]
