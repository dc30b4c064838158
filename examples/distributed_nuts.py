"""NUTS chains and simulations on several processes (hosts): a linear model with an exact posterior.

    y = X beta + N(0, sigma^2),   beta ~ N(0, tau^2 I),   sigma = 0.5, tau = 10 (no units),

with ``n`` data points and ``p`` coefficients drawn from ``--seed``. The posterior is Gaussian
with precision ``X^T X / sigma^2 + I / tau^2``; the script prints how far the NUTS posterior
mean lies from the exact one, in Monte Carlo standard errors. With ``--sims N`` it also draws
``N`` prior-predictive simulations (``simulate``, sharded over the same devices) whose target
``log_beta0 = log(beta_0)`` is invalid (NaN) for ``beta_0 < 0``: those are dropped and counted;
with ``--sims-dir DIR`` every completed batch is kept there and a killed run resumes from it.
With ``--calibrate K`` the last ``K`` kept simulations are held out and two posteriors are
calibrated on them (``calibrate``, the data sets shared out over the processes): a linear
regression fitted to the other simulations (batched) and the exact posterior (a callable,
one data set at a time); ``calibration.json`` holds the ranks and coverage of both.

Every process runs this same script; the chains are spread over the devices of all processes
and every process gets all of them, and only process 0 writes the results folder
(``posterior.nc`` unless ``--no-nuts``, ``summary.json``, ``simulations.npz``, ``calibration.json``)::

    # one process (as many chains in parallel as host devices)
    python examples/distributed_nuts.py --out results/lin
    # a hand-made launch: run once per process, on any hosts that reach HOST:PORT
    python examples/distributed_nuts.py --out results/lin --coordinator HOST:PORT --num-processes 2 --process-id 0
    # inside a SLURM allocation (srun) or an Open MPI launch (mpirun): cluster auto-detection
    srun python examples/distributed_nuts.py --out results/lin --distributed
    # try it on this machine: start 2 local processes (one CPU device each) on a free port
    python examples/distributed_nuts.py --out results/lin --launch 2
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="results folder (written by process 0 only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=200, help="data points (default 200)")
    p.add_argument("--p", type=int, default=3, help="coefficients (default 3)")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--sims", type=int, default=0, help="prior-predictive simulations (default 0)")
    p.add_argument("--batch", type=int, default=1024, help="simulations per compiled batch (default 1024)")
    p.add_argument("--sims-dir", help="checkpoint folder of the simulations (resumed when it has batches)")
    p.add_argument("--calibrate", type=int, default=0, metavar="K",
                   help="calibrate two posteriors on the last K kept simulations (default 0: no)")
    p.add_argument("--calib-draws", type=int, default=50, help="posterior draws per calibration data set")
    p.add_argument("--calib-chunk", type=int, default=8, help="data sets per batched calibration call (default 8)")
    p.add_argument("--no-nuts", action="store_true", help="skip NUTS (simulations and calibration only)")
    p.add_argument("--distributed", action="store_true", help="jax.distributed with cluster auto-detection")
    p.add_argument("--coordinator", metavar="HOST:PORT")
    p.add_argument("--num-processes", type=int)
    p.add_argument("--process-id", type=int)
    p.add_argument("--launch", type=int, metavar="N", help="start N local processes of this script and wait")
    return p.parse_args(argv)


def launch(n: int, argv: list[str]) -> int:
    """Run this script as ``n`` local processes (one CPU device each) joined on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    procs = [subprocess.Popen([sys.executable, __file__, *argv, "--coordinator", f"127.0.0.1:{port}",
                               "--num-processes", str(n), "--process-id", str(i)], env=env)
             for i in range(n)]
    return max(p.wait() for p in procs)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.calibrate and not args.sims:
        raise SystemExit("--calibrate needs --sims")
    if args.launch:
        i = argv.index("--launch")
        return launch(args.launch, argv[:i] + argv[i + 2:])

    import jax

    from bayesqcd.inference import distributed

    if args.distributed or args.coordinator is not None:
        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    jax.config.update("jax_enable_x64", True)

    import time

    import jax.numpy as jnp
    import numpy as np
    import numpyro
    import numpyro.distributions as dist

    from bayesqcd.inference import calibrate, fit_regression, from_draws, run_nuts, simulate
    from bayesqcd.report import ResultsDir, atomic_results_dir, write_json

    sigma, tau = 0.5, 10.0
    rng = np.random.default_rng(args.seed)
    x = rng.normal(size=(args.n, args.p))
    y = x @ rng.normal(size=args.p) + sigma * rng.normal(size=args.n)

    def model(x, y=None):
        beta = numpyro.sample("beta", dist.Normal(0.0, tau).expand([x.shape[1]]).to_event(1))
        numpyro.sample("y", dist.Normal(x @ beta, sigma), obs=y)
        return beta

    def simulator(x):
        numpyro.deterministic("log_beta0", jnp.log(model(x)[0]))

    out = ResultsDir(args.out) if distributed.is_main_process() else None  # the others write nothing
    precision = x.T @ x / sigma**2 + np.eye(args.p) / tau**2
    exact = np.linalg.solve(precision, x.T @ y / sigma**2)
    summary = {"exact_mean": exact, "n_devices": jax.device_count(), "n_processes": jax.process_count()}
    idata = None
    if not args.no_nuts:
        import arviz as az

        idata = run_nuts(model, x, key=jax.random.PRNGKey(args.seed), y=y, num_warmup=args.warmup,
                         num_samples=args.samples, num_chains=args.chains, progress=out is not None, check=False)
        post = idata.posterior["beta"].values
        ess = az.ess(idata, var_names=["beta"])["beta"].values
        mcse = post.std(axis=(0, 1)) / np.sqrt(ess)
        attrs = idata.posterior.attrs
        summary.update({"nuts_mean": post.mean(axis=(0, 1)), "mcse": mcse, "min_ess_bulk": ess.min(),
                        "ess_per_s": float(ess.min() / attrs["sampling_time_s"]),
                        **{k: attrs[k] for k in ("sampling_time_s", "warmup_time_s", "compile_time_s",
                                                 "gather_time_s", "n_devices", "n_processes", "num_chains")}})
    sims = None
    if args.sims:
        t0 = time.perf_counter()
        sims = simulate(simulator, jax.random.PRNGKey(args.seed + 1), args.sims, x, targets=["beta", "log_beta0"],
                        observed=["y"], batch_size=args.batch, progress=False, checkpoint_dir=args.sims_dir)
        summary.update(sims_per_s=args.sims / (time.perf_counter() - t0), sims_kept=sims.n, sims_dropped=sims.n_dropped)
        digest = hashlib.sha256(b"".join(v.tobytes() for v in (*sims.targets.values(), *sims.observed.values())))
        print(f"process {jax.process_index()}: simulations sha256 {digest.hexdigest()[:16]}", flush=True)
    calibration = {}
    if args.calibrate:
        train, held = sims.split(sims.n - args.calibrate)
        cov_post = np.linalg.inv(precision)
        z = np.random.default_rng(args.seed + 3).normal(size=(args.calib_draws, args.p)) @ np.linalg.cholesky(cov_post).T

        def exact_posterior(data):  # exact draws, on this process alone
            return from_draws({"beta": (cov_post @ x.T @ data["y"] / sigma**2 + z)[None]})

        t0 = time.perf_counter()
        reg = fit_regression(train, jax.random.PRNGKey(args.seed + 2), method="polynomial", degree=1, n_copies=2,
                             progress=False)
        t_fit = time.perf_counter() - t0
        for name, post in (("regression", reg), ("exact", exact_posterior)):
            t0 = time.perf_counter()
            cal = calibrate(post, held, jax.random.PRNGKey(args.seed + 4), n_draws=args.calib_draws,
                            var_names=["beta"], chunk=args.calib_chunk)
            summary[f"calib_{name}_per_s"] = held.n / (time.perf_counter() - t0)
            calibration[name] = {"ranks": cal.ranks["beta"], **cal.to_dict()}
        summary.update(calib_sims=held.n, calib_fit_time_s=t_fit)
    if out is not None:
        with atomic_results_dir(out) as tmp:
            if idata is not None:
                idata.to_netcdf(tmp / "posterior.nc")
            write_json(tmp / "summary.json", summary)
            if sims is not None:
                sims.save(tmp / "simulations.npz")
            if calibration:
                write_json(tmp / "calibration.json", calibration)
        if idata is None:
            print(f"{jax.device_count()} devices of {jax.process_count()} process(es) -> {args.out}")
        else:
            z = np.abs(summary["nuts_mean"] - exact) / mcse
            print(f"{attrs['num_chains']} chains on {attrs['n_devices']} devices of {attrs['n_processes']} "
                  f"process(es): |mean - exact| / MCSE = {np.round(z, 2)}, min ESS {ess.min():.0f}, "
                  f"sampling {attrs['sampling_time_s']:.2f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
