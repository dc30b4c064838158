"""``bayesqcd spectral --data FILE``: a user's correlator goes through the same study as a mock
(round trip: a mock written to a file gives the same reconstruction), with a covariance file,
and malformed files are refused before any work, naming the file, line, column and value."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from bayesqcd import spectral as sp
from bayesqcd.cli import main
from bayesqcd.studies.spectral import Config, make_problem

N_OMEGA = 64
PEAK = float(np.sqrt(4.0 - 0.25))  # maximum of the BW (M = 2, Gamma = 0.5)


def write_mock(folder, correlation=0.0, errors=True):
    """The bw1 mock (eps 1e-3, seed 0) as a data file (and, with correlation, a covariance file)."""
    mock = make_problem(Config(mock="bw1", eps=1e-3, n_omega=N_OMEGA, correlation=correlation))
    data = folder / "bw1.csv"
    rows = zip(np.asarray(mock.x), np.asarray(mock.data), np.asarray(mock.sigma))
    with data.open("w") as f:
        f.write("# bw1 mock, Kallen-Lehmann, relative noise 1e-3\n")
        f.write("p, value, error\n" if errors else "p value   # no error column\n")
        for x, d, s in rows:
            f.write(f"{x:.17g}, {d:.17g}, {s:.17g}\n" if errors else f"{x:.17g} {d:.17g}\n")
    cov = None
    if correlation:
        cov = folder / "cov.txt"
        np.savetxt(cov, np.asarray(mock.cov), fmt="%.17g", delimiter=",", header="covariance of bw1.csv")
    return mock, data, cov


def cli_summary(argv, out):
    assert main([*argv, "--n-omega", str(N_OMEGA), "--method", "br", "--mem-samples", "5",
                 "--no-progress", "--out", str(out)]) == 0
    return json.loads((out / "summary.json").read_text())


def test_data_round_trip_gives_the_mock_reconstruction(tmp_path):
    """The mock's correlator written to a file: the same problem (A, data, cov), the same BR
    reconstruction and band as the --mock run, a fit with chi^2/point ~ 1 and the peak in place;
    summary.json records the file's path, hash and size, the kernel and the grid."""
    mock, data, _ = write_mock(tmp_path)
    problem = make_problem(Config(data=str(data), kernel="kallen-lehmann", n_omega=N_OMEGA))
    assert problem.rho is None and not problem.has_truth
    for name in ("omega", "x", "A", "data", "cov"):
        np.testing.assert_allclose(getattr(problem, name), getattr(mock, name), rtol=1e-14, atol=0)

    s_data = cli_summary(["spectral", "--data", str(data), "--kernel", "kallen-lehmann"], tmp_path / "d")
    s_mock = cli_summary(["spectral", "--mock", "bw1", "--eps", "1e-3"], tmp_path / "m")
    r_data, r_mock = s_data["results"]["data"]["br"], s_mock["results"]["1e-3"]["br"]
    for key in ("chi2_per_point", "chi2_per_point_draws", "peak_omega", "min_rho"):
        assert r_data[key] == pytest.approx(r_mock[key], rel=1e-9), key
    assert r_data["status"] == "ok" and "mse" not in r_data and "coverage" not in r_data
    assert 0.3 < r_data["chi2_per_point"] < 2.0 and abs(r_data["peak_omega"] - PEAK) < 0.5, r_data

    src = s_data["source"]
    raw = data.read_bytes()
    assert src["kind"] == "data" and src["kernel"] == s_data["kernel"] == "kallen-lehmann"
    assert src["grid"] == {"n_omega": N_OMEGA, "omega_min": 0.0, "omega_max": 20.0}
    assert src["data"]["path"] == str(data) and src["data"]["size_bytes"] == len(raw)
    assert src["data"]["sha256"] == hashlib.sha256(raw).hexdigest() and src["data"]["n_points"] == 25
    assert s_data["mock"] is None and s_mock["source"]["kind"] == "mock"
    folder = tmp_path / "d"
    assert (folder / "bands_data.png").exists()
    table = (folder / "table.md").read_text()
    assert "chi^2/point (estimate)" in table and "| br | data | ok |" in table


