"""Measured correlators: read a user's file, check it, and make it a problem like the mocks.

File format (:func:`load_correlator`): plain text or CSV, one data point a line, columns

    x  value  error        # x: the kernel's argument (momentum p or Euclidean time tau)

separated by commas or whitespace; ``#`` starts a comment (whole line or the rest of a line);
one header line (a line that is not all numbers, before the first data line) is allowed. With a
covariance file (a square matrix, one row a line, commas or whitespace, ``#`` comments) the
error column may be left out; when present it must agree with ``sqrt(diag(C))`` to 1%.

Everything is checked before any expensive work, and every error names the file, the line,
the column and the value with its valid range: numbers that are not numbers or not finite,
errors ``<= 0``, fewer than :data:`MIN_POINTS` points, unsorted or repeated ``x``, a covariance
of the wrong shape, not symmetric or not positive definite, ``x`` outside the kernel's range
(:func:`data_problem`).

:func:`data_problem` builds the same :class:`~bayesqcd.spectral.MockData` a mock is (kernel from
:func:`~bayesqcd.spectral.kernel_matrix`, grid from :func:`~bayesqcd.spectral.omega_grid`), with
``rho = clean = None``: there is no truth.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from bayesqcd.spectral.kernels import forward_matrix, kernel_matrix, kernel_valid_range, omega_grid
from bayesqcd.spectral.mocks import MockData

MIN_POINTS = 3
"""A correlator needs at least this many points."""

COLUMNS = ("x", "value", "error")
ERROR_RTOL = 1e-2
"""With a covariance file, an error column must agree with ``sqrt(diag(C))`` to this relative tolerance."""
SYMMETRY_RTOL = 1e-8
"""A covariance is symmetric when ``|C_ij - C_ji| <= SYMMETRY_RTOL max|C|``."""


def _file_info(path: Path, raw: bytes) -> dict[str, Any]:
    return {"path": str(path), "sha256": hashlib.sha256(raw).hexdigest(), "size_bytes": len(raw)}


def _read(path: str | Path, what: str) -> tuple[Path, bytes, list[tuple[int, list[str]]]]:
    """The file's bytes and its non-empty rows ``(line number, fields)``, comments removed."""
    p = Path(path).expanduser()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{what} file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{what} file {str(path)!r} is a folder, not a file") from None
    except OSError as err:
        raise ValueError(f"{what} file {str(path)!r} cannot be read: {err.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # -sig: a spreadsheet's byte-order mark
    except UnicodeDecodeError:
        raise ValueError(f"{what} file {str(path)!r} is not a text file (not UTF-8)") from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            rows.append((lineno, [f.strip() for f in line.split(",")] if "," in line else line.split()))
    return p, raw, rows


def _number(text: str, where: str, column: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"{where}, column {column!r}: not a number: {text!r}") from None
    if not np.isfinite(v):
        raise ValueError(f"{where}, column {column!r}: non-finite value {text!r}; valid: finite numbers")
    return v


@dataclass(frozen=True)
class Correlator:
    """A checked correlator: ``x``, ``data`` and the covariance ``cov`` (SPD).

    Attributes:
        x: the abscissae (the kernel's argument), strictly increasing, ``(n,)``.
        data: the correlator ``(n,)``.
        cov: its covariance ``(n, n)`` (``diag(error^2)`` without a covariance file).
        lines: the line of each point in its file (``None``: built from arrays).
        source: ``{"path", "sha256", "size_bytes"}`` of the data file and ``"covariance"``: the
            same for the covariance file (or ``None``); empty when built from arrays.
    """

    x: np.ndarray
    data: np.ndarray
    cov: np.ndarray
    lines: tuple[int, ...] | None = None
    source: dict[str, Any] | None = None

    @classmethod
    def from_arrays(cls, x: ArrayLike, data: ArrayLike, error: ArrayLike | None = None,
                    cov: ArrayLike | None = None) -> Correlator:
        """A correlator from arrays, with the checks of :func:`load_correlator` (errors name the
        point ``i``): ``error`` (sd, ``> 0``) or ``cov`` (SPD), or both (then they must agree)."""
        x, d = np.asarray(x, float), np.asarray(data, float)
        err = None if error is None else np.asarray(error, float)
        if x.ndim != 1 or d.shape != x.shape or (err is not None and err.shape != x.shape):
            raise ValueError(f"x, data and error must be 1-D of one length, got shapes {x.shape}, {d.shape}, "
                             f"{None if err is None else err.shape}")

        def where(i: int) -> str:
            return f"point {i}"

        for name, col in (("x", x), ("value", d)) + ((("error", err),) if err is not None else ()):
            bad = np.flatnonzero(~np.isfinite(col))
            if bad.size:
                raise ValueError(f"{where(int(bad[0]))}, column {name!r}: non-finite value {col[bad[0]]}; "
                                 "valid: finite numbers")
        if err is None and cov is None:
            raise ValueError("give the errors (error=) or the covariance (cov=) of the data")
        C = None
        if cov is not None:
            C = _check_covariance(np.asarray(cov, float), x.shape[0], lambda i: f"covariance row {i}", "cov")
        return cls._checked(x, d, err, C, where, None, None)

    @classmethod
    def _checked(cls, x, d, err, C, where: Callable[[int], str], lines, source) -> Correlator:
        n = x.shape[0]
        if n < MIN_POINTS:
            head = source["path"] + ": " if source else ""
            raise ValueError(f"{head}{n} data point(s); at least {MIN_POINTS} are needed")
        for i in range(1, n):
            if x[i] == x[i - 1]:
                raise ValueError(f"{where(i)}, column 'x': x = {x[i]:g} repeats the x of {where(i - 1)}; "
                                 "the abscissae must be distinct")
            if x[i] < x[i - 1]:
                raise ValueError(f"{where(i)}, column 'x': x = {x[i]:g} is below x = {x[i - 1]:g} of "
                                 f"{where(i - 1)}; sort the rows by increasing x")
        if err is not None:
            for i in range(n):
                if not err[i] > 0:
                    raise ValueError(f"{where(i)}, column 'error': error = {err[i]:g} is outside the valid "
                                     "range (0, inf)")
        if C is None:
            C = np.diag(err**2)
        elif err is not None:
            sd = np.sqrt(np.diag(C))
            for i in range(n):
                if abs(err[i] - sd[i]) > ERROR_RTOL * sd[i]:
                    raise ValueError(f"{where(i)}, column 'error': error = {err[i]:g} disagrees with "
                                     f"sqrt(C[{i},{i}]) = {sd[i]:g} of the covariance (valid: within "
                                     f"{ERROR_RTOL:.0%}); fix one, or leave the error column out")
        return cls(x=x, data=d, cov=C, lines=lines, source=source)

    @property
    def sigma(self) -> np.ndarray:
        """Standard deviations ``sqrt(diag(cov))``."""
        return np.sqrt(np.diag(self.cov))


def _check_covariance(C: np.ndarray, n: int, where: Callable[[int], str], name: str) -> np.ndarray:
    """``C`` checked: ``(n, n)``, finite, symmetric, positive diagonal, positive definite;
    returned symmetrised."""
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(f"{name}: shape {C.shape} is not a square matrix")
    if C.shape != (n, n):
        raise ValueError(f"{name}: shape {C.shape} does not match the {n} data points; valid: ({n}, {n})")
    bad = np.argwhere(~np.isfinite(C))
    if bad.size:
        i, j = (int(v) for v in bad[0])
        raise ValueError(f"{where(i)}: C[{i},{j}] = {C[i, j]} is not finite")
    scale = float(np.max(np.abs(C)))
    asym = np.abs(C - C.T)
    i, j = np.unravel_index(int(np.argmax(asym)), C.shape)
    if asym[i, j] > SYMMETRY_RTOL * scale:
        raise ValueError(f"{name} is not symmetric: C[{i},{j}] = {C[i, j]:g} ({where(int(i))}) but "
                         f"C[{j},{i}] = {C[j, i]:g} ({where(int(j))}); valid: |C_ij - C_ji| <= "
                         f"{SYMMETRY_RTOL:g} max|C|")
    for k in range(n):
        if not C[k, k] > 0:
            raise ValueError(f"{where(k)}: variance C[{k},{k}] = {C[k, k]:g} is outside the valid range (0, inf)")
    C = 0.5 * (C + C.T)
    # positive definite: the correlation matrix's eigenvalues (scale-free)
    s = np.sqrt(np.diag(C))
    lam = np.linalg.eigvalsh(C / s[:, None] / s[None, :])
    if not lam[0] > 1e-12 * lam[-1]:
        raise ValueError(f"{name} is not positive definite: the smallest eigenvalue of its correlation "
                         f"matrix is {lam[0]:.3g} (largest {lam[-1]:.3g}); valid: > {1e-12 * lam[-1]:.3g} "
                         "(a covariance estimated from fewer samples than points is singular)")
    try:
        np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} is not positive definite (Cholesky failed)") from None
    return C


