"""Neutron-star observations: the shipped table, user tables, and mock data.

The shipped table ``observations.csv`` (next to this module) lists published medians and central
credible intervals, each row with its source (see the file's header). Defaults (``use = 1``):
NICER M-R of PSR J0030+0451 (Riley+2019; Miller+2019 kept as alternative), J0740+6620 (Riley+2021;
Salmi+2024 alternative), J0437-4715, J1231-1411, J0614-3329; radio masses of J0740+6620
(Fonseca+2021) and J0348+0432 (Antoniadis+2013: 2.01 +- 0.04; the Saffer+2024 revision to
1.806 +- 0.037 is the alternative); GW170817 Lambda_1.4 = 190 +390/-120 (90%) (the Lambda_tilde
constraint is the alternative).

Each asymmetric interval becomes a two-piece normal matching the median and both interval ends
exactly (:mod:`bayesqcd.data.distributions`): the continuous split normal when one exists, otherwise
(J1231-1411's mass, GW170817's Lambda_1.4) the normal halves split at the median.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtri

from bayesqcd.data.distributions import SplitNormal, two_piece_from_quantiles, two_piece_icdf
from bayesqcd.data.samples import M_RANGE, R_RANGE, MRSamples

COLUMNS = ("kind", "name", "quantity", "median", "lower", "upper", "cl", "use", "source")
QUANTITIES = {"mr": ("M", "R"), "radio": ("M",), "tidal": ("Lambda_1.4", "Lambda_tilde")}


@dataclass(frozen=True)
class Measurement:
    """One row of an observation table (units: M [M_sun], R [km], Lambda dimensionless)."""

    kind: str
    name: str
    quantity: str
    median: float
    lower: float
    upper: float
    cl: float
    use: int
    source: str


@dataclass(frozen=True)
class TwoPiece:
    """Parameters of a :class:`~bayesqcd.data.distributions.SplitNormal` (two-piece normal)."""

    loc: float
    scale_lo: float
    scale_hi: float
    p_lo: float

    @property
    def continuous(self) -> bool:
        """True for the continuous split normal; False when split at the median (density jumps)."""
        return abs(self.p_lo - self.scale_lo / (self.scale_lo + self.scale_hi)) < 1e-12

    def distribution(self) -> SplitNormal:
        return SplitNormal(self.loc, self.scale_lo, self.scale_hi, self.p_lo)

    def interval(self, level: float) -> tuple[float, float]:
        """Central credible interval at ``level`` (float64, numpy)."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must lie in (0, 1), got {level!r}")
        lo, hi = two_piece_icdf([(1 - level) / 2, (1 + level) / 2], self.loc, self.scale_lo,
                                self.scale_hi, self.p_lo)
        return float(lo), float(hi)

    @classmethod
    def fit(cls, m: Measurement, family: str = "auto") -> "TwoPiece":
        return cls(*two_piece_from_quantiles(m.median, m.lower, m.upper, m.cl, family))


@dataclass(frozen=True)
class MRSource:
    """A NICER mass-radius summary: independent two-piece normals in M [M_sun] and R [km]."""

    name: str
    M: TwoPiece
    R: TwoPiece
    source: str
    rows: tuple[Measurement, ...] = field(default=(), repr=False)

    def region(self, level: float = 0.68) -> tuple[float, float, float, float]:
        """``(M_lo, M_hi, R_lo, R_hi)``: central ``level`` intervals of each marginal (a box for
        plots; under the independence approximation it holds probability ``level**2``)."""
        return (*self.M.interval(level), *self.R.interval(level))


@dataclass(frozen=True)
class RadioMass:
    """A radio-timing pulsar mass: Gaussian ``mean +- sigma`` [M_sun] (68.3% = 1 sigma)."""

    name: str
    mean: float
    sigma: float
    source: str


@dataclass(frozen=True)
class TidalConstraint:
    """A gravitational-wave tidal constraint on ``quantity`` (``Lambda_1.4`` or ``Lambda_tilde``)."""

    name: str
    quantity: str
    dist: TwoPiece
    source: str


