"""Benchmark: the generic ``simulate`` on the neutron-star simulator against a hand-written batched solver.

    python benchmarks/simulate_throughput.py                     # 2048 draws, batches of 256
    python benchmarks/simulate_throughput.py --n 1024 --batch 128

Both produce the training sets of ``bayesqcd ns-regression`` (c_s^2 ~ U(0, 1) in 5 segments,
the 32-star M-R curve of the Bayesian model, 5 stars with masses uniform in [1 M_sun, M_top],
their radii, M_TOV; invalid EoS dropped):

* ``simulate(star_model, ...)`` -- :func:`bayesqcd.inference.simulate` on the NumPyro model
  :func:`bayesqcd.studies.ns_regression.training_set.star_model` (NumPyro ``Predictive``,
  jitted and vmapped batches, sharded over all devices of all processes), which is what the
  ns-regression training-set builder calls;
* the baseline: the builder as it was before it called ``simulate`` -- the c_s^2 and mass
  fractions drawn up front, one ``jax.jit(jax.vmap(solve_one))`` per batch (one process).

In the same run, with the same batch size and the same EoS (the baseline solves the c_s^2 and
mass fractions that ``simulate`` drew and kept, in whole batches), it prints for both: the
wall time (compilation included; for ``simulate`` also the part spent in its one trace
of the model, which reads the sites' supports), the steady throughput in draws/s (the batches
after the first, timed one by one), their ratios, and checks that the two give the same stars
and M_TOV.
"""

from __future__ import annotations

import argparse
import os
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2048, help="draws per method (default 2048)")
    p.add_argument("--batch", type=int, default=256, help="draws per jitted call for both (default 256)")
    p.add_argument("--segments", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.n <= args.batch:
        p.error(f"--n = {args.n} must exceed --batch = {args.batch} (the steady rate needs two calls)")

    import jax
    import jax.numpy as jnp
    import numpy as np

    import bayesqcd
    from bayesqcd.eos import sound_speed
    from bayesqcd.inference import simulate
    from bayesqcd.models.neutron_star import TABLE_NODES, derived_quantities
    from bayesqcd.studies.ns_regression.training_set import CURVE_POINTS, ObservationModel, star_model
    from bayesqcd.tov import INFERENCE, mass_radius_curve

    bayesqcd.enable_x64()
    om = ObservationModel()
    k = args.segments
    load = os.getloadavg()
    print(f"devices: {jax.device_count()} x {jax.devices()[0].platform}; n = {args.n}, batch = {args.batch}; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)

    # --- the baseline: the builder before it called simulate (one process, one device)
    def solve_one(cs2, u):
        eos = sound_speed(cs2, n_grid=TABLE_NODES)
        curve = mass_radius_curve(eos, CURVE_POINTS, config=INFERENCE, zoom_levels=0)
        d = derived_quantities(eos, curve)
        stable = curve.stable & curve.stars.valid & jnp.isfinite(curve.stars.M)
        m_top = jnp.max(jnp.where(stable, curve.stars.M, -jnp.inf))
        masses = om.m_min + u * (m_top - om.m_min)
        radii = jax.vmap(lambda m: curve.at_mass(m, "R"))(masses)
        ok = eos.valid & (m_top > om.m_min + 0.1) & jnp.all(jnp.isfinite(radii)) & jnp.isfinite(d["M_TOV"])
        return {"M": masses, "R": radii, "M_TOV": d["M_TOV"], "ok": ok}

    solve = jax.jit(jax.vmap(solve_one))

    def baseline(cs2, u):
        times, parts, start = [], [], time.perf_counter()
        for i in range(0, cs2.shape[0], args.batch):
            out = solve(cs2[i:i + args.batch], u[i:i + args.batch])
            parts.append(jax.tree.map(np.asarray, out))
            times.append(time.perf_counter() - start)
        return {kk: np.concatenate([q[kk] for q in parts]) for kk in parts[0]}, times

    # simulate, timed batch by batch: the module's `gather` (called once per batch) and its
    # one trace of the model (`_site_info`, before the first batch) are wrapped with clocks
    from bayesqcd.inference import simulation

    clock: dict[str, list[float]] = {"batches": [], "site_info": []}

    def clocked(fn, name, duration):
        def wrapper(*a, **kw):
            start = time.perf_counter()
            value = fn(*a, **kw)
            clock[name].append(time.perf_counter() - (start if duration else 0.0))
            return value
        return wrapper

    simulation.gather = clocked(simulation.gather, "batches", duration=False)  # when each batch is done
    simulation._site_info = clocked(simulation._site_info, "site_info", duration=True)  # how long it took

    jax.clear_caches()  # each method compiles (and traces) from scratch
    start = time.perf_counter()
    sims = simulate(star_model, jax.random.key(args.seed), args.n, k, om, targets=["cs2", "M_TOV"],
                    observed=["stars"], batch_size=args.batch, progress=False)
    t_sim = time.perf_counter() - start
    b = clock["batches"]
    rate_sim = (args.n - args.batch) / (b[-1] - b[0])
    print(f"simulate:  {args.n} draws in {t_sim:.1f} s (first batch with compilation {b[0] - start:.1f} s, of which "
          f"{clock['site_info'][0]:.1f} s the model's one trace for its sites), {sims.n_dropped} dropped; "
          f"steady {rate_sim:.0f} draws/s", flush=True)

    # the baseline on the same EoS and stars: simulate's kept draws, in whole batches
    m = sims.n // args.batch * args.batch
    jax.clear_caches()
    ref, times = baseline(jnp.asarray(sims.targets["cs2"][:m]), jnp.asarray(sims.latents["mass_fraction"][:m]))
    rate_base = (m - args.batch) / (times[-1] - times[0])
    print(f"baseline:  the same first {m} draws in {times[-1]:.1f} s (first batch with compilation {times[0]:.1f} s); "
          f"steady {rate_base:.0f} draws/s", flush=True)
    print(f"\nratio simulate / baseline, steady draws/s: {rate_sim / rate_base:.2f}; "
          f"wall time per draw, baseline / simulate: {times[-1] / m / (t_sim / args.n):.2f}")

    # --- the same quantities
    dm = np.max(np.abs(ref["M"] - sims.latents["M_star"][:m]))
    dr = np.max(np.abs(ref["R"] - sims.latents["R_star"][:m]))
    dt = np.max(np.abs(ref["M_TOV"] - sims.targets["M_TOV"][:m]))
    print(f"same quantities ({m} draws): max |dM| {dm:.1e} M_sun, |dR| {dr:.1e} km, |dM_TOV| {dt:.1e} M_sun; "
          f"all valid in the baseline too: {bool(ref['ok'].all())}")
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
