"""Equinox building blocks and the training loop shared by every learned component.

Layer: core (pure JAX/Equinox; never imports models, inference, studies or cli).

* :mod:`.training`: :func:`train` (minibatches, progress bar, checkpoints with exact resume,
  early stopping) -- the one training loop of the project;
* :mod:`.flows`: conditional spline coupling flows (flowjax), fused for cheap sampling -- the
  amortized posteriors of :func:`bayesqcd.inference.fit_npe`;
* :mod:`.autoencoder`: the convolutional autoencoder of the topology study;
* :mod:`.score_nets`: score networks of the diffusion models.
"""

from bayesqcd.nn.training import TrainingDiverged, TrainResult, minibatch, train

__all__ = ["TrainResult", "TrainingDiverged", "minibatch", "train"]
