"""One case of the path-integral reproduction (Hirono, Tanaka, Fukushima, ICML 2024).

:func:`compute` trains the paper's MLP on one 2-D data set with one schedule and measures

* the NLL at ``h = 0`` (probability-flow ODE, exact divergence) of held-out data points,
* the first-order WKB coefficient ``d NLL / dh`` at ``h = 0`` at the paper's two (outer)
  solver tolerances (1e-3 and 1e-5), per point, summarised by mean, median and trimmed mean,
  for one or several independent trainings (seeds),
* the Wasserstein-2 distance between h-process samples and fresh data, for ``h`` in
  ``[0, h_max]``,
* beyond the paper: the NLL at finite ``h`` measured directly by a Gaussian kernel density
  estimate of the h-process samples (the change ``NLL_kde(h) - NLL_kde(0)``, whose kernel
  bias largely cancels), against the WKB line ``h d NLL/dh``.

:func:`run` adds the results folder (``summary.json`` and the figures of :mod:`.plots`) and
keeps the trained networks in checkpoints before the evaluation. Everything uses the time
window of the schedule (:meth:`Config.schedule`). Errors: ``sem``, the standard error of the mean
over the evaluation points, and ``sd_over_trainings``, the spread between trainings; a point
whose ODE solves fail or run away is reported in ``failed_points`` and left out instead of
ending the run. Training runs in float32
(the network is cast to float32); the likelihood runs in float64: both functions switch JAX's
64-bit mode on for their duration and restore it afterwards (tolerance 1e-5 is too close to
float32's resolution).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import trim_mean
from tqdm.auto import tqdm

from bayesqcd.diffusion.data import make_data
from bayesqcd.diffusion.likelihood import MAX_STEPS, prior_radius, wkb_log_likelihood
from bayesqcd.diffusion.metrics import wasserstein2
from bayesqcd.diffusion.sampling import sample_h
from bayesqcd.diffusion.score import train_score
from bayesqcd.nn.score_nets import MLPScore
from bayesqcd.precision import x64_scope
from bayesqcd.report import ResultsDir, atomic_results_dir, results_dir, versions, write_json
from bayesqcd.studies.diffusion_path_integral.config import PAPER_EPOCHS, PAPER_TABLE1, Config
from bayesqcd.studies.diffusion_path_integral.plots import (plot_coefficients, plot_samples,
                                                            plot_w2_finite_h)


TRIM = 0.1
"""Trimmed mean: this fraction of the per-point values is cut from each end."""


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    if len(x) < 2:  # no error from fewer than two points (NaN: null in the JSON)
        return (float(x[0]) if len(x) else float("nan")), float("nan")
    return float(np.mean(x)), float(np.std(x, ddof=1) / np.sqrt(len(x)))


def point_stats(x: np.ndarray) -> dict[str, float]:
    """Mean, its standard error, median, 10%-trimmed mean, 10% and 90% quantiles and count of
    the per-point values ``x`` (NaN where there are too few)."""
    x = np.asarray(x, dtype=float)
    mean, sem = _mean_se(x)
    nan = float("nan")
    q = np.quantile(x, [0.1, 0.5, 0.9]) if len(x) else [nan] * 3
    return {"mean": mean, "sem": sem, "median": float(q[1]),
            "trimmed_mean": float(trim_mean(x, TRIM)) if len(x) else nan,
            "q10": float(q[0]), "q90": float(q[2]), "n_points": int(len(x))}


def over_trainings(per_seed: list[dict[str, float]]) -> dict[str, Any]:
    """Combine the :func:`point_stats` of independent trainings: each statistic averaged over
    them, ``sem`` the per-point standard error of that average (``sqrt(sum sem_i^2) / n``) and
    ``sd_over_trainings`` the sample standard deviation of mean, median and trimmed mean between
    trainings (None for one training)."""
    n = len(per_seed)
    avg = {k: float(np.mean([p[k] for p in per_seed]))
           for k in ("mean", "median", "trimmed_mean", "q10", "q90")}
    avg["sem"] = float(np.sqrt(np.sum([p["sem"] ** 2 for p in per_seed])) / n)
    sd = None if n < 2 else {k: float(np.std([p[k] for p in per_seed], ddof=1))
                             for k in ("mean", "median", "trimmed_mean")}
    return {**avg, "trim": f"{TRIM:.0%} of the points cut from each end",
            "n_points": int(sum(p["n_points"] for p in per_seed)), "n_trainings": n,
            "sd_over_trainings": sd, "per_seed": per_seed}


def compare_with_paper(ours: dict[str, Any], paper: float, paper_err: float) -> dict[str, Any]:
    """Is the paper's number within the combined uncertainty of ours? The paper's value is one
    training, so it scatters about the mean over trainings by the training-to-training sd (which
    contains the per-point noise): ``combined = sqrt(sd^2 (1 + 1/n) + paper_err^2)``. With one
    training there is no sd: ``combined = sqrt(sem^2 + paper_err^2)`` (per-point noise only).
    ``within``: ``|ours - paper| <= 2 combined``."""
    sd = ours["sd_over_trainings"]
    n = ours["n_trainings"]
    spread = ours["sem"] ** 2 if sd is None else sd["mean"] ** 2 * (1 + 1 / n)
    combined = float(np.sqrt(spread + paper_err**2))
    z = (ours["mean"] - paper) / combined if combined > 0 else float("nan")
    return {"paper": paper, "paper_error": paper_err, "ours": ours["mean"], "combined": combined,
            "z": float(z), "within_2_combined": bool(abs(z) <= 2),
            "combined_definition": "sqrt(sem^2 + paper_err^2), per-point noise only (one training)"
            if sd is None else "sqrt(sd_over_trainings^2 (1 + 1/n) + paper_err^2)"}


def kde_log_density(samples: np.ndarray, points: np.ndarray, bandwidth: float) -> np.ndarray:
    """Log density of a Gaussian KDE (isotropic ``bandwidth``) of ``samples`` at ``points``."""
    s, p = jnp.asarray(samples), jnp.asarray(points)
    d = s.shape[1]
    sq = jnp.sum((p[:, None, :] - s[None, :, :]) ** 2, axis=-1)
    lse = jax.scipy.special.logsumexp(-0.5 * sq / bandwidth**2, axis=1)
    return np.asarray(lse - jnp.log(s.shape[0]) - 0.5 * d * jnp.log(2 * jnp.pi * bandwidth**2))


def _choose_bandwidth(samples: np.ndarray) -> float:
    """Bandwidth maximising the held-out KDE likelihood (80/20 split of ``samples``)."""
    n = int(0.8 * len(samples))
    grid = np.geomspace(0.005, 0.3, 15)
    scores = [np.mean(kde_log_density(samples[:n], samples[n:], b)) for b in grid]
    return float(grid[int(np.argmax(scores))])


@eqx.filter_jit
def _wkb_chunk(model: Any, sde: Any, points: jax.Array, opts: tuple) -> tuple[jax.Array, jax.Array]:
    """The vmapped WKB likelihood of a chunk; compiled once per option set and network
    structure (the trainings of several seeds share it)."""
    return jax.vmap(lambda x: wkb_log_likelihood(model, sde, x, throw=False, **dict(opts)))(points)


def nll_and_coefficient(model: Any, sde: Any, points: jax.Array, tol: float, chunk: int = 64,
                        progress: bool = True, max_steps: int = MAX_STEPS, *,
                        method: str = "adjoint", inner_tol: float | None = None,
                        fd_step: float = 0.01, max_radius: float | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Per-point ``NLL(h=0)`` and ``dNLL/dh`` at ``h = 0`` (nats) over the window of ``sde``, by
    :func:`~bayesqcd.diffusion.wkb_log_likelihood` with outer tolerance ``tol`` and the
    ``method``, ``inner_tol``, ``fd_step`` and run-away radius ``max_radius`` given.

    A point whose solves fail (``max_steps`` or the step-size floor) or run away does not stop
    the others: its coefficient is NaN (its NLL too when the forward solve failed or ran away).
    ``np.isfinite`` of both is the mask of the points that succeeded.
    """
    opts = (("method", method), ("rtol", tol), ("atol", tol), ("inner_tol", inner_tol),
            ("fd_step", fd_step), ("max_steps", max_steps), ("max_radius", max_radius))
    nll, coef = [], []
    for i in tqdm(range(0, len(points), chunk), desc=f"NLL+WKB tol={tol:g}", disable=not progress):
        lq0, c1 = _wkb_chunk(model, sde, points[i:i + chunk], opts)
        nll.append(-np.asarray(lq0))
        coef.append(-np.asarray(c1))
    return np.concatenate(nll), np.concatenate(coef)


