"""Generic comparison of two results and the plots of any model's InferenceData (issue 22).

Draws are the exact quantiles of a normal (ppf on a fine uniform grid), so the credible
intervals, medians and widths of the samples equal the analytic ones to ~1e-4.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm

from bayesqcd.cli import main
from bayesqcd.inference import from_draws
from bayesqcd.report import compare, plot_band, plot_compare, plot_intervals, to_json

N = 20_001
E = norm.ppf((np.arange(N) + 0.5) / N)  # N(0, 1) quantiles: sample median 0, sd ~1
Z = norm.ppf(0.84)  # half-width of the central 68% interval of N(0, 1)


def _normal(n):
    """``n`` quantiles of N(0, 1) on a uniform grid of probabilities."""
    return norm.ppf((np.arange(n) + 0.5) / n)


def _result(engine="nuts", **variables):
    return from_draws({k: np.asarray(v)[None] for k, v in variables.items()}, attrs={"engine": engine})


def test_identical_results_agree_exactly():
    t = np.linspace(0, 1, 7)
    a = _result(omega=2 + 0.3 * E, x_of_t=np.sin(t) + np.outer(E, 1 + t))
    cmp = compare(a, a, labels=("A", "B"))
    for name in ("omega", "x_of_t"):
        s = cmp[name]
        assert s["overlap"] == 1.0 and s["median_difference"] == 0.0 and s["median_difference_sd"] == 0.0
        assert s["width_ratio"] == 1.0
        assert s["first_median_in_second"] == 1.0 and s["second_median_in_first"] == 1.0
    assert cmp["x_of_t"]["points"] == 7 and cmp.labels == ("A", "B")


@pytest.mark.parametrize("shift, scale", [(1.0, 1.5), (0.3, 0.5), (5.0, 1.0)])
def test_two_gaussians_give_the_analytic_overlap_and_width_ratio(shift, scale):
    a, b = _result(w=E), _result("npe", w=shift + scale * E)
    s = compare(a, b, ["w"], level=0.68)["w"]
    lo, hi = shift - scale * Z, shift + scale * Z
    overlap = max(min(Z, hi) - max(-Z, lo), 0.0) / (max(Z, hi) - min(-Z, lo))
    assert s["overlap"] == pytest.approx(overlap, abs=1e-3)
    assert s["width_ratio"] == pytest.approx(scale, rel=1e-3)
    assert s["median_difference_sd"] == pytest.approx(-shift, abs=1e-3)  # (first - second) / sd_first
    assert s["first_median_in_second"] == float(lo <= 0 <= hi)
    assert s["second_median_in_first"] == float(-Z <= shift <= Z)


def test_curve_metrics_along_the_coordinate_with_non_finite_draws():
    t = np.linspace(0.0, 2.0, 11)
    jump = np.where(t > 1.05, 10.0, 0.0)  # the second result moves away on the last 5 of 11 points
    first = np.cos(t) + E[:, None] * np.ones_like(t)
    second = np.cos(t) + jump + E[:, None] * np.ones_like(t)
    second = np.concatenate([second, np.full((500, 11), np.nan)])  # 500 failed draws
    second[:, 0] = np.where(np.arange(len(second)) < N // 2 + 501, np.nan, second[:, 0])  # point 0: < half finite
    cmp = compare(_result(x_of_t=first), _result("npe", x_of_t=second), x={"x_of_t": t})
    s = cmp["x_of_t"]
    assert s["points"] == 10 and s["of_points"] == 11  # point 0 left out
    assert s["dropped"] == [0, 500 * 11 + N // 2 + 501]
    assert s["overlap"] == pytest.approx(5 / 10, abs=1e-9)
    assert s["first_median_in_second"] == pytest.approx(5 / 10) and s["second_median_in_first"] == pytest.approx(5 / 10)
    assert s["median_difference_sd"] == pytest.approx(-10 * 5 / 10, rel=1e-3)
    assert s["max_abs_median_difference_sd"] == pytest.approx(10, rel=1e-3)
    np.testing.assert_array_equal(cmp.variables["x_of_t"].x, t)
    table = str(cmp)
    assert "x_of_t" in table and "0/" in table
    assert json.loads(to_json(cmp.to_dict()))["variables"]["x_of_t"]["points"] == 10


def test_bad_requests_are_refused_naming_what_is_wrong():
    a, b = _result(w=E, v=np.outer(E, [1, 2])), _result("npe", w=E, v=np.outer(E, [1, 2, 3]))
    assert set(compare(a, b).variables) == {"w"} and "v" in compare(a, b).skipped
    with pytest.raises(ValueError, match="level = 1.5"):
        compare(a, b, level=1.5)
    with pytest.raises(ValueError, match="'npe' has no variable 'w'"):
        compare(a, _result("npe", u=E), ["w"])
    with pytest.raises(ValueError, match="shape"):
        compare(a, b, ["v"])


def test_plots_of_a_toy_model(tmp_path):
    t = np.linspace(0, 3, 9)
    e = _normal(1001)
    draws = {"omega": 2 + 0.1 * e, "x0": np.stack([e, 1 + e], axis=1), "x_of_t": np.cos(2 * t) + 0.1 * np.outer(e, t)}
    a = _result(**draws)
    b = _result("npe", **{k: v + 1 for k, v in draws.items()})
    fig = plot_intervals([a, b], ["omega", "x0"], labels=["NUTS", "NPE"], path=tmp_path / "intervals.png")
    assert (tmp_path / "intervals.png").is_file() and len(fig.axes) == 2
    assert [tick.get_text() for tick in fig.axes[1].get_yticklabels()] == ["x0[0]", "x0[1]"]
    dots = [line for line in fig.axes[0].lines if line.get_label() in ("NUTS", "NPE")]
    assert [float(d.get_xdata()[0]) for d in dots] == pytest.approx([2.0, 3.0], abs=1e-3)
    fig = plot_band([a, b], "x_of_t", x=t, levels=(0.68, 0.95), labels=["NUTS", "NPE"])
    assert len(fig.axes[0].collections) == 4  # two bands per result
    np.testing.assert_allclose(fig.axes[0].lines[0].get_xdata(), t)
    fig = plot_compare((a, b), x={"x_of_t": t})
    assert [ax.get_title().split(":")[0] for ax in fig.axes if ax.get_visible()] == ["omega", "x0", "x_of_t"]


def test_cli_compares_any_two_results_folders(tmp_path):
    for name, shift in (("a", 0.0), ("b", 0.5)):
        (tmp_path / name).mkdir()
        e = _normal(401)
        _result(name, omega=2 + shift + 0.1 * e, zeta=0.1 + 0.01 * e).to_netcdf(
            str(tmp_path / name / "posterior.nc"))
    args = ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--vars", "omega", "--out", str(tmp_path / "c")]
    assert main(args) == 0
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())["comparison"]
    assert list(summary["variables"]) == ["omega"] and summary["labels"] == ["a", "b"]
    assert summary["variables"]["omega"]["median_difference_sd"] == pytest.approx(-5.0 / np.std(e), rel=1e-9)
    assert {"comparison.png", "intervals.png"} <= {p.name for p in (tmp_path / "c").iterdir()}
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--vars", "nope",
                 "--out", str(tmp_path / "d")]) == 2
    assert not (tmp_path / "d").exists()


def test_calibration_figure_draws_coverage_and_ranks():
    from types import SimpleNamespace

    from bayesqcd.report import plot_calibration

    levels = np.array([0.25, 0.5, 0.75])
    ranks = np.arange(100) / 100

    def cal(coverage):
        return SimpleNamespace(levels=levels, coverage={"omega": coverage}, band=np.stack([levels - 0.1, levels + 0.1]),
                               n_sims=100, engine="npe",
                               rank_histogram=lambda name, bins: np.histogram(ranks, bins=bins, range=(0, 1)))

    fig = plot_calibration([cal(levels), cal(levels / 2)], labels=["NPE", "regression"], bins=5)
    top, bottom = fig.axes
    np.testing.assert_allclose(top.lines[-1].get_ydata(), levels / 2)  # the second result's coverage
    assert top.get_title() == "omega" and len(bottom.patches) >= 2  # one rank histogram per result
