"""One case of the path-integral reproduction (Hirono, Tanaka, Fukushima, ICML 2024).

:func:`compute` trains the paper's MLP on one 2-D data set with one schedule and measures

* the NLL at ``h = 0`` (probability-flow ODE, exact divergence) of held-out data points,
* the first-order WKB coefficient ``d NLL / dh`` at ``h = 0`` at the paper's two solver
  tolerances (1e-3 and 1e-5),
* the Wasserstein-2 distance between h-process samples and fresh data, for ``h`` in
  ``[0, h_max]``,
* beyond the paper: the NLL at finite ``h`` measured directly by a Gaussian kernel density
  estimate of the h-process samples (the change ``NLL_kde(h) - NLL_kde(0)``, whose kernel
  bias largely cancels), against the WKB line ``h d NLL/dh``.

:func:`run` adds the results folder (``summary.json`` and the figures of :mod:`.plots`) and
keeps the trained network in a checkpoint before the evaluation. Errors are standard errors
of the mean over the evaluation points; a point whose ODE solves fail is reported in
``failed_points`` and left out instead of ending the run. Training runs in float32
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
from tqdm.auto import tqdm

from bayesqcd.diffusion.data import make_data
from bayesqcd.diffusion.likelihood import MAX_STEPS, wkb_log_likelihood
from bayesqcd.diffusion.metrics import wasserstein2
from bayesqcd.diffusion.sampling import sample_h
from bayesqcd.diffusion.score import train_score
from bayesqcd.diffusion.sde import get_sde
from bayesqcd.nn.score_nets import MLPScore
from bayesqcd.precision import x64_scope
from bayesqcd.report import ResultsDir, atomic_results_dir, results_dir, versions, write_json
from bayesqcd.studies.diffusion_path_integral.config import PAPER_EPOCHS, PAPER_TABLE1, Config
from bayesqcd.studies.diffusion_path_integral.plots import plot_samples, plot_w2_finite_h


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    if len(x) < 2:  # no error from fewer than two points (NaN: null in the JSON)
        return (float(x[0]) if len(x) else float("nan")), float("nan")
    return float(np.mean(x)), float(np.std(x, ddof=1) / np.sqrt(len(x)))


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


def nll_and_coefficient(model: Any, sde: Any, points: jax.Array, tol: float, chunk: int = 64,
                        progress: bool = True, max_steps: int = MAX_STEPS
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Per-point ``NLL(h=0)`` and ``dNLL/dh`` at ``h = 0`` (nats), adjoint WKB method.

    A point whose solves fail (``max_steps`` or the step-size floor of
    :func:`~bayesqcd.diffusion.wkb_log_likelihood`) does not stop the others: its coefficient
    is NaN (its NLL too when the forward solve failed). ``np.isfinite`` of both is the mask of
    the points that succeeded.
    """
    fn = eqx.filter_jit(jax.vmap(lambda x: wkb_log_likelihood(model, sde, x, rtol=tol, atol=tol,
                                                              max_steps=max_steps, throw=False)))
    nll, coef = [], []
    for i in tqdm(range(0, len(points), chunk), desc=f"NLL+WKB tol={tol:g}", disable=not progress):
        lq0, c1 = fn(points[i:i + chunk])
        nll.append(-np.asarray(lq0))
        coef.append(-np.asarray(c1))
    return np.concatenate(nll), np.concatenate(coef)


def _cast(tree: Any, dtype: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree)


