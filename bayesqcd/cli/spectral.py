"""``bayesqcd spectral``: reconstruct a spectral function with one or more methods, from a
named mock (``--mock``) or from the user's correlator file (``--data FILE``, optionally
``--covariance FILE``, with ``--kernel`` and the omega grid).

A front end to :func:`bayesqcd.studies.spectral.run`, which writes ``DIR/summary.json`` (per
method and noise level: MSE, KL, 95% coverage, wall time, diagnostics; for ``--data``:
chi^2/point against the data, R-hat, status, and the files' paths and hashes), ``DIR/table.md``
and one figure of bands (over the truth for a mock; with the fit's residuals for data) per
noise level. Exit status 1 when a method failed (its row of the table says why), unless
``--allow-failures``.
"""

from __future__ import annotations

import argparse

from bayesqcd.cli.common import add_out, add_progress, add_seed, parse_list, require_at_least, results_dir

METHOD_CHOICES = ("nuts", "nn", "score", "diffusion-prior", "mem", "br")
"""For ``--help`` only (importing the study is slow); the study's ``Config`` validates."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``spectral`` subcommand."""
    p = subparsers.add_parser(
        "spectral",
        help="spectral functions from noisy correlators: GP-NUTS, Bayesian NN, score-based, "
        "diffusion-prior NUTS, MEM, BR",
        description="Reconstruct a spectral function rho(omega) from a noisy correlator: a named mock "
        "(--mock; Wang-Shi-Zhou setup: omega in (0, 20], 25 momenta in [0, 19.2]; DIR/summary.json "
        "with MSE, KL, 95%% coverage and wall time per method) or your own correlator file (--data "
        "FILE: columns x, value, error; '#' comments, an optional header line; --covariance FILE "
        "for a full covariance; --kernel names what x is; DIR/summary.json with chi^2/point, "
        "R-hat and status).")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--mock",
                        help="bw1, bw2 (Breit-Wigner peaks), gauss1, gauss2 (Gaussians), threshold (resonance + "
                             "w^2 continuum), transport (Drude peak + resonance), thermal (the same at finite T)")
    source.add_argument("--data", metavar="FILE",
                        help="your correlator: a text/CSV file with the columns x (the kernel's argument: "
                             "momentum p or Euclidean time tau), value, error (sd); '#' comments, one "
                             "optional header line; sorted by x")
    p.add_argument("--covariance", metavar="FILE",
                   help="with --data: the data's covariance, a square matrix (whitespace or commas, one "
                        "row a line); the error column may then be left out")
    p.add_argument("--method", default="mem",
                   help=f"comma-separated methods from {','.join(METHOD_CHOICES)} (or 'all')")
    p.add_argument("--eps", default=None,
                   help="--mock only: comma-separated relative noise levels, e.g. 1e-2,1e-3,1e-4,1e-5 "
                        "(default 1e-3)")
    add_out(p)
    p.add_argument("--n-omega", type=int, default=500, help="omega grid points on (omega-min, omega-max]")
    p.add_argument("--omega-min", type=float, default=0.0, help="lower end of the omega grid (default 0)")
    p.add_argument("--omega-max", type=float, default=20.0, help="upper end of the omega grid (default 20)")
    p.add_argument("--kernel", default=None, choices=["kallen-lehmann", "euclidean", "thermal"],
                   help="required with --data; for --mock default the mock's own (thermal for --mock "
                        "thermal, else kallen-lehmann)")
    p.add_argument("--n-t", type=int, default=None,
                   help="euclidean kernel: lattice time extent N_t (tau in [0, N_t]; required with --data; "
                        "mocks: 32)")
    p.add_argument("--temperature", type=float, default=None,
                   help="thermal kernel: temperature T in the unit of omega (tau in [0, 1/T); required with "
                        "--data; mocks: 0.25)")
    p.add_argument("--noise", default=None, choices=["relative", "absolute"],
                   help="--mock only: noise model (default relative)")
    p.add_argument("--correlation", type=float, default=None,
                   help="--mock only: noise correlation of neighbours (default 0)")
    p.add_argument("--samples", type=int, default=300, help="NUTS draws per chain (nuts, nn)")
    p.add_argument("--warmup", type=int, default=300, help="NUTS warm-up per chain (nuts, nn)")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--guidance", default="tweedie", choices=["tweedie", "dps"])
    p.add_argument("--score-samples", type=int, default=300, help="draws of the score-based sampler")
    p.add_argument("--mem-samples", type=int, default=50, help="redrawn data sets of the MEM and BR error bands")
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


