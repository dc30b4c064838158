"""The settings of the toy experiment: :class:`Config`, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

VALIDATIONS = ("truth", "noisy")
"""Validation sets of :class:`Config` ``.validation``."""


def _int(name: str, value: Any, low: int, high: float = np.inf) -> int:
    """``value`` as an int in ``[low, high]``, or a ValueError naming ``name`` and the range."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and low <= value <= high
    if not ok:
        upper = "" if high == np.inf else f" and <= {high}"
        raise ValueError(f"{name} must be an integer >= {low}{upper}, got {value!r}")
    return int(value)


def _positive(name: str, value: Any) -> float:
    """``value`` as a finite float > 0, or a ValueError naming ``name``."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (ok and np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Config:
    """Settings of :func:`~bayesqcd.studies.regression_toy.run` (the same for both runs).

    Attributes:
        seed: one integer fixes data, noise, initial weights and batches (>= 0).
        n_train: number of distinct training abscissae (>= 2).
        n_s: copies per sample in the augmented run, each with fresh noise (>= 1).
        n_steps: Adam steps, the same for both runs (>= 1).
        sigma: noise standard deviation (units of ``y``; > 0).
        n_val: number of validation points: grid points for ``validation="truth"``, fresh
            noisy samples for ``validation="noisy"`` (>= 2).
        width, depth: hidden layers of the MLP (>= 1 each).
        batch_size: samples per step (drawn with replacement), the same for both runs (>= 1).
        learning_rate: initial Adam step size, cosine decay to a hundredth (> 0).
        eval_every: steps between recorded train/validation losses (1 .. ``n_steps``).
        validation: ``"truth"``: MSE to ``f`` on ``n_val`` evenly spaced points of
            ``X_RANGE``; ``"noisy"``: MSE to ``n_val`` fresh, unaugmented noisy samples.
    """

    seed: int = 0
    n_train: int = 30
    n_s: int = 1000
    n_steps: int = 20_000
    sigma: float = 0.15
    n_val: int = 501
    width: int = 128
    depth: int = 3
    batch_size: int = 128
    learning_rate: float = 1e-3
    eval_every: int = 200
    validation: str = "truth"

    def __post_init__(self) -> None:
        checked = {
            "seed": _int("seed", self.seed, 0), "n_train": _int("n_train", self.n_train, 2),
            "n_s": _int("n_s", self.n_s, 1), "n_steps": _int("n_steps", self.n_steps, 1),
            "n_val": _int("n_val", self.n_val, 2), "sigma": _positive("sigma", self.sigma),
            "learning_rate": _positive("learning_rate", self.learning_rate),
        }
        checked["eval_every"] = _int("eval_every", self.eval_every, 1, checked["n_steps"])
        checked["batch_size"] = _int("batch_size", self.batch_size, 1)
        checked["width"] = _int("width", self.width, 1)
        checked["depth"] = _int("depth", self.depth, 1)
        if self.validation not in VALIDATIONS:
            raise ValueError(f"validation must be one of {VALIDATIONS}, got {self.validation!r}")
        for name, value in checked.items():  # plain int / float (numpy scalars converted)
            object.__setattr__(self, name, value)
