"""The neutron-star EoS posterior from observations (``bayesqcd ns-eos``, the main job).

:func:`infer` runs an engine of :mod:`bayesqcd.inference` on
:func:`bayesqcd.models.neutron_star.neutron_star_model`; :func:`run` does the whole study
for a :class:`Config`: load the data, infer, write the results folder
(:func:`~bayesqcd.studies.neutron_star.report.write_results`).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import jax

from bayesqcd.data import ObservationSet
from bayesqcd.inference.cores import default_chains
from bayesqcd.inference.nuts import run_nuts
from bayesqcd.inference.results import diagnostics
from bayesqcd.inference.svi import run_svi
from bayesqcd.models.neutron_star import EOS_PRIORS, SoundSpeedPrior, neutron_star_model, ns_data
from bayesqcd.precision import x64_scope
from bayesqcd.report import ResultsDir, results_dir
from bayesqcd.studies.neutron_star import report
from bayesqcd.studies.neutron_star.data import DataSpec, load_data
from bayesqcd.tov import INFERENCE, SolverConfig

ENGINES = ("nuts", "svi")
EOS_CHOICES = ("cs2", "polytrope", "nn")
GUIDES = ("diag", "fullrank", "flow")
INIT_MASS = ("identity", "hessian")


@dataclass(frozen=True)
class Config:
    """Settings of one EoS inference (defaults: ``bayesqcd ns-eos``).

    Attributes:
        data: which observations (:class:`~bayesqcd.studies.neutron_star.data.DataSpec`).
        seed: seed of the mock data and of the sampler.
        eos: EoS prior: ``cs2`` (speed-of-sound segments), ``polytrope``, ``nn``.
        segments: c_s^2 segments of the ``cs2`` prior.
        method: ``nuts`` or ``svi``.
        guide: SVI guide (``diag``, ``fullrank``, ``flow``).
        chains: NUTS chains; ``None`` (default): one per CPU core, 2 to 4
            (:func:`bayesqcd.inference.cores.default_chains`).
        warmup, target_accept: NUTS settings.
        init_mass: the inverse mass matrix NUTS's warm-up starts from (``identity`` or
            ``hessian``: the potential's curvature at the starts;
            :func:`~bayesqcd.inference.nuts.run_nuts`).
        samples: NUTS draws per chain (the most, with ``ess``); the number of SVI guide draws.
        ess: NUTS stops once the minimum bulk effective sample size over the EoS parameters
            reaches ``ess`` (with R-hat <= 1.01), or at ``samples`` draws per chain; 0 draws
            ``samples`` per chain.
        svi_steps: SVI optimisation steps.
    """

    data: DataSpec = field(default_factory=DataSpec)
    seed: int = 0
    eos: str = "cs2"
    segments: int = 5
    method: str = "nuts"
    guide: str = "fullrank"
    chains: int | None = None
    warmup: int = 300
    samples: int = 1000
    ess: float = 400.0
    target_accept: float = 0.8
    init_mass: str = "identity"
    svi_steps: int = 2000

    def __post_init__(self) -> None:
        for name, choices in (("eos", EOS_CHOICES), ("method", ENGINES), ("guide", GUIDES),
                              ("init_mass", INIT_MASS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} = {getattr(self, name)!r}: choose one of {choices}")
        if self.chains is None:
            object.__setattr__(self, "chains", default_chains())
        for name in ("segments", "chains", "samples", "svi_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)} is outside the valid range [1, inf)")
        if self.warmup < 0:
            raise ValueError(f"warmup = {self.warmup} is outside the valid range [0, inf)")
        if self.ess < 0:
            raise ValueError(f"ess = {self.ess} is outside the valid range [0, inf) (0: a fixed number of draws)")
        if not 0 < self.target_accept < 1:
            raise ValueError(f"target_accept = {self.target_accept} is outside the valid range (0, 1)")


def infer(obs: ObservationSet, *, eos: str = "cs2", segments: int = 5, method: str = "nuts", seed: int = 0,
          chains: int | None = None, warmup: int = 500, samples: int = 1000, ess: float | None = None,
          target_accept: float = 0.8, guide: str = "fullrank", svi_steps: int = 2000,
          init_mass: str = "identity", progress: bool = True) -> Any:
    """Run NUTS or SVI on the neutron-star model for ``obs``; returns ``arviz.InferenceData``.

    With ``ess``, NUTS stops once the minimum bulk ESS over the EoS parameters reaches it
    (:func:`~bayesqcd.inference.nuts.run_nuts`'s ``ess_target``). Needs float64
    (:func:`bayesqcd.enable_x64`).
    """
    data = ns_data(obs)
    if segments < 1:
        raise ValueError(f"segments = {segments} is outside the valid range [1, inf)")
    prior = SoundSpeedPrior(segments) if eos == "cs2" else EOS_PRIORS[eos]()
    key = jax.random.key(seed)
    if method == "nuts":
        chains = default_chains() if chains is None else chains
        return run_nuts(neutron_star_model, data, prior, key=key, num_warmup=warmup, num_samples=samples,
                        num_chains=chains, target_accept=target_accept, forward_mode=True, progress=progress,
                        ess_target=ess or None, init_mass=init_mass)
    # the ELBO gradient is taken in reverse mode: same tolerances, reverse-mode adjoint
    reverse = SolverConfig(rtol=INFERENCE.rtol, atol=INFERENCE.atol)
    return run_svi(neutron_star_model, data, prior, key=key, guide=guide, num_steps=svi_steps,
                   num_draws=samples, progress=progress, config=reverse)


@x64_scope(True)
def run(config: Config = Config(), out: str | os.PathLike[str] | ResultsDir | None = None, *, progress: bool = True,
        settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Infer the EoS for ``config`` and write the results folder ``out`` (if given).

    Runs in float64 (:func:`bayesqcd.precision.x64_scope`; the caller's setting is restored).
    ``settings`` (e.g. the command line) is recorded in ``summary.json`` beside the config.
    Returns ``{"headline", "diagnostics", "total_wall_time_s"}`` (headline: medians and 68%/95% intervals of R_1.4 [km], M_TOV
    [M_sun], Lambda_1.4, and whether a mock's truth lies in the 90% interval).
    """
    out = results_dir(out)  # a bad results folder fails here, before any work
    obs, truth = load_data(config.data, config.seed)
    start = time.perf_counter()
    idata = infer(obs, eos=config.eos, segments=config.segments, method=config.method, seed=config.seed,
                  chains=config.chains, warmup=config.warmup, samples=config.samples, ess=config.ess,
                  target_accept=config.target_accept, guide=config.guide, svi_steps=config.svi_steps,
                  init_mass=config.init_mass, progress=progress)
    wall = time.perf_counter() - start
    record = {"config": asdict(config), **(settings or {}), "total_wall_time_s": wall,
              "timing_s": timing(idata)}
    diag = diagnostics(idata, report.parameter_names(idata))
    if config.method == "svi":
        diag["pareto_k"] = idata.posterior.attrs.get("pareto_k")
    if out is not None:
        report.write_results(out, idata, observations=obs, settings=record, diagnostics=diag, truth=truth)
    return {"headline": report.headline(idata, truth), "diagnostics": diag, "total_wall_time_s": wall,
            "timing_s": record["timing_s"]}


def timing(idata: Any) -> dict[str, Any]:
    """Where the time of a run went [s]: initialisation, compilation, warm-up, sampling (NUTS), and
    the gradient evaluations (leapfrog steps, warm-up included) and kept draws."""
    attrs = idata.posterior.attrs
    keys = ("init_time_s", "compile_time_s", "warmup_time_s", "sampling_time_s", "wall_time_s",
            "gradient_evaluations", "num_samples", "stopped_by")
    return {k: attrs[k] for k in keys if k in attrs}
