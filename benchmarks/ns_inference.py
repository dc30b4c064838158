"""Benchmark: the default real-data neutron-star EoS inference, NUTS against SVI.

    python benchmarks/ns_inference.py                 # 4 chains x 1000 draws (500 warm-up)
    python benchmarks/ns_inference.py --samples 300   # shorter

Runs the same model as ``bayesqcd ns-eos`` on its embedded defaults (shipped observations,
5 c_s^2 segments) and prints, for NUTS: wall time (compilation included), max R-hat, min
bulk ESS over the EoS parameters, ESS per second and the fraction of divergent
transitions, against the target (4 x 1000 draws in < 180 s on 2 CPU cores, R-hat <= 1.01,
bulk ESS >= 400, < 1% divergences); for SVI (full-rank guide): wall time, importance-
sampling ESS of its draws (from the log weights p/q), ESS per second and Pareto k; then the
headline posteriors of both and the ratios, last.
"""

from __future__ import annotations

import argparse
import os
import sys

# Chains run in parallel on the CPU cores (set before JAX starts).
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count="
                               + str(min(4, os.cpu_count() or 1))).strip()

import numpy as np  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--svi-steps", type=int, default=2000)
    args = p.parse_args(argv)

    import jax

    import bayesqcd
    from bayesqcd.data import load_observations
    from bayesqcd.inference import diagnostics
    from bayesqcd.studies.neutron_star import infer
    from bayesqcd.studies.neutron_star import report as ns_report

    bayesqcd.enable_x64()

    obs = load_observations()
    print(f"devices: {jax.local_device_count()} x {jax.devices()[0].platform}; "
          f"{args.chains} chains x {args.samples} draws ({args.warmup} warm-up)", flush=True)
    nuts = infer(obs, method="nuts", chains=args.chains, warmup=args.warmup, samples=args.samples, progress=False)
    d = diagnostics(nuts, ns_report.parameter_names(nuts))
    t_nuts = nuts.posterior.attrs["wall_time_s"]
    n_div = d["divergences"] / (d["n_chains"] * d["n_draws"])
    print("\nNUTS (default run)")
    print(f"  wall time          {t_nuts:8.1f} s    target < 180 s")
    print(f"  max R-hat          {d['max_rhat']:8.4f}      target <= 1.01")
    print(f"  min bulk ESS       {d['min_ess_bulk']:8.0f}      target >= 400")
    print(f"  divergent          {100 * n_div:8.2f} %    target < 1%")
    print(f"  ESS per second     {d['min_ess_bulk'] / t_nuts:8.2f}", flush=True)
    svi = infer(obs, method="svi", svi_steps=args.svi_steps, samples=4000, progress=False)
    t_svi = svi.posterior.attrs["wall_time_s"]
    lw = np.asarray(svi.sample_stats["log_weight"]).ravel()
    lw = lw[np.isfinite(lw)]
    w = np.exp(lw - lw.max())
    ess_svi = float(w.sum() ** 2 / (w**2).sum())
    print("SVI (full-rank guide)")
    print(f"  wall time          {t_svi:8.1f} s")
    print(f"  IS ESS of 4000     {ess_svi:8.0f}      Pareto k {svi.posterior.attrs['pareto_k']:.2f}")
    print(f"  ESS per second     {ess_svi / t_svi:8.2f}")
    print("\nposterior medians [68%]      NUTS                     SVI")
    hn, hs = ns_report.headline(nuts), ns_report.headline(svi)
    for name in ns_report.HEADLINE:
        a, b = hn[name], hs[name]
        print(f"  {name:11s} {a['median']:8.3f} [{a['ci68'][0]:.3f}, {a['ci68'][1]:.3f}]"
              f"   {b['median']:8.3f} [{b['ci68'][0]:.3f}, {b['ci68'][1]:.3f}]")
    print("\nratios")
    print(f"  NUTS wall / target 180 s      {t_nuts / 180:.2f}")
    print(f"  NUTS wall / SVI wall          {t_nuts / t_svi:.2f}")
    print(f"  SVI ESS/s / NUTS ESS/s        {(ess_svi / t_svi) / (d['min_ess_bulk'] / t_nuts):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