def _cast(tree: Any, dtype: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree)


def compute(config: Config, *, progress: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train and measure one case (float64 on for the call), without writing anything.

    Every training of ``config.seeds`` is evaluated on its own held-out points; W2 against ``h``
    and the finite-``h`` KDE check use the first training.

    Returns:
        ``(summary, arrays)``: the JSON-ready summary (what :func:`run` returns) and the arrays
        the figures need (``data``, ``ref``, ``samples`` per h, ``history``, ``points``, and the
        per-point ``nll`` and ``coef`` at the smallest tolerance, NaN where a solve failed, with
        ``ok`` the mask of the points that succeeded: all of the first training;
        ``coef_per_tol``: the finite per-point coefficients of every training per tolerance).

    Evaluation points whose solves fail or run away do not stop the run: they are listed in
    ``summary["failed_points"]`` (per seed and tolerance: index, coordinates, reason, values)
    and left out of the statistics.
    """
    if not isinstance(config, Config):
        raise TypeError("config must be a bayesqcd.studies.diffusion_path_integral.Config, "
                        f"got {type(config)}")
    with x64_scope(True):
        return _compute(config, progress)


def train_one(cfg: Config, seed: int, progress: bool = True) -> dict[str, Any]:
    """One training of ``cfg`` with ``seed`` (float32; resumed or reused from
    ``cfg.checkpoint_for(seed)``) and its held-out points.

    Returns:
        ``seed``, ``data``, ``result`` (the :class:`~bayesqcd.nn.training.TrainResult`),
        ``t_train`` (s), ``points`` (``n_eval`` held-out points, float64 under x64), and the keys
        ``k_ref``, ``k_sample`` of the reference data and the samples.
    """
    sde = cfg.schedule()
    k_data, k_eval, k_ref, k_model, k_train, k_sample = jax.random.split(jax.random.key(seed), 6)
    data = make_data(cfg.data, k_data, cfg.n_data).astype(jnp.float32)
    t0 = time.perf_counter()
    net = _cast(MLPScore(dim=2, key=k_model), jnp.float32)
    result = train_score(net, sde, data, k_train, n_steps=cfg.n_steps,
                         batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
                         checkpoint=cfg.checkpoint_for(seed), progress=progress,
                         settings={"study": "diffusion_path_integral", "data": cfg.data, "sde": cfg.sde,
                                   "n_data": cfg.n_data, "seed": seed, "network": "MLPScore(dim=2)"})
    return {"seed": seed, "data": data, "result": result, "t_train": time.perf_counter() - t0,
            "points": make_data(cfg.data, k_eval, cfg.n_eval).astype(jnp.float64),
            "k_ref": k_ref, "k_sample": k_sample}


def _evaluate(cfg: Config, sde: Any, model: Any, points: jax.Array, radius: float | None,
              progress: bool) -> dict[float, dict[str, Any]]:
    """Per outer tolerance: per-point NLL and coefficient (NaN where failed), the mask ``ok`` and
    the failed points, each with its reason (a failed solve, or a run-away whose values without
    the check are kept, to show what they would have done to the means)."""
    opts = dict(method=cfg.wkb_method, inner_tol=cfg.inner_tol, fd_step=cfg.fd_step,
                max_steps=cfg.max_steps, progress=progress)
    out = {}
    for tol in cfg.tols:
        nll, coef = nll_and_coefficient(model, sde, points, tol, max_radius=radius, **opts)
        ok = np.isfinite(nll) & np.isfinite(coef)
        bad = np.flatnonzero(~ok)
        raw_nll, raw_coef = (nll_and_coefficient(model, sde, points[bad], tol, **opts)
                             if len(bad) and radius is not None else (nll[bad], coef[bad]))
        # the check makes the NLL of a run-away NaN; without it, its forward solve finishes
        runaway = ~np.isfinite(nll[bad]) & np.isfinite(raw_nll) & (radius is not None)
        failed = [{"index": int(i), "point": np.asarray(points[i]).tolist(),
                   "reason": "run-away" if r else "solver",
                   "nll_h0": float(n) if np.isfinite(n) else None,
                   "coefficient": float(c) if np.isfinite(c) else None}
                  for i, r, n, c in zip(bad, runaway, raw_nll, raw_coef)]
        out[tol] = {"nll": nll, "coef": coef, "ok": ok, "failed": failed}
    return out


def _compute(cfg: Config, progress: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    sde = cfg.schedule()
    wide = jnp.float64  # the likelihood (compute switched 64-bit mode on)
    radius = None if cfg.runaway_tail is None else prior_radius(2, cfg.runaway_tail)
    small = min(cfg.tols)
    runs, t_train, t_lik = [], 0.0, 0.0
    for seed in cfg.seeds:
        r = train_one(cfg, seed, progress)
        t_train += r["t_train"]
        r["model"] = _cast(r["result"].model, wide)
        t0 = time.perf_counter()
        r["eval"] = _evaluate(cfg, sde, r["model"], r["points"], radius, progress)
        t_lik += time.perf_counter() - t0
        runs.append(r)

    # W2 against h and the finite-h KDE check: the first training only
    first = runs[0]
    points = np.asarray(first["points"])
    t0 = time.perf_counter()
    ref = np.asarray(make_data(cfg.data, first["k_ref"], cfg.n_samples))
    floor = wasserstein2(ref, np.asarray(make_data(cfg.data, jax.random.fold_in(first["k_ref"], 1),
                                                   cfg.n_samples)))
    samples, w2 = {}, []
    for h in tqdm(cfg.h_grid, desc="h-process samples, W2", disable=not progress):
        # the same prior draws and Brownian paths for every h (common random numbers)
        x = np.asarray(sample_h(first["result"].model, sde, first["k_sample"], cfg.n_samples,
                                float(h), method="heun", n_steps=cfg.sampler_steps))
        samples[float(h)] = x
        w2.append(wasserstein2(x, ref) if np.all(np.isfinite(x)) else float("nan"))
    t_w2 = time.perf_counter() - t0

    # beyond the paper: NLL at finite h from a KDE of the h-process samples
    # (over the points that succeeded at the smallest tolerance, as the NLL at h = 0)
    e0 = first["eval"][small]
    ok_ref = e0["ok"]
    coef_ref = e0["coef"][ok_ref]
    bw = _choose_bandwidth(samples[0.0])
    kde0 = kde_log_density(samples[0.0], points[ok_ref], bw)
    finite = []
    for h in cfg.h_grid:
        diff = -(kde_log_density(samples[float(h)], points[ok_ref], bw) - kde0)
        m, e = _mean_se(diff)
        pred, pred_e = _mean_se(h * coef_ref)
        finite.append({"h": float(h), "kde_delta_nll": m, "kde_delta_nll_err": e,
                       "wkb_delta_nll": pred, "wkb_delta_nll_err": pred_e})

    def stats(tol: float, key: str) -> dict[str, Any]:
        return over_trainings([{"seed": r["seed"], **point_stats(r["eval"][tol][key][r["eval"][tol]["ok"]])}
                               for r in runs])

    nll_h0 = stats(small, "nll")
    first_order = {f"tol={tol:g}": stats(tol, "coef") for tol in cfg.tols}
    paper = PAPER_TABLE1[(cfg.data, cfg.sde)]
    paper_cols = {"nll_h0": paper[0:2], "tol=0.001": paper[2:4], "tol=1e-05": paper[4:6]}
    comparison = {"nll_h0": compare_with_paper(nll_h0, *paper[0:2]),
                  **{k: compare_with_paper(v, *paper_cols[k]) for k, v in first_order.items()
                     if k in paper_cols}}
    t_min, T = sde.window
    summary: dict[str, Any] = {
        "case": {"data": cfg.data, "sde": cfg.sde},
        "window": {"t_min": t_min, "T": T,
                   "used_by": "training (t uniform in [t_min, T]), sampling (the generating "
                              "processes end at t_min), NLL and WKB (integrated over [t_min, T])"},
        "settings": {**dataclasses.asdict(cfg),
                     "paper_steps": PAPER_EPOCHS * -(-cfg.n_data // cfg.batch_size),
                     "network": "concat(x,t) -> 3 x [Dense 128 + swish] -> Dense 2",
                     "errors": "sem: standard error of the mean over the evaluation points that "
                               "succeeded (see failed_points), combined over trainings; "
                               "sd_over_trainings: spread between independent trainings (seeds)",
                     "dtype": {"training_sampling": "float32", "likelihood": np.dtype(wide).name}},
        "seeds": list(cfg.seeds),
        "nll_h0": {**nll_h0, "tol": small},
        "first_order": first_order,
        "first_order_definition": "NLL(h) = NLL(0) + h * coefficient + O(h^2), nats; per point, "
                                  "then mean, median and trimmed mean over the points of a training, "
                                  "averaged over trainings",
        "paper": {"nll_h0": paper[0:2], "coefficient_tol_1e-3": paper[2:4],
                  "coefficient_tol_1e-5": paper[4:6]},
        "paper_comparison": comparison,
        "failed_points": {
            "definition": "evaluation points whose probability-flow or WKB solve did not finish "
                          "(reason 'solver': max_steps, or the step size fell below its floor) or "
                          "whose probability-flow trajectory ran away (reason 'run-away': |x_T| > "
                          "run_away_radius, outside the ball holding all but run_away_tail of the "
                          "N(0, I) prior, where the network never had a training input: its values "
                          "are extrapolation). They are left out of every statistic at that "
                          "tolerance (nll_h0 and finite_h_kde: at the smallest tolerance); "
                          "nll_h0 and coefficient give their values without the run-away check "
                          "(null: not finite)",
            "run_away_tail": cfg.runaway_tail, "run_away_radius": radius,
            "n_eval": cfg.n_eval, "max_steps": cfg.max_steps,
            **{f"seed={r['seed']}": {f"tol={tol:g}": {"count": len(e["failed"]), "points": e["failed"]}
                                     for tol, e in r["eval"].items()} for r in runs}},
        "w2_vs_h": {"h": list(map(float, cfg.h_grid)), "w2": w2, "data_vs_data_floor": floor,
                    "seed": first["seed"]},
        "finite_h_kde": {"bandwidth": bw, "points": finite, "seed": first["seed"]},
        "training": [{"seed": r["seed"], "steps": r["result"].steps,
                      "final_val_loss": r["result"].history["val_loss"][-1]
                      if r["result"].history["val_loss"] else None,
                      "checkpoint": cfg.checkpoint_for(r["seed"]),
                      "resumed_from_step": r["result"].resumed_step,
                      "checkpoint_reused": r["result"].resumed_step > 0} for r in runs],
        "timing_s": {"training": t_train, "likelihood": t_lik, "sampling_w2": t_w2},
    }
    arrays = {"data": np.asarray(first["data"]), "ref": ref, "samples": samples,
              "history": first["result"].history, "points": points, "nll": e0["nll"],
              "coef": e0["coef"], "ok": ok_ref,
              "coef_per_tol": {tol: [r["eval"][tol]["coef"][r["eval"][tol]["ok"]] for r in runs]
                               for tol in cfg.tols}}
    return summary, arrays


def run(config: Config, out: str | os.PathLike[str] | ResultsDir | None = None, *,
        progress: bool = True) -> dict[str, Any]:
    """Run one case (:func:`compute`) and, when ``out`` is given, write the results folder
    atomically: ``summary.json`` (the returned summary, with ``figures`` and ``versions``),
    ``samples.png``, ``w2_finite_h_training.png`` and ``coefficients.png`` (histogram of the
    per-point coefficients). ``out`` is checked first
    (:func:`bayesqcd.report.results_dir`: a new or empty folder, or a
    :class:`~bayesqcd.report.ResultsDir` made with ``overwrite``), before any work.

    The trained networks are kept before the evaluation: in ``config.checkpoint``, or when that
    is None and ``out`` is given, in ``OUT.ckpt/score.eqx`` beside the results folder (with
    several seeds ``score-seedS.eqx``). A rerun
    into the same place reuses it instead of retraining (``summary["training"]`` says so); a
    checkpoint of other settings (data, schedule, seed, optimiser) is refused before training.

    Returns:
        The summary: NLL at ``h = 0``, first-order coefficient per tolerance, W2 against ``h``,
        the finite-``h`` KDE check, the paper's numbers, training and timing.
    """
    if not isinstance(config, Config):
        raise TypeError("config must be a bayesqcd.studies.diffusion_path_integral.Config, "
                        f"got {type(config)}")
    out = results_dir(out)  # a bad results folder fails here, before any work
    if config.checkpoint is None and out is not None:
        ckpt = out.path.with_name(out.path.name + ".ckpt")
        try:
            ckpt.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(f"the checkpoint folder {str(ckpt)!r} beside --out cannot be created: "
                             f"{err.strerror}") from None
        config = dataclasses.replace(config, checkpoint=str(ckpt / "score.eqx"))
    summary, arrays = compute(config, progress=progress)
    if out is not None:
        with atomic_results_dir(out) as tmp:
            plot_samples(summary, arrays, tmp / "samples.png")
            plot_w2_finite_h(summary, arrays, tmp / "w2_finite_h_training.png")
            plot_coefficients(summary, arrays, tmp / "coefficients.png")
            summary["figures"] = ["samples.png", "w2_finite_h_training.png", "coefficients.png"]
            summary["versions"] = versions()
            write_json(tmp / "summary.json", summary)
    return summary
