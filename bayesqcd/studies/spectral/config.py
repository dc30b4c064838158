"""The settings of the spectral study (:class:`Config`) and its problems (:func:`make_problem`,
:func:`make_problems`): a named mock at each noise level, or a user's correlator file (the data
source is pluggable; every method and metric runs on either)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from bayesqcd import spectral as sp

METHOD_NAMES: tuple[str, ...] = ("nuts", "nn", "score", "diffusion-prior", "mem", "br")
"""The reconstruction methods, in the order of the tables (see :data:`.methods.METHODS`)."""

NEEDS_PRIOR: frozenset[str] = frozenset({"score", "diffusion-prior"})
"""Methods that need a trained diffusion prior (:func:`.prior.train_prior`)."""

_INT_MINIMA: dict[str, int] = {
    "n_omega": 2, "n_data": 2, "num_warmup": 0, "num_samples": 1, "num_chains": 1, "max_tree_depth": 1,
    "gp_modes": 1, "nn_width": 1, "nn_depth": 1, "nn_map_starts": 1, "nn_map_iter": 1, "prior_k": 1,
    "prior_width": 1, "prior_steps": 1, "prior_family": 1, "score_samples": 1, "sampler_steps": 1,
    "dp_warmup": 0, "dp_samples": 1, "dp_tree_depth": 1, "dp_chains": 1, "dp_init_draws": 1,
    "mem_samples": 0,
}
_POSITIVE: tuple[str, ...] = ("omega_max", "gp_length_scale", "nn_prior_scale", "dps_zeta", "dp_rtol")
DEFAULT_MOCK = "bw1"
"""The mock of ``Config()`` (neither ``mock`` nor ``data`` given)."""
MOCK_N_T, MOCK_TEMPERATURE = 32, 0.25
"""``n_t`` and ``temperature`` of the mocks' euclidean and thermal kernels when not set."""
_CHOICES: dict[str, tuple[str, ...]] = {
    "kernel": ("kallen-lehmann", "euclidean", "thermal"),
    "noise": ("relative", "absolute"),
    "guidance": ("tweedie", "dps"),
    "solver": ("ode", "sde"),
    "covariance": ("jacobian", "isotropic"),
}


