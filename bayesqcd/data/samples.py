"""Posterior samples of (M, R) for one source, and their Gaussian kernel density estimate.

NICER teams publish posterior samples of (mass, radius) per pulsar. :func:`load_mr_samples` reads
such a table and :class:`MRSamples` turns it into a likelihood by a 2-D Gaussian KDE:

    p(x) = (1/N) sum_i N(x | x_i, H),   x = (M [M_sun], R [km]),   H = h^2 Sigma,   h = N^(-1/6),

with ``Sigma`` the sample covariance (full, ``ddof = 1``) and ``h`` Scott's rule in d = 2
dimensions: the bandwidth is isotropic on the standardized (whitened) samples. This is the same
estimator as ``scipy.stats.gaussian_kde`` with its default bandwidth.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MIN_SAMPLES = 50
"""Fewest (M, R) samples accepted for a kernel density estimate."""
_MASS_NAMES = {"m", "mass", "m_msun", "mass_msun"}
_RADIUS_NAMES = {"r", "radius", "r_km", "radius_km"}
M_RANGE = (0.0, 5.0)
"""Physical neutron-star masses [M_sun]: (0, 5] (the lower bound exclusive)."""
R_RANGE = (3.0, 50.0)
"""Physical neutron-star radii [km]: [3, 50] (a radius in metres or cm falls outside)."""


@dataclass(frozen=True, eq=False)
class MRSamples:
    """Posterior samples of one source's mass and radius.

    Attributes:
        name: source name (replaces a summary source of the same name in ``ObservationSet``).
        M: masses [M_sun], shape ``(N,)``.
        R: radii [km], shape ``(N,)``.
        source: where the samples came from (the file path).
        n_read: number of samples in the file before thinning.
    """

    name: str
    M: np.ndarray
    R: np.ndarray
    source: str
    n_read: int = field(default=0)

    @property
    def n(self) -> int:
        return int(self.M.shape[0])

    def kde(self) -> tuple[np.ndarray, np.ndarray, float]:
        """KDE in whitened coordinates: ``(points (N, 2), whiten (2, 2), log_norm)``.

        ``whiten = L^-1`` with ``H = L L^T``; then
        ``log p(x) = logsumexp_i(-|L^-1 x - points_i|^2 / 2) - log N + log_norm``,
        ``log_norm = -log(2 pi) - log det L``.
        """
        x = np.stack([self.M, self.R], axis=-1).astype(float)
        n = x.shape[0]
        cov = np.cov(x, rowvar=False, ddof=1) * n ** (-2.0 / 6.0)
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError(f"{self.source}: the (M, R) samples of {self.name!r} have a singular "
                             f"covariance (constant or perfectly correlated columns); a 2-D kernel "
                             f"density estimate needs scatter in both M and R") from None
        whiten = np.linalg.inv(chol)
        points = x @ whiten.T
        log_norm = -math.log(2.0 * math.pi) - float(np.sum(np.log(np.diag(chol))))
        return points, whiten, log_norm

    def log_density(self, M, R) -> np.ndarray:
        """KDE log density [log(1/(M_sun km))] at ``(M, R)`` (numpy; any equal shapes)."""
        from scipy.special import logsumexp
        points, whiten, log_norm = self.kde()
        M, R = np.broadcast_arrays(np.asarray(M, float), np.asarray(R, float))
        y = np.stack([M.ravel(), R.ravel()], -1) @ whiten.T
        d2 = np.sum((y[:, None, :] - points[None, :, :]) ** 2, axis=-1)
        out = logsumexp(-0.5 * d2, axis=-1) - math.log(self.n) + log_norm
        return out.reshape(M.shape)

    def contour_data(self, n_grid: int = 80, levels=(0.68, 0.95)) -> dict:
        """Grid and KDE density for ``plt.contour(R, M, density, levels=thresholds)``.

        Returns a dict: ``R`` (n_grid,) [km], ``M`` (n_grid,) [M_sun], ``density`` (n_grid, n_grid)
        indexed ``[i_M, i_R]``, ``levels`` (as given) and ``thresholds``: density values whose
        super-level sets contain the fractions ``levels`` of the samples (increasing order, as
        matplotlib wants; so the *first* threshold belongs to the *largest* level).
        """
        pad_m, pad_r = 3 * np.std(self.M), 3 * np.std(self.R)
        m = np.linspace(self.M.min() - pad_m, self.M.max() + pad_m, n_grid)
        r = np.linspace(self.R.min() - pad_r, self.R.max() + pad_r, n_grid)
        mm, rr = np.meshgrid(m, r, indexing="ij")
        dens = np.exp(self.log_density(mm, rr))
        at_samples = np.sort(np.exp(self.log_density(self.M, self.R)))[::-1]
        thr = [at_samples[min(int(np.ceil(lv * self.n)) - 1, self.n - 1)] for lv in levels]
        return {"R": r, "M": m, "density": dens, "levels": tuple(levels),
                "thresholds": np.sort(np.asarray(thr))}


def _split(line: str) -> list[str]:
    return [t for t in re.split(r"\s*,\s*|\s+", line.strip())]


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def load_mr_samples(path, name: str | None = None, max_samples: int = 4000,
                    seed: int = 0) -> MRSamples:
    """Read a posterior-sample table of (mass [M_sun], radius [km]) for one source.

    Format: one sample per line, fields separated by commas and/or whitespace; ``#`` starts a
    comment. An optional first (non-comment) line names the columns: the mass column is one of
    ``M, mass, M_Msun, mass_Msun`` and the radius column one of ``R, radius, R_km, radius_km``
    (case-insensitive, any order; other columns are ignored). Without a header the file must have
    exactly two columns, ``M R`` in that order.

    Args:
        path: the file.
        name: source name (default: the file name without extension).
        max_samples: thin to at most this many samples (a seeded random subset without replacement,
            in file order: deterministic for a given ``seed``); ``>= 50``.
        seed: seed of the thinning.

    Raises:
        ValueError: naming the file, the line and the column, for a bad header, a row with the wrong
            number of fields, a non-numeric or non-finite value, a mass outside (0, 5] M_sun or a radius
            outside [3, 50] km (non-physical, or wrong units / column order); and naming the file for
            fewer than 50 samples.
    """
    path = Path(path)
    if int(max_samples) < MIN_SAMPLES:
        raise ValueError(f"max_samples must be >= {MIN_SAMPLES}, got {max_samples!r}")
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"{path}: cannot read the sample file ({e.strerror})") from None

    columns: list[str] | None = None
    i_m, i_r = 0, 1
    ms, rs = [], []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        body = raw.split("#", 1)[0].strip()
        if not body:
            continue
        tokens = _split(body)
        where = f"{path}: line {lineno}"
        if columns is None:
            if all(_is_number(t) for t in tokens):
                if len(tokens) != 2:
                    raise ValueError(
                        f"{where}: found {len(tokens)} columns; without a header line the file must "
                        f"have exactly 2 columns, M [M_sun] then R [km] (or add a header line naming "
                        f"the M and R columns)")
                columns = ["M (column 1)", "R (column 2)"]
            else:
                columns = tokens
                low = [t.lower() for t in tokens]
                for j, t in enumerate(low):
                    if t == "" or (t in _MASS_NAMES | _RADIUS_NAMES and low.index(t) != j):
                        raise ValueError(f"{where}, column {j + 1} {tokens[j]!r}: empty or repeated "
                                         f"column name in the header")
                hm = [j for j, t in enumerate(low) if t in _MASS_NAMES]
                hr = [j for j, t in enumerate(low) if t in _RADIUS_NAMES]
                for kind, hits, names in (("mass", hm, _MASS_NAMES), ("radius", hr, _RADIUS_NAMES)):
                    if len(hits) != 1:
                        raise ValueError(
                            f"{where}, header {tokens!r}: need exactly one {kind} column named one of "
                            f"{sorted(names)} (case-insensitive), found {len(hits)}")
                i_m, i_r = hm[0], hr[0]
                continue
        if len(tokens) != len(columns):
            if len(tokens) < len(columns):
                col = columns[len(tokens)]
                raise ValueError(f"{where}, column {col!r}: missing value ({len(tokens)} fields, "
                                 f"expected {len(columns)})")
            raise ValueError(f"{where}, column {len(columns) + 1}: extra field {tokens[len(columns)]!r}"
                             f" ({len(tokens)} fields, expected {len(columns)})")
        vals = []
        for j in (i_m, i_r):
            col = columns[j]
            try:
                v = float(tokens[j])
            except ValueError:
                raise ValueError(f"{where}, column {col!r}: not a number: {tokens[j]!r}") from None
            if not math.isfinite(v):
                raise ValueError(f"{where}, column {col!r}: non-finite value {tokens[j]!r}")
            vals.append(v)
        m, r = vals
        if not M_RANGE[0] < m <= M_RANGE[1]:
            raise ValueError(
                f"{where}, column {columns[i_m]!r}: mass {m!r} M_sun is non-physical (valid range "
                f"(0, 5]); masses are in M_sun, and a headerless file must list M before R")
        if not R_RANGE[0] <= r <= R_RANGE[1]:
            raise ValueError(
                f"{where}, column {columns[i_r]!r}: radius {r!r} km is non-physical (valid range "
                f"[3, 50] km); radii are in km, and a headerless file must list M before R")
        ms.append(m)
        rs.append(r)

    n = len(ms)
    if n < MIN_SAMPLES:
        raise ValueError(f"{path}: {n} (M, R) samples read; at least {MIN_SAMPLES} are needed for a "
                         f"kernel density estimate")
    M, R = np.asarray(ms), np.asarray(rs)
    if n > max_samples:
        keep = np.sort(np.random.default_rng(seed).choice(n, int(max_samples), replace=False))
        M, R = M[keep], R[keep]
    return MRSamples(name=path.stem if name is None else str(name), M=M, R=R, source=str(path),
                     n_read=n)
