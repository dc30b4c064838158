"""Results folders: nothing a user wrote is ever replaced, and a bad ``--out`` fails before the work."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bayesqcd.report import MARKER, ResultsDir, atomic_results_dir, credible_band, write_json


def _write_run(out, value=1, **kwargs):
    with atomic_results_dir(ResultsDir(out, **kwargs)) as tmp:
        write_json(tmp / "summary.json", {"value": value})


def test_a_new_folder_is_written_whole_and_marked(tmp_path):
    _write_run(tmp_path / "res")
    assert (tmp_path / "res" / MARKER).is_file()
    assert json.loads((tmp_path / "res" / "summary.json").read_text()) == {"value": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["res"]  # no temporary folder left


def test_a_folder_with_user_files_is_never_replaced(tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("\\documentclass{article}")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="did not write"):
            _write_run(thesis, overwrite=overwrite)
    assert (thesis / "thesis.tex").read_text() == "\\documentclass{article}"


def test_an_earlier_result_is_replaced_only_with_overwrite(tmp_path):
    _write_run(tmp_path / "res", value=1)
    with pytest.raises(ValueError, match="--overwrite"):
        _write_run(tmp_path / "res", value=2)
    assert json.loads((tmp_path / "res" / "summary.json").read_text())["value"] == 1
    _write_run(tmp_path / "res", value=3, overwrite=True)
    assert json.loads((tmp_path / "res" / "summary.json").read_text())["value"] == 3


def test_current_directory_empty_name_file_and_inputs_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("keep")
    for bad, match in ((".", "current directory"), ("", "empty"), (str(tmp_path.parent), "current directory"),
                       ("mine.txt", "existing file")):
        with pytest.raises(ValueError, match=match):
            ResultsDir(bad, overwrite=True)
    _write_run("A")  # `bayesqcd compare A B --out A` must not delete A
    with pytest.raises(ValueError, match="overlaps the input"):
        ResultsDir("A", overwrite=True, inputs=("A", "B"))
    with pytest.raises(ValueError, match="overlaps the input"):
        ResultsDir("A/sub", overwrite=True, inputs=("A",))
    assert (tmp_path / "mine.txt").read_text() == "keep" and (tmp_path / "A" / "summary.json").is_file()


def test_an_unwritable_place_fails_at_once_naming_the_path():
    with pytest.raises(ValueError, match="'/proc/bayesqcd-x/res' cannot be created"):
        ResultsDir("/proc/bayesqcd-x/res")


def test_a_crash_leaves_nothing_and_names_the_users_path(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_results_dir(tmp_path / "res") as tmp:
            (tmp / "half.txt").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError, match="results folder .*res"):
        with atomic_results_dir(tmp_path / "res") as tmp:
            open(tmp / "no" / "such" / "file.png", "w")  # noqa: SIM115
    assert list(tmp_path.iterdir()) == []


def test_temporary_folders_of_killed_runs_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".res.tmp-{pid}-abc"
    stale.mkdir()
    live = tmp_path / f".res.tmp-{os.getppid()}-abc"  # a running process: kept
    live.mkdir()
    ResultsDir(tmp_path / "res")
    assert not stale.exists() and live.exists()


def test_credible_band_of_known_draws():
    x = np.stack([np.arange(1001.0), -np.arange(1001.0)], axis=1)  # uniform 0..1000 per column
    band = credible_band(x, levels=(0.5,))
    np.testing.assert_allclose(band["median"], [500.0, -500.0])
    np.testing.assert_allclose(band[0.5][0], [250.0, -750.0])
    np.testing.assert_allclose(band[0.5][1], [750.0, -250.0])


def test_a_figure_that_cannot_be_written_names_the_users_path(tmp_path):
    from bayesqcd.report import pyplot, save_figure

    fig, _ = pyplot().subplots()
    with pytest.raises(OSError, match="cannot write the figure '.*no_such_dir/mr.png'"):
        save_figure(fig, tmp_path / "no_such_dir" / "mr.png")
