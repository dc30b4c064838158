"""Spectral functions from noisy correlators: the methods compared over the physics mock suite.

For every mock of :data:`bayesqcd.spectral.MOCKS` (one and two Breit-Wigner peaks, one and two
Gaussians, a resonance plus the w^2 threshold continuum, a transport peak plus a resonance, and
a thermal-kernel case; Wang, Shi, Zhou, arXiv:2111.14760 grid: omega in (0, 20] on 500 points,
25 momenta in [0, 19.2], relative noise eps) and noise levels 1e-2 .. 1e-5, runs the spectral
study (:func:`bayesqcd.studies.spectral.run`, what ``bayesqcd spectral`` calls) with the chosen
methods (default GP-prior NUTS, score-based posterior with a learned diffusion prior, MEM; NN-NUTS
and diffusion-prior NUTS on request: their chains do not mix; the Bayesian Reconstruction ``br`` of
Burnier and Rothkopf on request), then prints one table (status,
MSE of the point estimate, coverage of the pointwise 95% band strict and with the 1e-4 max(rho)
floor, R-hat on rho, chi^2/point, run-away draws, wall time), the methods' ranking (mean rank of
the MSE over the runs where every method ran; failures counted) and draws MSE and coverage
against the noise level. The diffusion prior is trained once and shared through its checkpoint.

    python examples/spectral_reconstruction.py --out results/spectral
    python examples/spectral_reconstruction.py --out /tmp/s --quick      # coarse grid, short chains
    python examples/spectral_reconstruction.py --out /tmp/s --quick --eps 1e-3 --methods mem,br

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
    ap.add_argument("--mocks", default="all", help="comma-separated mocks, or 'all' (the suite)")
    ap.add_argument("--eps", default="1e-2,1e-3,1e-4,1e-5")
    ap.add_argument("--methods", default="nuts,score,mem", help="comma-separated methods, or 'all'")
    ap.add_argument("--dp-eps", default="",
                    help="noise levels for diffusion-prior NUTS (default '': none; it does not mix)")
    ap.add_argument("--quick", action="store_true",
                    help="100 omega points and 24 GP modes (the tests' settings), short training")
    ap.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in OUT")
    args = ap.parse_args()

    import bayesqcd
    from bayesqcd import spectral as sp
    from bayesqcd.report import ResultsDir
    from bayesqcd.studies import spectral

    bayesqcd.enable_x64()  # spectral.run does it too; here before any array is made
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = dict(prior_checkpoint=str(out / "prior.ckpt"))  # the prior is trained once, then reused
    if args.quick:
        # the GP-NUTS settings of the tests' mock-suite sweep (tests/studies/test_spectral_methods.py)
        common.update(n_omega=100, gp_modes=24, num_samples=200, num_warmup=200, max_tree_depth=6,
                      prior_steps=4000, prior_k=32,
                      score_samples=100, dp_warmup=30, dp_samples=30)
    else:
        common.update(num_samples=150, num_warmup=150, prior_steps=15000, prior_k=64, dp_warmup=30,
                      dp_samples=30, dp_tree_depth=4)

    def floats(text: str) -> tuple[float, ...]:
        return tuple(float(e) for e in text.split(",") if e.strip())

    methods = spectral.METHOD_NAMES if args.methods == "all" else tuple(args.methods.split(","))
    runs = []
    mocks = sp.MOCKS if args.mocks == "all" else tuple(args.mocks.split(","))
    for mock in mocks:
        runs.append((out / mock, spectral.Config(mock=mock, methods=methods, eps=floats(args.eps), **common)))
        dp_eps = args.dp_eps
        if dp_eps:
            runs.append((out / f"{mock}_diffusion-prior",
                         spectral.Config(mock=mock, methods=("diffusion-prior",), eps=floats(dp_eps), **common)))
    # every config and results folder is checked before the first (long) run starts
    folders = [ResultsDir(folder, overwrite=args.overwrite) for folder, _ in runs]
    for folder, (_, config) in zip(folders, runs):
        spectral.run(config, folder, progress=False)
    tabulate([(config.mock, folder) for folder, config in runs], out)


STYLES = ("-o", "--s", ":^", "-.v", "-D", "--x", ":+")
"""Line styles of the figure, one per mock in the order of :data:`bayesqcd.spectral.MOCKS`."""

MSE_TOP = 1.0
"""Top of the figure's MSE axis (the peaks are of height ~1): larger MSEs are marked off scale."""


