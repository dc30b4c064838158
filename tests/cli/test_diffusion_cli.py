"""``bayesqcd diffusion``: a tiny run writes a complete results folder; bad input is refused."""

import json

from bayesqcd.cli import main


def test_cli_writes_summary_and_figures(tmp_path):
    out = tmp_path / "res"
    rc = main(["diffusion", "--data", "25gauss", "--sde", "cosine", "--out", str(out),
               "--steps", "100", "--n-eval", "4", "--n-samples", "100", "--n-h", "3",
               "--sampler-steps", "40", "--tols", "1e-4", "--no-progress"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert set(s["first_order_coefficient"]) == {"tol=0.0001"}
    assert s["nll_h0"]["value"] is not None and s["nll_h0"]["error"] is not None
    assert len(s["w2_vs_h"]["w2"]) == 3 and s["w2_vs_h"]["h"][-1] == 0.2
    assert s["paper"]["nll_h0"] == [-1.71, 0.02]
    for f in s["figures"]:
        assert (out / f).stat().st_size > 1000
    # no temporary folder left; the trained network is kept beside the results (OUT.ckpt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res", "res.ckpt"]
    assert (tmp_path / "res.ckpt" / "score.eqx").exists()
    assert s["training"]["checkpoint"] == str(tmp_path / "res.ckpt" / "score.eqx")
    assert s["failed_points"]["tol=0.0001"]["count"] == 0


def test_cli_refuses_bad_input(tmp_path, capsys):
    rc = main(["diffusion", "--data", "25gauss", "--sde", "simple", "--out", str(tmp_path / "x"),
               "--n-h", "1"])
    assert rc == 2
    assert "--n-h must be >= 2" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
