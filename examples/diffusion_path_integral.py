"""Diffusion models as path integrals: Table 1 and W2 against h of Hirono, Tanaka, Fukushima
(ICML 2024) under the paper's own protocol, with the spread between independent trainings.

For swiss roll and 25 Gaussians, with the SIMPLE and COSINE schedules (window [0.01, T], where
the score is trained): train the paper's MLP by g^2-weighted denoising score matching once per
seed, then measure the NLL at h = 0, the first-order WKB coefficient per point at the outer
tolerances 1e-3 and 1e-5 (mean, per-point sem, median, 10%-trimmed mean, sd over trainings) and
W2(generated, data) for h in [0, 0.2] (first seed). Beyond the paper: NLL(h) - NLL(0) from a KDE
of h-process samples against the WKB line, and the exact NLL(h) of the 1-D analytic model.

    python examples/diffusion_path_integral.py --out results/table1 --protocol paper \\
        --cases 25gauss:simple --seeds 0,1,2 --steps 30000

``--protocol paper`` (default): the paper's likelihood settings (``PAPER_PROTOCOL``: nested
central differences, step 0.01, inner tolerance 1e-5, the columns are the outer tolerance) and
its training length (16000 epochs = 96000 steps unless ``--steps``); ``--protocol adjoint``: our
adjoint sweep (no inner solve, no FD error) at the same outer tolerances.

Writes OUT/summary.json, OUT/table.md, OUT/analytic_finite_h.png and one results folder per case
(summary.json, coefficients.png, samples.png, w2_finite_h_training.png), atomically; the trained
networks are kept beside it, in OUT.ckpt/CASE/ or --checkpoints (a rerun reuses them; both
protocols can share one set of networks).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from bayesqcd.diffusion import prior_radius
from bayesqcd.precision import x64_scope
from bayesqcd.report import ResultsDir, atomic_results_dir, results_dir, versions, write_json
from bayesqcd.studies import diffusion_path_integral as dpi

CASES = [("swiss-roll", "simple"), ("swiss-roll", "cosine"), ("25gauss", "simple"),
         ("25gauss", "cosine")]
COLUMNS = (("nll_h0", "NLL h=0"), ("tol=0.001", "coef. outer tol 1e-3"),
           ("tol=1e-05", "coef. outer tol 1e-5"))


def _cell(st: dict, cmp: dict) -> str:
    sd = st["sd_over_trainings"]
    spread = "" if sd is None else f" ± {sd['mean']:.2f} (trainings)"
    return (f"{st['mean']:.2f} ± {st['sem']:.2f} (points){spread}; median {st['median']:.2f}, "
            f"trimmed {st['trimmed_mean']:.2f} | {cmp['paper']:.2f} ± {cmp['paper_error']:.2f} "
            f"| {'yes' if cmp['within_2_combined'] else 'no'} (z = {cmp['z']:.1f})")


def _short(st: dict) -> str:
    sd = st["sd_over_trainings"]
    return (f"{st['mean']:.2f} ± {st['sem']:.2f}" + ("" if sd is None else f" ± {sd['mean']:.2f}")
            + f" (median {st['median']:.2f})")


def table(summaries: list[dict]) -> str:
    """Markdown: per case and column, ours (mean ± per-point sem ± sd over trainings; median;
    trimmed mean), the paper's number, and whether it lies within 2 combined uncertainties."""
    head = "| case | " + " | ".join(f"{name} (ours) | paper | within?" for _, name in COLUMNS) + " |"
    rows = [head, "|---" * (1 + 3 * len(COLUMNS)) + "|"]
    for s in summaries:
        stats = {"nll_h0": s["nll_h0"], **s["first_order"]}
        cells = [_cell(stats[k], s["paper_comparison"][k]) if k in stats else "– | – | –"
                 for k, _ in COLUMNS]
        rows.append(f"| {s['case']['data']} / {s['case']['sde'].upper()} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def from_t0(cfg: dpi.Config) -> dict:
    """Extra, not the paper's quantity: the same trained networks (window [0.01, T]) integrated
    from t = 0, i.e. through [0, 0.01] where the network extrapolates (adjoint, tol 1e-5)."""
    with x64_scope(True):
        sde0 = cfg.schedule().with_window(t_min=0.0)
        per_seed = {"nll": [], "coef": []}
        for seed in cfg.seeds:
            r = dpi.train_one(cfg, seed, progress=False)  # the checkpoint: no training
            model = jax.tree_util.tree_map(
                lambda a: a.astype(np.float64) if eqx.is_inexact_array(a) else a, r["result"].model)
            nll, coef = dpi.nll_and_coefficient(model, sde0, r["points"], 1e-5, progress=False,
                                                max_radius=prior_radius(2))
            ok = np.isfinite(nll) & np.isfinite(coef)
            per_seed["nll"].append({"seed": seed, **dpi.point_stats(nll[ok])})
            per_seed["coef"].append({"seed": seed, **dpi.point_stats(coef[ok])})
    return {"window": [0.0, sde0.T], "method": "adjoint, tol 1e-5",
            "nll_h0": dpi.over_trainings(per_seed["nll"]),
            "coefficient": dpi.over_trainings(per_seed["coef"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/table1")
    ap.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in OUT")
    ap.add_argument("--protocol", choices=["paper", "adjoint"], default="paper")
    ap.add_argument("--steps", type=int, default=None,
                    help=f"training steps (default: the paper's {dpi.PAPER_EPOCHS} epochs, 96000)")
    ap.add_argument("--seeds", default="0,1,2", help="independent trainings per case")
    ap.add_argument("--n-eval", type=int, default=256)
    ap.add_argument("--n-samples", type=int, default=3000)
    ap.add_argument("--checkpoints", default=None,
                    help="folder of the trained networks, CASE/score-seedS.eqx (default OUT.ckpt; "
                    "one of other settings is refused)")
    ap.add_argument("--extra-t0", action="store_true",
                    help="also integrate the same networks from t = 0 (a labelled extra column)")
    ap.add_argument("--cases", nargs="*", default=[f"{d}:{s}" for d, s in CASES],
                    help="subset of data:sde pairs")
    args = ap.parse_args()
    likelihood = dpi.PAPER_PROTOCOL if args.protocol == "paper" else {"wkb_method": "adjoint"}
    seeds = tuple(int(s) for s in args.seeds.split(","))
    out = results_dir(ResultsDir(args.out, overwrite=args.overwrite))  # checked before any work
    # beside the results folder, never inside it
    ckpt_root = Path(args.checkpoints) if args.checkpoints else Path(f"{out.path}.ckpt")
    configs = []
    for case in args.cases:
        d, s = case.split(":")
        ckpt = ckpt_root / f"{d}-{s}"
        cfg = dpi.Config(data=d, sde=s, n_eval=args.n_eval, n_samples=args.n_samples, seeds=seeds,
                         n_steps=args.steps or dpi.PAPER_EPOCHS * -(-3000 // 512),
                         checkpoint=str(ckpt / "score.eqx"), **likelihood)
        configs.append((cfg, ckpt))

    # the study switches float64 on for the likelihood (training stays float32)
    summaries = []
    with atomic_results_dir(out) as tmp:
        for cfg, ckpt in configs:
            ckpt.mkdir(parents=True, exist_ok=True)
            summ = dpi.run(cfg, out=tmp / f"{cfg.data}-{cfg.sde}")
            if args.extra_t0:
                summ["extra_from_t0"] = from_t0(cfg)
            summaries.append(summ)
            print(table([summ]).splitlines()[-1], flush=True)
        analytic = dpi.analytic_finite_h(np.linspace(0.0, 1.0, 11))
        dpi.plot_analytic_finite_h(analytic, tmp / "analytic_finite_h.png")
        md = table(summaries)
        if args.extra_t0:
            md += ("\n\nExtra (not the paper's quantity): the same networks integrated from t = 0, "
                   "through [0, 0.01] where they extrapolate (adjoint, tol 1e-5):\n\n"
                   "| case | NLL h=0 | coefficient |\n|---|---|---|\n" + "\n".join(
                       f"| {s['case']['data']} / {s['case']['sde'].upper()} | "
                       + " | ".join(_short(s["extra_from_t0"][k]) for k in ("nll_h0", "coefficient"))
                       + " |" for s in summaries))
        (tmp / "table.md").write_text(md + "\n")
        write_json(tmp / "summary.json", {"protocol": args.protocol, "likelihood": likelihood,
                                          "cases": summaries, "analytic_finite_h": analytic,
                                          "table_markdown": md, "versions": versions()})
    print(md)
    for s in summaries:
        w = s["w2_vs_h"]
        print(s["case"], "W2:", ", ".join(f"h={h:g}: {v:.4f}" for h, v in zip(w["h"], w["w2"])),
              f"(data-vs-data {w['data_vs_data_floor']:.4f})")
        for seed in s["seeds"]:
            for k, f in s["failed_points"][f"seed={seed}"].items():
                if f["count"]:
                    print(s["case"], f"seed {seed} {k}: failed points",
                          [(p["index"], p["reason"], p["nll_h0"], p["coefficient"]) for p in f["points"]])
    print("analytic 1-D model: dNLL/dh exact", analytic["exact_coefficient"], "WKB",
          analytic["wkb_coefficient"])


if __name__ == "__main__":
    main()
