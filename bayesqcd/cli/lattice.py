"""``bayesqcd lattice``: sample 2-D phi^4 theory with HMC, a flow or a diffusion model.

Thin layer over :mod:`bayesqcd.studies.lattice`: the flags become a
:class:`~bayesqcd.studies.lattice.Config`, and :func:`~bayesqcd.studies.lattice.run` does the work.
"""

from __future__ import annotations

import argparse

from bayesqcd.cli.common import add_common, results_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lattice`` subcommand."""
    p = subparsers.add_parser(
        "lattice",
        help="sample 2-D phi^4 theory (HMC, normalizing flow, diffusion model)",
        description="Sample exp(-S[phi]) of 2-D phi^4 theory, S = sum_x [sum_mu (phi(x+mu)-phi(x))^2 "
        "+ m2 phi^2 + lam phi^4], and write DIR/summary.json (observables with errors, ESS/N, "
        "acceptance, tau_int, wall time per independent sample), DIR/configs.npz and plots. "
        "The flow and diffusion samples are made exact by independence Metropolis.")
    p.add_argument("--L", type=int, default=8, help="lattice extent (even; diffusion: multiple of 4)")
    p.add_argument("--m2", type=float, default=None, help="bare mass squared (default -4)")
    p.add_argument("--lam", type=float, default=None, help="quartic coupling (default 8)")
    p.add_argument("--kappa", type=float, default=None,
                   help="hopping parameter (with --lam-h, instead of --m2/--lam)")
    p.add_argument("--lam-h", type=float, default=None, help="quartic coupling of the hopping form")
    p.add_argument("--method", required=True, choices=["hmc", "flow", "diffusion"])
    add_common(p)
    p.add_argument("--hmc-chains", type=int, default=16)
    p.add_argument("--hmc-samples", type=int, default=2000, help="kept HMC draws per chain")
    p.add_argument("--flow-layers", type=int, default=16)
    p.add_argument("--flow-steps", type=int, default=3000, help="reverse-KL training steps")
    p.add_argument("--score-steps", type=int, default=2000, help="score-matching steps")
    p.add_argument("--h", type=float, default=0.0,
                   help="h of the generating process (diffusion; 0 = probability-flow ODE, exact "
                   "density; > 0 = SDE draws weighted by the PF-ODE density)")
    p.add_argument("--ode-tol", type=float, default=1e-3, help="PF-ODE rtol = atol (diffusion)")
    p.add_argument("--n-proposals", type=int, default=20000,
                   help="flow / diffusion proposals fed to independence Metropolis")
    p.add_argument("--proposal-batch", type=int, default=1024)
    p.add_argument("--checkpoint", default=None, help="training checkpoint file (resumable)")
    p.add_argument("--x64", action="store_true", help="float64 throughout (default float32)")
    p.set_defaults(func=run)


def _couplings(args: argparse.Namespace) -> tuple[float, float]:
    """``(m2, lam)`` from either ``--m2/--lam`` or ``--kappa/--lam-h``."""
    if (args.kappa is None) != (args.lam_h is None):
        raise ValueError("give both --kappa and --lam-h, or neither")
    if args.kappa is not None:
        if args.m2 is not None or args.lam is not None:
            raise ValueError("give either --m2/--lam or --kappa/--lam-h, not both")
        from bayesqcd.lattice.action import hopping_to_mass

        return hopping_to_mass(args.kappa, args.lam_h)
    return (-4.0 if args.m2 is None else args.m2), (8.0 if args.lam is None else args.lam)


def run(args: argparse.Namespace) -> int:
    """Build the study's config from the flags, run it, print the headline."""
    m2, lam = _couplings(args)
    from bayesqcd.studies import lattice

    cfg = lattice.Config(L=args.L, m2=m2, lam=lam, method=args.method, seed=args.seed,
                         hmc_chains=args.hmc_chains, hmc_samples=args.hmc_samples,
                         flow_layers=args.flow_layers, flow_steps=args.flow_steps,
                         score_steps=args.score_steps, ode_tol=args.ode_tol, h=args.h,
                         n_proposals=args.n_proposals, proposal_batch=args.proposal_batch,
                         checkpoint=args.checkpoint, x64=args.x64)
    out = results_dir(args, inputs=(args.checkpoint,) if args.checkpoint else ())
    summary = lattice.run(cfg, out, progress=not args.no_progress)
    o = summary["observables"]
    print(f"{args.method}: <|M|> = {o['abs_M']['value']:.4f} +- {o['abs_M']['error']:.4f}, "
          f"chi = {o['chi']['value']:.4f} +- {o['chi']['error']:.4f}, "
          f"ESS/N = {summary['ess_per_n']:.3f}, acceptance = {summary['acceptance']:.3f}, "
          f"tau_int = {summary['tau_int_absM']['value']:.2f}, "
          f"time/indep. sample = {summary['time_per_independent_sample_s']:.2e} s")
    print(f"wrote {args.out}/summary.json")
    return 0
