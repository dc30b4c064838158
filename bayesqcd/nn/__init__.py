"""Equinox building blocks and the training loop shared by every learned component."""

from bayesqcd.nn.training import TrainResult, minibatch, train

__all__ = ["TrainResult", "minibatch", "train"]
