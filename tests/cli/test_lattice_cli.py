"""``bayesqcd lattice``: results folder and refusal of bad input."""

import json

import pytest

from bayesqcd.cli import main


def test_lattice_cli_writes_summary(tmp_path):
    out = tmp_path / "hmc"
    rc = main(["lattice", "--L", "4", "--m2", "-4", "--lam", "8", "--method", "hmc",
               "--out", str(out), "--hmc-chains", "4", "--hmc-samples", "300", "--no-progress"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    for key in ("ess_per_n", "acceptance", "tau_int_absM", "time_per_independent_sample_s",
                "wall_time_s"):
        assert key in s
    o = s["observables"]
    for key in ("abs_M", "chi", "binder", "G_t", "m_eff"):
        assert "error" in o[key]
    assert 0.5 < s["acceptance"] <= 1.0
    assert s["tau_int_absM"]["value"] >= 0.5
    # the hopping parameters describe the same theory
    k, lh = s["hopping"]["kappa"], s["hopping"]["lambda_h"]
    assert (1 - 2 * lh) / k - 4 == pytest.approx(-4.0)
    assert (out / "configs.npz").exists() and (out / "observables.png").exists()


@pytest.mark.parametrize("argv", [["--L", "5", "--method", "hmc"],
                                  ["--kappa", "0.27", "--method", "hmc"],
                                  ["--lam", "-1", "--method", "flow"]])
def test_lattice_cli_refuses_bad_input(tmp_path, argv, capsys):
    assert main(["lattice", *argv, "--out", str(tmp_path / "x")]) == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
