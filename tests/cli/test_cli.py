"""The ``bayesqcd`` command itself: every subcommand registers, errors are one line or a traceback."""

from __future__ import annotations

import pytest

import bayesqcd.cli as cli


def test_every_subcommand_registers_and_a_missing_one_is_an_error(monkeypatch):
    parser = cli.build_parser()
    names = set(parser._subparsers._group_actions[0].choices)
    assert {"ns-eos", "ns-regression", "compare", "tov", "diffusion", "spectral", "lattice", "topology"} <= names
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", (*cli.SUBCOMMAND_MODULES, "bayesqcd.cli.no_such_command"))
    with pytest.raises(ModuleNotFoundError):
        cli.build_parser()


def test_user_errors_are_one_line_and_debug_shows_the_traceback(capsys, monkeypatch):
    argv = ["tov", "--eos", "SLy", "--points", "3"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "--points = 3 is outside the valid range [8, inf)" in err and "--debug" in err
    with pytest.raises(ValueError, match="--points"):
        cli.main(["--debug", *argv])
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(ValueError, match="--points"):
        cli.main(argv)


def test_out_is_checked_before_any_work(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("keep")
    code = cli.main(["ns-eos", "--out", str(tmp_path), "--chains", "1", "--samples", "1", "--warmup", "0"])
    assert code == 2 and "did not write" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


def test_noise_free_needs_mock_data(tmp_path, capsys):
    code = cli.main(["ns-eos", "--noise-free", "--out", str(tmp_path / "r")])
    assert code == 2 and "(--noise-free) applies to mock data (--mock) only" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_bad_npe_knots_are_refused_before_any_work(tmp_path, capsys):
    code = cli.main(["ns-regression", "--method", "npe", "--npe-knots", "-1", "--out", str(tmp_path / "r")])
    assert code == 2 and "--npe-knots = -1 is outside the valid range [0, inf)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
