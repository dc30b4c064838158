"""Multi-process NUTS and simulations (jax.distributed, gloo on CPU): two local processes of one
CPU device each give the draws of one process with two host devices, and only process 0 writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from bayesqcd.inference.distributed import check_settings

DRIVER = Path(__file__).resolve().parents[2] / "examples" / "distributed_nuts.py"
ARGS = ["--n", "50", "--p", "2", "--chains", "4", "--warmup", "60", "--samples", "60", "--seed", "3",
        "--sims", "300", "--batch", "100"]


def _env(devices: int) -> dict[str, str]:
    return dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")


@pytest.mark.parametrize("settings, words", [
    (("localhost", 2, 0), "HOST:PORT"),
    (("localhost:99999", 2, 0), "HOST:PORT"),
    (("localhost:1234", 2, 2), "process_id = 2"),
    (("localhost:1234", 0, 0), "num_processes = 0"),
    (("localhost:1234", None, 0), "missing num_processes"),
])
def test_inconsistent_settings_are_refused(settings, words):
    with pytest.raises(ValueError, match=words):
        check_settings(*settings)


@pytest.mark.slow  # three JAX processes compile NUTS: ~45 s of CPU, 1-2 min wall on 2 busy cores
def test_two_processes_give_the_draws_and_simulations_of_two_devices(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cwd = [tmp_path / f"p{i}" for i in range(2)]
    procs = []
    for i, d in enumerate(cwd):
        d.mkdir()
        procs.append(subprocess.Popen(
            [sys.executable, str(DRIVER), *ARGS, "--out", str(tmp_path / "multi"), "--coordinator",
             f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
            cwd=d, env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    single = subprocess.run([sys.executable, str(DRIVER), *ARGS, "--out", str(tmp_path / "single")],
                            cwd=tmp_path, env=_env(2), capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]

    # one results folder, written by process 0; process 1 wrote nothing anywhere
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi", "p0", "p1", "single"]
    assert list(cwd[0].iterdir()) == [] and list(cwd[1].iterdir()) == []
    marker = json.loads((tmp_path / "multi" / ".bayesqcd-results").read_text())
    assert marker["pid"] == procs[0].pid
    assert "process(es)" in logs[0] and "process(es)" not in logs[1]

    multi = xr.open_dataset(tmp_path / "multi" / "posterior.nc", group="posterior")
    ref = xr.open_dataset(tmp_path / "single" / "posterior.nc", group="posterior")
    assert (multi.attrs["n_processes"], multi.attrs["n_devices"]) == (2, 2)
    assert (ref.attrs["n_processes"], ref.attrs["n_devices"]) == (1, 2)
    beta = multi["beta"].values  # (chain, draw, p): chains 2, 3 ran in process 1
    assert beta.shape == (4, 60, 2) and np.all(np.isfinite(beta))
    assert not np.allclose(beta[:2], beta[2:])
    np.testing.assert_array_equal(beta, ref["beta"].values)
    stats = [xr.open_dataset(tmp_path / f / "posterior.nc", group="sample_stats") for f in ("multi", "single")]
    np.testing.assert_array_equal(stats[0]["n_steps"].values, stats[1]["n_steps"].values)

    # the simulations: the same set, invalid draws (log of beta_0 < 0) counted over both processes
    sims = [np.load(tmp_path / f / "simulations.npz") for f in ("multi", "single")]
    assert sorted(sims[0].files) == sorted(sims[1].files)
    for name in sims[0].files:
        np.testing.assert_array_equal(sims[0][name], sims[1][name])
    kept, dropped = len(sims[0]["targets/log_beta0"]), int(sims[0]["n_dropped"])
    assert int(sims[0]["n_requested"]) == kept + dropped == 300 and 100 < dropped < 200
    assert np.all(sims[0]["targets/beta"][:, 0] > 0)

    # and the posterior is the exact one (conjugate Gaussian), within 5 Monte Carlo standard errors
    summary = json.loads((tmp_path / "multi" / "summary.json").read_text())
    z = np.abs(np.subtract(summary["nuts_mean"], summary["exact_mean"])) / np.asarray(summary["mcse"])
    assert np.all(z < 5), z
