"""The study's loop: every noise level x every method, metrics, table, summary and figures.

Metrics (:func:`bayesqcd.spectral.metrics`): MSE and KL of the point estimate (posterior mean;
the MEM maximum for ``mem``) and coverage of the pointwise 95% band, wall time and, for MCMC,
divergences, R-hat and ESS (on the sampled sites and on ``rho``).
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

from .config import NEEDS_PRIOR, Config, make_problem
from .methods import run_method
from .plots import plot_bands
from .prior import SpectralPrior, train_prior


def evaluate(idata: az.InferenceData, mock: sp.MockData) -> dict[str, Any]:
    """Metrics of ``posterior["rho"]`` against the truth, wall time and (MCMC) diagnostics.

    The point estimate is the posterior mean, or ``constant_data["rho_map"]`` when present
    (MEM's maximum). Draws that ran away (peak above 10 times the truth's maximum) are counted
    in ``runaway_fraction``, never dropped."""
    rho = np.asarray(idata.posterior["rho"].values).reshape(-1, mock.rho.shape[0])
    out = sp.metrics(rho, mock)
    if "constant_data" in idata.groups() and "rho_map" in idata.constant_data:
        point = np.asarray(idata.constant_data["rho_map"].values).reshape(-1)
        out["mse"] = sp.mse(point, mock.rho)
        out["kl"] = sp.kl_divergence(mock.rho, point, mock.weights)
        out["chi2_per_point"] = sp.chi2_per_point(point, mock)
    out["wall_time_s"] = float(idata.posterior.attrs.get("wall_time_s", np.nan))
    out["n_draws"] = int(rho.shape[0])
    out["positive"] = bool(np.all(rho > 0))
    out["runaway_fraction"] = float(np.mean(rho.max(axis=1) > 10 * float(np.max(mock.rho))))
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
    ``"unconverged"`` (MCMC with R-hat on ``rho`` above :data:`RHAT_MAX`; ``error`` says so) or
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
    else:
        met["status"] = "ok"
    return idata, met


def failures(summary: dict[str, Any]) -> list[str]:
    """``"method at eps label: error"`` for every failed run of a :func:`run` summary."""
    return [f"{m} at eps {label}: {met.get('error', '')}" for label, per in summary["results"].items()
            for m, met in per.items() if met.get("status") == "failed"]


TABLE_HEADER = ("| method | eps | status | MSE | KL | 95% coverage (floor) | wall time [s] | max R-hat (rho) "
                "| error |\n|---|---|---|---|---|---|---|---|---|")


def table_row(method: str, label: str, metrics: dict[str, Any]) -> str:
    """One row of ``table.md`` for ``method`` at noise level ``label`` (coverage strict and, in
    brackets, with the floor of :func:`bayesqcd.spectral.metrics`; ``error``: why a run failed or
    is unconverged)."""
    status, error = metrics.get("status", "ok"), metrics.get("error", "").replace("|", "/")
    if status == "failed":
        return f"| {method} | {label} | failed | | | | | | {error} |"
    rhat = metrics.get("max_rhat_rho", float("nan"))
    return (f"| {method} | {label} | {status} | {metrics['mse']:.3g} | {metrics['kl']:.3g} | "
            f"{metrics['coverage']:.2f} ({metrics['coverage_floor']:.2f}) | {metrics['wall_time_s']:.1f} | "
            f"{rhat:.3f} | {error} |")


def format_table(summary: dict[str, Any]) -> str:
    """The Markdown table of a summary of :func:`run` (one row per noise level and method)."""
    rows = [TABLE_HEADER]
    for label, per_method in summary["results"].items():
        rows += [table_row(m, label, met) for m, met in per_method.items()]
    return "\n".join(rows)


def _headline(method: str, label: str, met: dict[str, Any]) -> str:
    if met.get("status") == "failed":
        return f"[eps={label}] {method}: FAILED {met['error']}"
    return (f"[eps={label}] {method}: MSE {met['mse']:.3g}, KL {met['kl']:.3g}, "
            f"coverage {met['coverage']:.2f}, {met['wall_time_s']:.1f} s")


@x64_scope(True)
def run(config: Config, out: str | Path | ResultsDir | None = None, *, progress: bool = True) -> dict[str, Any]:
    """Run every (noise level, method) pair of ``config`` in float64 and summarise.

    The diffusion prior (for ``score`` and ``diffusion-prior``) is trained once, with key
    ``seed + 1``; method ``i`` of ``config.methods`` runs with key ``seed + 10 + i`` at every
    noise level. One line per run is printed as it finishes.

    With ``out``, the results folder is written atomically: ``summary.json``, ``table.md``
    (:func:`format_table`) and ``bands_<mock>_eps<label>.png`` per noise level
    (:func:`~.plots.plot_bands`). ``out`` is checked first (:func:`bayesqcd.report.results_dir`:
    a new or empty folder, or a :class:`~bayesqcd.report.ResultsDir` made with ``overwrite``),
    before any work.

    Returns:
        The summary: ``mock``, ``kernel``, ``noise``, ``methods``, ``eps``, ``prior`` (training
        info or ``None``), ``results[label][method]`` (:func:`evaluate`'s metrics and
        ``status``, or ``{"status": "failed", "error": message}``, see :func:`run_one`),
        ``failures`` (:func:`failures`) and ``versions``.
    """
    out = results_dir(out)  # a bad results folder fails here, before any work
    methods, eps_list = list(config.methods), list(config.eps)
    prior, prior_info = None, None
    if NEEDS_PRIOR & set(methods):
        prior, prior_info = train_prior(make_problem(config).omega, config, key=jax.random.key(config.seed + 1),
                                        progress=progress)
        print(f"diffusion prior trained: {prior_info}")
    kernel = config.kernel or sp.MOCK_KERNEL.get(config.mock, "kallen-lehmann")
    summary: dict[str, Any] = {"mock": config.mock, "kernel": kernel, "noise": config.noise,
                               "methods": methods, "eps": eps_list, "prior": prior_info, "results": {}}
    folder = atomic_results_dir(out) if out is not None else contextlib.nullcontext()
    with folder as tmp:
        for eps in eps_list:
            mock = make_problem(config, eps)
            label = sp.log10_eps_label(eps)
            res, idatas = {}, {}
            for i, m in enumerate(methods):
                idata, met = run_one(m, mock, config, key=jax.random.key(config.seed + 10 + i), prior=prior,
                                     progress=progress)
                res[m], idatas[m] = met, idata
                print(_headline(m, label, met))
            summary["results"][label] = res
            if tmp is not None:
                save_figure(plot_bands(idatas, mock, title=f"{config.mock}, relative noise {label}"),
                            tmp / f"bands_{config.mock}_eps{label}.png", dpi=110)
        summary["failures"] = failures(summary)
        summary["versions"] = versions()
        if tmp is not None:
            (tmp / "table.md").write_text(format_table(summary) + "\n")
            write_json(tmp / "summary.json", summary)
    return summary
