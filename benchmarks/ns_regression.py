"""Benchmark: amortized neural regression of the neutron-star EoS against NUTS.

    python benchmarks/ns_regression.py                    # defaults of `bayesqcd ns-regression`
    python benchmarks/ns_regression.py --n-train 2000 --nuts-samples 100

Measures, in one run on the shipped observations:

* training-set generation: EoS drawn per second by ``simulate`` on the simulator model
  (32-star curves, batches of 256; compilation included), against solving EoS one jitted
  call at a time (the baseline, compiled beforehand; ``benchmarks/simulate_throughput.py``
  compares ``simulate`` with a hand-written batched solver);
* training: wall time of the MLP ensemble (with augmentation), against the polynomial fit;
* inference on a data set: one jitted ensemble call, and the full result (100 input draws
  per member with their M-R curves; once compiled), against a NUTS run on the same data
  (its wall time, compilation included);

and prints the ratios last (amortization ratio = NUTS time / regression time; the steady rate
of ``simulate`` against a batched solver is ``benchmarks/simulate_throughput.py``'s).
"""

from __future__ import annotations

import argparse
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--sequential", type=int, default=64, help="EoS solved one at a time for the baseline")
    p.add_argument("--nuts-chains", type=int, default=1)
    p.add_argument("--nuts-warmup", type=int, default=200)
    p.add_argument("--nuts-samples", type=int, default=200)
    args = p.parse_args(argv)

    import jax
    import numpy as np

    import bayesqcd
    from bayesqcd.data import load_observations
    from bayesqcd.inference import MLPRegressor, PolynomialRegressor, diagnostics
    from bayesqcd.studies.neutron_star import infer
    from bayesqcd.studies.neutron_star import report as ns_report
    from bayesqcd.studies.ns_regression import apply_regressor
    from bayesqcd.studies.ns_regression.training_set import (AugmentedSet, EoSSet, ObservationModel, derived_batch,
                                                             observed_inputs, simulate_eos)

    bayesqcd.enable_x64()

    obs = load_observations()
    om = ObservationModel(n_stars=len(obs.mr))
    x_obs = observed_inputs(obs, om.n_stars)
    print(f"devices: {jax.local_device_count()} x {jax.devices()[0].platform}", flush=True)

    # --- training-set generation: batched (simulate) vs one EoS per call
    sims, gen = simulate_eos(jax.random.key(0), args.n_train + 500, 5, om, progress=False)
    train_sims, val_sims = sims.split(sims.n - 500)
    train, val = EoSSet.of(train_sims), EoSSet.of(val_sims)
    cs2 = jax.random.uniform(jax.random.key(2), (args.sequential, 5))
    derived_batch(cs2[:1], batch_size=1)  # compile the one-EoS shape (the curve and the derived quantities)
    start = time.perf_counter()
    for i in range(args.sequential):
        derived_batch(cs2[i:i + 1], batch_size=1)
    seq_rate = args.sequential / (time.perf_counter() - start)
    print(f"\ntraining set: {gen.n_kept} of {gen.n_drawn} EoS kept ({gen.n_dropped} dropped), "
          f"{gen.eos_per_second:.0f} EoS/s batched by simulate ({gen.wall_time_s:.1f} s, compilation included), "
          f"{seq_rate:.1f} EoS/s one at a time (compiled)", flush=True)

    # --- training
    data = AugmentedSet(train, jax.random.key(4), 20, om)
    vset = AugmentedSet(val, jax.random.key(5), 1, om)
    start = time.perf_counter()
    nn = MLPRegressor(n_steps=args.steps).fit(data, jax.random.key(6), val=vset, progress=False)
    t_nn = time.perf_counter() - start
    start = time.perf_counter()
    PolynomialRegressor(2).fit(data)
    t_poly = time.perf_counter() - start
    print(f"training: MLP ensemble ({nn.n_members} x {nn.history['steps']} steps) {t_nn:.1f} s, "
          f"polynomial {t_poly:.1f} s", flush=True)

    # --- inference on the real data
    start = time.perf_counter()
    apply_regressor(nn, x_obs, jax.random.key(7), 100)
    t_first = time.perf_counter() - start  # compiles the batched M-R solve of the draws
    start = time.perf_counter()
    idata = apply_regressor(nn, x_obs, jax.random.key(8), 100)
    t_full = time.perf_counter() - start
    t_call = idata.posterior.attrs["inference_time_s"]
    nuts = infer(obs, method="nuts", chains=args.nuts_chains, warmup=args.nuts_warmup,
                 samples=args.nuts_samples, progress=False)
    t_nuts = nuts.posterior.attrs["wall_time_s"]
    ess = diagnostics(nuts, ns_report.parameter_names(nuts))["min_ess_bulk"]
    print(f"inference: one ensemble call {1e3 * t_call:.3f} ms; full result with M-R curves "
          f"({idata.posterior.sizes['chain']} x {idata.posterior.sizes['draw']} draws) {t_full:.1f} s "
          f"({t_first:.1f} s the first time, with compilation); "
          f"NUTS {args.nuts_chains} x {args.nuts_samples} ({args.nuts_warmup} warm-up) {t_nuts:.1f} s, "
          f"min bulk ESS {ess:.0f}", flush=True)
    for name, h in ns_report.headline(idata).items():
        hn = ns_report.headline(nuts)[name]
        print(f"  {name:11s} regression {h['median']:8.3f} {np.round(h['ci68'], 3)}   "
              f"NUTS {hn['median']:8.3f} {np.round(hn['ci68'], 3)}")

    print("\nratios")
    print(f"  training, MLP ensemble / polynomial            {t_nn / t_poly:10.1f}")
    print(f"  amortization, NUTS / one ensemble call         {t_nuts / t_call:10.3g}")
    print(f"  amortization, NUTS / full regression result    {t_nuts / t_full:10.1f}")
    print(f"  NUTS / (training set + training + result)      {t_nuts / (gen.wall_time_s + t_nn + t_first):10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
