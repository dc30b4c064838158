"""NUTS chains and simulations on several processes (hosts): a linear model with an exact posterior.

    y = X beta + N(0, sigma^2),   beta ~ N(0, tau^2 I),   sigma = 0.5, tau = 10 (no units),

with ``n`` data points and ``p`` coefficients drawn from ``--seed``. The posterior is Gaussian
with precision ``X^T X / sigma^2 + I / tau^2``; the script prints how far the NUTS posterior
mean lies from the exact one, in Monte Carlo standard errors. With ``--sims N`` it also draws
``N`` prior-predictive simulations (``simulate``, sharded over the same devices) whose target
``log_beta0 = log(beta_0)`` is invalid (NaN) for ``beta_0 < 0``: those are dropped and counted.

Every process runs this same script; the chains are spread over the devices of all processes
and every process gets all of them, and only process 0 writes the results folder
(``posterior.nc``, ``summary.json``, ``simulations.npz``)::

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

    from bayesqcd.inference import run_nuts, simulate
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
    idata = run_nuts(model, x, key=jax.random.PRNGKey(args.seed), y=y, num_warmup=args.warmup,
                     num_samples=args.samples, num_chains=args.chains, progress=out is not None, check=False)
    precision = x.T @ x / sigma**2 + np.eye(args.p) / tau**2
    exact = np.linalg.solve(precision, x.T @ y / sigma**2)
    post = idata.posterior["beta"].values
    import arviz as az

    ess = az.ess(idata, var_names=["beta"])["beta"].values
    mcse = post.std(axis=(0, 1)) / np.sqrt(ess)
    attrs = idata.posterior.attrs
    summary = {"exact_mean": exact, "nuts_mean": post.mean(axis=(0, 1)), "mcse": mcse, "min_ess_bulk": ess.min(),
               "ess_per_s": float(ess.min() / attrs["sampling_time_s"]),
               **{k: attrs[k] for k in ("sampling_time_s", "warmup_time_s", "compile_time_s", "gather_time_s",
                                        "n_devices", "n_processes", "num_chains")}}
    sims = None
    if args.sims:
        t0 = time.perf_counter()
        sims = simulate(simulator, jax.random.PRNGKey(args.seed + 1), args.sims, x, targets=["beta", "log_beta0"],
                        observed=["y"], batch_size=args.batch, progress=False)
        summary.update(sims_per_s=args.sims / (time.perf_counter() - t0), sims_kept=sims.n, sims_dropped=sims.n_dropped)
    if out is not None:
        with atomic_results_dir(out) as tmp:
            idata.to_netcdf(tmp / "posterior.nc")
            write_json(tmp / "summary.json", summary)
            if sims is not None:
                sims.save(tmp / "simulations.npz")
        z = np.abs(summary["nuts_mean"] - exact) / mcse
        print(f"{attrs['num_chains']} chains on {attrs['n_devices']} devices of {attrs['n_processes']} "
              f"process(es): |mean - exact| / MCSE = {np.round(z, 2)}, min ESS {ess.min():.0f}, "
              f"sampling {attrs['sampling_time_s']:.2f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
