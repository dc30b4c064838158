"""``bayesqcd spectral``: reconstruct a mock spectral function with one or more methods.

A front end to :func:`bayesqcd.studies.spectral.run`, which writes ``DIR/summary.json`` (per
method and noise level: MSE, KL, 95% coverage, wall time, diagnostics), ``DIR/table.md`` and
one figure of bands over the truth per noise level. Exit status 1 when a method failed (its
row of the table says why), unless ``--allow-failures``.
"""

from __future__ import annotations

import argparse

from bayesqcd.cli.common import add_out, add_progress, add_seed, parse_list, require_at_least, results_dir

METHOD_CHOICES = ("nuts", "nn", "score", "diffusion-prior", "mem")
"""For ``--help`` only (importing the study is slow); the study's ``Config`` validates."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``spectral`` subcommand."""
    p = subparsers.add_parser(
        "spectral",
        help="spectral functions from noisy correlators: GP-NUTS, Bayesian NN, score-based, "
        "diffusion-prior NUTS, MEM",
        description="Reconstruct a mock spectral function rho(omega) from a noisy Kallen-Lehmann "
        "correlator (Wang-Shi-Zhou setup: omega in (0, 20], 25 momenta in [0, 19.2]) and write "
        "DIR/summary.json with MSE, KL, 95%% coverage and wall time per method.")
    p.add_argument("--mock", required=True,
                   help="bw1, bw2 (Breit-Wigner peaks), gauss1, gauss2 (Gaussians), threshold (resonance + "
                        "w^2 continuum), transport (Drude peak + resonance), thermal (the same at finite T)")
    p.add_argument("--method", default="mem",
                   help=f"comma-separated methods from {','.join(METHOD_CHOICES)} (or 'all')")
    p.add_argument("--eps", default="1e-3",
                   help="comma-separated relative noise levels, e.g. 1e-2,1e-3,1e-4,1e-5")
    add_out(p)
    p.add_argument("--n-omega", type=int, default=500, help="omega grid points on (0, 20]")
    p.add_argument("--kernel", default=None, choices=["kallen-lehmann", "euclidean", "thermal"],
                   help="the kernel (default: the mock's own; thermal for --mock thermal, else kallen-lehmann)")
    p.add_argument("--noise", default="relative", choices=["relative", "absolute"])
    p.add_argument("--correlation", type=float, default=0.0, help="noise correlation of neighbours")
    p.add_argument("--samples", type=int, default=300, help="NUTS draws per chain (nuts, nn)")
    p.add_argument("--warmup", type=int, default=300, help="NUTS warm-up per chain (nuts, nn)")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--guidance", default="tweedie", choices=["tweedie", "dps"])
    p.add_argument("--score-samples", type=int, default=300, help="draws of the score-based sampler")
    p.add_argument("--mem-samples", type=int, default=50, help="redrawn data sets of MEM's error band")
    p.add_argument("--dp-warmup", type=int, default=100, help="NUTS warm-up of diffusion-prior")
    p.add_argument("--dp-samples", type=int, default=100, help="NUTS draws of diffusion-prior")
    p.add_argument("--dp-chains", type=int, default=2, help="NUTS chains of diffusion-prior")
    p.add_argument("--dp-tree-depth", type=int, default=6, help="NUTS maximal tree depth of diffusion-prior")
    p.add_argument("--prior-steps", type=int, default=20000, help="score-matching steps of the prior")
    p.add_argument("--prior-k", type=int, default=64, help="coarse points of the prior's representation")
    p.add_argument("--prior-checkpoint", default=None,
                   help="training checkpoint of the diffusion prior (resumed / reused)")
    p.add_argument("--allow-failures", action="store_true",
                   help="exit 0 even when a method failed (the table and summary.json say why)")
    add_seed(p)
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the options, run the study (float64) and print its table; 1 when a method failed
    (unless ``--allow-failures``)."""
    from bayesqcd.studies import spectral

    methods = tuple(spectral.METHODS) if args.method == "all" else parse_list(args.method, "method", str)
    eps = parse_list(args.eps, "eps", float)
    require_at_least(args, 2, "n_omega")
    require_at_least(args, 1, "samples", "chains", "score_samples", "dp_samples", "dp_chains",
                     "dp_tree_depth", "prior_steps", "prior_k")
    require_at_least(args, 0, "warmup", "mem_samples", "dp_warmup")
    config = spectral.Config(
        mock=args.mock, methods=methods, eps=eps, n_omega=args.n_omega, kernel=args.kernel,
        noise=args.noise, correlation=args.correlation, num_samples=args.samples,
        num_warmup=args.warmup, num_chains=args.chains, guidance=args.guidance,
        score_samples=args.score_samples, dp_warmup=args.dp_warmup, dp_samples=args.dp_samples,
        dp_chains=args.dp_chains, dp_tree_depth=args.dp_tree_depth, mem_samples=args.mem_samples,
        prior_steps=args.prior_steps, prior_k=args.prior_k, prior_checkpoint=args.prior_checkpoint,
        seed=args.seed)
    summary = spectral.run(config, results_dir(args), progress=not args.no_progress)
    print(spectral.format_table(summary))
    print(f"wrote {args.out}/summary.json")
    if summary["failures"]:
        print("FAILED: " + "; ".join(summary["failures"]))
        return 0 if args.allow_failures else 1
    return 0
