"""One sampling run of 2-D phi^4 theory with HMC, a normalizing flow or a diffusion model.

:func:`compute` samples ``exp(-S[phi])`` at ``(L, m^2, lambda)`` and returns ``(summary, idata)``:
the InferenceData of the configurations (``posterior["phi"]``) and a JSON-ready summary with the
observables and their errors (:func:`bayesqcd.lattice.observables.summarize`), ESS/N,
acceptance, ``tau_int`` of ``|M|`` and the wall time per independent sample (``wall time of the
sampling phase / (N / 2 tau_int)``; training is reported separately). :func:`run` adds the
results folder: ``configs.npz``, ``summary.json`` and ``observables.png``.

* ``hmc``: :func:`bayesqcd.inference.hmc.run_hmc`, vectorized chains; ESS/N = ``1/(2 tau_int)``.
* ``flow``: :class:`~bayesqcd.lattice.flow.LatticeFlow` trained by reverse KL, then
  independence Metropolis; ESS/N is that of the importance weights of the proposals.
* ``diffusion``: HMC configurations train a :class:`~bayesqcd.lattice.diffusion_sq.FieldScore`;
  probability-flow ODE proposals (``h = 0``) with their exact density, or h-family draws
  (``h > 0``) with their PF-ODE density, then independence Metropolis.

Precision: float32, or float64 when ``Config.x64`` is set, for the duration of the run only
(JAX's setting is restored afterwards).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayesqcd.diffusion.sde import VP
from bayesqcd.inference.flow import sample_independence_metropolis, train_reverse_kl
from bayesqcd.inference.hmc import run_hmc
from bayesqcd.lattice import stats
from bayesqcd.lattice.action import Phi4Action, mass_to_hopping
from bayesqcd.lattice.diffusion_sq import (FieldScore, HFamilyProposal, PFODEProposal,
                                           train_field_score)
from bayesqcd.lattice.flow import LatticeFlow
from bayesqcd.lattice.observables import summarize, ward_identity
from bayesqcd.precision import x64_scope
from bayesqcd.report import ResultsDir, atomic_results_dir, results_dir, versions, write_json
from bayesqcd.studies.lattice.config import Config
from bayesqcd.studies.lattice.plots import plot_observables


def _hmc(cfg: Config, action: Phi4Action, key, progress: bool):
    init = 0.1 * jax.random.normal(jax.random.fold_in(key, 1), (cfg.hmc_chains, cfg.L, cfg.L),
                                   jnp.zeros(()).dtype)
    return run_hmc(action.potential, init, key=key, num_warmup=cfg.hmc_warmup,
                   num_samples=cfg.hmc_samples, num_chains=cfg.hmc_chains,
                   num_steps=cfg.hmc_leapfrog, step_size=0.1, var_name="phi", batched_init=True,
                   progress=progress)


def _train_settings(cfg: Config) -> dict[str, Any]:
    """What a training checkpoint of ``cfg`` must match: the theory, the method and its network."""
    net = ({"flow_layers": cfg.flow_layers, "flow_hidden": list(cfg.flow_hidden)} if cfg.method == "flow"
           else {"score_width": cfg.score_width, "hmc_samples": cfg.hmc_samples})
    return {"study": "lattice", "method": cfg.method, "L": cfg.L, "m2": cfg.m2, "lam": cfg.lam,
            "seed": cfg.seed, "x64": cfg.x64, **net}


def _flow_proposal(cfg: Config, action: Phi4Action, k_train, k_data, progress: bool):
    """A :class:`LatticeFlow` trained by reverse KL: ``(proposal, training time, extras)``."""
    model = LatticeFlow(cfg.L, cfg.flow_layers, cfg.flow_hidden, key=jax.random.fold_in(k_train, 0))
    t0 = time.perf_counter()
    res = train_reverse_kl(model, action.log_prob, k_train, n_steps=cfg.flow_steps,
                           batch_size=cfg.flow_batch, learning_rate=cfg.flow_lr,
                           checkpoint=cfg.checkpoint, progress=progress, settings=_train_settings(cfg))
    return res.model, time.perf_counter() - t0, {"loss_history": res.history,
                                                 "resumed_from_step": res.resumed_step}


def _diffusion_proposal(cfg: Config, action: Phi4Action, k_train, k_data, progress: bool):
    """A score model trained on HMC configurations, as a PF-ODE (``h = 0``) or h-family proposal."""
    data = _hmc(cfg, action, k_data, progress)
    extra: dict[str, Any] = {"hmc_data_time_s": float(data.posterior.attrs["wall_time_s"])}
    configs = jnp.asarray(data.posterior["phi"].values).reshape(-1, cfg.L, cfg.L)
    sde = VP()
    t0 = time.perf_counter()
    res = train_field_score(FieldScore(cfg.score_width, key=jax.random.fold_in(k_train, 0)),
                            sde, configs, k_train, n_steps=cfg.score_steps,
                            batch_size=cfg.score_batch, learning_rate=cfg.score_lr,
                            checkpoint=cfg.checkpoint, progress=progress, settings=_train_settings(cfg))
    train_time = time.perf_counter() - t0
    if cfg.h == 0:
        proposal = PFODEProposal(res.model, sde, cfg.L, rtol=cfg.ode_tol, atol=cfg.ode_tol)
    else:
        proposal = HFamilyProposal(res.model, sde, cfg.L, h=cfg.h, rtol=cfg.ode_tol,
                                   atol=cfg.ode_tol)
    extra["loss_history"] = res.history
    extra["resumed_from_step"] = res.resumed_step
    return proposal, train_time, extra


_PROPOSALS = {"flow": _flow_proposal, "diffusion": _diffusion_proposal}


def compute(config: Config, *, progress: bool = True):
    """Sample with ``config.method``, without writing anything.

    Returns:
        ``(summary, idata)``: the JSON-ready summary (what :func:`run` returns) and the
        InferenceData of the configurations, ``posterior["phi"]`` shaped ``(chains, draws, L, L)``.
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a bayesqcd.studies.lattice.Config, got {type(config)}")
    cfg = config
    with x64_scope(cfg.x64):
        action = Phi4Action(cfg.m2, cfg.lam)
        k_train, k_sample, k_data = jax.random.split(jax.random.key(cfg.seed), 3)
        extra: dict[str, Any] = {}
        train_time = 0.0
        if cfg.method == "hmc":
            idata = _hmc(cfg, action, k_sample, progress)
            acceptance = float(idata.posterior.attrs["mean_accept_prob"])
        else:
            proposal, train_time, extra = _PROPOSALS[cfg.method](cfg, action, k_train, k_data,
                                                                 progress)
            idata = sample_independence_metropolis(proposal, action.log_prob, k_sample,
                                                   cfg.n_proposals, batch_size=cfg.proposal_batch,
                                                   var_name="phi", progress=progress)
            acceptance = float(idata.posterior.attrs["acceptance"])
        summary = _summary(cfg, action, idata, acceptance, train_time, extra)
    return summary, idata


