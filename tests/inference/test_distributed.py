"""Multi-process NUTS, simulations and calibration (jax.distributed, gloo on CPU): two local
processes of one CPU device each give the draws, simulations (resumed from a checkpoint) and
calibration of one process with two host devices, and only process 0 writes. Without the
slow mark: the settings checks and how calibration shares out its work and gathers it."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import arviz as az
import jax
import numpy as np
import pytest
import xarray as xr

from bayesqcd.inference import calibration
from bayesqcd.inference.distributed import broadcast_from_main, check_settings, gather_shares, reassemble, share
from bayesqcd.inference.simulation import Simulations

DRIVER = Path(__file__).resolve().parents[2] / "examples" / "distributed_nuts.py"
ARGS = ["--n", "50", "--p", "2", "--chains", "4", "--warmup", "60", "--samples", "60", "--seed", "3",
        "--sims", "300", "--batch", "100", "--calibrate", "20", "--calib-draws", "30"]


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


def test_items_are_shared_round_robin_and_put_back_in_order():
    assert [list(share(7, p, 3)) for p in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]
    assert list(share(2, 2, 3)) == []
    with pytest.raises(ValueError, match="process = 3"):
        share(5, 3, 3)
    assert list(share(4)) == [0, 1, 2, 3]  # one process: everything
    sizes = [3, 3, 3, 1]  # e.g. chunks of 3 simulations
    rows = np.arange(10.0)[:, None] * [1, -1]
    stacked = [np.concatenate([rows[3 * i:3 * i + sizes[i]] for i in share(4, p, 3)] + [np.full((2, 2), np.nan)])
               for p in range(3)]  # each process's rows, padded
    np.testing.assert_array_equal(reassemble(stacked, sizes), rows)
    local = {"r": np.arange(4), "hit": np.ones((4, 2), bool)}
    got = gather_shares(local, [1, 1, 1, 1])  # one process: its own rows
    assert got["r"].dtype == np.int64 and got["hit"].dtype == bool
    np.testing.assert_array_equal(got["r"], local["r"])
    np.testing.assert_array_equal(broadcast_from_main([np.float32(-0.0)])[0], np.float32(-0.0))


class _FakeFitted:
    """A batched posterior as calibrate sees a FittedNPE: theta | y ~ N(y, 1) per draw."""

    members = 2

    class inputs:  # noqa: N801
        @staticmethod
        def flatten(observed):
            return np.asarray(observed["y"])

    @staticmethod
    def _draws(key, x, n):
        return {"theta": x[:, None, :] + jax.random.normal(key, (x.shape[0], 2 * n, x.shape[1]))}


def _exact(data):
    rng = np.random.default_rng(int(1e6 * abs(data["y"][0])))  # a fixed function of the data set
    return az.from_dict(posterior={"theta": (data["y"] + rng.normal(size=(40, 2)))[None]})


@pytest.mark.parametrize("posterior", [_FakeFitted(), _exact])
def test_calibration_shared_over_processes_gives_the_single_process_result(posterior):
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(23, 2))
    sims = Simulations({"theta": theta}, {"y": theta + rng.normal(size=(23, 2))}, {}, {}, 23, 0)
    key, lv, names = jax.random.key(1), np.array([0.5, 0.9]), ["theta"]
    whole = calibration.calibrate(posterior, sims, key, n_draws=30, levels=lv, chunk=5)
    sizes = calibration._unit_sizes(posterior, sims.n, 5)
    assert sizes == ([5, 5, 5, 5, 3] if isinstance(posterior, _FakeFitted) else [1] * 23)
    parts = [calibration._share_results(posterior, sims, key, 30, lv, names, sizes, share(len(sizes), p, 3))
             for p in range(3)]  # what 3 processes would compute, each its own share
    ranks = reassemble([r["theta"] for r, _ in parts], sizes)
    inside = reassemble([h["theta"] for _, h in parts], sizes)
    np.testing.assert_array_equal(ranks, whole.ranks["theta"])
    np.testing.assert_array_equal(np.moveaxis(inside, 0, 1).reshape(2, -1).mean(axis=1), whole.coverage["theta"])
    assert ranks.shape == (23, 2) and 0 < whole.coverage["theta"][0] < whole.coverage["theta"][1] < 1


@pytest.mark.slow  # three JAX processes compile NUTS: ~45 s of CPU, 1-2 min wall on 2 busy cores
def test_two_processes_give_the_draws_simulations_and_calibration_of_two_devices(tmp_path):
    # the reference: one process, two host devices; its simulations kept batch by batch
    single = subprocess.run([sys.executable, str(DRIVER), *ARGS, "--out", str(tmp_path / "single"),
                             "--sims-dir", str(tmp_path / "ckpt_single")],
                            cwd=tmp_path, env=_env(2), capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    # a run killed after its first of 3 batches: the two processes resume from its folder
    shutil.copytree(tmp_path / "ckpt_single", tmp_path / "ckpt_multi")
    for name in ("batch-000001.npz", "batch-000002.npz", "done.json"):
        (tmp_path / "ckpt_multi" / name).unlink()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cwd = [tmp_path / f"p{i}" for i in range(2)]
    procs = []
    for i, d in enumerate(cwd):
        d.mkdir()
        procs.append(subprocess.Popen(
            [sys.executable, str(DRIVER), *ARGS, "--out", str(tmp_path / "multi"), "--coordinator",
             f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i),
             "--sims-dir", str(tmp_path / "ckpt_multi")],
            cwd=d, env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-2000:] + logs[1][-2000:]

    # one results folder, written by process 0; process 1 wrote nothing anywhere
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_multi", "ckpt_single", "multi", "p0", "p1", "single"]
    assert sorted(p.name for p in (tmp_path / "ckpt_multi").iterdir()) == [
        "batch-000000.npz", "batch-000001.npz", "batch-000002.npz", "done.json", "settings.json"]
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

    # the simulations: the same set on both processes (process 1 got batch 0 from process 0's
    # checkpoint), invalid draws (log of beta_0 < 0) counted over both processes and the resumed batch
    digests = [re.findall(r"simulations sha256 (\w+)", log) for log in (*logs, single.stdout)]
    assert digests[0] == digests[1] == digests[2] and len(digests[0]) == 1, digests
    sims = [np.load(tmp_path / f / "simulations.npz") for f in ("multi", "single")]
    assert sorted(sims[0].files) == sorted(sims[1].files)
    for name in sims[0].files:
        np.testing.assert_array_equal(sims[0][name], sims[1][name])
    kept, dropped = len(sims[0]["targets/log_beta0"]), int(sims[0]["n_dropped"])
    assert int(sims[0]["n_requested"]) == kept + dropped == 300 and 100 < dropped < 200
    assert np.all(sims[0]["targets/beta"][:, 0] > 0)
    assert json.loads((tmp_path / "ckpt_multi" / "done.json").read_text())["n_dropped"] == dropped

    # calibration shared over the processes (batched regression, per-data-set callable): the
    # ranks and coverage of one process, bit for bit
    cal = [json.loads((tmp_path / f / "calibration.json").read_text()) for f in ("multi", "single")]
    assert cal[0] == cal[1] and sorted(cal[0]) == ["exact", "regression"]
    for c in cal[0].values():
        assert np.shape(c["ranks"]) == (20, 2) and c["n_sims"] == 20 and c["n_draws"] == 30

    # and the posterior is the exact one (conjugate Gaussian), within 5 Monte Carlo standard errors
    summary = json.loads((tmp_path / "multi" / "summary.json").read_text())
    z = np.abs(np.subtract(summary["nuts_mean"], summary["exact_mean"])) / np.asarray(summary["mcse"])
    assert np.all(z < 5), z
