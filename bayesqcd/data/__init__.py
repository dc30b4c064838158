"""Shipped neutron-star observations (each number with its source) and their loaders.

Layer: core (numpy and JAX; never imports models, inference, studies or cli).

* :func:`load_observations` -- the shipped ``observations.csv`` or a user table -> ObservationSet
* :func:`load_mr_samples` -- a posterior-sample file of (M, R) for one source -> MRSamples
* :func:`mr_likelihood` -- ObservationSet -> MRLikelihood (jit/vmap/grad-safe log densities)
* :func:`mock_mr_observations` -- NICER-like mock summaries from true (M, R)
* :class:`SplitNormal`, :func:`split_normal_from_quantiles` -- asymmetric error bars
"""

from bayesqcd.data.distributions import (
    SplitNormal,
    max_asymmetry,
    split_normal_from_quantiles,
    two_piece_from_quantiles,
)
from bayesqcd.data.likelihood import MRLikelihood, mr_likelihood
from bayesqcd.data.observations import (
    Measurement,
    MRSource,
    ObservationSet,
    RadioMass,
    TidalConstraint,
    TwoPiece,
    default_table_path,
    load_observations,
    mock_mr_observations,
    read_measurements,
)
from bayesqcd.data.samples import MRSamples, load_mr_samples

__all__ = [
    "Measurement", "MRLikelihood", "MRSamples", "MRSource", "ObservationSet", "RadioMass",
    "SplitNormal", "TidalConstraint", "TwoPiece", "default_table_path", "load_mr_samples",
    "load_observations", "max_asymmetry", "mock_mr_observations", "mr_likelihood",
    "read_measurements", "split_normal_from_quantiles", "two_piece_from_quantiles",
]
