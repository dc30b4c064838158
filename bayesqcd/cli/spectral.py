"""``bayesqcd spectral``: reconstruct a mock spectral function with one or more methods.

Writes ``DIR/summary.json`` (per method and noise level: MSE, KL, 95% coverage, wall time,
diagnostics), ``DIR/table.md`` and one figure of bands over the truth per noise level.
"""

from __future__ import annotations

import argparse

METHOD_CHOICES = ("nuts", "nn", "score", "diffusion-prior", "mem")


def _parse_list(text: str, name: str, conv):
    try:
        out = [conv(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--{name} must be a comma-separated list, got {text!r}") from None
    if not out:
        raise ValueError(f"--{name} is empty")
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``spectral`` subcommand."""
    p = subparsers.add_parser(
        "spectral",
        help="spectral functions from noisy correlators: GP-NUTS, Bayesian NN, score-based, "
        "diffusion-prior NUTS, MEM",
        description="Reconstruct a mock spectral function rho(omega) from a noisy Kallen-Lehmann "
        "correlator (Wang-Shi-Zhou setup: omega in (0, 20], 25 momenta in [0, 19.2]) and write "
        "DIR/summary.json with MSE, KL, 95%% coverage and wall time per method.")
    p.add_argument("--mock", required=True, help="bw1, bw2, gauss1 or gauss2 (one or two peaks)")
    p.add_argument("--method", default="mem",
                   help=f"comma-separated methods from {','.join(METHOD_CHOICES)} (or 'all')")
    p.add_argument("--eps", default="1e-3",
                   help="comma-separated relative noise levels, e.g. 1e-2,1e-3,1e-4,1e-5")
    p.add_argument("--out", required=True, help="results folder (written atomically)")
    p.add_argument("--n-omega", type=int, default=500, help="omega grid points on (0, 20]")
    p.add_argument("--kernel", default="kallen-lehmann", choices=["kallen-lehmann", "euclidean", "thermal"])
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run every (noise level, method) pair and write the results folder (float64)."""
    import jax

    jax.config.update("jax_enable_x64", True)

    from bayesqcd import spectral as sp
    from bayesqcd.report import atomic_results_dir, versions, write_json
    from bayesqcd.studies.spectral.experiment import (SpectralConfig, make_problem, plot_bands, run_one,
                                              train_prior)

    methods = list(METHOD_CHOICES) if args.method == "all" else _parse_list(args.method, "method", str)
    for m in methods:
        if m not in METHOD_CHOICES:
            raise ValueError(f"--method must be from {METHOD_CHOICES}, got {m!r}")
    eps_list = _parse_list(args.eps, "eps", float)
    if min(eps_list) <= 0:
        raise ValueError(f"--eps must be > 0, got {args.eps!r}")
    if args.mock not in sp.MOCKS:
        raise ValueError(f"--mock must be one of {sp.MOCKS}, got {args.mock!r}")
    base = dict(mock=args.mock, n_omega=args.n_omega, kernel=args.kernel, noise=args.noise,
                correlation=args.correlation, num_samples=args.samples, num_warmup=args.warmup,
                num_chains=args.chains, guidance=args.guidance, score_samples=args.score_samples,
                dp_warmup=args.dp_warmup, dp_samples=args.dp_samples, dp_chains=args.dp_chains,
                dp_tree_depth=args.dp_tree_depth,
                mem_samples=args.mem_samples, prior_steps=args.prior_steps, prior_k=args.prior_k,
                seed=args.seed)
    progress = not args.no_progress
    prior, prior_info = None, None
    if {"score", "diffusion-prior"} & set(methods):
        cfg0 = SpectralConfig(**base, eps=eps_list[0])
        prior, prior_info = train_prior(make_problem(cfg0).omega, cfg0, key=jax.random.key(args.seed + 1),
                                        checkpoint=args.prior_checkpoint, progress=progress)
        print(f"diffusion prior trained: {prior_info}")
    summary = {"mock": args.mock, "kernel": args.kernel, "noise": args.noise, "methods": methods,
               "eps": eps_list, "prior": prior_info, "results": {}}
    with atomic_results_dir(args.out) as tmp:
        rows = ["| method | eps | MSE | KL | 95% coverage | wall time [s] | max R-hat (rho) |",
                "|---|---|---|---|---|---|---|"]
        for eps in eps_list:
            cfg = SpectralConfig(**base, eps=eps)
            mock = make_problem(cfg)
            label = sp.log10_eps_label(eps)
            res, idatas = {}, {}
            for i, m in enumerate(methods):
                idata, met = run_one(m, mock, cfg, key=jax.random.key(args.seed + 10 + i), prior=prior,
                                     progress=progress)
                res[m], idatas[m] = met, idata
                if "failed" in met:
                    rows.append(f"| {m} | {label} | failed | | | | |")
                    print(f"[eps={label}] {m}: FAILED {met['failed']}")
                else:
                    rhat = met.get("max_rhat_rho", float("nan"))
                    rows.append(f"| {m} | {label} | {met['mse']:.3g} | {met['kl']:.3g} | "
                                f"{met['coverage']:.2f} | {met['wall_time_s']:.1f} | {rhat:.3f} |")
                    print(f"[eps={label}] {m}: MSE {met['mse']:.3g}, KL {met['kl']:.3g}, "
                          f"coverage {met['coverage']:.2f}, {met['wall_time_s']:.1f} s")
            summary["results"][label] = res
            plot_bands(idatas, mock, tmp / f"bands_{args.mock}_eps{label}.png",
                       title=f"{args.mock}, relative noise {label}")
        (tmp / "table.md").write_text("\n".join(rows) + "\n")
        summary["versions"] = versions()
        write_json(tmp / "summary.json", summary)
    print("\n".join(rows))
    print(f"wrote {args.out}/summary.json")
    return 0
