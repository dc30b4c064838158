"""``bayesqcd ns-eos``: Bayesian inversion of the neutron-star EoS from observations.

    bayesqcd ns-eos --out results/                       # real data, c_s^2 prior, NUTS
    bayesqcd ns-eos --mock SLy --n-obs 6 --out mock/      # recover a known EoS
    bayesqcd ns-eos --eos nn --method svi --guide flow --out nn/

The study is :mod:`bayesqcd.studies.neutron_star`.
"""

from __future__ import annotations

import argparse
import os
import sys

from bayesqcd.cli.common import (add_common, add_distributed, require_at_least, results_dir, settings_of,
                                 start_distributed)
from bayesqcd.inference.cores import default_chains, usable_cores

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
    add_common(p)
    add_distributed(p)
    p.add_argument("--eos", choices=EOS_CHOICES, default="cs2",
                   help="EoS prior: speed-of-sound segments (default), piecewise polytrope, neural network")
    p.add_argument("--segments", type=int, default=5, help="c_s^2 segments of the cs2 prior (default 5)")
    p.add_argument("--method", choices=ENGINES, default="nuts", help="inference engine (default nuts)")
    p.add_argument("--guide", choices=("diag", "fullrank", "flow"), default="fullrank", help="SVI guide")
    p.add_argument("--chains", type=int, default=None,
                   help="NUTS chains (default: one per CPU core, at least 2 and at most 4)")
    p.add_argument("--warmup", type=int, default=300, help="NUTS warm-up iterations per chain (default 300)")
    p.add_argument("--samples", type=int, default=1000,
                   help="NUTS: the most draws per chain (all of them with --ess 0); SVI: guide draws (default 1000)")
    p.add_argument("--ess", type=float, default=400.0,
                   help="NUTS stops once the minimum bulk effective sample size over the EoS parameters "
                   "reaches this, with R-hat <= 1.01 (default 400; 0: draw --samples per chain)")
    p.add_argument("--target-accept", type=float, default=0.8, help="NUTS target acceptance (default 0.8)")
    p.add_argument("--init-mass", choices=("identity", "hessian"), default="identity",
                   help="NUTS warm-up starts from the identity mass matrix (default) or from the log "
                   "posterior's curvature at the starting points (hessian)")
    p.add_argument("--svi-steps", type=int, default=2000, help="SVI optimization steps (default 2000)")
    p.set_defaults(func=run)


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """The options choosing the observations (shared by the neutron-star subcommands)."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", default="real", metavar="real|FILE",
                     help="'real' (the shipped observations, default) or a table with the columns "
                     "kind,name,quantity,median,lower,upper,cl,use,source")
    src.add_argument("--mock", metavar="EOS", help="mock observations from a named EoS (SLy, APR4, MPA1, H4, WFF1)")
    p.add_argument("--mr-samples", action="append", default=[], metavar="NAME=FILE",
                   help="posterior (M, R) samples of source NAME of the data (replaces its summary; "
                   "repeatable)")
    p.add_argument("--add-mr-samples", action="append", default=[], metavar="NAME=FILE",
                   help="posterior (M, R) samples of a new source NAME (repeatable)")
    p.add_argument("--alternatives", action="store_true", help="also use the alternative analyses (use=0 rows)")
    p.add_argument("--n-obs", type=int, default=6, help="mock mass-radius sources (default 6)")
    p.add_argument("--noise-free", action="store_true",
                   help="mock observations at their true masses and radii, with the same errors "
                   "(no scatter): shows the analysis' own offsets from the truth")


def data_spec(args: argparse.Namespace):
    """The :class:`~bayesqcd.studies.neutron_star.DataSpec` of the data options."""
    from bayesqcd.studies.neutron_star import DataSpec

    def pairs(option: str, specs: list[str]) -> tuple[tuple[str, str], ...]:
        out = []
        for spec in specs:
            name, sep, path = spec.partition("=")
            if not sep or not name.strip() or not path:
                raise ValueError(f"{option} {spec!r}: expected NAME=FILE")
            out.append((name.strip(), path))
        return tuple(out)

    if args.n_obs < 1:
        raise ValueError(f"--n-obs = {args.n_obs} is outside the valid range [1, inf)")
    return DataSpec(source=args.data, mock=args.mock, n_obs=args.n_obs, mock_scatter=not args.noise_free,
                    mr_samples=pairs("--mr-samples", args.mr_samples),
                    add_mr_samples=pairs("--add-mr-samples", args.add_mr_samples),
                    alternatives=args.alternatives)


def host_devices(chains: int) -> None:
    """Before JAX starts: expose one CPU device per chain (up to twice the cores), so chains run apart.

    Each device is a thread of its own. Two chains vectorized on one device advance in lockstep,
    each tree as long as the longer of the two; one chain per device does not wait, and runs
    without ``vmap``. Measured on 2 cores, 4 chains (the default run then, compilation cache
    warm, back to back): 4 devices took 199.5 s and 3.18 ms of wall time per gradient, 2 devices
    of two chains 240.7 s and 3.77 ms.
    """
    if "jax" in sys.modules or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    n = max(1, min(chains, 2 * usable_cores()))
    while chains % n:
        n -= 1
    if n > 1:
        flag = f"--xla_force_host_platform_device_count={n}"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


def run(args: argparse.Namespace) -> int:
    """Entry point of ``bayesqcd ns-eos``."""
    several = args.distributed or args.coordinator is not None
    if args.chains is None and not several:
        args.chains = default_chains()
    require_at_least(args, 1, "chains", "samples", "svi_steps", "segments")
    require_at_least(args, 0, "warmup")
    if args.method == "nuts" and not several:  # several processes: one CPU device each, unless XLA_FLAGS
        host_devices(args.chains)
    main = start_distributed(args)
    if args.chains is None:  # several processes: the default rounded up to fill all their devices
        import jax

        n = jax.device_count()
        args.chains = n * -(-default_chains() // n)
    out = results_dir(args) if main else None  # only process 0 checks and writes --out
    from bayesqcd.studies import neutron_star as ns

    config = ns.Config(data=data_spec(args), seed=args.seed, eos=args.eos, segments=args.segments,
                       method=args.method, guide=args.guide, chains=args.chains, warmup=args.warmup,
                       samples=args.samples, ess=args.ess, target_accept=args.target_accept, svi_steps=args.svi_steps,
                       init_mass=args.init_mass)
    result = ns.run(config, out, progress=not args.no_progress, settings=settings_of(args))
    if not main:
        return 0
    print(f"posterior ({args.method}, {args.eos} EoS, {result['total_wall_time_s']:.0f} s) -> {args.out}")
    for name, h in result["headline"].items():
        lo, hi = h["ci68"]
        extra = f"   truth {h['truth']:.3f}" if "truth" in h else ""
        print(f"  {name:11s} {h['median']:9.3f}  68%: [{lo:.3f}, {hi:.3f}] {h['unit']}{extra}")
    diag = result["diagnostics"]
    if args.method == "nuts":
        t = result["timing_s"]
        print(f"  max R-hat {diag['max_rhat']:.4f}, min bulk ESS {diag['min_ess_bulk']:.0f}, "
              f"divergences {diag['divergences']} of {diag['n_chains'] * diag['n_draws']} draws")
        print(f"  time: compile {t['compile_time_s']:.0f} s, warm-up {t['warmup_time_s']:.0f} s, "
              f"sampling {t['sampling_time_s']:.0f} s ({t['num_samples']} draws per chain, "
              f"stopped by {t['stopped_by']})")
    return 0
