"""The ``bayesqcd tov`` command."""

import json

import pytest

from bayesqcd.cli import main


def test_tov_json_and_plot(tmp_path, capsys):
    png = tmp_path / "mr.png"
    assert main(["tov", "--eos", "SLy", "--json", "--points", "60", "--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"M_max", "R_at_M_max", "R_1.4", "Lambda_1.4", "M", "R", "Lambda"} <= set(out)
    assert abs(out["M_max"] - 2.049) < 0.01 and abs(out["R_1.4"] - 11.7) < 0.05
    assert len(out["M"]) == len(out["R"]) == len(out["Lambda"]) > 10
    assert png.stat().st_size > 1000


@pytest.mark.parametrize("argv, message", [
    (["tov", "--polytrope", "34.3", "0.9", "3", "3"], "Gamma1 = 0.9 is outside the valid range"),
    (["tov", "--cs2", "0.5", "1.3"], "cs2[1] = 1.3 is outside the valid range [0.0, 1.0]"),
    (["tov", "--eos", "XYZ"], "unknown EoS name 'XYZ'"),
])
def test_tov_bad_input_exit_code_and_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
