"""Your own model, end to end: a damped oscillator from 20 noisy points.

    x''(t) + 2 zeta omega x'(t) + omega^2 x(t) = 0,   x(0) = x0, x'(0) = 0,

solved with diffrax; omega [rad/s], zeta (damping ratio) and x0 are inferred from 20 noisy
positions y_i = x(t_i) + N(0, sigma^2) on 0 <= t <= 10 s. The same NumPyro model goes through
every engine of the toolkit and every report:

1. the posterior by NUTS (the reference) and by SVI (a full-rank Gaussian guide);
2. 4000 prior-predictive simulations (``simulate``), an MLP-ensemble regression and a neural
   posterior estimate (a conditional normalizing flow) trained on them, both amortized:
   applied to the data in milliseconds;
3. ``compare`` of every result with NUTS (the parameters and the curve x(t));
4. ``calibrate``: simulation-based calibration over 300 held-out simulations (coverage of the
   central intervals and SBC ranks) of the NPE and of the regression, and over a handful of
   them of NUTS itself (one short run per simulation: the Bayesian reference is calibrated by
   construction, which the check confirms within its wide binomial band);
5. the figures: x(t) bands of NUTS, NPE and regression (``plot_band``), a forest plot of the
   parameters (``plot_intervals``), the comparison (``plot_compare``) and the calibration.

    python examples/your_own_model.py --out results/oscillator [--overwrite] [--seed 0]
           [--sims 4000] [--steps 3000] [--nuts-calibration 6] [--quick]

About 6 minutes of CPU time (17 min wall on two cores shared with other jobs), plus about a
minute per NUTS calibration run (each compiles its sampler anew: 169 s for three on the loaded
machine); ``--quick``
(shorter chains, 1000 simulations, 500 training steps: rough numbers) about 4. Writes into a
results folder, atomically: ``summary.json`` (truth, the comparisons, the calibration, timings),
``nuts.nc``, ``svi.nc``, ``npe.nc``, ``regression.nc`` (any two of which ``bayesqcd compare
A.nc B.nc --out DIR`` compares again) and the figures ``x_of_t.png``, ``intervals.png``,
``compare_npe.png``, ``calibration.png``.
"""

from __future__ import annotations

import argparse
import time

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import Predictive

T_OBS = np.linspace(0.0, 10.0, 20)
"""Observation times [s]."""
SIGMA = 0.05
"""Noise of each observed position (units of x)."""
TRUTH = {"omega": 1.7, "zeta": 0.12, "x0": 1.0}
"""The parameters of the mock data set."""
PARAMS = ("omega", "zeta", "x0")


# -- 1. the forward model: a pure, differentiable JAX function ---------------------------------


def oscillator(t: jax.Array, omega: jax.Array, zeta: jax.Array, x0: jax.Array) -> jax.Array:
    """Position x(t) of the damped oscillator released at rest from x0 (units of x0).

    Args:
        t: increasing times [s], t[0] >= 0.
        omega: natural angular frequency [rad/s]; zeta: damping ratio (dimensionless).
        x0: initial position.
    """
    def field(_t, state, _args):
        x, v = state
        return v, -2.0 * zeta * omega * v - omega**2 * x

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field), diffrax.Tsit5(), t0=0.0, t1=t[-1], dt0=0.05, y0=(x0, jnp.zeros_like(x0)),
        saveat=diffrax.SaveAt(ts=t), stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-8),
        max_steps=4096)
    return sol.ys[0]


# -- 2. the NumPyro model: priors with their supports, the curve as a deterministic site -------


