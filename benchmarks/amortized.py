"""Benchmark: amortized neural posterior estimation (NPE) against NUTS on a user's model.

    python benchmarks/amortized.py                         # 4000 simulations, 8000 steps
    python benchmarks/amortized.py --sims 1000 --steps 500 --nuts-samples 300   # quick

The model is the damped oscillator of ``examples/your_own_model.py`` (x'' + 2 zeta omega x'
+ omega^2 x = 0 solved with diffrax; omega, zeta, x0 from 20 noisy points). Measures, in one
run on the same mock data set:

* one NUTS run (:func:`bayesqcd.inference.run_nuts`, its wall time, compilation included);
* ``simulate`` + ``fit_npe`` (the one-off cost of amortization);
* the NPE posterior for the data set (``npe.sample``, 4000 draws, one jitted call once
  compiled), and its medians against NUTS's in units of the NUTS sd;

and prints the ratios last: NUTS / NPE per data set (the amortization gain) and
(simulation + training) / NUTS (how many data sets pay for the training).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sims", type=int, default=4000, help="training simulations")
    p.add_argument("--steps", type=int, default=8000, help="NPE training steps (fit_npe's default)")
    p.add_argument("--draws", type=int, default=4000, help="NPE posterior draws per data set")
    p.add_argument("--nuts-chains", type=int, default=1)
    p.add_argument("--nuts-warmup", type=int, default=500)
    p.add_argument("--nuts-samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from your_own_model import PARAMS, SIGMA, T_OBS, TRUTH, model, oscillator

    from bayesqcd.inference import fit_npe, run_nuts, simulate

    keys = iter(jax.random.split(jax.random.key(args.seed), 8))
    t = jnp.asarray(T_OBS)
    x_true = oscillator(t, *(jnp.asarray(TRUTH[k]) for k in PARAMS))
    y_obs = np.asarray(x_true + SIGMA * jax.random.normal(next(keys), t.shape))
    print(f"devices: {jax.devices()}; truth {TRUTH}", flush=True)

    start = time.perf_counter()
    nuts = run_nuts(model, t, key=next(keys), y=y_obs, num_warmup=args.nuts_warmup, num_samples=args.nuts_samples,
                    num_chains=args.nuts_chains, progress=False)
    t_nuts = time.perf_counter() - start
    print(f"NUTS: {args.nuts_chains} chain(s) x ({args.nuts_warmup} + {args.nuts_samples}) in {t_nuts:.1f} s",
          flush=True)

    start = time.perf_counter()
    sims = simulate(model, next(keys), args.sims, t, targets=list(PARAMS), observed=["y"], progress=False, y=None)
    t_sim = time.perf_counter() - start
    print(f"simulate: {sims.n} kept of {sims.n_requested} ({sims.n_dropped} dropped) in {t_sim:.1f} s", flush=True)
    start = time.perf_counter()
    npe = fit_npe(sims, next(keys), steps=args.steps, progress=False)
    t_train = time.perf_counter() - start
    print(f"fit_npe: {npe.history['steps']} steps (early stop: {npe.history['stopped_early']}) in {t_train:.1f} s, "
          f"final validation loss {npe.history['val_loss'][-1]:.3f}", flush=True)

    first = npe.sample(next(keys), {"y": y_obs}, args.draws).posterior.attrs["inference_time_s"]
    k_rep = next(keys)
    times = [npe.sample(jax.random.fold_in(k_rep, i), {"y": y_obs}, args.draws).posterior.attrs["inference_time_s"]
             for i in range(5)]
    post = npe.sample(next(keys), {"y": y_obs}, args.draws)
    t_npe = float(np.median(times))
    print(f"NPE: {args.draws} draws per data set in {t_npe * 1e3:.2f} ms (first call, compiling: {first:.2f} s)")
    for k in PARAMS:
        a, b = np.asarray(nuts.posterior[k]).ravel(), np.asarray(post.posterior[k]).ravel()
        print(f"  {k}: NUTS {np.median(a):.4f} +- {a.std():.4f}, NPE {np.median(b):.4f} +- {b.std():.4f} "
              f"(median difference {(np.median(b) - np.median(a)) / a.std():+.2f} NUTS sd, width ratio "
              f"{b.std() / a.std():.2f}); truth {TRUTH[k]}")

    print(f"\nratio NUTS run / NPE per data set: {t_nuts / t_npe:.3g}x (target >= 1e4)")
    print(f"ratio (simulation + training) / NUTS run: {(t_sim + t_train) / t_nuts:.3g} "
          f"(simulation {t_sim:.1f} s + training {t_train:.1f} s vs NUTS {t_nuts:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