def test_covariance_file(tmp_path):
    """Correlated noise: a two-column data file and the covariance as a comma-separated matrix
    give the mock's problem and reconstruction."""
    mock, data, cov = write_mock(tmp_path, correlation=0.5, errors=False)
    corr = sp.load_correlator(data, cov)
    np.testing.assert_allclose(corr.cov, np.asarray(mock.cov), rtol=1e-14)
    assert corr.source["covariance"]["sha256"] == hashlib.sha256(cov.read_bytes()).hexdigest()
    s_data = cli_summary(["spectral", "--data", str(data), "--covariance", str(cov), "--kernel",
                          "kallen-lehmann"], tmp_path / "d")
    s_mock = cli_summary(["spectral", "--mock", "bw1", "--correlation", "0.5"], tmp_path / "m")
    r_data, r_mock = s_data["results"]["data"]["br"], s_mock["results"]["1e-3"]["br"]
    assert r_data["chi2_per_point"] == pytest.approx(r_mock["chi2_per_point"], rel=1e-9)
    assert r_data["peak_omega"] == r_mock["peak_omega"]
    assert s_data["source"]["data"]["covariance"]["path"] == str(cov)


GOOD = "# tau value error\n0 1.0 0.01\n1 0.5 0.01\n2 0.25 0.01\n3 0.125 0.01\n"


@pytest.mark.parametrize("text, cov, match", [
    ("0 1 0.1\n1 abc 0.1\n2 1 0.1\n", None, r"line 2, column 'value': not a number: 'abc'"),
    ("0 1 0.1\n1 nan 0.1\n2 1 0.1\n", None, r"line 2, column 'value': non-finite value 'nan'"),
    ("0 1 0.1\n1 1 inf\n2 1 0.1\n", None, r"line 2, column 'error': non-finite value 'inf'"),
    ("x,value,error\n0,1,0.1\n1,1,-0.1\n2,1,0.1\n", None,
     r"line 3, column 'error': error = -0.1 is outside the valid range \(0, inf\)"),
    ("0 1 0.1\n1 1 0\n2 1 0.1\n", None, r"line 2, column 'error': error = 0 is outside the valid range"),
    ("0 1 0.1\n2 1 0.1\n1 1 0.1\n", None, r"line 3, column 'x': x = 1 is below x = 2 of .*line 2; sort"),
    ("0 1 0.1\n1 1 0.1\n1 1 0.1\n", None, r"line 3, column 'x': x = 1 repeats the x of .*line 2"),
    ("# two points\n0 1 0.1\n1 1 0.1\n", None, r"2 data point\(s\); at least 3 are needed"),
    ("0 1\n1 1\n2 1\n", None, r"line 1: 2 fields; expected 3 columns .*without --covariance"),
    ("0 1 0.1 7\n1 1 0.1\n2 1 0.1\n", None, r"line 1: 4 fields; expected 3 columns"),
    ("0 1 0.1\n1 1 0.1\nx value error\n", None, r"line 3, column 'x': not a number: 'x'"),
    ("# only comments\n\n", None, r"no data lines"),
    (GOOD, "1 0.5 0 0\n0.4 1 0 0\n0 0 1 0\n0 0 0 1\n", r"not symmetric: C\[0,1\] = 0.5 .*line 1.* C\[1,0\] = 0.4"),
    (GOOD, "1 2 0 0\n2 1 0 0\n0 0 1 0\n0 0 0 1\n", r"not positive definite: the smallest eigenvalue .* -1"),
    (GOOD, "1 0\n0 1\n", r"shape \(2, 2\) does not match the 4 data points; valid: \(4, 4\)"),
    (GOOD, "1 0 0\n0 1\n0 0 1\n", r"line 2: row 1 has 2 entries but the file has 3 rows"),
    (GOOD, "1 0 0 0\n0 -1 0 0\n0 0 1 0\n0 0 0 1\n", r"line 2: variance C\[1,1\] = -1 is outside the valid range"),
    (GOOD, "1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 nan\n", r"line 4, column '#3': non-finite value 'nan'"),
    (GOOD, "1e-4 0 0 0\n0 1e-4 0 0\n0 0 1e-4 0\n0 0 0 4e-4\n",
     r"line 5, column 'error': error = 0.01 disagrees with sqrt\(C\[3,3\]\) = 0.02"),
])
def test_malformed_files_are_refused_naming_the_value(tmp_path, text, cov, match):
    data = tmp_path / "corr.txt"
    data.write_text(text)
    cov_path = None
    if cov is not None:
        cov_path = tmp_path / "cov.txt"
        cov_path.write_text(cov)
    with pytest.raises(ValueError, match=match) as info:
        sp.load_correlator(data, cov_path)
    msg = str(info.value)  # every message names the file it is about
    assert str(data) in msg or (cov_path is not None and str(cov_path) in msg), msg