@dataclass(frozen=True)
class Config:
    """Settings of one spectral study (defaults: Wang-Shi-Zhou's grid and momenta).

    ``omega`` (and ``omega_max``) in the energy unit of the kernel; ``eps`` is the relative (or
    absolute) noise level of the correlator. Every method, every noise level of ``eps``, runs
    on the mock ``mock`` with noise drawn from ``seed``; or every method runs once on the
    correlator file ``data`` (then ``eps``, ``noise``, ``correlation``, ``n_data`` are unused).

    Attributes:
        mock: the mock spectral function, one of :data:`bayesqcd.spectral.MOCKS` (default
            :data:`DEFAULT_MOCK` unless ``data`` is given; not both).
        data: a correlator file (columns ``x, value, error``; :func:`bayesqcd.spectral.load_correlator`).
        data_covariance: its covariance file (a square matrix), instead of or with the error column.
        omega_min: the grid is ``(omega_min, omega_max]`` (:func:`bayesqcd.spectral.omega_grid`).
        n_t, temperature: the euclidean kernel's time extent and the thermal kernel's
            temperature (needed with ``data``; for mocks default 32 and 0.25).
        methods: the reconstruction methods (from :data:`METHOD_NAMES`), run in this order.
        eps: the noise levels (``> 0``); a single number is accepted.
        n_omega, omega_max, n_data, kernel, noise, correlation: the problem
            (:func:`bayesqcd.spectral.make_mock`; ``kernel=None``: the mock's own,
            :data:`bayesqcd.spectral.MOCK_KERNEL`, else Kallen-Lehmann).
        seed: noise draw (``seed``), prior training (``seed + 1``), method ``i`` (``seed + 10 + i``).
        num_warmup, num_samples, num_chains, max_tree_depth: NUTS of ``nuts`` and ``nn``.
        gp_length_scale, gp_modes: the GP prior of ``nuts`` (:func:`bayesqcd.models.spectral.gp_basis`).
        nn_width, nn_depth, nn_prior_scale: the Bayesian network of ``nn``.
        nn_map_starts, nn_map_iter: L-BFGS starts per chain and steps per start (``nn``).
        prior_k, prior_width, prior_steps, prior_family, prior_checkpoint: the diffusion prior
            (coarse points, network width, score-matching steps, training spectra, checkpoint file
            to resume or reuse).
        score_samples, guidance, solver, covariance, x0_clip, sampler_steps, dps_zeta: the
            guided score sampler (``score``; :func:`bayesqcd.inference.score_posterior.sample_posterior`);
            ``sampler_steps=None``: Euler steps from the data's noise level
            (:func:`.methods.score_steps`: 800 down to a relative noise of 1e-4, more below).
        dp_warmup, dp_samples, dp_tree_depth, dp_chains, dp_init_draws, dp_rtol: NUTS of
            ``diffusion-prior`` (chains start at the best of ``dp_init_draws`` guided draws).
        mem_samples: redrawn data sets of the error band of MEM and BR (0: no band).
    """

    mock: str | None = None
    methods: tuple[str, ...] = ("mem",)
    eps: tuple[float, ...] = (1e-3,)
    n_omega: int = 500
    omega_max: float = 20.0
    n_data: int = 25
    kernel: str | None = None
    noise: str = "relative"
    correlation: float = 0.0
    seed: int = 0
    data: str | None = None
    data_covariance: str | None = None
    omega_min: float = 0.0
    n_t: int | None = None
    temperature: float | None = None
    # NUTS (GP and NN models)
    num_warmup: int = 300
    num_samples: int = 300
    num_chains: int = 2
    max_tree_depth: int = 10
    gp_length_scale: float = 1.0
    gp_modes: int = 48
    nn_width: int = 16
    nn_depth: int = 2
    nn_prior_scale: float = 2.0
    nn_map_starts: int = 8
    nn_map_iter: int = 3000
    # diffusion prior
    prior_k: int = 64
    prior_width: int = 256
    prior_steps: int = 20000
    prior_family: int = 20000
    prior_checkpoint: str | None = None
    score_samples: int = 300
    guidance: str = "tweedie"
    solver: str = "sde"
    covariance: str = "isotropic"
    x0_clip: float | None = 5.0
    sampler_steps: int | None = None
    dps_zeta: float = 0.5
    dp_warmup: int = 100
    dp_samples: int = 100
    dp_tree_depth: int = 6
    dp_chains: int = 2
    dp_init_draws: int = 16
    dp_rtol: float = 1e-3
    # MEM and BR
    mem_samples: int = 50

    def __post_init__(self) -> None:
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        eps = (float(self.eps),) if np.ndim(self.eps) == 0 else tuple(float(e) for e in self.eps)
        object.__setattr__(self, "methods", methods)
        object.__setattr__(self, "eps", eps)
        self._check_source()
        if self.data is None and self.mock not in sp.MOCKS:
            raise ValueError(f"mock = {self.mock!r} is not a known mock; valid: {', '.join(sp.MOCKS)}")
        if not methods:
            raise ValueError(f"methods is empty; choose from {', '.join(METHOD_NAMES)}")
        for m in methods:
            if m not in METHOD_NAMES:
                raise ValueError(f"methods: {m!r} is not a method; valid: {', '.join(METHOD_NAMES)}")
        if len(set(methods)) != len(methods):
            raise ValueError(f"methods = {methods} names a method twice")
        if not eps:
            raise ValueError("eps (noise levels) is empty")
        for e in eps:
            if not (e > 0 and math.isfinite(e)):
                raise ValueError(f"eps (noise level) = {e} is outside the valid range (0, inf)")
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices and not (name == "kernel" and self.kernel is None):
                raise ValueError(f"{name} = {getattr(self, name)!r} is not valid; choose from {', '.join(choices)}")
        for name, low in _INT_MINIMA.items():
            value = getattr(self, name)
            if value is None and name == "sampler_steps":  # chosen from the noise level
                continue
            if int(value) != value or value < low:
                raise ValueError(f"{name} = {value} is outside the valid range: integers >= {low}")
        for name in _POSITIVE:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} = {getattr(self, name)} is outside the valid range (0, inf)")
        if not 0.0 <= self.correlation < 1.0:
            raise ValueError(f"correlation = {self.correlation} is outside the valid range [0, 1)")
        if self.x0_clip is not None and not self.x0_clip > 0:
            raise ValueError(f"x0_clip = {self.x0_clip} is outside the valid range: > 0 or None")

    def _check_source(self) -> None:
        """Exactly one of ``mock`` and ``data``; the kernel's settings for data."""
        if self.data is not None and self.mock is not None:
            raise ValueError(f"mock = {self.mock!r} and data = {self.data!r} are mutually exclusive: "
                             "reconstruct a named mock or a correlator file, not both")
        if self.data is None:
            if self.mock is None:
                object.__setattr__(self, "mock", DEFAULT_MOCK)
            if self.data_covariance is not None:
                raise ValueError(f"data_covariance = {self.data_covariance!r} needs data (a correlator file)")
        else:
            if not str(self.data).strip():
                raise ValueError("data (the correlator file) is empty: name a file")
            if self.kernel is None:
                raise ValueError(f"kernel is not set; a correlator file needs it named: "
                                 f"{', '.join(_CHOICES['kernel'])}")
            if self.kernel == "euclidean" and self.n_t is None:
                raise ValueError("n_t (the lattice's time extent) is not set; the euclidean kernel needs it")
            if self.kernel == "thermal" and self.temperature is None:
                raise ValueError("temperature is not set; the thermal kernel needs it")
        if self.n_t is not None and (int(self.n_t) != self.n_t or self.n_t < 1):
            raise ValueError(f"n_t = {self.n_t} is outside the valid range: integers >= 1")
        if self.temperature is not None and not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature = {self.temperature} is outside the valid range (0, inf)")
        if not (math.isfinite(self.omega_min) and 0 <= self.omega_min < self.omega_max):
            raise ValueError(f"omega_min = {self.omega_min} is outside the valid range [0, omega_max = "
                             f"{self.omega_max})")

    @property
    def source(self) -> str:
        """``"data"`` for a correlator file, else ``"mock"``."""
        return "data" if self.data is not None else "mock"

    @property
    def kernel_name(self) -> str:
        """The kernel in use (``kernel``, or the mock's own)."""
        return self.kernel or sp.MOCK_KERNEL.get(self.mock, "kallen-lehmann")

    def replace(self, **changes) -> Config:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def make_problem(config: Config, eps: float | None = None) -> sp.MockData:
    """The problem of ``config``: the mock at noise level ``eps`` (default: the first of
    ``config.eps``), noise drawn with ``jax.random.key(config.seed)``; or the correlator file
    ``config.data`` (``eps`` unused), read and checked (:func:`bayesqcd.spectral.load_correlator`)."""
    if config.data is not None:
        return _data_problem(config)[0]
    eps = config.eps[0] if eps is None else float(eps)
    return sp.make_mock(jax.random.key(config.seed), config.mock, eps=eps, n_omega=config.n_omega,
                        omega_max=config.omega_max, omega_min=config.omega_min, kernel=config.kernel,
                        n_data=config.n_data, noise=config.noise, correlation=config.correlation,
                        n_t=MOCK_N_T if config.n_t is None else config.n_t,
                        temperature=MOCK_TEMPERATURE if config.temperature is None else config.temperature)