def tabulate(runs: list[tuple[str, Path]], out: Path) -> None:
    """One table (OUT/table.md), the ranking and the metrics-vs-noise figure from the runs' summary.json."""
    rows = ["| mock | eps | method | status | MSE | 95% coverage (floor) | max R-hat (rho) | chi^2/point | "
            "run-away | wall time [s] |", "|---|---|---|---|---|---|---|---|---|---|"]
    curves: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    mses: dict[tuple[str, str], dict[str, float]] = {}
    for mock, folder in runs:
        s = json.loads((folder / "summary.json").read_text())
        for label, per_method in s["results"].items():
            for method, r in per_method.items():
                status = r.get("status", "ok")
                if status == "failed":
                    rows.append(f"| {mock} | {label} | {method} | failed: {r.get('error', '')} | | | | | | |")
                    mses.setdefault((mock, label), {})[method] = float("inf")
                    continue
                rhat = _fmt(r["max_rhat_rho"], ".3f") if "max_rhat_rho" in r else "-"
                rows.append(f"| {mock} | {label} | {method} | {status} | {_fmt(r['mse'], '.2e')} | "
                            f"{_fmt(r['coverage'], '.2f')} ({_fmt(r['coverage_floor'], '.2f')}) | {rhat} | "
                            f"{_fmt(r['chi2_per_point'], '.2f')} | {r['runaway_fraction']:.2f} | "
                            f"{r['wall_time_s']:.1f} |")
                mse = float("nan") if r["mse"] is None else r["mse"]
                mses.setdefault((mock, label), {})[method] = mse if status == "ok" else float("inf")
                curves.setdefault((mock, method), []).append((float(label), mse, r["coverage_floor"]))
    rows += ["", ranking(mses)]
    (out / "table.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))

    from bayesqcd.report import pyplot, save_figure
    from bayesqcd.spectral import MOCKS

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    off_scale = False
    for (mock, method), pts in sorted(curves.items()):
        pts.sort()
        e = [p[0] for p in pts]
        style = STYLES[MOCKS.index(mock) % len(STYLES)] if mock in MOCKS else "-"
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
    axes[1].set_xlabel("relative noise eps"), axes[1].set_ylabel("coverage of the 95% band (floor)")
    axes[1].axhline(0.95, color="k", lw=0.8)
    axes[0].legend(fontsize="xx-small", ncol=2)
    fig.tight_layout()
    save_figure(fig, out / "metrics_vs_noise.png", dpi=120)
    print(f"wrote {out}/table.md and {out}/metrics_vs_noise.png")


def ranking(mses: dict[tuple[str, str], dict[str, float]]) -> str:
    """Mean rank of each method's MSE over the (mock, eps) runs where every method ran (failed or
    unconverged: ranked last), best first."""
    methods = sorted({m for per in mses.values() for m in per})
    ranks: dict[str, list[int]] = {m: [] for m in methods}
    for per in mses.values():
        if set(per) != set(methods):
            continue
        order = sorted(methods, key=lambda m: (not per[m] < float("inf"), per[m]))
        for i, m in enumerate(order):
            ranks[m].append(i + 1)
    n = len(next(iter(ranks.values()), []))
    text = ", ".join(f"{m} {sum(r) / len(r):.2f}" for m, r in sorted(ranks.items(), key=lambda kv: sum(kv[1]))
                     if r)
    return f"Mean rank of the MSE over {n} runs (1 = best; failed or unconverged ranked last): {text}"


if __name__ == "__main__":
    main()
