"""Benchmark: NUTS, simulations and calibration on one process against two processes (jax.distributed).

    python benchmarks/scale_out.py                     # n = 20000 points, p = 10, 4 chains, 100k sims
    python benchmarks/scale_out.py --n 2000 --sims 20000 --warmup 200 --samples 200

Runs ``examples/distributed_nuts.py`` (a Bayesian linear model with an exact posterior, and its
prior-predictive simulations) three ways on this machine, the same seed each time:

* ``1x1``: one process, one CPU device (all chains vectorized on it);
* ``1x2``: one process, two host devices (``--xla_force_host_platform_device_count=2``);
* ``2x1``: two processes of one CPU device each, joined by ``jax.distributed`` (gloo) on a
  local port: the chains and the simulation batches are sharded over both processes.

and prints NUTS ESS/s (min bulk ESS over the coefficients / sampling time, warm-up and
compilation excluded), simulations/s (compilation included) and the collectives' cost: the
time spent gathering each chunk's statistics on the host(s) (with two processes:
``process_allgather``, its one-off compilation and the wait for the slower process; with one,
a device-to-host copy), and, alone, the median time of one compiled ``process_allgather`` of
a chunk's statistics (25 iterations of ``chains x (p + 6)`` float64 values) between two
processes. Then, in separate runs of the same example without NUTS (``--no-nuts``, a smaller
model of ``--calib-n`` points), calibration throughput: data sets per second of ``calibrate``
over ``--calibrate`` held-out simulations (shared out over the processes), for the batched
path (a linear regression, ``--calib-chunk`` data sets per call, compilation included) and
the per-data-set path (a callable drawing the exact posterior). On one machine two processes
share its cores, so 2x1 can at best match 1x2; the point of several processes is several hosts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "distributed_nuts.py"


def run(layout: str, common: list[str], folder: Path) -> dict:
    """Run the example in ``layout`` ("1x1", "1x2", "2x1") and return its summary.json."""
    procs, devs = (int(v) for v in layout.split("x"))
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devs}", JAX_PLATFORMS="cpu")
    out = folder / f"{layout}-{len(list(folder.iterdir()))}"
    cmd = [sys.executable, str(EXAMPLE), *common, "--out", str(out)] + (["--launch", str(procs)] if procs > 1 else [])
    subprocess.run(cmd, env=env, check=True, timeout=3600)
    return json.loads((out / "summary.json").read_text())


def allgather_worker(coordinator: str, process_id: int, chains: int, p: int) -> None:
    """One of two processes timing ``process_allgather`` of one chunk's statistics."""
    import jax
    import numpy as np
    from jax.experimental.multihost_utils import process_allgather

    from bayesqcd.inference import distributed

    distributed.initialize(coordinator, 2, process_id)
    jax.config.update("jax_enable_x64", True)
    local = np.ones((25, chains // 2, p + 6))
    process_allgather(local, tiled=True)  # compile once
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        process_allgather(local, tiled=True)
        times.append(time.perf_counter() - t0)
    if distributed.is_main_process():
        print(json.dumps({"allgather_ms": 1e3 * float(np.median(times))}))


def allgather_ms(chains: int, p: int) -> float:
    """Median time [ms] of one chunk's ``process_allgather`` between two local processes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")
    procs = [subprocess.Popen([sys.executable, __file__, "--allgather-worker", f"127.0.0.1:{port}", str(i),
                               "--chains", str(chains), "--p", str(p)], env=env, stdout=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [proc.communicate(timeout=600)[0] for proc in procs]
    return json.loads(outs[0].strip().splitlines()[-1])["allgather_ms"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000, help="data points (default 20000)")
    p.add_argument("--p", type=int, default=10, help="coefficients (default 10)")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--sims", type=int, default=100000)
    p.add_argument("--batch", type=int, default=10000)
    p.add_argument("--calibrate", type=int, default=400, help="held-out data sets calibrated (0: skip; default 400)")
    p.add_argument("--calib-n", type=int, default=50, help="data points of the calibration runs' model (default 50)")
    p.add_argument("--calib-draws", type=int, default=100)
    p.add_argument("--calib-chunk", type=int, default=64)
    p.add_argument("--allgather-worker", nargs=2, metavar=("HOST:PORT", "ID"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.allgather_worker:
        allgather_worker(args.allgather_worker[0], int(args.allgather_worker[1]), args.chains, args.p)
        return 0
    common = ["--n", str(args.n), "--p", str(args.p), "--chains", str(args.chains), "--warmup", str(args.warmup),
              "--samples", str(args.samples), "--sims", str(args.sims), "--batch", str(args.batch)]
    chunks = math.ceil((args.warmup + args.samples) / 25)
    with tempfile.TemporaryDirectory() as tmp:
        res = {layout: run(layout, common, Path(tmp)) for layout in ("1x1", "1x2", "2x1")}
    print(f"\nlinear model n = {args.n}, p = {args.p}; {args.chains} chains x ({args.warmup} warm-up + "
          f"{args.samples}) draws; {args.sims} simulations in batches of {args.batch}")
    print("layout  NUTS ESS/s  sampling [s]  gather/chunk [ms]  simulations/s  dropped")
    for layout, r in res.items():
        print(f"{layout:6s}  {r['ess_per_s']:10.1f}  {r['sampling_time_s']:12.2f}  "
              f"{1e3 * r['gather_time_s'] / chunks:17.2f}  {r['sims_per_s']:13.0f}  {r['sims_dropped']:7d}")
    for a, b in (("1x2", "1x1"), ("2x1", "1x1"), ("2x1", "1x2")):
        print(f"{a} / {b}: NUTS ESS/s x{res[a]['ess_per_s'] / res[b]['ess_per_s']:.2f}, "
              f"simulations/s x{res[a]['sims_per_s'] / res[b]['sims_per_s']:.2f}")
    if args.calibrate:
        calib = ["--no-nuts", "--n", str(args.calib_n), "--p", str(args.p), "--sims", str(4 * args.calibrate),
                 "--batch", str(4 * args.calibrate), "--calibrate", str(args.calibrate),
                 "--calib-draws", str(args.calib_draws), "--calib-chunk", str(args.calib_chunk)]
        with tempfile.TemporaryDirectory() as tmp:
            cal = {layout: run(layout, calib, Path(tmp)) for layout in ("1x1", "1x2", "2x1")}
        print(f"\ncalibration of {args.calibrate} held-out data sets ({args.calib_draws} draws each; model "
              f"n = {args.calib_n}, p = {args.p}), data sets/s (compilation included)")
        print("layout  regression (batched)  exact (one call per data set)")
        for layout, r in cal.items():
            print(f"{layout:6s}  {r['calib_regression_per_s']:20.1f}  {r['calib_exact_per_s']:29.1f}")
        for a, b in (("1x2", "1x1"), ("2x1", "1x1"), ("2x1", "1x2")):
            print(f"{a} / {b}: regression x{cal[a]['calib_regression_per_s'] / cal[b]['calib_regression_per_s']:.2f}, "
                  f"exact x{cal[a]['calib_exact_per_s'] / cal[b]['calib_exact_per_s']:.2f}")
    print(f"one chunk's process_allgather alone (2 processes, compiled): "
          f"{allgather_ms(args.chains, args.p):.2f} ms (median of 30)")
    print(f"({os.cpu_count()} CPU cores; two processes on one machine share them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
