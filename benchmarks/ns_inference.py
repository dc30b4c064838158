"""Benchmark: the main job (``bayesqcd ns-eos``) against the target and the earlier default.

    python benchmarks/ns_inference.py                   # reference, cold and warm runs
    python benchmarks/ns_inference.py --skip-reference  # only the default, cold and warm
    python benchmarks/ns_inference.py --mock SLy        # mock recovery (10 sources) instead

Runs the command three times, each in a fresh process, as a user would:

1. the reference: the earlier settings, 4 chains x 1000 draws after 500 warm-up (``--ess 0
   --chains 4 --warmup 500 --samples 1000``), without the compilation cache;
2. the default (``--ess 400``: stop at a bulk ESS of 400 over the c_s^2 parameters; one chain
   per core, 2 to 4), with an empty compilation cache (cold);
3. the default again, with the cache the second run filled (warm).

Prints per run: wall time (process start to exit), compile / warm-up / sampling time, gradient
evaluations (leapfrog steps), max R-hat, min bulk ESS, divergences and ESS per second; then
the ratios (wall / 180 s target, warm wall / 90 s target, ESS/s against the reference, compile
cold / warm) and the posteriors of R_1.4, M_TOV and Lambda_1.4 (median and 68% bounds) of the
default against the reference, with the Monte-Carlo error of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_COLD_S = 180.0
TARGET_WARM_S = 90.0


def run_command(out: Path, flags: list[str], cache: Path | None) -> dict:
    """Run ``bayesqcd ns-eos`` in a new process; returns its summary.json with the process wall time."""
    env = dict(os.environ)
    if cache is None:
        env["BAYESQCD_COMPILE_CACHE"] = "0"
    else:
        env.pop("BAYESQCD_COMPILE_CACHE", None)
        env["BAYESQCD_CACHE_DIR"] = str(cache)
    cmd = [sys.executable, "-m", "bayesqcd.cli", "ns-eos", "--out", str(out), "--no-progress", *flags]
    print("$", " ".join(cmd[2:]), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    wall = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    summary["process_wall_s"] = wall
    return summary


def medians_mc_error(folder: Path, name: str) -> float:
    """Monte-Carlo standard error of the median of ``name`` (ArviZ's mcse)."""
    import arviz as az

    idata = az.from_netcdf(str(folder / "posterior.nc"))
    return float(az.mcse(idata.posterior[[name]], method="median")[name].values)


def describe(label: str, s: dict) -> float:
    t, d = s["settings"]["timing_s"], s["diagnostics"]
    ess_s = d["min_ess_bulk"] / s["process_wall_s"]
    print(f"\n{label}")
    print(f"  wall (process)     {s['process_wall_s']:8.1f} s")
    print(f"  compile            {t['compile_time_s']:8.1f} s   initial values {t['init_time_s']:.1f} s")
    print(f"  warm-up / sampling {t['warmup_time_s']:8.1f} s / {t['sampling_time_s']:.1f} s "
          f"({t['num_samples']} draws per chain, stopped by {t['stopped_by']})")
    n_draws = d["n_chains"] * d["n_draws"]
    print(f"  gradients          {t['gradient_evaluations']:8d}     ({t['gradient_evaluations'] / n_draws:.1f} per kept draw)")
    print(f"  max R-hat          {d['max_rhat']:8.4f}     min bulk ESS {d['min_ess_bulk']:.0f}, "
          f"divergent {100 * d['divergent_fraction']:.2f}%")
    print(f"  ESS per second     {ess_s:8.2f}", flush=True)
    return ess_s


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skip-reference", action="store_true", help="do not run the 4 x 1000 reference")
    p.add_argument("--mock", metavar="EOS", help="mock observations (10 sources) from this EoS instead of the real data")
    args = p.parse_args(argv)
    data = ["--mock", args.mock, "--n-obs", "10"] if args.mock else []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = {}
        if not args.skip_reference:
            runs["reference"] = run_command(tmp / "reference", [*data, "--ess", "0", "--chains", "4",
                                                                "--warmup", "500", "--samples", "1000"], None)
        runs["cold"] = run_command(tmp / "cold", data, tmp / "cache")
        runs["warm"] = run_command(tmp / "warm", data, tmp / "cache")
        labels = {"reference": "reference: 4 x 1000 draws after 500 warm-up, no cache",
                  "cold": "default (--ess 400, {} chains), empty compilation cache",
                  "warm": "default (--ess 400, {} chains), warm compilation cache"}
        ess_s = {k: describe(labels[k].format(s["diagnostics"]["n_chains"]), s) for k, s in runs.items()}
        cold, warm = runs["cold"], runs["warm"]
        print("\nratios")
        print(f"  default wall (cold) / {TARGET_COLD_S:.0f} s target   {cold['process_wall_s'] / TARGET_COLD_S:.2f}")
        print(f"  default wall (warm) / {TARGET_WARM_S:.0f} s target    {warm['process_wall_s'] / TARGET_WARM_S:.2f}")
        tc, tw = cold["settings"]["timing_s"]["compile_time_s"], warm["settings"]["timing_s"]["compile_time_s"]
        print(f"  compile cold / warm                 {tc:.1f} s / {tw:.1f} s = {tc / tw:.1f}")
        if "reference" in runs:
            ref = runs["reference"]
            print(f"  ESS/s default (cold) / reference    {ess_s['cold'] / ess_s['reference']:.2f}")
            print(f"  ESS/s default (warm) / reference    {ess_s['warm'] / ess_s['reference']:.2f}")
            print(f"  wall reference / default (cold)     {ref['process_wall_s'] / cold['process_wall_s']:.2f}")
            print("\nposterior: median [68%]      reference (4 x 1000)          default (cold)       "
                  "median difference / MC error")
            for name, h in ref["headline"].items():
                g = cold["headline"][name]
                err = np.hypot(medians_mc_error(tmp / "reference", name), medians_mc_error(tmp / "cold", name))
                print(f"  {name:11s} {h['median']:9.3f} [{h['ci68'][0]:.3f}, {h['ci68'][1]:.3f}]   "
                      f"{g['median']:9.3f} [{g['ci68'][0]:.3f}, {g['ci68'][1]:.3f}]   "
                      f"{(g['median'] - h['median']) / err:+.1f}")
        if args.mock:
            print("\ntruth inside the 90% interval: " + ", ".join(
                f"{n} {h.get('truth_in_ci90')}" for n, h in cold["headline"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