def test_abscissae_outside_the_kernel_are_refused_with_their_line(tmp_path):
    data = tmp_path / "corr.txt"
    data.write_text(GOOD)
    corr = sp.load_correlator(data)
    with pytest.raises(ValueError, match=r"line 5, column 'x': tau = 3 is outside the valid range \[0, 2.5\) "
                                         r"of the thermal kernel"):
        sp.data_problem(corr, "thermal", n_omega=16, temperature=0.4)
    with pytest.raises(ValueError, match=r"line 5, column 'x': tau = 3 is outside the valid range \[0, 2\] "
                                         r"of the euclidean kernel"):
        sp.data_problem(corr, "euclidean", n_omega=16, n_t=2)
    with pytest.raises(ValueError, match="needs n_t"):
        sp.data_problem(corr, "euclidean", n_omega=16)
    problem = sp.data_problem(corr, "euclidean", n_omega=16, n_t=8, omega_min=0.5, omega_max=4.5)
    np.testing.assert_allclose(problem.omega, 0.5 + 0.25 * np.arange(1, 17))
    assert problem.A.shape == (4, 16) and problem.rho is None
    with pytest.raises(ValueError, match="does not exist"):
        sp.load_correlator(tmp_path / "nothing.txt")
    with pytest.raises(ValueError, match=r"point 1, column 'x': x = 0 repeats"):
        sp.Correlator.from_arrays([0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.1, 0.1, 0.1])


def test_cli_refuses_bad_data_before_any_work(tmp_path, capsys):
    data = tmp_path / "corr.txt"
    data.write_text("0 1 0.1\n1 1 -0.1\n2 1 0.1\n")
    out = tmp_path / "out"
    base = ["spectral", "--out", str(out), "--no-progress"]
    assert main([*base, "--data", str(data), "--kernel", "euclidean", "--n-t", "8"]) == 2
    assert "line 2, column 'error': error = -0.1 is outside the valid range (0, inf)" in capsys.readouterr().err
    assert main([*base, "--data", str(data)]) == 2
    assert "--kernel is required with --data" in capsys.readouterr().err
    assert main([*base, "--data", str(data), "--kernel", "thermal"]) == 2
    assert "--temperature is required" in capsys.readouterr().err
    assert main([*base, "--data", str(data), "--kernel", "euclidean", "--n-t", "8", "--eps", "1e-2"]) == 2
    assert "--eps applies to --mock only" in capsys.readouterr().err
    assert main([*base, "--mock", "bw1", "--covariance", str(data)]) == 2
    assert "--covariance applies to --data only" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one of --mock, --data, not both, not none
        main([*base, "--mock", "bw1", "--data", str(data)])
    with pytest.raises(SystemExit):
        main(base)
    assert not out.exists()
    with pytest.raises(ValueError, match="mutually exclusive"):
        Config(mock="bw1", data=str(data), kernel="euclidean", n_t=8)
    with pytest.raises(ValueError, match="kernel is not set"):
        Config(data=str(data))


@pytest.mark.slow  # ~40 s CPU (compilation), ~70 s wall on the shared 2-core machine
def test_nuts_on_a_data_file_reports_rhat_on_rho(tmp_path):
    """GP-NUTS (tiny: 48 omega points, 12 modes, 2 chains x (60 + 40)) on a correlator file:
    without a truth the summary has the fit to the data and the chains' R-hat on rho."""
    from bayesqcd.studies import spectral

    _, data, _ = write_mock(tmp_path)
    cfg = Config(data=str(data), kernel="kallen-lehmann", methods=("nuts",), n_omega=48, gp_modes=12,
                 num_warmup=60, num_samples=40, num_chains=2, max_tree_depth=5)
    summary = spectral.run(cfg, tmp_path / "out", progress=False)
    r = summary["results"]["data"]["nuts"]
    assert r["status"] in ("ok", "unconverged") and np.isfinite(r["max_rhat_rho"]), r
    assert "mse" not in r and 0.3 < r["chi2_per_point"] < 2.0 and abs(r["peak_omega"] - PEAK) < 0.5, r
    assert "| nuts | data |" in (tmp_path / "out" / "table.md").read_text()