def model(t: jax.Array, y: jax.Array | None = None) -> None:
    """omega ~ U(0.5, 3) rad/s, zeta ~ U(0.02, 0.5), x0 ~ N(1, 0.5); y ~ N(x(t), SIGMA^2)."""
    omega = numpyro.sample("omega", dist.Uniform(0.5, 3.0))
    zeta = numpyro.sample("zeta", dist.Uniform(0.02, 0.5))
    x0 = numpyro.sample("x0", dist.Normal(1.0, 0.5))
    x = numpyro.deterministic("x_of_t", oscillator(t, omega, zeta, x0))
    numpyro.sample("y", dist.Normal(x, SIGMA), obs=y)


def with_curve(idata, key: jax.Array, t: jax.Array):
    """``idata`` with the deterministic curve x_of_t of every draw of its parameters added
    (the model itself evaluates it, through NumPyro's ``Predictive``)."""
    post = idata.posterior
    if "x_of_t" in post:
        return idata
    shape = (post.sizes["chain"], post.sizes["draw"])
    flat = {k: jnp.asarray(post[k].values.reshape(-1)) for k in PARAMS}
    curve = Predictive(model, posterior_samples=flat, return_sites=["x_of_t"])(key, t)["x_of_t"]
    post["x_of_t"] = (("chain", "draw", "x_of_t_dim_0"), np.asarray(curve).reshape(*shape, -1))
    return idata


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/oscillator", help="results folder")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run's results in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sims", type=int, default=4000, help="training simulations (default 4000)")
    p.add_argument("--steps", type=int, default=3000, help="training steps of the NPE and the regression")
    p.add_argument("--calibration-sims", type=int, default=300, help="held-out simulations for SBC")
    p.add_argument("--nuts-calibration", type=int, default=6,
                   help="held-out simulations calibrated with NUTS, one run (and compilation) each (default 6; 0: none)")
    p.add_argument("--quick", action="store_true", help="short chains, 1000 simulations, 500 steps")
    args = p.parse_args(argv)

    from bayesqcd.inference import calibrate, fit_npe, fit_regression, run_nuts, run_svi, simulate
    from bayesqcd.report import (ResultsDir, atomic_results_dir, compare, plot_band, plot_calibration,
                                 plot_compare, plot_intervals, save_figure, versions, write_json)

    out = ResultsDir(args.out, overwrite=args.overwrite)  # a bad --out fails now, not after the work
    if args.quick:
        args.sims, args.steps, args.calibration_sims = 1000, 500, 100
    keys = iter(jax.random.split(jax.random.key(args.seed), 16))
    t = jnp.asarray(T_OBS)
    seconds: dict[str, float] = {}

    def timed(name, fn, *a, **kw):
        start = time.perf_counter()
        value = fn(*a, **kw)
        seconds[name] = round(time.perf_counter() - start, 2)
        return value

    # the mock data: one draw of the likelihood at the true parameters
    x_true = oscillator(t, *(jnp.asarray(TRUTH[k]) for k in PARAMS))
    y_obs = np.asarray(x_true + SIGMA * jax.random.normal(next(keys), t.shape))

    # Bayesian posterior: NUTS (reference) and SVI, on the model as it is
    warmup, samples = (200, 300) if args.quick else (500, 1000)
    nuts = timed("nuts", run_nuts, model, t, key=next(keys), y=y_obs, num_warmup=warmup, num_samples=samples,
                 num_chains=2, progress=False)
    svi = timed("svi", run_svi, model, t, key=next(keys), y=y_obs, num_steps=1000 if args.quick else 3000,
                progress=False)

    # amortized inference: simulate (parameters, data) pairs, train once, apply to any data set
    sims = timed("simulate", simulate, model, next(keys), args.sims + args.calibration_sims, t,
                 targets=list(PARAMS), observed=["y"], progress=False, y=None)
    train, held_out = sims.split(sims.n - args.calibration_sims)
    reg = timed("fit_regression", fit_regression, train, next(keys), n_copies=20, steps=args.steps,
                progress=False)
    npe = timed("fit_npe", fit_npe, train, next(keys), n_copies=20, steps=args.steps, progress=False)
    post_reg = with_curve(reg.predict(next(keys), {"y": y_obs}, n_input_draws=200), next(keys), t)
    npe.sample(next(keys), {"y": y_obs}, 4000)  # compile once; then time one data set
    post_npe = with_curve(timed("npe_sample", npe.sample, next(keys), {"y": y_obs}, 4000), next(keys), t)

    # compare every result with NUTS, parameters and the curve
    results = {"SVI": svi, "NPE": post_npe, "regression": post_reg}
    comparisons = {name: compare(nuts, res, [*PARAMS, "x_of_t"], level=0.68, labels=("NUTS", name),
                                 x={"x_of_t": T_OBS})
                   for name, res in results.items()}
    for cmp in comparisons.values():
        print(cmp, end="\n\n")

    # calibration over held-out simulations: is a 68% interval right 68% of the time?
    cal_npe = timed("calibrate_npe", calibrate, npe, held_out, next(keys))
    cal_reg = timed("calibrate_regression", calibrate, reg, held_out, next(keys))
    cals = {"NPE": cal_npe, "regression": cal_reg}
    if args.nuts_calibration > 0:  # one short NUTS run per held-out simulation
        nuts_key = next(keys)

        def nuts_posterior(data):
            return run_nuts(model, t, key=nuts_key, y=data["y"], num_warmup=200, num_samples=200, num_chains=2,
                            progress=False, check=False)

        few, _ = held_out.split(args.nuts_calibration)
        cals["NUTS"] = timed("calibrate_nuts", calibrate, nuts_posterior, few, next(keys), n_draws=100)
    for name, cal in cals.items():
        at68 = {k: float(np.interp(0.68, cal.levels, v)) for k, v in cal.coverage.items()}
        print(f"{name}: coverage of the 68% intervals " + ", ".join(f"{k} {v:.2f}" for k, v in at68.items())
              + f"; within the binomial band: {cal.in_band}")

    print("seconds: " + ", ".join(f"{k} {v}" for k, v in seconds.items()))
    labels = ["NUTS", "NPE", "regression"]
    summary = {
        "truth": TRUTH, "sigma": SIGMA, "t": T_OBS, "y": y_obs,
        "settings": vars(args), "simulations": {"n": sims.n, "dropped": sims.n_dropped},
        "intervals": {name: {k: {"median": float(np.median(r.posterior[k])),
                                 "ci68": [float(q) for q in np.quantile(r.posterior[k], [0.16, 0.84])]}
                             for k in PARAMS} for name, r in {"NUTS": nuts, **results}.items()},
        "comparison_with_nuts": {name: cmp.to_dict() for name, cmp in comparisons.items()},
        "calibration": {name: cal.to_dict() for name, cal in cals.items()},
        "seconds": seconds, "nuts_over_npe_sample": seconds["nuts"] / max(seconds["npe_sample"], 1e-9),
        "versions": versions(),
    }
    with atomic_results_dir(out) as tmp:
        for name, res in {"nuts": nuts, "svi": svi, "npe": post_npe, "regression": post_reg}.items():
            res.to_netcdf(str(tmp / f"{name}.nc"))
        fig = plot_band([nuts, post_npe, post_reg], "x_of_t", x=T_OBS, labels=labels, xlabel="t [s]", ylabel="x(t)")
        fig.axes[0].plot(T_OBS, y_obs, "k.", label="data")
        fig.axes[0].legend(fontsize="x-small", ncol=2)
        save_figure(fig, tmp / "x_of_t.png")
        plot_intervals([nuts, post_npe, post_reg, svi], list(PARAMS), labels=[*labels, "SVI"],
                       path=tmp / "intervals.png")
        plot_compare(comparisons["NPE"], path=tmp / "compare_npe.png")
        plot_calibration(list(cals.values()), list(PARAMS), labels=list(cals), path=tmp / "calibration.png")
        write_json(tmp / "summary.json", summary)
    print(f"results -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
