"""One sampling run of 2-D phi^4 theory with HMC, a normalizing flow or a diffusion model.

:func:`run_method` samples ``exp(-S[phi])`` at ``(L, m^2, lambda)`` and returns
``(summary, idata)``: the InferenceData of the configurations (``posterior["phi"]``) and a
JSON-ready summary with the observables and their errors (:func:`observables.summarize`),
ESS/N, acceptance, ``tau_int`` of ``|M|`` and the wall time per independent sample
(``wall time of the sampling phase / (N / 2 tau_int)``; training is reported separately).

* ``hmc``: :func:`bayesqcd.inference.hmc.run_hmc`, vectorized chains; ESS/N = ``1/(2 tau_int)``.
* ``flow``: :class:`~bayesqcd.lattice.flow.LatticeFlow` trained by reverse KL, then
  independence Metropolis; ESS/N is that of the importance weights of the proposals.
* ``diffusion``: HMC configurations train a :class:`~bayesqcd.lattice.diffusion_sq.FieldScore`;
  probability-flow ODE proposals (``h = 0``) with their exact density, or h-family draws
  (``h > 0``) with their PF-ODE density, then independence Metropolis.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from bayesqcd.lattice.action import Phi4Action, mass_to_hopping
from bayesqcd.lattice import stats
from bayesqcd.lattice.observables import summarize, ward_identity

METHODS = ("hmc", "flow", "diffusion")


@dataclass(frozen=True)
class RunConfig:
    """Settings of :func:`run_method` (defaults: the tutorial point of Albergo et al.)."""

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

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.L < 2 or self.L % 2:
            raise ValueError(f"L must be even and >= 2, got {self.L}")
        if self.method == "diffusion" and self.L % 4:
            raise ValueError(f"the diffusion model's U-Net needs L divisible by 4, got {self.L}")
        Phi4Action(self.m2, self.lam)  # validates m2, lam
        for name in ("hmc_chains", "hmc_samples", "hmc_leapfrog", "flow_layers", "flow_batch",
                     "score_width", "score_batch", "n_proposals", "proposal_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("flow_steps", "score_steps", "hmc_warmup"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.h >= 0:
            raise ValueError(f"h must be >= 0, got {self.h}")
        if not self.ode_tol > 0:
            raise ValueError(f"ode_tol must be > 0, got {self.ode_tol}")


def _hmc(cfg: RunConfig, action: Phi4Action, key, progress: bool):
    from bayesqcd.inference.hmc import run_hmc

    init = 0.1 * jax.random.normal(jax.random.fold_in(key, 1), (cfg.hmc_chains, cfg.L, cfg.L),
                                   jnp.zeros(()).dtype)
    return run_hmc(action.potential, init, key=key, num_warmup=cfg.hmc_warmup,
                   num_samples=cfg.hmc_samples, num_chains=cfg.hmc_chains,
                   num_steps=cfg.hmc_leapfrog, step_size=0.1, var_name="phi", batched_init=True,
                   progress=progress)


def run_method(cfg: RunConfig, progress: bool = True):
    """Sample with ``cfg.method``; returns ``(summary dict, InferenceData)``."""
    from bayesqcd.inference.flow import sample_independence_metropolis

    action = Phi4Action(cfg.m2, cfg.lam)
    key = jax.random.key(cfg.seed)
    k_train, k_sample, k_data = jax.random.split(key, 3)
    extra: dict = {}
    train_time = 0.0
    if cfg.method == "hmc":
        idata = _hmc(cfg, action, k_sample, progress)
        attrs = idata.posterior.attrs
        acceptance = float(attrs["mean_accept_prob"])
    else:
        if cfg.method == "flow":
            from bayesqcd.inference.flow import train_reverse_kl
            from bayesqcd.lattice.flow import LatticeFlow

            model = LatticeFlow(cfg.L, cfg.flow_layers, cfg.flow_hidden,
                                key=jax.random.fold_in(k_train, 0))
            t0 = time.perf_counter()
            res = train_reverse_kl(model, action.log_prob, k_train, n_steps=cfg.flow_steps,
                                   batch_size=cfg.flow_batch, learning_rate=cfg.flow_lr,
                                   checkpoint=cfg.checkpoint, progress=progress)
            train_time = time.perf_counter() - t0
            proposal = res.model
            extra["loss_history"] = res.history
        else:
            from bayesqcd.diffusion.sde import VP
            from bayesqcd.lattice.diffusion_sq import (FieldScore, HFamilyProposal, PFODEProposal,
                                                       train_field_score)

            data = _hmc(cfg, action, k_data, progress)
            extra["hmc_data_time_s"] = float(data.posterior.attrs["wall_time_s"])
            configs = jnp.asarray(data.posterior["phi"].values).reshape(-1, cfg.L, cfg.L)
            sde = VP()
            t0 = time.perf_counter()
            res = train_field_score(FieldScore(cfg.score_width, key=jax.random.fold_in(k_train, 0)),
                                    sde, configs, k_train, n_steps=cfg.score_steps,
                                    batch_size=cfg.score_batch, learning_rate=cfg.score_lr,
                                    checkpoint=cfg.checkpoint, progress=progress)
            train_time = time.perf_counter() - t0
            if cfg.h == 0:
                proposal = PFODEProposal(res.model, sde, cfg.L, rtol=cfg.ode_tol, atol=cfg.ode_tol)
            else:
                proposal = HFamilyProposal(res.model, sde, cfg.L, h=cfg.h, rtol=cfg.ode_tol,
                                           atol=cfg.ode_tol)
            extra["loss_history"] = res.history
        idata = sample_independence_metropolis(proposal, action.log_prob, k_sample, cfg.n_proposals,
                                               batch_size=cfg.proposal_batch, var_name="phi",
                                               progress=progress)
        attrs = idata.posterior.attrs
        acceptance = float(attrs["acceptance"])
    phi = idata.posterior["phi"].values
    obs = summarize(phi)
    ward = np.asarray(ward_identity(jax.grad(action), jnp.asarray(phi)))
    v, e = stats.jackknife(lambda w: w, stats.bin_means(ward, obs["bin_size"]))
    obs["ward_identity"] = {"value": float(v), "error": float(e), "exact": 1.0}
    tau = obs["tau_int_absM"]["value"]
    n_conf = obs["n_configs"]
    wall = float(attrs["wall_time_s"])
    ess_per_n = float(attrs["ess_per_n"]) if cfg.method != "hmc" else 1.0 / (2.0 * tau)
    kappa, lam_h = mass_to_hopping(cfg.m2, cfg.lam)
    summary = {
        "config": {k: (list(v) if isinstance(v, tuple) else v)
                   for k, v in dataclasses.asdict(cfg).items()},
        "hopping": {"kappa": kappa, "lambda_h": lam_h},
        "observables": obs,
        "ess_per_n": ess_per_n,
        "chain_ess_per_n": 1.0 / (2.0 * tau),
        "acceptance": acceptance,
        "tau_int_absM": obs["tau_int_absM"],
        "n_configs": n_conf,
        "wall_time_s": wall,
        "train_time_s": train_time,
        "time_per_independent_sample_s": wall / obs["n_independent"],
        "time_per_independent_sample_incl_training_s":
            (wall + train_time + extra.get("hmc_data_time_s", 0.0)) / obs["n_independent"],
        **extra,
    }
    return summary, idata


def plot_run(summary: dict, idata, out: Path) -> list[str]:
    """Histogram of ``M``, ``G(t)`` and ``m_eff(t)`` with errors; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phi = idata.posterior["phi"].values
    M = phi.mean(axis=(-2, -1)).ravel()
    obs = summary["observables"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].hist(M, bins=60, density=True)
    axes[0].set_xlabel("M")
    G, dG = np.asarray(obs["G_t"]["value"]), np.asarray(obs["G_t"]["error"])
    axes[1].errorbar(np.arange(len(G)), G, dG, fmt="o")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("t")
    axes[1].set_ylabel("G(t)")
    me, dme = np.asarray(obs["m_eff"]["value"], float), np.asarray(obs["m_eff"]["error"], float)
    axes[2].errorbar(np.arange(1, len(me) + 1), me, dme, fmt="o")
    axes[2].set_xlabel("t")
    axes[2].set_ylabel("m_eff(t)")
    fig.suptitle(f"{summary['config']['method']}: L={summary['config']['L']}, "
                 f"m2={summary['config']['m2']}, lambda={summary['config']['lam']}")
    fig.tight_layout()
    fig.savefig(out / "observables.png", dpi=110)
    plt.close(fig)
    return ["observables.png"]
