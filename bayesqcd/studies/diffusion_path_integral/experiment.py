"""The reproduction of Hirono, Tanaka, Fukushima (ICML 2024), Table 1 and W2 against h.

:func:`run_case` trains the paper's MLP on one 2-D data set with one schedule and measures

* the NLL at ``h = 0`` (probability-flow ODE, exact divergence) of held-out data points,
* the first-order WKB coefficient ``d NLL / dh`` at ``h = 0`` at the paper's two solver
  tolerances (1e-3 and 1e-5),
* the Wasserstein-2 distance between h-process samples and fresh data, for ``h`` in
  ``[0, h_max]``,
* beyond the paper: the NLL at finite ``h`` measured directly by a Gaussian kernel density
  estimate of the h-process samples (the change ``NLL_kde(h) - NLL_kde(0)``, whose kernel
  bias largely cancels), against the WKB line ``h d NLL/dh``.

Errors are standard errors of the mean over the evaluation points. Training and sampling run
in float32; the likelihood runs in float64 when x64 is enabled (the CLI and the example
enable it: tolerance 1e-5 is too close to float32's resolution). :func:`analytic_finite_h`
does the finite-h comparison for the paper's 1-D analytic model, where NLL(h) is exact.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from bayesqcd.diffusion.analytic import GaussianMixture, MixtureScore, analytic_model_nll
from bayesqcd.diffusion.data import DATASETS, make_data
from bayesqcd.diffusion.likelihood import wkb_log_likelihood
from bayesqcd.diffusion.metrics import wasserstein2
from bayesqcd.diffusion.sampling import sample_h
from bayesqcd.diffusion.score import train_score
from bayesqcd.diffusion.sde import ConstantVP, get_sde
from bayesqcd.nn.score_nets import MLPScore

PAPER_TABLE1 = {
    # (data, sde): (NLL h=0, err, coefficient tol 1e-3, err, coefficient tol 1e-5, err)
    ("swiss-roll", "simple"): (1.39, 0.05, -0.31, 0.21, -0.44, 0.38),
    ("swiss-roll", "cosine"): (1.42, 0.02, -1.59, 0.57, -3.27, 1.11),
    ("25gauss", "simple"): (-1.22, 0.01, -3.64, 0.49, -3.61, 0.64),
    ("25gauss", "cosine"): (-1.71, 0.02, -17.57, 5.56, -19.65, 17.46),
}
PAPER_EPOCHS = 16000
"""The paper trains 16000 epochs of 3000 points in batches of 512 (about 96000 steps)."""


@dataclass
class CaseConfig:
    """Settings of one case; the defaults follow the paper except the training length."""

    data: str = "swiss-roll"
    sde: str = "simple"
    n_steps: int = 20000
    batch_size: int = 512
    learning_rate: float = 1e-3
    n_data: int = 3000
    n_eval: int = 256
    tols: tuple[float, ...] = (1e-3, 1e-5)
    n_samples: int = 3000
    h_grid: tuple[float, ...] = (0.0, 0.04, 0.08, 0.12, 0.16, 0.2)
    sampler_steps: int = 500
    seed: int = 0
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        if self.data not in DATASETS:
            raise ValueError(f"data must be one of {DATASETS}, got {self.data!r}")
        get_sde(self.sde)
        for name in ("n_data", "n_eval", "n_samples", "sampler_steps", "batch_size"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)}")
        if self.n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {self.n_steps}")
        if any(h < 0 for h in self.h_grid) or 0.0 not in self.h_grid:
            raise ValueError(f"h_grid must be >= 0 and contain 0, got {self.h_grid}")


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
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
                        progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-point ``NLL(h=0)`` and ``dNLL/dh`` at ``h = 0`` (nats), adjoint WKB method."""
    fn = eqx.filter_jit(jax.vmap(lambda x: wkb_log_likelihood(model, sde, x, rtol=tol, atol=tol)))
    nll, coef = [], []
    for i in tqdm(range(0, len(points), chunk), desc=f"NLL+WKB tol={tol:g}", disable=not progress):
        lq0, c1 = fn(points[i:i + chunk])
        nll.append(-np.asarray(lq0))
        coef.append(-np.asarray(c1))
    return np.concatenate(nll), np.concatenate(coef)


