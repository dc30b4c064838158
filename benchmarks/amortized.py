"""Benchmark: amortized neural posterior estimation (NPE) against NUTS, on a user's model and on neutron stars.

    python benchmarks/amortized.py                         # the oscillator: 4000 simulations, 8000 steps
    python benchmarks/amortized.py --sims 1000 --steps 500 --nuts-samples 300   # quick
    python benchmarks/amortized.py --model ns              # neutron stars (~10 min on 2 cores)

``--model oscillator`` (default): the damped oscillator of ``examples/your_own_model.py``
(x'' + 2 zeta omega x' + omega^2 x = 0 solved with diffrax; omega, zeta, x0 from 20 noisy
points). Measures, in one run on the same mock data set:

* one NUTS run at :func:`bayesqcd.inference.run_nuts`'s defaults (4 chains x 1000 draws
  after 500 warm-up: as many draws as the NPE's; its wall time, compilation included);
* ``simulate`` + ``fit_npe`` (the one-off cost of amortization);
* the NPE posterior for the data set (``npe.sample``, 4000 draws, one jitted call once
  compiled; the median of 21 calls, with their quartiles: on this shared machine single calls
  vary by up to 2x), and its medians against NUTS's in units of the NUTS sd;

and prints the ratios last: NUTS / NPE per data set (the amortization gain) and
(simulation + training) / NUTS (how many data sets pay for the training).

``--model ns``: the same ratios for neutron stars on the shipped real data, between the
main job (``bayesqcd ns-eos`` on its defaults, in a new process, its wall time) and the
NPE of ``bayesqcd ns-regression --method npe`` (its default simulations and training): the
NPE's c_s^2 draws for the data (1000, one jitted call), and its full posterior with the TOV
solves of every draw (``apply_npe``).
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
    p.add_argument("--model", choices=["oscillator", "ns"], default="oscillator")
    p.add_argument("--nuts-chains", type=int, default=4)
    p.add_argument("--nuts-warmup", type=int, default=500)
    p.add_argument("--nuts-samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.model == "ns":
        return neutron_stars(args.seed)

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
    x = npe.inputs.one({"y": y_obs})
    t_npe, q25, q75 = median_time(lambda: npe._draws(k_rep, x, args.draws))  # the jitted call of npe.sample
    post = npe.sample(next(keys), {"y": y_obs}, args.draws)
    print(f"NPE: {args.draws} draws per data set in {t_npe * 1e3:.2f} ms (quartiles {q25 * 1e3:.2f}-"
          f"{q75 * 1e3:.2f} ms; first call, compiling: {first:.2f} s)")
    for k in PARAMS:
        a, b = np.asarray(nuts.posterior[k]).ravel(), np.asarray(post.posterior[k]).ravel()
        print(f"  {k}: NUTS {np.median(a):.4f} +- {a.std():.4f}, NPE {np.median(b):.4f} +- {b.std():.4f} "
              f"(median difference {(np.median(b) - np.median(a)) / a.std():+.2f} NUTS sd, width ratio "
              f"{b.std() / a.std():.2f}); truth {TRUTH[k]}")

    print(f"\nratio NUTS run / NPE per data set: {t_nuts / t_npe:.3g}x (target >= 1e4)")
    print(f"ratio (simulation + training) / NUTS run: {(t_sim + t_train) / t_nuts:.3g} "
          f"(simulation {t_sim:.1f} s + training {t_train:.1f} s vs NUTS {t_nuts:.1f} s)")
    return 0


def median_time(fn, reps: int = 21) -> tuple[float, float, float]:
    """Median, first and third quartile of the wall time [s] of ``reps`` calls of ``fn()``
    (results blocked on; one call first, not timed)."""
    import jax
    import numpy as np

    jax.block_until_ready(fn())
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return tuple(float(q) for q in np.percentile(times, [50, 25, 75]))


def neutron_stars(seed: int) -> int:
    """NUTS (the main job) against the NPE of ``ns-regression --method npe`` on the real data."""
    import json
    import os
    import subprocess
    import tempfile

    import jax
    import numpy as np

    import bayesqcd
    from bayesqcd.studies.neutron_star.data import DataSpec, load_data
    from bayesqcd.studies.ns_regression.experiment import Config
    from bayesqcd.studies.ns_regression.npe import apply_npe, fit_eos_npe
    from bayesqcd.studies.ns_regression.regression import study_sets
    from bayesqcd.studies.ns_regression.training_set import observed_inputs

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "bayesqcd.cli", "ns-eos", "--out", f"{tmp}/nuts", "--no-progress"]
        print("$", " ".join(cmd[2:]), flush=True)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env={**os.environ, "BAYESQCD_COMPILE_CACHE": "0"})
        t_nuts = time.perf_counter() - start
        nuts = json.loads((Path(tmp) / "nuts" / "summary.json").read_text())
    r14 = nuts["headline"]["R_1.4"]["median"]
    print(f"NUTS (ns-eos defaults, cold compilation): {t_nuts:.1f} s wall; R_1.4 median {r14:.2f} km", flush=True)

    bayesqcd.enable_x64()
    config = Config(method="npe", seed=seed)
    obs, _ = load_data(DataSpec(), seed)
    settings = config.settings(n_stars=len(obs.mr))
    x_obs = observed_inputs(obs, settings.obs_model.n_stars)
    keys = jax.random.split(jax.random.key(seed + 1), 4)
    start = time.perf_counter()
    sets = study_sets(settings, progress=False)
    t_sim = time.perf_counter() - start
    start = time.perf_counter()
    npe = fit_eos_npe(sets, keys[2], steps=config.npe_steps, progress=False)
    t_train = time.perf_counter() - start
    print(f"simulate: {sets.train.n + sets.val.n + sets.held_out.n} EoS in {t_sim:.1f} s; fit_npe: "
          f"{npe.history['steps']} steps in {t_train:.1f} s", flush=True)
    x = npe.inputs.one({"stars": x_obs})
    t_draws, q25, q75 = median_time(lambda: npe._draws(keys[0], x, config.draws))
    apply_npe(npe, x_obs, keys[0], config.draws)  # compile the TOV solves
    start = time.perf_counter()
    post = apply_npe(npe, x_obs, keys[1], config.draws)
    t_full = time.perf_counter() - start
    r = post.posterior["R_1.4"].values.ravel()
    print(f"NPE: {config.draws} c_s^2 draws in {t_draws * 1e3:.2f} ms (quartiles {q25 * 1e3:.2f}-{q75 * 1e3:.2f} ms); "
          f"the full posterior with the TOV solves "
          f"of every draw in {t_full:.2f} s; R_1.4 median {float(np.median(r)):.2f} km")
    print(f"\nratio NUTS run / NPE c_s^2 draws per data set: {t_nuts / t_draws:.3g}x (target >= 1e4)")
    print(f"ratio NUTS run / NPE full posterior (with TOV solves): {t_nuts / t_full:.3g}x")
    print(f"ratio (simulation + training) / NUTS run: {(t_sim + t_train) / t_nuts:.3g} "
          f"(simulation {t_sim:.1f} s + training {t_train:.1f} s vs NUTS {t_nuts:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