@dataclass(frozen=True)
class ObservationSet:
    """Observations for a neutron-star inversion.

    ``mr`` holds summary sources (:class:`MRSource`) and sample-based sources
    (:class:`~bayesqcd.data.samples.MRSamples`) in the order given; ``radio`` and ``tidal``.
    """

    mr: tuple[MRSource | MRSamples, ...] = ()
    radio: tuple[RadioMass, ...] = ()
    tidal: tuple[TidalConstraint, ...] = ()

    def with_samples(self, *samples: MRSamples, new: tuple[MRSamples, ...] = ()) -> "ObservationSet":
        """A copy where each of ``samples`` replaces the M-R source of the same name (in place;
        names compared ignoring case and spaces), and each of ``new`` is added as a new source.

        Raises ``ValueError`` for a name of ``samples`` that matches no source (listing the
        known ones), a name of ``new`` that matches one, or a name given twice.
        """
        mr = list(self.mr)
        known = [source_key(o.name) for o in mr]
        given: set[str] = set()
        for s in (*samples, *new):
            if not isinstance(s, MRSamples):
                raise ValueError(f"with_samples takes MRSamples (from load_mr_samples), got "
                                 f"{type(s).__name__}")
            if source_key(s.name) in given:
                raise ValueError(f"posterior samples for {s.name!r} are given twice")
            given.add(source_key(s.name))
        for s in samples:
            if source_key(s.name) not in known:
                raise ValueError(f"--mr-samples {s.name!r} matches no mass-radius source of the data; "
                                 f"known: {[o.name for o in mr]} (to add a new source, use "
                                 "--add-mr-samples NAME=FILE)")
            mr[known.index(source_key(s.name))] = s
        for s in new:
            if source_key(s.name) in known:
                raise ValueError(f"--add-mr-samples {s.name!r} is already a source of the data; use "
                                 "--mr-samples to replace its summary")
            mr.append(s)
        return ObservationSet(tuple(mr), self.radio, self.tidal)

    def table(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per constraint (medians, intervals, fitted parameters, source)."""
        out: list[dict[str, Any]] = []
        for s in self.mr:
            if isinstance(s, MRSamples):
                q = lambda a: [float(v) for v in np.quantile(a, [0.16, 0.5, 0.84])]  # noqa: E731
                out.append({"kind": "mr_samples", "name": s.name, "n_samples": s.n,
                            "n_read": s.n_read, "M_16_50_84": q(s.M), "R_16_50_84": q(s.R),
                            "source": s.source})
                continue
            for qn, tp, row in (("M", s.M, _row(s, "M")), ("R", s.R, _row(s, "R"))):
                out.append(_entry("mr", s.name, qn, tp, row, s.source))
        for r in self.radio:
            out.append({"kind": "radio", "name": r.name, "quantity": "M", "mean": r.mean,
                        "sigma": r.sigma, "source": r.source})
        for t in self.tidal:
            out.append(_entry("tidal", t.name, t.quantity, t.dist, None, t.source))
        return out

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.mr)


def _row(s: MRSource, q: str) -> Measurement | None:
    return next((r for r in s.rows if r.quantity == q), None)


def _entry(kind, name, quantity, tp: TwoPiece, row, source) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": kind, "name": name, "quantity": quantity}
    if row is not None:
        d.update(median=row.median, lower=row.lower, upper=row.upper, cl=row.cl)
    d.update(loc=tp.loc, scale_lo=tp.scale_lo, scale_hi=tp.scale_hi, p_lo=tp.p_lo,
             family="split normal" if tp.continuous else "two-piece split at median",
             source=source)
    return d


# ----------------------------------------------------------------------------- table reading

def source_key(name: str) -> str:
    """A source name compared ignoring case and runs of spaces (``psr j0030+0451`` = ``PSR J0030+0451``)."""
    return " ".join(name.split()).casefold()


def default_table_path() -> Path:
    """Path of the shipped ``observations.csv``."""
    return Path(str(resources.files("bayesqcd.data").joinpath("observations.csv")))


def read_measurements(path=None) -> list[tuple[int, Measurement]]:
    """Parse and validate a table; returns ``(line number, Measurement)`` for every data row."""
    path = default_table_path() if path is None else Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # -sig: a spreadsheet's BOM
    except OSError as e:
        raise ValueError(f"{path}: cannot read the observation table ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text table (byte {e.start} is {e.object[e.start:e.start + 1]!r});"
                         f" expected comma-separated lines with the columns {list(COLUMNS)}") from None

    def fail(lineno: int, col: str, msg: str):
        raise ValueError(f"{path}: line {lineno}, column {col!r}: {msg}")

    header: list[str] | None = None
    hline = 0
    rows: list[tuple[int, Measurement]] = []
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader([raw], skipinitialspace=True))]
        if header is None:
            header, hline = fields, lineno
            if len(fields) == 1 and any(sep in raw for sep in (";", "\t")):
                sep = "semicolons" if ";" in raw else "tabs"
                fail(lineno, fields[0][:20], f"the header is separated by {sep}; the table must be "
                                             f"comma-separated with the columns {list(COLUMNS)}")
            for c in COLUMNS:
                if c not in header:
                    fail(lineno, c, f"missing column; the header must name exactly {list(COLUMNS)}")
            for c in header:
                if c not in COLUMNS or header.count(c) > 1:
                    fail(lineno, c, f"unexpected or repeated column; the header must name exactly "
                                    f"{list(COLUMNS)}")
            continue
        if len(fields) < len(header):
            fail(lineno, header[len(fields)], f"missing value ({len(fields)} fields, expected "
                                              f"{len(header)})")
        if len(fields) > len(header):
            fail(lineno, f"#{len(header) + 1}", f"extra field {fields[len(header)]!r} "
                                                f"({len(fields)} fields, expected {len(header)})")
        v = dict(zip(header, fields))
        for c in ("kind", "name", "quantity", "source"):
            if not v[c]:
                fail(lineno, c, "empty value")
        if v["kind"] not in QUANTITIES:
            fail(lineno, "kind", f"unknown kind {v['kind']!r}; valid: {list(QUANTITIES)}")
        if v["quantity"] not in QUANTITIES[v["kind"]]:
            fail(lineno, "quantity", f"unknown quantity {v['quantity']!r} for kind {v['kind']!r}; "
                                     f"valid: {list(QUANTITIES[v['kind']])}")
        num = {}
        for c in ("median", "lower", "upper", "cl"):
            try:
                num[c] = float(v[c])
            except ValueError:
                fail(lineno, c, f"not a number: {v[c]!r}")
            if not math.isfinite(num[c]):
                fail(lineno, c, f"non-finite value {v[c]!r}")
        if v["use"] not in ("0", "1"):
            fail(lineno, "use", f"must be 0 or 1, got {v['use']!r}")
        if not 0.0 < num["cl"] < 1.0:
            fail(lineno, "cl", f"credible level {num['cl']!r} outside (0, 1)")
        if v["kind"] in ("mr", "radio"):
            lo_ok, (a, b), unit = ((lambda x: x > M_RANGE[0]), M_RANGE, "M_sun") if v["quantity"] == "M" \
                else ((lambda x: x >= R_RANGE[0]), R_RANGE, "km")
            for c in ("lower", "median", "upper"):
                if not (lo_ok(num[c]) and num[c] <= b):
                    valid = f"({a:g}, {b:g}]" if v["quantity"] == "M" else f"[{a:g}, {b:g}]"
                    fail(lineno, c, f"non-physical {v['quantity']} = {num[c]!r} {unit} of {v['name']!r} "
                                    f"(valid range {valid} {unit}; masses in M_sun, radii in km)")
        if v["kind"] == "tidal" and num["median"] <= 0:
            fail(lineno, "median", f"tidal deformability {num['median']!r} must be > 0")
        if not num["lower"] < num["median"]:
            fail(lineno, "lower", f"lower {num['lower']!r} must be < median {num['median']!r} "
                                  f"(lower/upper are interval endpoints, not offsets)")
        if not num["median"] < num["upper"]:
            fail(lineno, "upper", f"upper {num['upper']!r} must be > median {num['median']!r} "
                                  f"(lower/upper are interval endpoints, not offsets)")
        if v["kind"] == "radio":
            a, b = num["upper"] - num["median"], num["median"] - num["lower"]
            if abs(a - b) > 1e-6 * max(a, b):
                fail(lineno, "upper", f"radio masses must have symmetric intervals (mean +- sigma), "
                                      f"got +{a:.6g}/-{b:.6g}")
        rows.append((lineno, Measurement(v["kind"], v["name"], v["quantity"], num["median"],
                                         num["lower"], num["upper"], num["cl"], int(v["use"]),
                                         v["source"])))
    if header is None:
        raise ValueError(f"{path}: line {len(lines)}: no header line (expected {list(COLUMNS)})")
    if not rows:
        raise ValueError(f"{path}: line {hline}: the table has a header but no data rows")

    seen: dict[tuple[str, str, str], int] = {}
    spelled: dict[str, str] = {}
    for lineno, m in rows:
        key = (m.kind, source_key(m.name), m.quantity)
        if key in seen:
            fail(lineno, "name", f"duplicate {m.kind} row {m.name!r} {m.quantity} (first on line "
                                 f"{seen[key]}; names are compared ignoring case and spaces)")
        if spelled.setdefault(source_key(m.name), m.name) != m.name:
            fail(lineno, "name", f"{m.name!r} is spelled {spelled[source_key(m.name)]!r} elsewhere in "
                                 "the table; use one spelling per source")
        seen[key] = lineno
    by_line = dict(rows)  # linear in the number of rows
    for lineno, m in rows:
        if m.kind == "mr":
            other = "R" if m.quantity == "M" else "M"
            if ("mr", source_key(m.name), other) not in seen:
                fail(lineno, "quantity", f"mr source {m.name!r} has an {m.quantity} row but no "
                                         f"{other} row")
            mate = seen[("mr", source_key(m.name), other)]
            mrow = by_line[mate]
            if (mrow.use, mrow.source) != (m.use, m.source):
                fail(lineno, "use" if mrow.use != m.use else "source",
                     f"the M and R rows of mr source {m.name!r} disagree (line {mate})")
    return rows


def load_observations(path=None, include_alternatives: bool = False,
                      family: str = "auto") -> ObservationSet:
    """Load an observation table (the shipped ``observations.csv`` by default).

    Args:
        path: a table with the columns ``kind,name,quantity,median,lower,upper,cl,use,source``
            (any order; ``#`` comment lines and blank lines allowed; fields may be quoted).
        include_alternatives: also load rows with ``use = 0``.
        family: two-piece family for asymmetric intervals: ``"auto"`` (continuous split normal
            when it exists, else split at the median), ``"continuous"`` or ``"median_split"``.

    Raises:
        ValueError: naming the file, the line and the column for missing/extra columns or fields,
            non-numeric values, ``lower >= median`` or ``median >= upper``, ``cl`` outside (0, 1),
            unknown kind/quantity, an ``mr`` source without its M or R row, non-positive masses
            or radii, duplicate rows, asymmetric radio masses.
    """
    rows = read_measurements(path)
    mr: dict[str, dict[str, Measurement]] = {}
    radio, tidal = [], []
    for lineno, m in rows:
        if not (m.use or include_alternatives):
            continue
        try:
            if m.kind == "mr":
                mr.setdefault(m.name, {})[m.quantity] = m
                TwoPiece.fit(m, family)
            elif m.kind == "radio":
                z = float(ndtri((1.0 + m.cl) / 2.0))
                radio.append(RadioMass(m.name, m.median, (m.upper - m.median) / z, m.source))
            else:
                tidal.append(TidalConstraint(m.name, m.quantity, TwoPiece.fit(m, family), m.source))
        except ValueError as e:
            where = default_table_path() if path is None else path
            raise ValueError(f"{where}: line {lineno}, column 'upper': {e}") from None
    sources = tuple(MRSource(n, TwoPiece.fit(q["M"], family), TwoPiece.fit(q["R"], family),
                             q["M"].source, (q["M"], q["R"])) for n, q in mr.items())
    return ObservationSet(sources, tuple(radio), tuple(tidal))


# ----------------------------------------------------------------------------- mock data

def mock_mr_observations(masses, radii, key_or_seed, sigma_M=0.1, sigma_R=0.7,
                         names=None, scatter: bool = True) -> ObservationSet:
    """Mock NICER-like summaries: true (M [M_sun], R [km]) scattered by Gaussian noise.

    Each observed value is ``M_obs = M_true + sigma_M * e1``, ``R_obs = R_true + sigma_R * e2``
    (``e ~ N(0, 1)``); the source is reported as ``M_obs +- sigma_M``, ``R_obs +- sigma_R`` (68%,
    symmetric). Defaults are of NICER size (published: ~0.04-0.15 M_sun, ~0.3-1.3 km).
    With ``scatter=False`` every source is reported at its true values (``e = 0``) with the
    same errors: noise-free data, whose posterior shows the analysis' own offsets.

    Args:
        masses, radii: true values, shape ``(n,)``.
        key_or_seed: an int seed (numpy) or a ``jax.random`` key.
        sigma_M, sigma_R: noise scales (scalars or shape ``(n,)``; ``> 0``).
        names: source names (default ``mock-0``, ``mock-1``, ...).
        scatter: draw the observed values around the true ones (default) or report the
            true ones.
    """
    m = np.atleast_1d(np.asarray(masses, dtype=float))
    r = np.atleast_1d(np.asarray(radii, dtype=float))
    if m.ndim != 1 or m.shape != r.shape:
        raise ValueError(f"masses and radii must be 1-D of equal length, got shapes {m.shape} and "
                         f"{r.shape}")
    for nm, a in (("masses", m), ("radii", r)):
        if not np.all(np.isfinite(a) & (a > 0)):
            raise ValueError(f"{nm} must be finite and > 0, got {a.tolist()}")
    sm = np.broadcast_to(np.asarray(sigma_M, dtype=float), m.shape)
    sr = np.broadcast_to(np.asarray(sigma_R, dtype=float), m.shape)
    for nm, a in (("sigma_M", sm), ("sigma_R", sr)):
        if not np.all(np.isfinite(a) & (a > 0)):
            raise ValueError(f"{nm} must be finite and > 0, got {a.tolist()}")
    names = [f"mock-{i}" for i in range(m.size)] if names is None else [str(n) for n in names]
    if len(names) != m.size or len(set(names)) != m.size:
        raise ValueError(f"names must be {m.size} distinct strings, got {names}")
    if not scatter:
        e = np.zeros((2, m.size))
    elif isinstance(key_or_seed, (int, np.integer)):
        e = np.random.default_rng(int(key_or_seed)).standard_normal((2, m.size))
    else:
        import jax
        e = np.asarray(jax.random.normal(key_or_seed, (2, m.size)), dtype=float)
    mo, ro = m + sm * e[0], r + sr * e[1]
    p = 0.5
    srcs = []
    for i, n in enumerate(names):
        src = f"mock: true M={m[i]:.4f} M_sun, R={r[i]:.4f} km"
        rows = (Measurement("mr", n, "M", mo[i], mo[i] - sm[i], mo[i] + sm[i], 0.6827, 1, src),
                Measurement("mr", n, "R", ro[i], ro[i] - sr[i], ro[i] + sr[i], 0.6827, 1, src))
        srcs.append(MRSource(n, TwoPiece(float(mo[i]), float(sm[i]), float(sm[i]), p),
                             TwoPiece(float(ro[i]), float(sr[i]), float(sr[i]), p), src, rows))
    return ObservationSet(tuple(srcs))
