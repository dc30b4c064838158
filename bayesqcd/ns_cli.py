"""``bayesqcd ns-eos``: Bayesian inversion of the neutron-star EoS from observations.

    bayesqcd ns-eos --out results/                       # real data, c_s^2 prior, NUTS
    bayesqcd ns-eos --mock SLy --n-obs 6 --out mock/      # recover a known EoS
    bayesqcd ns-eos --eos nn --method svi --guide flow --out nn/
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

ENGINES = ("nuts", "svi")
EOS_CHOICES = ("cs2", "polytrope", "nn")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ns-eos`` subcommand."""
    p = subparsers.add_parser(
        "ns-eos",
        help="posterior of the dense-matter EoS from neutron-star observations (the main job)",
        description="Sample the posterior of the neutron-star equation of state given NICER "
        "mass-radius measurements, radio pulsar masses and the GW170817 tidal constraint, and "
        "write posterior.nc, summary.json, summary.csv and figures to --out.",
    )
    add_data_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="random seed (mock data and sampler)")
    p.add_argument("--eos", choices=EOS_CHOICES, default="cs2",
                   help="EoS prior: speed-of-sound segments (default), piecewise polytrope, neural network")
    p.add_argument("--segments", type=int, default=5, help="c_s^2 segments of the cs2 prior (default 5)")
    p.add_argument("--method", choices=ENGINES, default="nuts", help="inference engine (default nuts)")
    p.add_argument("--guide", choices=("diag", "fullrank", "flow"), default="fullrank", help="SVI guide")
    p.add_argument("--chains", type=int, default=4, help="NUTS chains (default 4)")
    p.add_argument("--warmup", type=int, default=300, help="NUTS warm-up iterations per chain (default 300)")
    p.add_argument("--samples", type=int, default=500, help="draws per chain / from the guide (default 500)")
    p.add_argument("--target-accept", type=float, default=0.8, help="NUTS target acceptance (default 0.8)")
    p.add_argument("--svi-steps", type=int, default=2000, help="SVI optimization steps (default 2000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="results folder (replaced atomically when the run succeeds)")
    p.set_defaults(func=run)


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """The options choosing the observations (shared by the neutron-star subcommands)."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", default="real", metavar="real|FILE",
                     help="'real' (the shipped observations, default) or a table with the columns "
                     "kind,name,quantity,median,lower,upper,cl,use,source")
    src.add_argument("--mock", metavar="EOS", help="mock observations from a named EoS (SLy, APR4, MPA1, H4, WFF1)")
    p.add_argument("--mr-samples", action="append", default=[], metavar="NAME=FILE",
                   help="posterior (M, R) samples of source NAME (replaces its summary; repeatable)")
    p.add_argument("--alternatives", action="store_true", help="also use the alternative analyses (use=0 rows)")
    p.add_argument("--n-obs", type=int, default=6, help="mock mass-radius sources (default 6)")


def mock_observations(eos_name: str, n_obs: int, seed: int, sigma_M: float = 0.1, sigma_R: float = 0.5):
    """Mock data from a named EoS: ``n_obs`` NICER-like (M, R) sources and one radio mass.

    Masses are uniform in [1.1, min(2.0, M_TOV - 0.05)] M_sun; each (M, R) is scattered
    by N(0, sigma_M) and N(0, sigma_R) and reported with those errors (68%). The radio
    pulsar has true mass min(2.0, M_TOV - 0.05) measured with sigma 0.04 M_sun.

    Returns:
        (ObservationSet, truth) with truth = R_1.4, M_TOV, Lambda_1.4 and the true curves.
    """
    import numpy as np

    from bayesqcd import eos as E
    from bayesqcd import tov
    from bayesqcd.data import ObservationSet, RadioMass, mock_mr_observations
    from bayesqcd.models.neutron_star import M_GRID, eos_curves

    if n_obs < 1:
        raise ValueError(f"--n-obs = {n_obs} must be >= 1")
    if eos_name not in E.NAMED:
        raise ValueError(f"--mock {eos_name!r}: choose one of {sorted(E.NAMED)}")
    table = E.named(eos_name)
    curve = tov.mass_radius_curve(table, 100)
    m_tov = float(curve.M_max)
    rng = np.random.default_rng(seed)
    m_hi = min(2.0, m_tov - 0.05)
    masses = rng.uniform(1.1, m_hi, n_obs)
    radii = np.array([float(curve.at_mass(m, "R")) for m in masses])
    obs = mock_mr_observations(masses, radii, seed, sigma_M=sigma_M, sigma_R=sigma_R)
    radio = RadioMass("mock radio pulsar", float(m_hi + 0.04 * rng.standard_normal()), 0.04,
                      f"mock: true M={m_hi:.4f} M_sun")
    p_of_eps, cs2_of_n = (np.asarray(x) for x in eos_curves(table))
    stable = np.asarray(curve.stable)
    truth = {
        "R_1.4": float(curve.at_mass(1.4, "R")),
        "M_TOV": m_tov,
        "Lambda_1.4": float(curve.at_mass(1.4, "Lambda")),
        "curves": {"p_of_eps": p_of_eps, "cs2_of_n": cs2_of_n, "R": np.asarray(curve.stars.R)[stable],
                   "M": np.asarray(curve.stars.M)[stable], "M_GRID": M_GRID},
    }
    return ObservationSet(obs.mr, (radio,), ()), truth


def load_data(args: argparse.Namespace):
    """The ObservationSet (and truth, for mock data) the arguments ask for."""
    from bayesqcd.data import load_mr_samples, load_observations

    truth = None
    if args.mock:
        obs, truth = mock_observations(args.mock, args.n_obs, args.seed)
    else:
        path = None if args.data == "real" else args.data
        obs = load_observations(path, include_alternatives=args.alternatives)
    samples = []
    for spec in args.mr_samples:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--mr-samples {spec!r}: expected NAME=FILE")
        samples.append(load_mr_samples(path, name=name))
    if samples:
        obs = obs.with_samples(*samples)
    return obs, truth


def infer(obs, *, eos: str = "cs2", segments: int = 5, method: str = "nuts", seed: int = 0, chains: int = 4,
          warmup: int = 500, samples: int = 1000, target_accept: float = 0.8, guide: str = "fullrank",
          svi_steps: int = 2000, progress: bool = True) -> Any:
    """Run the engine on the neutron-star model; returns InferenceData."""
    import jax

    from bayesqcd.models.neutron_star import EOS_PRIORS, SoundSpeedPrior, neutron_star_model, ns_data

    data = ns_data(obs)
    if segments < 1:
        raise ValueError(f"--segments = {segments} must be >= 1")
    prior = SoundSpeedPrior(segments) if eos == "cs2" else EOS_PRIORS[eos]()
    key = jax.random.key(seed)
    if method == "nuts":
        from bayesqcd.inference.nuts import run_nuts

        return run_nuts(neutron_star_model, data, prior, key=key, num_warmup=warmup, num_samples=samples,
                        num_chains=chains, target_accept=target_accept, forward_mode=True, progress=progress)
    from bayesqcd.inference.svi import run_svi
    from bayesqcd.tov import INFERENCE, SolverConfig

    # the ELBO gradient is taken in reverse mode: same tolerances, reverse-mode adjoint
    reverse = SolverConfig(rtol=INFERENCE.rtol, atol=INFERENCE.atol)
    return run_svi(neutron_star_model, data, prior, key=key, guide=guide, num_steps=svi_steps,
                   num_draws=samples, progress=progress, config=reverse)


def _host_devices(chains: int) -> None:
    """Before JAX starts: expose up to ``chains`` CPU cores as devices, so chains run in parallel."""
    if "jax" in sys.modules or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    n = max(1, min(chains, os.cpu_count() or 1))
    while chains % n:
        n -= 1
    if n > 1:
        flag = f"--xla_force_host_platform_device_count={n}"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


def run(args: argparse.Namespace) -> int:
    """Entry point of ``bayesqcd ns-eos``."""
    for name in ("chains", "samples", "svi_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} = {getattr(args, name)} must be >= 1")
    if args.warmup < 0:
        raise ValueError(f"--warmup = {args.warmup} must be >= 0")
    if args.method == "nuts":
        _host_devices(args.chains)
    from bayesqcd import ns_report
    from bayesqcd.inference.results import diagnostics

    obs, truth = load_data(args)
    start = time.perf_counter()
    idata = infer(obs, eos=args.eos, segments=args.segments, method=args.method, seed=args.seed,
                  chains=args.chains, warmup=args.warmup, samples=args.samples,
                  target_accept=args.target_accept, guide=args.guide, svi_steps=args.svi_steps,
                  progress=not args.no_progress)
    wall = time.perf_counter() - start
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    settings["total_wall_time_s"] = wall
    diag = diagnostics(idata, ns_report.parameter_names(idata))
    if args.method == "svi":
        diag["pareto_k"] = idata.posterior.attrs.get("pareto_k")
    ns_report.write_results(args.out, idata, observations=obs, settings=settings, diagnostics=diag, truth=truth)
    head = ns_report.headline(idata, truth)
    print(f"posterior ({args.method}, {args.eos} EoS, {wall:.0f} s) -> {args.out}")
    for name, h in head.items():
        lo, hi = h["ci68"]
        extra = f"   truth {h['truth']:.3f}" if "truth" in h else ""
        print(f"  {name:11s} {h['median']:9.3f}  68%: [{lo:.3f}, {hi:.3f}] {h['unit']}{extra}")
    if args.method == "nuts":
        print(f"  max R-hat {diag['max_rhat']:.4f}, min bulk ESS {diag['min_ess_bulk']:.0f}, "
              f"divergences {diag['divergences']}")
    return 0