def load_covariance(path: str | Path, n: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Read and check an ``(n, n)`` covariance file (see the module doc); returns ``(C, file info)``."""
    p, raw, rows = _read(path, "covariance")
    if not rows:
        raise ValueError(f"covariance file {str(path)!r} holds no numbers")
    line_of = [lineno for lineno, _ in rows]
    values = []
    for r, (lineno, fields) in enumerate(rows):
        where = f"{path}: line {lineno}"
        if len(fields) != len(rows):
            raise ValueError(f"{where}: row {r} has {len(fields)} entries but the file has {len(rows)} rows; "
                             "valid: a square matrix, one row a line")
        values.append([_number(f, where, f"#{c}") for c, f in enumerate(fields)])
    C = _check_covariance(np.asarray(values, float), n, lambda i: f"{path}: line {line_of[i]}",
                          f"covariance {str(path)!r}")
    return C, _file_info(p, raw)


def load_correlator(path: str | Path, covariance: str | Path | None = None) -> Correlator:
    """Read a correlator file (and optionally its covariance file) and check it (module doc).

    Arguments:
        path: the data file: columns ``x, value, error`` (``x, value`` with ``covariance``).
        covariance: a square matrix file, ``(n, n)`` for ``n`` data points.

    Returns:
        A :class:`Correlator` whose ``source`` records both files' paths, SHA-256 and sizes.

    Raises:
        ValueError: naming the file, line, column and value, with the valid range.
    """
    p, raw, rows = _read(path, "data")
    header_line = None
    if rows:  # a header: the first line, when it is not all numbers
        try:
            [float(f) for f in rows[0][1]]
        except ValueError:
            header_line, rows = rows[0][0], rows[1:]
    if not rows:
        raise ValueError(f"{path}: no data lines; expected columns {', '.join(COLUMNS)} "
                         "(comma- or whitespace-separated)")
    allowed = (2, 3) if covariance is not None else (3,)
    width = len(rows[0][1])
    lines, cols = [], []
    for lineno, fields in rows:
        where = f"{path}: line {lineno}"
        if len(fields) not in allowed:
            hint = ("; without --covariance the error column is needed" if len(fields) == 2 else "")
            raise ValueError(f"{where}: {len(fields)} fields; expected {' or '.join(map(str, allowed))} columns "
                             f"({', '.join(COLUMNS[:max(allowed)])}){hint}")
        if len(fields) != width:
            raise ValueError(f"{where}: {len(fields)} fields, but line {rows[0][0]} has {width}; every line "
                             "needs the same columns")
        lines.append(lineno)
        cols.append([_number(f, where, COLUMNS[c]) for c, f in enumerate(fields)])
    table = np.asarray(cols, float)
    lines_t = tuple(lines)

    def where(i: int) -> str:
        return f"{path}: line {lines_t[i]}"

    source = _file_info(p, raw)
    source["header_line"] = header_line
    C, source["covariance"] = None, None
    if covariance is not None and table.shape[0] >= MIN_POINTS:  # too few points: said below
        C, source["covariance"] = load_covariance(covariance, table.shape[0])
    err = table[:, 2] if table.shape[1] == 3 else None
    return Correlator._checked(table[:, 0], table[:, 1], err, C, where, lines_t, source)


def data_problem(corr: Correlator, kernel: str, *, n_omega: int = 500, omega_max: float = 20.0,
                 omega_min: float = 0.0, n_t: int | None = None, temperature: float | None = None) -> MockData:
    """The inverse problem of a measured correlator: the same :class:`~bayesqcd.spectral.MockData`
    as a mock's, without a truth (``rho = clean = None``).

    Arguments:
        corr: the correlator (:func:`load_correlator` or :meth:`Correlator.from_arrays`).
        kernel: ``"kallen-lehmann"`` (``x = p``), ``"euclidean"`` (``x = tau``, needs ``n_t``)
            or ``"thermal"`` (``x = tau``, needs ``temperature``); see
            :func:`~bayesqcd.spectral.kernel_matrix`.
        n_omega, omega_max, omega_min: the grid :func:`~bayesqcd.spectral.omega_grid`.

    Raises:
        ValueError: an ``x`` outside the kernel's range (naming its line), a missing ``n_t``
            or ``temperature``, a bad grid.
    """
    low, high, high_in, name = kernel_valid_range(kernel, n_t=n_t, temperature=temperature)
    for i, xi in enumerate(corr.x):
        if not (xi >= low and (xi <= high if high_in else xi < high)):
            at = f"{corr.source['path']}: line {corr.lines[i]}" if corr.lines else f"point {i}"
            rng = f"[{low:g}, {high:g}{']' if high_in else ')'}"
            raise ValueError(f"{at}, column 'x': {name} = {xi:g} is outside the valid range {rng} of the "
                             f"{kernel} kernel")
    omega, weights = omega_grid(n_omega, omega_max, omega_min)
    A = forward_matrix(kernel_matrix(kernel, corr.x, omega, n_t=n_t, temperature=temperature), weights)
    return MockData(omega, weights, jnp.asarray(corr.x), A, None, None, jnp.asarray(corr.data),
                    jnp.asarray(corr.cov))
