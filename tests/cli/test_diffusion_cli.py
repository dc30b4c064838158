"""``bayesqcd diffusion``: a tiny run writes a complete results folder; bad input is refused."""

import json

from bayesqcd.cli import main


def test_cli_writes_summary_and_figures(tmp_path):
    out = tmp_path / "res"
    rc = main(["diffusion", "--data", "25gauss", "--sde", "cosine", "--out", str(out),
               "--steps", "100", "--n-eval", "4", "--n-samples", "100", "--n-h", "3",
               "--sampler-steps", "40", "--outer-tols", "1e-4", "--seeds", "0,1", "--no-progress"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["window"]["t_min"] == 0.01 and s["window"]["T"] == 0.999 and s["seeds"] == [0, 1]
    c = s["first_order"]["tol=0.0001"]
    assert set(s["first_order"]) == {"tol=0.0001"} and c["n_trainings"] == 2
    assert [p["seed"] for p in c["per_seed"]] == [0, 1] and c["sd_over_trainings"]["mean"] > 0
    for key in ("mean", "sem", "median", "trimmed_mean"):
        assert c[key] is not None and s["nll_h0"][key] is not None
    assert len(s["w2_vs_h"]["w2"]) == 3 and s["w2_vs_h"]["h"][-1] == 0.2
    assert s["paper"]["nll_h0"] == [-1.71, 0.02]
    for f in s["figures"]:
        assert (out / f).stat().st_size > 1000
    # no temporary folder left; the trained networks are kept beside the results (OUT.ckpt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res", "res.ckpt"]
    for seed in (0, 1):
        assert (tmp_path / "res.ckpt" / f"score-seed{seed}.eqx").exists()
        assert s["training"][seed]["checkpoint"] == str(tmp_path / "res.ckpt" / f"score-seed{seed}.eqx")
        assert s["failed_points"][f"seed={seed}"]["tol=0.0001"]["count"] == 0


def test_cli_refuses_bad_input(tmp_path, capsys):
    rc = main(["diffusion", "--data", "25gauss", "--sde", "simple", "--out", str(tmp_path / "x"),
               "--n-h", "1"])
    assert rc == 2
    assert "--n-h must be >= 2" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    rc = main(["diffusion", "--data", "25gauss", "--sde", "simple", "--out", str(tmp_path / "x"),
               "--inner-tol", "1e-5"])  # the default adjoint method has no inner solve
    assert rc == 2 and "inner_tol" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