def _summary(cfg: Config, action: Phi4Action, idata, acceptance: float, train_time: float,
             extra: dict[str, Any]) -> dict[str, Any]:
    attrs = idata.posterior.attrs
    phi = idata.posterior["phi"].values
    obs = summarize(phi)
    ward = np.asarray(ward_identity(jax.grad(action), jnp.asarray(phi)))
    v, e = stats.jackknife(lambda w: w, stats.bin_means(ward, obs["bin_size"]))
    obs["ward_identity"] = {"value": float(v), "error": float(e), "exact": 1.0}
    tau = obs["tau_int_absM"]["value"]
    wall = float(attrs["wall_time_s"])
    ess_per_n = float(attrs["ess_per_n"]) if cfg.method != "hmc" else 1.0 / (2.0 * tau)
    kappa, lam_h = mass_to_hopping(cfg.m2, cfg.lam)
    return {
        "config": {k: (list(v) if isinstance(v, tuple) else v)
                   for k, v in dataclasses.asdict(cfg).items()},
        "hopping": {"kappa": kappa, "lambda_h": lam_h},
        "observables": obs,
        "ess_per_n": ess_per_n,
        "chain_ess_per_n": 1.0 / (2.0 * tau),
        "acceptance": acceptance,
        "tau_int_absM": obs["tau_int_absM"],
        "n_configs": obs["n_configs"],
        "wall_time_s": wall,
        "train_time_s": train_time,
        "time_per_independent_sample_s": wall / obs["n_independent"],
        "time_per_independent_sample_incl_training_s":
            (wall + train_time + extra.get("hmc_data_time_s", 0.0)) / obs["n_independent"],
        **extra,
    }


def run(config: Config, out: str | os.PathLike[str] | ResultsDir | None = None, *,
        progress: bool = True) -> dict[str, Any]:
    """Sample (:func:`compute`) and, when ``out`` is given, write the results folder atomically.

    ``out`` is checked first (:func:`bayesqcd.report.results_dir`: a new or empty folder, or a
    :class:`~bayesqcd.report.ResultsDir` made with ``overwrite``), before any work. The folder holds ``configs.npz`` (``phi``, ``(chains, draws, L, L)``), ``observables.png``
    (:func:`plot_observables`) and ``summary.json`` (the returned summary, with ``figures`` and
    ``versions``).

    Returns:
        The summary: observables with errors, ESS/N, acceptance, ``tau_int_absM``, wall times.
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a bayesqcd.studies.lattice.Config, got {type(config)}")
    out = results_dir(out)  # a bad results folder fails here, before any work
    summary, idata = compute(config, progress=progress)
    if out is not None:
        with atomic_results_dir(out) as tmp:
            np.savez_compressed(tmp / "configs.npz", phi=idata.posterior["phi"].values)
            plot_observables(summary, idata, tmp / "observables.png")
            summary["figures"] = ["observables.png"]
            summary["versions"] = versions()
            write_json(tmp / "summary.json", summary)
    return summary
