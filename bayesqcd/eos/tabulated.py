"""Tabulated equations of state (text files or arrays) and the incompressible EoS.

A table gives, row by row, the baryon density n [fm^-3], the energy density eps
[MeV fm^-3] and the pressure p [MeV fm^-3], in increasing density. The first row is the
surface of the star (its pressure should be ~0). Between rows the EoS is interpolated
with cubic Hermite polynomials whose slopes c_s^2 = dp/d eps come from three-point
differences; the pseudo-enthalpy is h = ln(mu / mu_0) with mu = (eps + p) / n, exact
for a thermodynamically consistent table. A row of constant pressure (a Maxwell
plateau) is a first-order transition.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from bayesqcd import units
from bayesqcd.eos.table import EoSTable, from_nodes

CAUSAL_TOL = 1e-6
"""Tolerance on c_s^2 <= 1 between rows (rounding in published tables)."""


def _check_table(n: np.ndarray, eps: np.ndarray, p: np.ndarray, where: str, rows: np.ndarray) -> None:
    """Raise ``ValueError`` on the first unphysical row; ``where`` names the source, ``rows`` the row labels."""
    if n.shape[0] < 4:
        raise ValueError(f"{where}: an EoS table needs at least 4 rows, got {n.shape[0]}")
    for name, col, strict_positive in (("n", n, True), ("eps", eps, True), ("p", p, False)):
        bad = ~np.isfinite(col) | ((col <= 0) if strict_positive else (col < 0))
        if bad.any():
            i = int(np.argmax(bad))
            kind = "positive" if strict_positive else "non-negative"
            raise ValueError(f"{where}, {rows[i]}: {name} = {float(col[i])!r} must be finite and {kind}")
    for name, col, strict in (("n", n, True), ("eps", eps, True), ("p", p, False)):
        d = np.diff(col)
        bad = d <= 0 if strict else d < 0
        if bad.any():
            i = int(np.argmax(bad)) + 1
            rule = "increase" if strict else "not decrease"
            raise ValueError(
                f"{where}, {rows[i]}: non-monotonic table, {name} = {float(col[i])!r} after "
                f"{float(col[i - 1])!r} ({rows[i - 1]}); {name} must {rule} with density"
            )
    cs2 = np.diff(p) / np.diff(eps)
    if np.any(cs2 > 1 + CAUSAL_TOL):
        i = int(np.argmax(cs2 > 1 + CAUSAL_TOL)) + 1
        raise ValueError(
            f"{where}, {rows[i]}: acausal table, c_s^2 = dp/deps = {cs2[i - 1]:.6g} between "
            f"{rows[i - 1]} and {rows[i]}; the valid range is [0, 1]"
        )


def _slopes(eps: np.ndarray, p: np.ndarray) -> np.ndarray:
    """dp/d eps at the rows: three-point differences on the non-uniform grid, one-sided at the ends."""
    d = np.diff(p) / np.diff(eps)
    h0, h1 = np.diff(eps)[:-1], np.diff(eps)[1:]
    mid = (h1 * d[:-1] + h0 * d[1:]) / (h0 + h1)
    mid = np.where((d[:-1] == 0) | (d[1:] == 0), 0.0, mid)  # plateau edges stay flat
    return np.concatenate([d[:1], mid, d[-1:]])  # >= 0: the table was checked non-decreasing


def from_arrays(
    n: np.ndarray,
    eps: np.ndarray,
    p: np.ndarray,
    *,
    n_grid: int | None = None,
    where: str = "EoS table",
) -> EoSTable:
    """An :class:`EoSTable` from rows of n [fm^-3], eps [MeV fm^-3], p [MeV fm^-3].

    Raises ``ValueError`` naming the row and value for negative, non-monotonic, acausal or
    non-finite entries.
    """
    n, eps, p = (np.asarray(x, dtype=float) for x in (n, eps, p))
    if not (n.ndim == eps.ndim == p.ndim == 1 and n.shape == eps.shape == p.shape):
        raise ValueError(f"{where}: n, eps and p must be 1-D arrays of one length, got {n.shape}, {eps.shape}, {p.shape}")
    _check_table(n, eps, p, where, np.asarray([f"row {k}" for k in range(n.shape[0])]))
    return _build(n, eps, p, n_grid)


def _build(n: np.ndarray, eps: np.ndarray, p: np.ndarray, n_grid: int | None) -> EoSTable:
    cs2 = _slopes(eps, p)
    mu = (eps + p) / n
    h = np.log(mu / mu[0])
    conv = units.MEV_FM3_TO_KM2
    kw = {} if n_grid is None else {"n_grid": n_grid}
    return from_nodes(jnp.asarray(n), jnp.asarray(eps * conv), jnp.asarray(p * conv), jnp.asarray(h),
                      jnp.asarray(cs2), **kw)


def from_file(path: str | os.PathLike[str], *, n_grid: int | None = None) -> EoSTable:
    """Read a whitespace- or comma-separated table with columns n [fm^-3], eps, p [MeV fm^-3].

    Lines starting with ``#`` and blank lines are skipped; extra columns are ignored.
    Errors name the file, the line and the offending value.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EoS table {path} does not exist")
    rows, lines = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.replace(",", " ").split()
        if len(fields) < 3:
            raise ValueError(f"{path}, line {lineno}: expected 3 columns (n, eps, p), found {len(fields)}: {line.strip()!r}")
        values = []
        for col, field in zip(("n", "eps", "p"), fields[:3]):
            try:
                values.append(float(field))
            except ValueError:
                raise ValueError(f"{path}, line {lineno}: column {col} = {field!r} is not a number") from None
        rows.append(values)
        lines.append(lineno)
    if not rows:
        raise ValueError(f"{path}: no data rows found (expected columns n, eps, p)")
    data = np.asarray(rows)
    _check_table(data[:, 0], data[:, 1], data[:, 2], f"{path}", np.asarray([f"line {k}" for k in lines]))
    return _build(data[:, 0], data[:, 1], data[:, 2], n_grid)


def incompressible(eps0: float, p_max: float, *, n_grid: int | None = None) -> EoSTable:
    """Incompressible matter: eps = eps0 for every pressure up to ``p_max`` (both in MeV fm^-3).

    c_s^2 is infinite (acausal): the exact Schwarzschild interior solution is its test.
    The surface density jump from eps0 to vacuum is accounted for in the Love number.
    """
    if not (eps0 > 0 and p_max > 0):
        raise ValueError(f"eps0 = {eps0} and p_max = {p_max} must be positive (MeV fm^-3)")
    e0 = eps0 * units.MEV_FM3_TO_KM2
    h = np.linspace(0.0, np.log1p(p_max / eps0), 400)
    p = e0 * np.expm1(h)
    ones = np.ones_like(h)
    kw = {} if n_grid is None else {"n_grid": n_grid}
    n = ones * eps0 / units.M_BARYON_MEV
    return from_nodes(jnp.asarray(n), jnp.asarray(e0 * ones), jnp.asarray(p), jnp.asarray(h),
                      jnp.asarray(np.inf * ones), **kw)
