"""The study's loop: every problem (noise level of a mock, or a correlator file) x every
method, metrics, table, summary and figures.

Metrics (:func:`bayesqcd.spectral.metrics`): MSE and KL of the point estimate (posterior mean;
the maximum for ``mem`` and ``br``) and coverage of the pointwise 95% band (mocks only: they
need the truth), chi^2/point of the point estimate and of the draws against the data, the
peak's position, wall time and, for MCMC, divergences, R-hat and ESS (on the sampled sites and
on ``rho``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import arviz as az
import jax
import numpy as np

from bayesqcd import spectral as sp
from bayesqcd.inference.results import diagnostics
from bayesqcd.precision import x64_scope
from bayesqcd.report import ResultsDir, atomic_results_dir, results_dir, save_figure, versions, write_json

from .config import NEEDS_PRIOR, Config, make_problems
from .methods import run_method
from .plots import plot_bands
from .prior import SpectralPrior, train_prior


def evaluate(idata: az.InferenceData, mock: sp.MockData) -> dict[str, Any]:
    """Metrics of ``posterior["rho"]`` (:func:`bayesqcd.spectral.metrics`: against the truth
    when ``mock`` has one, else only the fit to the data), wall time and (MCMC) diagnostics.

    The point estimate is the posterior mean, or ``constant_data["rho_map"]`` when present
    (the maximum of MEM and BR). Draws that ran away (peak above 10 times the truth's maximum;
    without a truth, 10 times the maximum of the pointwise median) are counted in
    ``runaway_fraction``, never dropped; ``refined_draws``: score draws that ran away in the
    sampler and were drawn again with more steps."""
    rho = np.asarray(idata.posterior["rho"].values).reshape(-1, mock.omega.shape[0])
    out = sp.metrics(rho, mock)
    if "constant_data" in idata.groups() and "rho_map" in idata.constant_data:
        point = np.asarray(idata.constant_data["rho_map"].values).reshape(-1)
        if mock.has_truth:
            out["mse"] = sp.mse(point, mock.rho)
            out["kl"] = sp.kl_divergence(mock.rho, point, mock.weights)
        out["chi2_per_point"] = sp.chi2_per_point(point, mock)
        out["peak_omega"] = float(np.asarray(mock.omega)[int(np.argmax(point))])
    out["wall_time_s"] = float(idata.posterior.attrs.get("wall_time_s", np.nan))
    out["n_draws"] = int(rho.shape[0])
    out["positive"] = bool(np.all(rho > 0))
    top = float(np.max(mock.rho)) if mock.has_truth else float(np.max(np.median(rho, axis=0)))
    out["runaway_fraction"] = float(np.mean(rho.max(axis=1) > 10 * top))
    if "refined" in idata.posterior.attrs:  # score draws drawn again with more steps (sample_posterior)
        out["refined_draws"] = int(idata.posterior.attrs["refined"])
    if "sample_stats" in idata.groups() and "diverging" in idata.sample_stats:
        names = [n for n in idata.posterior.data_vars if n != "rho"]
        d, d_rho = diagnostics(idata, names), diagnostics(idata, ["rho"])
        out.update(divergences=d["divergences"], max_rhat=d["max_rhat"], min_ess_bulk=d["min_ess_bulk"],
                   max_rhat_rho=d_rho["max_rhat"], min_ess_bulk_rho=d_rho["min_ess_bulk"])
    return out


RHAT_MAX = 1.05
"""An MCMC run whose largest R-hat on ``rho`` exceeds this has status ``"unconverged"``."""


def run_one(method: str, mock: sp.MockData, config: Config, *, key: jax.Array,
            prior: SpectralPrior | None = None,
            progress: bool = True) -> tuple[az.InferenceData | None, dict[str, Any]]:
    """:func:`~.methods.run_method` then :func:`evaluate`, with a ``status``: ``"ok"``,
    ``"unconverged"`` (MCMC with R-hat on ``rho`` above :data:`RHAT_MAX`, or BR with ``alpha`` at
    the end of its range; ``error`` says so) or
    ``"failed"``: a numerical failure (``FloatingPointError``, ``LinAlgError``,
    ``RuntimeError``) is reported as ``{"status": "failed", "error": message}`` with ``None``
    for the InferenceData, not raised."""
    try:
        idata = run_method(method, mock, config, key=key, prior=prior, progress=progress)
    except (FloatingPointError, np.linalg.LinAlgError, RuntimeError) as err:
        return None, {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    met = evaluate(idata, mock)
    rhat = met.get("max_rhat_rho", float("nan"))  # NaN: not MCMC, or one chain
    if np.isfinite(rhat) and rhat > RHAT_MAX:
        met.update(status="unconverged", error=f"max R-hat on rho {rhat:.3g} > {RHAT_MAX}")
    elif idata.posterior.attrs.get("alpha_in_range", 1) == 0:
        met.update(status="unconverged", error=f"alpha = {idata.posterior.attrs['alpha_mean']:.3g} at the end of "
                                               "its range (the MAP sits on the prior, not the data)")
    else:
        met["status"] = "ok"
    return idata, met


def failures(summary: dict[str, Any]) -> list[str]:
    """``"method at eps label: error"`` for every failed run of a :func:`run` summary."""
    return [f"{m} at eps {label}: {met.get('error', '')}" for label, per in summary["results"].items()
            for m, met in per.items() if met.get("status") == "failed"]


TABLE_HEADER = ("| method | eps | status | MSE | KL | 95% coverage (floor) | wall time [s] | max R-hat (rho) "
                "| error |\n|---|---|---|---|---|---|---|---|---|")
DATA_TABLE_HEADER = ("| method | data | status | chi^2/point (estimate) | chi^2/point (draws) | peak omega "
                     "| wall time [s] | max R-hat (rho) | error |\n|---|---|---|---|---|---|---|---|---|")
"""The table of a correlator file: no truth, so no MSE, KL or coverage."""


def table_row(method: str, label: str, metrics: dict[str, Any]) -> str:
    """One row of ``table.md`` for ``method`` at noise level ``label`` (coverage strict and, in
    brackets, with the floor of :func:`bayesqcd.spectral.metrics`; ``error``: why a run failed or
    is unconverged). Without a truth (``"mse"`` absent: a correlator file) the row of
    :data:`DATA_TABLE_HEADER`."""
    status, error = metrics.get("status", "ok"), metrics.get("error", "").replace("|", "/")
    if status == "failed":
        return f"| {method} | {label} | failed | | | | | | {error} |"
    rhat = metrics.get("max_rhat_rho", float("nan"))
    if "mse" not in metrics:
        return (f"| {method} | {label} | {status} | {metrics['chi2_per_point']:.3g} | "
                f"{metrics['chi2_per_point_draws']:.3g} | {metrics['peak_omega']:.3g} | "
                f"{metrics['wall_time_s']:.1f} | {rhat:.3f} | {error} |")
    return (f"| {method} | {label} | {status} | {metrics['mse']:.3g} | {metrics['kl']:.3g} | "
            f"{metrics['coverage']:.2f} ({metrics['coverage_floor']:.2f}) | {metrics['wall_time_s']:.1f} | "
            f"{rhat:.3f} | {error} |")


def format_table(summary: dict[str, Any]) -> str:
    """The Markdown table of a summary of :func:`run` (one row per problem and method)."""
    data = summary.get("source", {}).get("kind") == "data"
    rows = [DATA_TABLE_HEADER if data else TABLE_HEADER]
    for label, per_method in summary["results"].items():
        rows += [table_row(m, label, met) for m, met in per_method.items()]
    return "\n".join(rows)


def _headline(method: str, label: str, met: dict[str, Any]) -> str:
    tag = label if label == "data" else f"eps={label}"
    if met.get("status") == "failed":
        return f"[{tag}] {method}: FAILED {met['error']}"
    if "mse" not in met:
        return (f"[{tag}] {method}: chi^2/point {met['chi2_per_point']:.3g} (draws "
                f"{met['chi2_per_point_draws']:.3g}), peak at omega {met['peak_omega']:.3g}, "
                f"{met['wall_time_s']:.1f} s")
    return (f"[eps={label}] {method}: MSE {met['mse']:.3g}, KL {met['kl']:.3g}, "
            f"coverage {met['coverage']:.2f}, {met['wall_time_s']:.1f} s")


@x64_scope(True)
def run(config: Config, out: str | Path | ResultsDir | None = None, *, progress: bool = True) -> dict[str, Any]:
    """Run every (problem, method) pair of ``config`` in float64 and summarise.

    The problems (:func:`~.config.make_problems`: the mock at each noise level, or the
    correlator file, read and checked) are made first, before any expensive work. The
    diffusion prior (for ``score`` and ``diffusion-prior``) is trained once, with key
    ``seed + 1``; method ``i`` of ``config.methods`` runs with key ``seed + 10 + i`` on every
    problem. One line per run is printed as it finishes.

    With ``out``, the results folder is written atomically: ``summary.json``, ``table.md``
    (:func:`format_table`) and ``bands_<mock>_eps<label>.png`` per noise level, or
    ``bands_data.png`` (bands and the fit's residuals, :func:`~.plots.plot_bands`). ``out`` is
    checked first (:func:`bayesqcd.report.results_dir`: a new or empty folder, or a
    :class:`~bayesqcd.report.ResultsDir` made with ``overwrite``), before any work.

    Returns:
        The summary: ``mock`` (``None`` for data), ``kernel``, ``noise``, ``methods``, ``eps``,
        ``source`` (:func:`~.config.make_problems`: kind, kernel, grid, and for data the files'
        paths, SHA-256 and sizes), ``prior`` (training info or ``None``),
        ``results[label][method]`` (:func:`evaluate`'s metrics and ``status``, or
        ``{"status": "failed", "error": message}``, see :func:`run_one`; ``label`` is the noise
        level, or ``"data"``), ``failures`` (:func:`failures`) and ``versions``.
    """
    out = results_dir(out)  # a bad results folder fails here, before any work
    problems, source = make_problems(config)  # a bad data file fails here too
    methods = list(config.methods)
    prior, prior_info = None, None
    if NEEDS_PRIOR & set(methods):
        prior, prior_info = train_prior(problems[0][1].omega, config, key=jax.random.key(config.seed + 1),
                                        progress=progress)
        print(f"diffusion prior trained: {prior_info}")
    data = config.data is not None
    summary: dict[str, Any] = {"mock": config.mock, "kernel": config.kernel_name,
                               "noise": None if data else config.noise, "methods": methods,
                               "eps": None if data else list(config.eps), "source": source,
                               "prior": prior_info, "results": {}}
    folder = atomic_results_dir(out) if out is not None else contextlib.nullcontext()
    with folder as tmp:
        for label, mock in problems:
            res, idatas = {}, {}
            for i, m in enumerate(methods):
                idata, met = run_one(m, mock, config, key=jax.random.key(config.seed + 10 + i), prior=prior,
                                     progress=progress)
                res[m], idatas[m] = met, idata
                print(_headline(m, label, met))
            summary["results"][label] = res
            if tmp is not None:
                if data:
                    name, title = "bands_data.png", f"{Path(config.data).name}, {config.kernel_name} kernel"
                else:
                    name, title = f"bands_{config.mock}_eps{label}.png", f"{config.mock}, relative noise {label}"
                save_figure(plot_bands(idatas, mock, title=title), tmp / name, dpi=110)
        summary["failures"] = failures(summary)
        summary["versions"] = versions()
        if tmp is not None:
            (tmp / "table.md").write_text(format_table(summary) + "\n")
            write_json(tmp / "summary.json", summary)
    return summary
