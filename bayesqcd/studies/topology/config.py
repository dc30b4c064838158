"""The one settings object of the topology study (defaults: those of ``bayesqcd topology``)."""

from __future__ import annotations

import math
import os
from numbers import Integral
from dataclasses import dataclass, field
from typing import Any

from bayesqcd.topology import FRAMES, DrawingConfig

SCHEDULES = ("cosine", "constant")
"""Learning-rate schedules of :func:`bayesqcd.studies.topology.fit_autoencoder`."""


def drawing_config(size: int = 32, max_winding: int = 3) -> DrawingConfig:
    """The drawings of ``bayesqcd topology --size --max-winding``: ``size x size`` images, classes
    0..``max_winding``, and a polygon fine enough for every loop (80 vertices a turn plus 16, at
    least 256). ``drawing_config()`` equals ``DrawingConfig()``."""
    return DrawingConfig(size=size, max_winding=max_winding, n_points=max(256, 80 * max_winding + 16))


def _refuse(name: str, value: Any, valid: str) -> None:
    raise ValueError(f"Config.{name} = {value!r} is outside the valid range {valid}")


@dataclass(frozen=True)
class Config:
    """Settings of :func:`bayesqcd.studies.topology.run` (lengths in pixels).

    Attributes:
        seed: seed of the ``jax.random`` key every draw of the run comes from (data, weights,
            minibatches, clustering restarts).
        drawing: the distribution of the line drawings (:func:`drawing_config` for the command's
            ``--size`` / ``--max-winding``); its ``n_classes`` is the number of clusters.
        n_train, n_test, n_val: training, held-out and validation drawings.
        frame: label-free normalisation of every drawing, one of
            :data:`bayesqcd.topology.FRAMES` (:func:`bayesqcd.topology.prepare_images`).
        extent: size of a drawing after the normalisation [px], in ``(0, size - 2]``; ``None``
            only for the frames that do not rescale (``"centre"``, ``"box"``, ``"none"``).
        stroke_sigma: blur of the stroke-width normalisation [px], > 0; ``None``: none.
        latent: dimension of the autoencoder's code (>= 2: the figure shows two components).
        channels, hidden: the conv channels and the dense width of the autoencoder.
        rotations: turns the code is averaged over (0: a plain autoencoder; otherwise >= 2).
        pose_dims: pose numbers beside the code, read by the decoder only (>= 0).
        invariance: weight of the penalty on changes of the code under random zooms and
            stretches (>= 0; 0: none).
        steps, batch_size, lr, schedule: Adam steps, minibatch size, learning rate and its
            schedule (``"cosine"`` decay to ``lr / 20`` or ``"constant"``).
        checkpoint: file to save training to and resume from (``None``: none).
    """

    seed: int = 0
    drawing: DrawingConfig = field(default_factory=DrawingConfig)
    n_train: int = 2000
    n_test: int = 1000
    n_val: int = 500
    frame: str = "centre"
    extent: float | None = 22.0
    stroke_sigma: float | None = 0.8
    latent: int = 8
    channels: tuple[int, ...] = (16, 32, 32)
    hidden: int = 128
    rotations: int = 16
    pose_dims: int = 3
    invariance: float = 1.0
    steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-3
    schedule: str = "cosine"
    checkpoint: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.drawing, DrawingConfig):
            _refuse("drawing", self.drawing, "of DrawingConfig instances")
        k, size = self.drawing.n_classes, self.drawing.size
        for name, lo in (("n_train", 2 * k), ("n_test", k), ("n_val", 1), ("latent", 2),
                         ("hidden", 1), ("pose_dims", 0), ("steps", 0), ("batch_size", 1)):
            value = getattr(self, name)
            if not isinstance(value, Integral) or value < lo:
                _refuse(name, value, f"[{lo}, inf) (integers)")
        if not isinstance(self.seed, Integral):
            _refuse("seed", self.seed, "of integers")
        if self.rotations != 0 and not (isinstance(self.rotations, Integral) and self.rotations >= 2):
            _refuse("rotations", self.rotations, "{0} or [2, inf)")
        object.__setattr__(self, "channels", tuple(self.channels))
        if (not self.channels or any(not isinstance(c, Integral) or c < 1 for c in self.channels)
                or size % 2 ** len(self.channels)):
            _refuse("channels", self.channels, f"of non-empty tuples of positive integers whose "
                    f"length n has 2**n dividing drawing.size = {size}")
        if self.frame not in FRAMES:
            _refuse("frame", self.frame, str(FRAMES))
        if self.extent is None:
            if self.frame not in ("centre", "box", "none"):
                _refuse("extent", None, f"(0, {size - 2}] (frame {self.frame!r} rescales)")
        elif not 0 < self.extent <= size - 2:
            _refuse("extent", self.extent, f"(0, {size - 2}] or None")
        if self.stroke_sigma is not None and not self.stroke_sigma > 0:
            _refuse("stroke_sigma", self.stroke_sigma, "(0, inf) or None")
        if not (self.invariance >= 0 and math.isfinite(self.invariance)):
            _refuse("invariance", self.invariance, "[0, inf)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            _refuse("lr", self.lr, "(0, inf)")
        if self.schedule not in SCHEDULES:
            _refuse("schedule", self.schedule, str(SCHEDULES))
