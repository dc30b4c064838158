"""The settings of a lattice run: :class:`Config`, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass

from bayesqcd.lattice.action import Phi4Action

METHODS = ("hmc", "flow", "diffusion")
"""Samplers of :class:`Config` ``.method``."""


@dataclass(frozen=True)
class Config:
    """Settings of one lattice run (defaults: the tutorial point of Albergo et al.).

    ``L``, ``m2``, ``lam``: lattice extent and the couplings of the mass form of the action
    (:class:`~bayesqcd.lattice.action.Phi4Action`; ``hopping_to_mass`` converts ``kappa``,
    ``lambda_h``). ``method``: one of :data:`METHODS`. The ``hmc_*`` settings also make the
    training data of the diffusion model; ``flow_*`` apply to ``flow``, ``score_*``, ``ode_tol``
    and ``h`` to ``diffusion``; ``n_proposals``/``proposal_batch`` to both generative models.
    ``checkpoint``: resumable training checkpoint file. ``x64``: float64 instead of float32.
    """

    L: int = 8
    m2: float = -4.0
    lam: float = 8.0
    method: str = "hmc"
    seed: int = 0
    # HMC (also the training data of the diffusion model)
    hmc_chains: int = 16
    hmc_warmup: int = 500
    hmc_samples: int = 2000
    hmc_leapfrog: int = 10
    # flow
    flow_layers: int = 16
    flow_hidden: tuple[int, ...] = (8, 8)
    flow_steps: int = 3000
    flow_batch: int = 64
    flow_lr: float = 1e-3
    # diffusion
    score_width: int = 8
    score_steps: int = 2000
    score_batch: int = 128
    score_lr: float = 2e-3
    ode_tol: float = 1e-3
    h: float = 0.0
    # proposals for flow / diffusion
    n_proposals: int = 20000
    proposal_batch: int = 1024
    checkpoint: str | None = None
    x64: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.L < 2 or self.L % 2:
            raise ValueError(f"L must be even and >= 2, got {self.L}")
        if self.method == "diffusion" and self.L % 4:
            raise ValueError(f"L must be a multiple of 4 for the diffusion U-Net, got {self.L}")
        Phi4Action(self.m2, self.lam)  # validates m2, lam
        for name in ("hmc_chains", "hmc_samples", "hmc_leapfrog", "flow_layers", "flow_batch",
                     "score_width", "score_batch", "n_proposals", "proposal_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("flow_steps", "score_steps", "hmc_warmup"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.flow_hidden or min(self.flow_hidden) < 1:
            raise ValueError(f"flow_hidden must be a non-empty tuple of widths >= 1, "
                             f"got {self.flow_hidden}")
        for name in ("flow_lr", "score_lr", "ode_tol"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.h >= 0:
            raise ValueError(f"h must be >= 0, got {self.h}")
