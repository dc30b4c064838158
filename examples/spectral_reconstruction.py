"""Spectral functions from noisy Kallen-Lehmann correlators: five methods compared.

For one- and two-peak Breit-Wigner mocks (Wang, Shi, Zhou, arXiv:2111.14760: omega in (0, 20]
on 500 points, 25 momenta in [0, 19.2], relative noise eps) and noise levels 1e-2 .. 1e-5,
runs the spectral study (:func:`bayesqcd.studies.spectral.run`, what ``bayesqcd spectral``
calls) for each mock (GP-prior NUTS, Bayesian NN, score-based posterior
with a learned diffusion prior, MEM; diffusion-prior NUTS optionally, at chosen noise levels:
it is by far the slowest), then prints one table (MSE and KL of the point estimate against the
truth, coverage of the pointwise 95% band, wall time) and draws MSE and coverage against the
noise level. The diffusion prior is trained once and shared through its checkpoint.

    python examples/spectral_reconstruction.py --out results/spectral
    python examples/spectral_reconstruction.py --out /tmp/s --quick      # minutes, coarse

Outputs: OUT/<mock>/summary.json, tables and band figures per noise level, OUT/table.md and
OUT/metrics_vs_noise.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _fmt(x: float | None, spec: str) -> str:
    """A metric for the table; ``summary.json`` stores non-finite values (run-away draws) as null."""
    return "non-finite" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mocks", default="bw1,bw2")
    ap.add_argument("--eps", default="1e-2,1e-3,1e-4,1e-5")
    ap.add_argument("--methods", default="nuts,nn,score,mem")
    ap.add_argument("--dp-eps", default=None,
                    help="noise levels for diffusion-prior NUTS (default: --eps; '' = none)")
    ap.add_argument("--quick", action="store_true", help="200 omega points, short chains, short training")
    ap.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in OUT")
    args = ap.parse_args()

    import bayesqcd
    from bayesqcd.report import ResultsDir
    from bayesqcd.studies import spectral

    bayesqcd.enable_x64()  # spectral.run does it too; here before any array is made
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = dict(prior_checkpoint=str(out / "prior.ckpt"))  # the prior is trained once, then reused
    if args.quick:
        common.update(n_omega=200, num_samples=100, num_warmup=100, prior_steps=4000, prior_k=32,
                      score_samples=100, dp_warmup=30, dp_samples=30)
    else:
        common.update(num_samples=150, num_warmup=150, prior_steps=15000, prior_k=64, dp_warmup=30,
                      dp_samples=30, dp_tree_depth=4)

    def floats(text: str) -> tuple[float, ...]:
        return tuple(float(e) for e in text.split(",") if e.strip())

    methods = spectral.METHOD_NAMES if args.methods == "all" else tuple(args.methods.split(","))
    runs = []
    for mock in args.mocks.split(","):
        runs.append((out / mock, spectral.Config(mock=mock, methods=methods, eps=floats(args.eps), **common)))
        dp_eps = args.eps if args.dp_eps is None else args.dp_eps
        if dp_eps:
            runs.append((out / f"{mock}_diffusion-prior",
                         spectral.Config(mock=mock, methods=("diffusion-prior",), eps=floats(dp_eps), **common)))
    # every config and results folder is checked before the first (long) run starts
    folders = [ResultsDir(folder, overwrite=args.overwrite) for folder, _ in runs]
    for folder, (_, config) in zip(folders, runs):
        spectral.run(config, folder, progress=False)
    tabulate([(config.mock, folder) for folder, config in runs], out)


MSE_TOP = 1.0
"""Top of the figure's MSE axis (the peaks are of height ~1): larger MSEs are marked off scale."""


def tabulate(runs: list[tuple[str, Path]], out: Path) -> None:
    """One table (OUT/table.md) and the metrics-vs-noise figure from the runs' summary.json."""
    rows = ["| mock | method | eps | MSE | KL | 95% coverage | wall time [s] | max R-hat (rho) |",
            "|---|---|---|---|---|---|---|---|"]
    curves: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for mock, folder in runs:
        s = json.loads((folder / "summary.json").read_text())
        for label, per_method in s["results"].items():
            for method, r in per_method.items():
                if "failed" in r:
                    rows.append(f"| {mock} | {method} | {label} | failed | | | | |")
                    continue
                rhat = _fmt(r["max_rhat_rho"], ".3f") if "max_rhat_rho" in r else "-"
                rows.append(f"| {mock} | {method} | {label} | {_fmt(r['mse'], '.2e')} | "
                            f"{_fmt(r['kl'], '.3f')} | {_fmt(r['coverage'], '.2f')} | "
                            f"{r['wall_time_s']:.1f} | {rhat} |")
                mse = float("nan") if r["mse"] is None else r["mse"]
                curves.setdefault((mock, method), []).append((float(label), mse, r["coverage"]))
    (out / "table.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))

    from bayesqcd.report import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    off_scale = False
    for (mock, method), pts in sorted(curves.items()):
        pts.sort()
        e = [p[0] for p in pts]
        style = "-o" if mock == "bw1" else "--s"
        # MSE above MSE_TOP (run-away draws) is drawn as a triangle on the top edge, not dropped
        mse = [min(p[1], MSE_TOP) for p in pts]
        line, = axes[0].loglog(e, mse, style, label=f"{mock} {method}", ms=3)
        high = [(x, MSE_TOP) for x, p in zip(e, pts) if not p[1] <= MSE_TOP]
        if high:
            off_scale = True
            axes[0].plot(*zip(*high), "^", color=line.get_color(), ms=8)
        axes[1].semilogx(e, [p[2] for p in pts], style, label=f"{mock} {method}", ms=3)
    axes[0].set_ylim(top=MSE_TOP * 1.5)
    if off_scale:
        axes[0].set_title(f"triangles: MSE > {MSE_TOP:g} (off scale, see table.md)", fontsize=8)
    axes[0].set_xlabel("relative noise eps"), axes[0].set_ylabel("MSE of the point estimate")
    axes[1].set_xlabel("relative noise eps"), axes[1].set_ylabel("coverage of the 95% band")
    axes[1].axhline(0.95, color="k", lw=0.8)
    axes[0].legend(fontsize="xx-small", ncol=2)
    fig.tight_layout()
    save_figure(fig, out / "metrics_vs_noise.png", dpi=120)
    print(f"wrote {out}/table.md and {out}/metrics_vs_noise.png")


if __name__ == "__main__":
    main()
