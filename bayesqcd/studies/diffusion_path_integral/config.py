"""The settings of one case of the path-integral reproduction: :class:`Config`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bayesqcd.diffusion.data import DATASETS
from bayesqcd.diffusion.likelihood import MAX_STEPS, RUNAWAY_TAIL, WKB_METHODS
from bayesqcd.diffusion.sde import SDES, LinearSDE, get_sde

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
PAPER_PROTOCOL = {"wkb_method": "fd", "inner_tol": 1e-5, "fd_step": 0.01, "tols": (1e-3, 1e-5)}
"""The likelihood settings of the paper's code as issue 25 describes them: nested central
differences (step 0.01) of inner PF-ODE solves at tolerance 1e-5; the Table's "tol" columns are
the outer tolerance. (Not in the paper's text as summarised in REFERENCE.md, which names only
"solver tolerance 1e-3 and 1e-5".)"""


@dataclass(frozen=True)
class Config:
    """Settings of one case; the defaults follow the paper except the training length and the
    WKB method (the adjoint sweep, exact where the paper takes finite differences).

    ``data``: ``"swiss-roll"`` or ``"25gauss"``; ``sde``: ``"simple"`` or ``"cosine"`` (the cases
    of :data:`PAPER_TABLE1`). ``t_min``: start of the time window (None: the schedule's, 0.01 for
    the paper's); training, sampling, NLL and WKB all use ``[t_min, T]``. Training: for each seed
    of ``seeds`` (independent trainings), ``n_steps`` Adam steps of ``batch_size`` on ``n_data``
    points at ``learning_rate`` (resumable through ``checkpoint``; with several seeds one file
    per seed, ``NAME-seedS.SUFFIX``; :func:`.run` keeps them beside its results folder when None).
    Likelihood: ``n_eval`` held-out points per training at each outer solver tolerance of
    ``tols``, WKB method ``wkb_method`` (``"adjoint"``, ``"fd"`` or ``"autodiff"``; the nested
    ones with inner tolerance ``inner_tol``, None: the outer one, and FD step ``fd_step``), at
    most ``max_steps`` solver steps per solve; ``runaway_tail``: the run-away check
    (:func:`bayesqcd.diffusion.prior_radius`; None: off). A point whose solves fail or run away
    is reported and left out; the others go on. Samples (first seed only): ``n_samples`` per
    ``h`` of ``h_grid`` (which contains 0), ``sampler_steps`` Heun steps.
    """

    data: str = "swiss-roll"
    sde: str = "simple"
    n_steps: int = 20000
    batch_size: int = 512
    learning_rate: float = 1e-3
    n_data: int = 3000
    n_eval: int = 256
    tols: tuple[float, ...] = (1e-3, 1e-5)
    wkb_method: str = "adjoint"
    inner_tol: float | None = None
    fd_step: float = 0.01
    t_min: float | None = None
    n_samples: int = 3000
    h_grid: tuple[float, ...] = (0.0, 0.04, 0.08, 0.12, 0.16, 0.2)
    sampler_steps: int = 500
    seeds: tuple[int, ...] = (0,)
    checkpoint: str | None = None
    max_steps: int = MAX_STEPS
    runaway_tail: float | None = RUNAWAY_TAIL

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
        if self.wkb_method not in WKB_METHODS:
            raise ValueError(f"wkb_method must be one of {WKB_METHODS}, got {self.wkb_method!r}")
        if self.inner_tol is not None and (self.wkb_method == "adjoint" or not self.inner_tol > 0):
            raise ValueError(f"inner_tol must be > 0 and needs wkb_method 'fd' or 'autodiff' (the "
                             f"adjoint sweep has no inner solve), got {self.inner_tol} with "
                             f"{self.wkb_method!r}")
        if not self.fd_step > 0:
            raise ValueError(f"fd_step must be > 0, got {self.fd_step}")
        if self.runaway_tail is not None and not 0 < self.runaway_tail < 1:
            raise ValueError(f"runaway_tail must be in (0, 1) or None, got {self.runaway_tail}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be a non-empty tuple of distinct integers, got {self.seeds}")
        if any(h < 0 for h in self.h_grid) or 0.0 not in self.h_grid:
            raise ValueError(f"h_grid must be >= 0 and contain 0, got {self.h_grid}")
        self.schedule()  # a bad t_min fails here (0 <= t_min < T)

    def schedule(self) -> LinearSDE:
        """The forward SDE of this case on its window (``t_min`` None: the schedule's own)."""
        sde = get_sde(self.sde)
        try:
            return sde.with_window(t_min=self.t_min)
        except ValueError:
            raise ValueError(f"t_min must be in [0, T={sde.T}) for {self.sde}, "
                             f"got {self.t_min}") from None

    def checkpoint_for(self, seed: int) -> str | None:
        """The checkpoint file of the training with ``seed``: ``checkpoint`` itself for one seed,
        ``NAME-seedS.SUFFIX`` beside it for several."""
        if self.checkpoint is None or len(self.seeds) == 1:
            return self.checkpoint
        p = Path(self.checkpoint)
        return str(p.with_name(f"{p.stem}-seed{seed}{p.suffix}"))