def _check_source(args: argparse.Namespace) -> None:
    """The options that belong to one source only, named when misused."""
    if args.data is not None:
        for opt, value in (("eps", args.eps), ("noise", args.noise), ("correlation", args.correlation)):
            if value is not None:
                raise ValueError(f"--{opt} applies to --mock only (the noise of --data is in its error column "
                                 "or --covariance)")
        if args.kernel is None:
            raise ValueError("--kernel is required with --data: kallen-lehmann (x = momentum p), euclidean "
                             "(x = tau, with --n-t) or thermal (x = tau, with --temperature)")
        if args.kernel == "euclidean" and args.n_t is None:
            raise ValueError("--n-t (the lattice time extent) is required with --data --kernel euclidean")
        if args.kernel == "thermal" and args.temperature is None:
            raise ValueError("--temperature is required with --data --kernel thermal")
    elif args.covariance is not None:
        raise ValueError("--covariance applies to --data only (mocks make their own noise)")
    if args.n_t is not None and args.n_t < 1:
        raise ValueError(f"--n-t = {args.n_t} is outside the valid range [1, inf)")
    if args.temperature is not None and not args.temperature > 0:
        raise ValueError(f"--temperature = {args.temperature} is outside the valid range (0, inf)")
    if not 0 <= args.omega_min < args.omega_max:
        raise ValueError(f"--omega-min = {args.omega_min} and --omega-max = {args.omega_max}: need "
                         "0 <= omega-min < omega-max")


def run(args: argparse.Namespace) -> int:
    """Check the options, run the study (float64) and print its table; 1 when a method failed
    (unless ``--allow-failures``)."""
    from bayesqcd.studies import spectral

    _check_source(args)
    methods = tuple(spectral.METHODS) if args.method == "all" else parse_list(args.method, "method", str)
    eps = parse_list(args.eps or "1e-3", "eps", float)
    require_at_least(args, 2, "n_omega")
    require_at_least(args, 1, "samples", "chains", "score_samples", "dp_samples", "dp_chains",
                     "dp_tree_depth", "prior_steps", "prior_k")
    require_at_least(args, 0, "warmup", "mem_samples", "dp_warmup")
    inputs = tuple(f for f in (args.data, args.covariance) if f is not None)
    config = spectral.Config(
        mock=args.mock, data=args.data, data_covariance=args.covariance, methods=methods, eps=eps,
        n_omega=args.n_omega, omega_min=args.omega_min, omega_max=args.omega_max, kernel=args.kernel,
        n_t=args.n_t, temperature=args.temperature, noise=args.noise or "relative",
        correlation=args.correlation or 0.0, num_samples=args.samples,
        num_warmup=args.warmup, num_chains=args.chains, guidance=args.guidance,
        score_samples=args.score_samples, dp_warmup=args.dp_warmup, dp_samples=args.dp_samples,
        dp_chains=args.dp_chains, dp_tree_depth=args.dp_tree_depth, mem_samples=args.mem_samples,
        prior_steps=args.prior_steps, prior_k=args.prior_k, prior_checkpoint=args.prior_checkpoint,
        seed=args.seed)
    summary = spectral.run(config, results_dir(args, inputs), progress=not args.no_progress)
    print(spectral.format_table(summary))
    print(f"wrote {args.out}/summary.json")
    if summary["failures"]:
        print("FAILED: " + "; ".join(summary["failures"]))
        return 0 if args.allow_failures else 1
    return 0
