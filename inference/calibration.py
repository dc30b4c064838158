"""Simulation-based calibration (SBC) and expected coverage of any posterior approximation.

For held-out simulations (theta_i, y_i) drawn from the prior predictive, a calibrated
posterior q(theta | y) gives (Talts et al. 2018, arXiv:1804.06788):

* ranks of theta_i among S draws of q(. | y_i) uniform on {0, ..., S};
* empirical coverage of its central credible intervals equal to their nominal level.

:func:`calibrate` measures both for a :class:`~bayesqcd.inference.amortized.FittedNPE`, a
:class:`~bayesqcd.inference.amortized.FittedRegression` (whose ensemble spread is not a
posterior width: it under-covers) or any callable ``data -> InferenceData`` (e.g. a NUTS run
on a handful of simulations). The empirical coverage is compared with the central 95%
binomial band of ``n_sims`` Bernoulli trials at the nominal level. In a multi-process run
(:mod:`bayesqcd.inference.distributed`) the held-out simulations are shared out over the
processes and the results all-gathered: every process gets the single-process result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import arviz as az
import jax
import numpy as np
from jaxtyping import PRNGKeyArray
from scipy import stats

from bayesqcd.inference.distributed import gather_shares, share
from bayesqcd.inference.simulation import Simulations

DEFAULT_LEVELS = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2).tolist())
"""Nominal levels of the central credible intervals: 0.05, 0.10, ..., 0.95."""


@dataclass(frozen=True)
class Calibration:
    """SBC ranks and expected coverage of a posterior approximation.

    Attributes:
        levels: nominal levels ``(L,)`` of the central intervals.
        coverage: target -> empirical coverage ``(L,)`` (mean over a curve's components).
        band: ``(2, L)`` central 95% binomial band of the empirical coverage of a calibrated
            posterior over ``n_sims`` simulations.
        ranks: target -> ``(n_sims, *shape)`` ranks in ``{0, ..., n_draws}``.
        n_draws, n_sims: posterior draws per simulation and simulations.
        engine: what was calibrated.
    """

    levels: np.ndarray
    coverage: dict[str, np.ndarray]
    band: np.ndarray
    ranks: dict[str, np.ndarray]
    n_draws: int
    n_sims: int
    engine: str = ""
    in_band: dict[str, bool] = field(init=False)

    def __post_init__(self) -> None:
        lo, hi = self.band
        object.__setattr__(self, "in_band", {k: bool(np.all((c >= lo) & (c <= hi))) for k, c in self.coverage.items()})

    def rank_histogram(self, name: str, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Counts and edges of the normalized ranks ``r / n_draws`` in [0, 1] (all components)."""
        if name not in self.ranks:
            raise ValueError(f"name = {name!r}; calibrated targets are {sorted(self.ranks)}")
        return np.histogram(self.ranks[name].ravel() / self.n_draws, bins=bins, range=(0.0, 1.0))

    def rank_pvalue(self, name: str, bins: int = 10) -> float:
        """Chi-square p-value of uniform ranks (components pooled, treated as independent)."""
        counts, _ = self.rank_histogram(name, bins)
        return float(stats.chisquare(counts).pvalue)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: levels, coverage and band, ``in_band``, rank histograms and p-values."""
        return {
            "engine": self.engine, "n_sims": self.n_sims, "n_draws": self.n_draws,
            "levels": self.levels.tolist(), "band_low": self.band[0].tolist(), "band_high": self.band[1].tolist(),
            "coverage": {k: v.tolist() for k, v in self.coverage.items()},
            "in_band": dict(self.in_band),
            "rank_histogram": {k: self.rank_histogram(k)[0].tolist() for k in self.ranks},
            "rank_pvalue": {k: self.rank_pvalue(k) for k in self.ranks},
        }


def binomial_band(levels: Sequence[float], n: int, mass: float = 0.95) -> np.ndarray:
    """``(2, L)``: the central ``mass`` interval of Binomial(n, level) / n per level."""
    p = np.asarray(levels, float)
    lo = stats.binom.ppf((1 - mass) / 2, n, p) / n
    hi = stats.binom.ppf((1 + mass) / 2, n, p) / n
    return np.stack([lo, hi])


def calibrate(posterior: Any, sims: Simulations, key: PRNGKeyArray, *, n_draws: int = 200,
              levels: Sequence[float] = DEFAULT_LEVELS, var_names: Sequence[str] | None = None,
              chunk: int = 256) -> Calibration:
    """SBC ranks and expected coverage of ``posterior`` over held-out ``sims``.

    Args:
        posterior: a ``FittedNPE`` (``n_draws`` draws split over its members), a
            ``FittedRegression`` (members x input draws, >= ``n_draws`` in all) or a callable
            ``data -> InferenceData`` with at least ``n_draws`` draws (thinned evenly to
            ``n_draws``), called once per simulation with ``sims.data(i)``.
        sims: held-out simulations (not used in training).
        key: PRNG key.
        n_draws: posterior draws per simulation.
        levels: nominal levels of the central credible intervals, each in (0, 1).
        var_names: targets to calibrate (default: all targets of ``sims``).
        chunk: simulations per batched call (fitted posteriors).

    Returns:
        :class:`Calibration`, the same on every process.

    After :func:`bayesqcd.inference.distributed.initialize` the simulations are shared out
    over the processes: process ``p`` of ``P`` takes the batched calls (of ``chunk``
    simulations, key ``fold_in(key, first simulation)``) or, for a callable, the simulations
    ``p::P``; ranks and interval hits are all-gathered, so the result is bit for bit that of
    one process. Every process needs ``sims`` in full, and a callable must run on its own
    process alone (e.g. ``numpyro.infer.MCMC`` on a local device, not :func:`run_nuts`, whose
    chains span all processes).
    """
    lv = np.asarray(levels, float)
    if lv.ndim != 1 or lv.size == 0 or np.any((lv <= 0) | (lv >= 1)):
        raise ValueError(f"levels = {levels} must be a non-empty list of values in (0, 1)")
    if n_draws < 2:
        raise ValueError(f"n_draws = {n_draws} must be >= 2")
    names = list(var_names) if var_names is not None else list(sims.targets)
    for name in names:
        if name not in sims.targets:
            raise ValueError(f"var_names entry {name!r} is not a target of the simulations ({list(sims.targets)})")
    sizes = _unit_sizes(posterior, sims.n, chunk)
    ranks, inside = _share_results(posterior, sims, key, n_draws, lv, names, sizes, share(len(sizes)))
    ranks, inside = gather_shares((ranks, inside), sizes)
    coverage = {k: np.moveaxis(inside[k], 0, 1).reshape(lv.size, -1).mean(axis=1) for k in names}
    engine = type(posterior).__name__ if hasattr(posterior, "_draws") else getattr(posterior, "__name__", "callable")
    return Calibration(lv, coverage, binomial_band(lv, sims.n), ranks, n_draws, sims.n, engine)


def _batched(posterior: Any) -> bool:
    """Whether ``posterior`` draws for many data sets in one jitted call (a fitted posterior)."""
    return hasattr(posterior, "_draws") and hasattr(posterior, "inputs")


def _unit_sizes(posterior: Any, n_sims: int, chunk: int) -> list[int]:
    """Simulations per unit of work: chunks of ``chunk`` for a fitted posterior, else one each."""
    if not _batched(posterior):
        if not callable(posterior):
            raise TypeError(f"posterior must be a FittedNPE, FittedRegression or a callable data -> InferenceData, "
                            f"got {type(posterior).__name__}")
        return [1] * n_sims
    if chunk < 1:
        raise ValueError(f"chunk = {chunk} must be >= 1")
    return [min(chunk, n_sims - i) for i in range(0, n_sims, chunk)]


def _share_results(posterior: Any, sims: Simulations, key: PRNGKeyArray, n_draws: int, levels: np.ndarray,
                   names: list[str], sizes: list[int], units: Sequence[int]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Ranks ``(k, *shape)`` and interval hits ``(k, L, *shape)`` of the simulations of ``units``
    (indices into ``sizes``), one unit after the other."""
    starts = np.concatenate([[0], np.cumsum(sizes)])
    q_lo, q_hi = (1 - levels) / 2, (1 + levels) / 2
    ranks: dict[str, list[np.ndarray]] = {k: [] for k in names}
    inside: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for u in units:
        rows = slice(int(starts[u]), int(starts[u + 1]))
        draws = _draws(posterior, sims, key, n_draws, names, rows)  # name -> (k, S, *shape)
        for name in names:
            d, truth = draws[name], sims.targets[name][rows, None]
            ranks[name].append(np.sum(d < truth, axis=1))
            lo, hi = np.quantile(d, q_lo, axis=1), np.quantile(d, q_hi, axis=1)  # (L, k, *shape)
            inside[name].append(np.moveaxis((lo <= truth[:, 0]) & (truth[:, 0] <= hi), 0, 1))
    shape = {k: sims.targets[k].shape[1:] for k in names}
    stack = lambda parts, lead: {k: np.concatenate(v) if v else np.zeros((0, *lead, *shape[k]),  # noqa: E731
                                                                          bool if lead else int)
                                 for k, v in parts.items()}
    return stack(ranks, ()), stack(inside, (levels.size,))


def _draws(posterior: Any, sims: Simulations, key: PRNGKeyArray, n_draws: int, names: list[str],
           rows: slice) -> dict[str, np.ndarray]:
    """Posterior draws ``(k, n_draws, *shape)`` per target for the simulations ``rows``: one
    batched call of a fitted posterior (key ``fold_in(key, rows.start)``), or one call of the
    callable per simulation."""
    if _batched(posterior):
        x = posterior.inputs.flatten({k: v[rows] for k, v in sims.observed.items()})
        members = posterior.members
        per = -(-n_draws // members)
        out = posterior._draws(jax.random.fold_in(key, rows.start), x, per)
        return {k: np.asarray(out[k])[:, _thin(members * per, n_draws)] for k in names}
    got: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for i in range(rows.start, rows.stop):
        idata = posterior(sims.data(i))
        if not isinstance(idata, az.InferenceData):
            raise TypeError(f"the posterior callable returned {type(idata).__name__}, not InferenceData")
        for k in names:
            v = np.asarray(idata.posterior[k].values)
            v = v.reshape(-1, *v.shape[2:])
            if v.shape[0] < n_draws:
                raise ValueError(f"the posterior for simulation {i} has {v.shape[0]} draws of {k!r}; "
                                 f"n_draws = {n_draws} needs at least as many")
            got[k].append(v[_thin(v.shape[0], n_draws)])
    return {k: np.stack(v) for k, v in got.items()}


def _thin(available: int, n: int) -> np.ndarray:
    """``n`` evenly spaced indices of ``available`` draws."""
    return np.linspace(0, available - 1, n).round().astype(int)


PosteriorFn = Callable[[dict[str, np.ndarray]], az.InferenceData]
"""A posterior as a function of one data set ``{observed site: array}``."""
