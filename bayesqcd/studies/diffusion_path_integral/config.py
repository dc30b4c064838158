"""The settings of one case of the path-integral reproduction: :class:`Config`."""

from __future__ import annotations

from dataclasses import dataclass

from bayesqcd.diffusion.data import DATASETS
from bayesqcd.diffusion.likelihood import MAX_STEPS
from bayesqcd.diffusion.sde import SDES

PAPER_TABLE1 = {
    # (data, sde): (NLL h=0, err, coefficient tol 1e-3, err, coefficient tol 1e-5, err)
    ("swiss-roll", "simple"): (1.39, 0.05, -0.31, 0.21, -0.44, 0.38),
    ("swiss-roll", "cosine"): (1.42, 0.02, -1.59, 0.57, -3.27, 1.11),
    ("25gauss", "simple"): (-1.22, 0.01, -3.64, 0.49, -3.61, 0.64),
    ("25gauss", "cosine"): (-1.71, 0.02, -17.57, 5.56, -19.65, 17.46),
}
"""Table 1 of Hirono, Tanaka, Fukushima (ICML 2024), in nats."""
PAPER_EPOCHS = 16000
"""The paper trains 16000 epochs of 3000 points in batches of 512 (about 96000 steps)."""


@dataclass(frozen=True)
class Config:
    """Settings of one case; the defaults follow the paper except the training length.

    ``data``: ``"swiss-roll"`` or ``"25gauss"``; ``sde``: ``"simple"`` or ``"cosine"`` (the cases
    of :data:`PAPER_TABLE1`). Training: ``n_steps`` Adam steps of ``batch_size`` on ``n_data``
    points at ``learning_rate`` (resumable through ``checkpoint``; :func:`.run` keeps one
    beside its results folder when None). Likelihood: ``n_eval`` held-out points at each
    solver tolerance of ``tols``, at most ``max_steps`` solver steps per solve (a point whose
    solves fail is reported and left out; the others go on). Samples: ``n_samples`` per ``h``
    of ``h_grid`` (which contains 0), ``sampler_steps`` Heun steps. ``seed`` fixes every draw.
    """

    data: str = "swiss-roll"
    sde: str = "simple"
    n_steps: int = 20000
    batch_size: int = 512
    learning_rate: float = 1e-3
    n_data: int = 3000
    n_eval: int = 256
    tols: tuple[float, ...] = (1e-3, 1e-5)
    n_samples: int = 3000
    h_grid: tuple[float, ...] = (0.0, 0.04, 0.08, 0.12, 0.16, 0.2)
    sampler_steps: int = 500
    seed: int = 0
    checkpoint: str | None = None
    max_steps: int = MAX_STEPS

    def __post_init__(self) -> None:
        if self.data not in DATASETS:
            raise ValueError(f"data must be one of {DATASETS}, got {self.data!r}")
        if (self.data, self.sde) not in PAPER_TABLE1:
            valid = sorted({s for _, s in PAPER_TABLE1})
            raise ValueError(f"sde must be one of {valid} (the paper's schedules; "
                             f"all: {sorted(SDES)}), got {self.sde!r}")
        for name in ("n_data", "n_eval", "n_samples", "sampler_steps", "batch_size", "max_steps"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)}")
        if self.n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {self.n_steps}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not self.tols or not min(self.tols) > 0:
            raise ValueError(f"tols must be a non-empty tuple of numbers > 0, got {self.tols}")
        if any(h < 0 for h in self.h_grid) or 0.0 not in self.h_grid:
            raise ValueError(f"h_grid must be >= 0 and contain 0, got {self.h_grid}")