def _quantiles(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {"q10": float("nan"), "median": float("nan"), "q90": float("nan")}
    q = np.quantile(np.asarray(x, dtype=float), [0.1, 0.5, 0.9])
    return {"q10": float(q[0]), "median": float(q[1]), "q90": float(q[2])}


def compute(config: Config, *, progress: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train and measure one case (float64 on for the call), without writing anything.

    Returns:
        ``(summary, arrays)``: the JSON-ready summary (what :func:`run` returns) and the arrays
        the figures need (``data``, ``ref``, ``samples`` per h, ``history``, ``points``, and the
        per-point ``nll`` and ``coef`` at the smallest tolerance, NaN where a solve failed, with
        ``ok`` the mask of the points that succeeded).

    Evaluation points whose solves fail do not stop the run: they are listed in
    ``summary["failed_points"]`` (count, indices, coordinates per tolerance) and left out of
    the means.
    """
    if not isinstance(config, Config):
        raise TypeError("config must be a bayesqcd.studies.diffusion_path_integral.Config, "
                        f"got {type(config)}")
    with x64_scope(True):
        return _compute(config, progress)


def _compute(cfg: Config, progress: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    sde = get_sde(cfg.sde)
    key = jax.random.key(cfg.seed)
    k_data, k_eval, k_ref, k_model, k_train, k_sample = jax.random.split(key, 6)
    data = make_data(cfg.data, k_data, cfg.n_data).astype(jnp.float32)
    t0 = time.perf_counter()
    net = _cast(MLPScore(dim=2, key=k_model), jnp.float32)
    result = train_score(net, sde, data, k_train, n_steps=cfg.n_steps,
                         batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
                         checkpoint=cfg.checkpoint, progress=progress,
                         settings={"study": "diffusion_path_integral", "data": cfg.data, "sde": cfg.sde,
                                   "n_data": cfg.n_data, "seed": cfg.seed, "network": "MLPScore(dim=2)"})
    t_train = time.perf_counter() - t0
    model = result.model
    wide = jnp.float64  # the likelihood (compute switched 64-bit mode on)

    t0 = time.perf_counter()
    points = make_data(cfg.data, k_eval, cfg.n_eval).astype(wide)
    per_tol, ok = {}, {}
    for tol in cfg.tols:
        nll, coef = nll_and_coefficient(_cast(model, wide), sde, points, tol, progress=progress,
                                        max_steps=cfg.max_steps)
        per_tol[tol] = (nll, coef)
        ok[tol] = np.isfinite(nll) & np.isfinite(coef)  # the points whose solves succeeded
    t_lik = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref = np.asarray(make_data(cfg.data, k_ref, cfg.n_samples))
    floor = wasserstein2(ref, np.asarray(make_data(cfg.data, jax.random.fold_in(k_ref, 1),
                                                   cfg.n_samples)))
    samples, w2 = {}, []
    for h in tqdm(cfg.h_grid, desc="h-process samples, W2", disable=not progress):
        # the same prior draws and Brownian paths for every h (common random numbers)
        x = np.asarray(sample_h(model, sde, k_sample, cfg.n_samples, float(h), method="heun",
                                n_steps=cfg.sampler_steps))
        samples[float(h)] = x
        w2.append(wasserstein2(x, ref) if np.all(np.isfinite(x)) else float("nan"))
    t_w2 = time.perf_counter() - t0

    # beyond the paper: NLL at finite h from a KDE of the h-process samples
    # (over the points that succeeded at the smallest tolerance, as the NLL at h = 0)
    ok_ref = ok[min(cfg.tols)]
    nll_ref, coef_ref = (a[ok_ref] for a in per_tol[min(cfg.tols)])
    bw = _choose_bandwidth(samples[0.0])
    kde0 = kde_log_density(samples[0.0], np.asarray(points)[ok_ref], bw)
    finite = []
    for h in cfg.h_grid:
        diff = -(kde_log_density(samples[float(h)], np.asarray(points)[ok_ref], bw) - kde0)
        m, e = _mean_se(diff)
        pred, pred_e = _mean_se(h * coef_ref)
        finite.append({"h": float(h), "kde_delta_nll": m, "kde_delta_nll_err": e,
                       "wkb_delta_nll": pred, "wkb_delta_nll_err": pred_e})

    paper = PAPER_TABLE1[(cfg.data, cfg.sde)]
    summary: dict[str, Any] = {
        "case": {"data": cfg.data, "sde": cfg.sde},
        "settings": {**dataclasses.asdict(cfg),
                     "paper_steps": PAPER_EPOCHS * -(-cfg.n_data // cfg.batch_size),
                     "network": "concat(x,t) -> 3 x [Dense 128 + swish] -> Dense 2",
                     "wkb_method": "adjoint (autodiff-equivalent sweep)",
                     "errors": "standard error of the mean over the evaluation points that "
                               "succeeded (see failed_points)",
                     "dtype": {"training_sampling": "float32", "likelihood": np.dtype(wide).name}},
        "nll_h0": {**dict(zip(("value", "error"), _mean_se(nll_ref))), "n_points": int(ok_ref.sum())},
        "first_order_coefficient": {
            f"tol={tol:g}": {**dict(zip(("value", "error"), _mean_se(per_tol[tol][1][ok[tol]]))),
                             "n_points": int(ok[tol].sum())}
            for tol in cfg.tols},
        "first_order_coefficient_quantiles": {f"tol={tol:g}": _quantiles(per_tol[tol][1][ok[tol]])
                                              for tol in cfg.tols},
        "failed_points": {
            "definition": "evaluation points whose probability-flow or WKB solve did not finish "
                          "(max_steps, or the step size fell below its floor) or gave a non-finite "
                          "value: in practice a trajectory that leaves the region the network was "
                          "trained on and grows without bound. They are left out of every mean, error "
                          "and quantile at that tolerance (nll_h0 and finite_h_kde: at the smallest "
                          "tolerance); nll_h0 lists their NLL from the forward solve alone (null: "
                          "not finite)",
            "n_eval": cfg.n_eval, "max_steps": cfg.max_steps,
            **{f"tol={tol:g}": {"count": int((~ok[tol]).sum()),
                                "indices": np.flatnonzero(~ok[tol]).tolist(),
                                "points": np.asarray(points)[~ok[tol]].tolist(),
                                "nll_h0": per_tol[tol][0][~ok[tol]].tolist()}
               for tol in cfg.tols}},
        "nll_h0_quantiles": _quantiles(nll_ref),
        "first_order_coefficient_definition": "NLL(h) = NLL(0) + h * coefficient + O(h^2), nats",
        "w2_vs_h": {"h": list(map(float, cfg.h_grid)), "w2": w2, "data_vs_data_floor": floor},
        "finite_h_kde": {"bandwidth": bw, "points": finite},
        "paper": {"nll_h0": paper[0:2], "coefficient_tol_1e-3": paper[2:4],
                  "coefficient_tol_1e-5": paper[4:6]},
        "training": {"steps": result.steps, "final_val_loss": result.history["val_loss"][-1]
                     if result.history["val_loss"] else None,
                     "checkpoint": cfg.checkpoint, "resumed_from_step": result.resumed_step,
                     "checkpoint_reused": result.resumed_step > 0},
        "timing_s": {"training": t_train, "likelihood": t_lik, "sampling_w2": t_w2},
    }
    arrays = {"data": np.asarray(data), "ref": ref, "samples": samples, "history": result.history,
              "points": np.asarray(points), "nll": per_tol[min(cfg.tols)][0],
              "coef": per_tol[min(cfg.tols)][1], "ok": ok_ref}
    return summary, arrays


def run(config: Config, out: str | os.PathLike[str] | ResultsDir | None = None, *,
        progress: bool = True) -> dict[str, Any]:
    """Run one case (:func:`compute`) and, when ``out`` is given, write the results folder
    atomically: ``summary.json`` (the returned summary, with ``figures`` and ``versions``),
    ``samples.png`` and ``w2_finite_h_training.png``. ``out`` is checked first
    (:func:`bayesqcd.report.results_dir`: a new or empty folder, or a
    :class:`~bayesqcd.report.ResultsDir` made with ``overwrite``), before any work.

    The trained network is kept before the evaluation: in ``config.checkpoint``, or when that
    is None and ``out`` is given, in ``OUT.ckpt/score.eqx`` beside the results folder. A rerun
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
            summary["figures"] = ["samples.png", "w2_finite_h_training.png"]
            summary["versions"] = versions()
            write_json(tmp / "summary.json", summary)
    return summary