def _cast(tree: Any, dtype: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree)


def _quantiles(x: np.ndarray) -> dict[str, float]:
    q = np.quantile(np.asarray(x, dtype=float), [0.1, 0.5, 0.9])
    return {"q10": float(q[0]), "median": float(q[1]), "q90": float(q[2])}


def run_case(cfg: CaseConfig, progress: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train and measure one case. Returns ``(summary, arrays)``: the JSON summary and the
    arrays the figures need (data, samples per h, loss history, per-point results)."""
    sde = get_sde(cfg.sde)
    key = jax.random.key(cfg.seed)
    k_data, k_eval, k_ref, k_model, k_train, k_sample = jax.random.split(key, 6)
    data = make_data(cfg.data, k_data, cfg.n_data).astype(jnp.float32)
    t0 = time.perf_counter()
    net = _cast(MLPScore(dim=2, key=k_model), jnp.float32)
    result = train_score(net, sde, data, k_train, n_steps=cfg.n_steps,
                         batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
                         checkpoint=cfg.checkpoint, progress=progress)
    t_train = time.perf_counter() - t0
    model = result.model
    wide = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32

    t0 = time.perf_counter()
    points = make_data(cfg.data, k_eval, cfg.n_eval).astype(wide)
    per_tol = {}
    for tol in cfg.tols:
        nll, coef = nll_and_coefficient(_cast(model, wide), sde, points, tol, progress=progress)
        per_tol[tol] = (nll, coef)
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
    nll_ref, coef_ref = per_tol[min(cfg.tols)]
    bw = _choose_bandwidth(samples[0.0])
    kde0 = kde_log_density(samples[0.0], np.asarray(points), bw)
    finite = []
    for h in cfg.h_grid:
        diff = -(kde_log_density(samples[float(h)], np.asarray(points), bw) - kde0)
        m, e = _mean_se(diff)
        pred, pred_e = _mean_se(h * coef_ref)
        finite.append({"h": float(h), "kde_delta_nll": m, "kde_delta_nll_err": e,
                       "wkb_delta_nll": pred, "wkb_delta_nll_err": pred_e})

    paper = PAPER_TABLE1[(cfg.data, cfg.sde)]
    summary: dict[str, Any] = {
        "case": {"data": cfg.data, "sde": cfg.sde},
        "settings": {**asdict(cfg), "paper_steps": PAPER_EPOCHS * -(-cfg.n_data // cfg.batch_size),
                     "network": "concat(x,t) -> 3 x [Dense 128 + swish] -> Dense 2",
                     "wkb_method": "adjoint (autodiff-equivalent sweep)",
                     "errors": "standard error of the mean over the evaluation points",
                     "dtype": {"training_sampling": "float32", "likelihood": np.dtype(wide).name}},
        "nll_h0": dict(zip(("value", "error"), _mean_se(nll_ref))),
        "first_order_coefficient": {
            f"tol={tol:g}": dict(zip(("value", "error"), _mean_se(per_tol[tol][1])))
            for tol in cfg.tols},
        "first_order_coefficient_quantiles": {f"tol={tol:g}": _quantiles(per_tol[tol][1])
                                              for tol in cfg.tols},
        "nll_h0_quantiles": _quantiles(nll_ref),
        "first_order_coefficient_definition": "NLL(h) = NLL(0) + h * coefficient + O(h^2), nats",
        "w2_vs_h": {"h": list(map(float, cfg.h_grid)), "w2": w2, "data_vs_data_floor": floor},
        "finite_h_kde": {"bandwidth": bw, "points": finite},
        "paper": {"nll_h0": paper[0:2], "coefficient_tol_1e-3": paper[2:4],
                  "coefficient_tol_1e-5": paper[4:6]},
        "training": {"steps": result.steps, "final_val_loss": result.history["val_loss"][-1]
                     if result.history["val_loss"] else None},
        "timing_s": {"training": t_train, "likelihood": t_lik, "sampling_w2": t_w2},
    }
    arrays = {"data": np.asarray(data), "ref": ref, "samples": samples, "history": result.history,
              "points": np.asarray(points), "nll": nll_ref, "coef": coef_ref}
    return summary, arrays


def plot_case(summary: dict[str, Any], arrays: dict[str, Any], out: Path) -> list[str]:
    """Figures of one case into ``out``; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    title = f"{summary['case']['data']} / {summary['case']['sde'].upper()}"
    hs = sorted(arrays["samples"])
    show = [hs[0], hs[len(hs) // 2], hs[-1]]
    fig, ax = plt.subplots(1, 4, figsize=(16, 4), sharex=True, sharey=True)
    ax[0].scatter(*arrays["ref"].T, s=1, c="k")
    ax[0].set_title("data")
    for a, h in zip(ax[1:], show):
        a.scatter(*arrays["samples"][h].T, s=1)
        a.set_title(f"h = {h:g}")
    fig.suptitle(title)
    fig.savefig(out / "samples.png", dpi=100)
    plt.close(fig)

    w = summary["w2_vs_h"]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    ax[0].plot(w["h"], w["w2"], "o-", label="generated vs data")
    ax[0].axhline(w["data_vs_data_floor"], ls="--", c="gray", label="data vs data")
    ax[0].set(xlabel="h", ylabel="W2", title=f"{title}: W2 against h")
    ax[0].legend()
    f = summary["finite_h_kde"]["points"]
    h = [p["h"] for p in f]
    ax[1].errorbar(h, [p["kde_delta_nll"] for p in f], [p["kde_delta_nll_err"] for p in f],
                   fmt="o", label="KDE of h-process samples")
    ax[1].plot(h, [p["wkb_delta_nll"] for p in f], "-", label="WKB first order")
    ax[1].set(xlabel="h", ylabel="NLL(h) - NLL(0) [nats]", title="finite h: direct vs WKB")
    ax[1].legend()
    hist = arrays["history"]
    ax[2].plot(hist["step"], hist["val_loss"])
    ax[2].set(xlabel="step", ylabel="DSM loss (fixed validation draw)", title="training")
    fig.tight_layout()
    fig.savefig(out / "w2_finite_h_training.png", dpi=100)
    plt.close(fig)
    return ["samples.png", "w2_finite_h_training.png"]


def analytic_finite_h(hs: np.ndarray, *, v0: float = 2.0, eps: float = 0.1, beta: float = 1.0,
                      T: float = 5.0, x0: float = 0.7) -> dict[str, Any]:
    """The paper's 1-D analytic model: exact NLL(h) (closed form) against the WKB line
    ``NLL(0) + h dNLL/dh`` computed by :func:`wkb_log_likelihood` (adjoint method)."""
    sde = ConstantVP(beta=beta, T=T)
    data = GaussianMixture(jnp.ones(1), jnp.zeros((1, 1)), jnp.full((1, 1), np.sqrt(v0)))
    score = MixtureScore(data, sde, eps)
    lq0, c1 = wkb_log_likelihood(score, sde, jnp.array([x0]), rtol=1e-7, atol=1e-7)
    exact = [float(analytic_model_nll(x0, h, v0=v0, eps=eps, beta=beta, T=T)) for h in hs]
    wkb = [float(-lq0 - h * c1) for h in hs]
    return {"model": {"v0": v0, "eps": eps, "beta": beta, "T": T, "x0": x0},
            "h": list(map(float, hs)), "exact_nll": exact, "wkb_nll": wkb,
            "wkb_coefficient": float(-c1),
            "exact_coefficient": float(jax.grad(lambda h: analytic_model_nll(
                x0, h, v0=v0, eps=eps, beta=beta, T=T))(0.0))}
