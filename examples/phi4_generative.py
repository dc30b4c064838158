"""HMC vs normalizing flow vs diffusion model for 2-D phi^4 theory at the tutorial point.

"Generative models as inverse modelling of physical probability distributions": each method
learns (or samples) exp(-S[phi]) at L = 8, m^2 = -4, lambda = 8 (Albergo et al.,
arXiv:2101.08176); the flow (reverse KL, no data) and the diffusion model (trained on HMC
configurations, Wang-Aarts-Zhou stochastic quantization) are made exact by independence
Metropolis. Printed side by side: <|M|>, chi, Binder cumulant, m_eff(L/2), the Schwinger-Dyson
identity <(1/V) sum phi dS/dphi> = 1 with errors, ESS/N, acceptance, tau_int of |M| and wall
time per independent sample (sampling only, and with training amortised over this run).

    python examples/phi4_generative.py --out results/phi4 [--flow-steps 3000] [--score-steps 2000]

Writes OUT/<method>/summary.json, OUT/comparison.json and OUT/comparison.png (float32).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from bayesqcd.report import ResultsDir, atomic_results_dir, pyplot, save_figure, versions, write_json
from bayesqcd.studies import lattice


def fmt(o: dict) -> str:
    return f"{o['value']:.4f} +- {o['error']:.4f}"


def plot_comparison(results: dict, path) -> None:
    """|M| histograms and G(t) of every method in one figure."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, (summary, idata) in results.items():
        M = idata.posterior["phi"].values.mean(axis=(-2, -1)).ravel()
        axes[0].hist(M, bins=60, density=True, histtype="step", label=name)
        G = summary["observables"]["G_t"]
        axes[1].errorbar(np.arange(len(G["value"])), G["value"], G["error"], fmt="o", label=name,
                         alpha=0.8)
    axes[0].set_xlabel("M")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("t")
    axes[1].set_ylabel("G(t)")
    for ax in axes:
        ax.legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="results/phi4_generative")
    ap.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in OUT")
    ap.add_argument("--L", type=int, default=8)
    ap.add_argument("--m2", type=float, default=-4.0)
    ap.add_argument("--lam", type=float, default=8.0)
    ap.add_argument("--methods", default="hmc,flow,diffusion")
    ap.add_argument("--hmc-samples", type=int, default=2000)
    ap.add_argument("--flow-steps", type=int, default=3000)
    ap.add_argument("--flow-proposals", type=int, default=100000)
    ap.add_argument("--score-steps", type=int, default=2000)
    ap.add_argument("--diffusion-proposals", type=int, default=512)
    ap.add_argument("--ode-tol", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-configs", action="store_true", help="write OUT/<method>/configs.npz")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    out = ResultsDir(args.out, overwrite=args.overwrite)  # checked before any work

    base = lattice.Config(L=args.L, m2=args.m2, lam=args.lam, seed=args.seed,
                          hmc_samples=args.hmc_samples, flow_steps=args.flow_steps,
                          score_steps=args.score_steps, ode_tol=args.ode_tol)
    results = {}
    for method in args.methods.split(","):
        n_prop = args.flow_proposals if method == "flow" else args.diffusion_proposals
        cfg = dataclasses.replace(base, method=method, n_proposals=n_prop,
                                  proposal_batch=min(1024 if method == "flow" else 64, n_prop))
        summary, idata = lattice.compute(cfg, progress=not args.no_progress)
        results[method] = (summary, idata)
        print(f"{method} done: wall {summary['wall_time_s']:.1f} s, train {summary['train_time_s']:.1f} s",
              flush=True)

    rows = [("<|M|>", lambda s: fmt(s["observables"]["abs_M"])),
            ("chi", lambda s: fmt(s["observables"]["chi"])),
            ("Binder U4", lambda s: fmt(s["observables"]["binder"])),
            (f"m_eff(t={args.L // 2})", lambda s: "{:.4f} +- {:.4f}".format(
                s["observables"]["m_eff"]["value"][args.L // 2 - 1],
                s["observables"]["m_eff"]["error"][args.L // 2 - 1])),
            ("Ward identity (=1)", lambda s: fmt(s["observables"]["ward_identity"])),
            ("ESS/N", lambda s: f"{s['ess_per_n']:.4f}"),
            ("acceptance", lambda s: f"{s['acceptance']:.4f}"),
            ("tau_int(|M|)", lambda s: fmt(s["tau_int_absM"])),
            ("configs", lambda s: str(s["n_configs"])),
            ("sampling time [s]", lambda s: f"{s['wall_time_s']:.1f}"),
            ("training time [s]", lambda s: f"{s['train_time_s'] + s.get('hmc_data_time_s', 0):.1f}"),
            ("s / indep. sample", lambda s: f"{s['time_per_independent_sample_s']:.2e}"),
            ("  incl. training", lambda s: f"{s['time_per_independent_sample_incl_training_s']:.2e}")]
    names = list(results)
    print(f"\nL={args.L}, m2={args.m2}, lambda={args.lam}")
    print(f"{'':22s}" + "".join(f"{n:>24s}" for n in names))
    table = {}
    for label, get in rows:
        vals = [get(results[n][0]) for n in names]
        table[label] = dict(zip(names, vals))
        print(f"{label:22s}" + "".join(f"{v:>24s}" for v in vals))

    with atomic_results_dir(out) as tmp:
        for name, (summary, idata) in results.items():
            (tmp / name).mkdir()
            lattice.plot_observables(summary, idata, tmp / name / "observables.png")
            summary["figures"] = ["observables.png"]
            write_json(tmp / name / "summary.json", summary)
            if args.save_configs:
                np.savez_compressed(tmp / name / "configs.npz", phi=idata.posterior["phi"].values)
        plot_comparison(results, tmp / "comparison.png")
        write_json(tmp / "comparison.json", {"table": table, "versions": versions()})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