def _data_problem(config: Config) -> tuple[sp.MockData, dict[str, Any]]:
    corr = sp.load_correlator(config.data, config.data_covariance)
    problem = sp.data_problem(corr, config.kernel, n_omega=config.n_omega, omega_max=config.omega_max,
                              omega_min=config.omega_min, n_t=config.n_t, temperature=config.temperature)
    return problem, {**corr.source, "n_points": int(corr.x.shape[0])}


def make_problems(config: Config) -> tuple[list[tuple[str, sp.MockData]], dict[str, Any]]:
    """Every problem of ``config``, made (and checked) before any expensive work.

    Returns:
        ``[(label, problem)]``: one per noise level of a mock (label ``"1e-3"``, ...), or
        ``[("data", problem)]`` for a correlator file; and the source's description for
        ``summary.json``: ``kind`` (``"mock"`` or ``"data"``), the kernel and its settings, the
        grid, and for data the files' paths, SHA-256 and sizes (:func:`bayesqcd.spectral.load_correlator`).
    """
    grid = {"n_omega": config.n_omega, "omega_min": config.omega_min, "omega_max": config.omega_max}
    info: dict[str, Any] = {"kind": config.source, "kernel": config.kernel_name, "grid": grid}
    if config.kernel_name == "euclidean":
        info["n_t"] = MOCK_N_T if config.n_t is None else config.n_t
    if config.kernel_name == "thermal":
        info["temperature"] = MOCK_TEMPERATURE if config.temperature is None else config.temperature
    if config.data is not None:
        problem, info["data"] = _data_problem(config)
        return [("data", problem)], info
    info.update(mock=config.mock, noise=config.noise, correlation=config.correlation, n_data=config.n_data)
    return [(sp.log10_eps_label(e), make_problem(config, e)) for e in config.eps], info
