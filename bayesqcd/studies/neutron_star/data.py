"""Which observations a neutron-star study uses: the shipped data, a user's table, or mocks.

:class:`DataSpec` is the one object that says it (``bayesqcd ns-eos`` and ``ns-regression``
build it from ``--data/--mock/--n-obs/--mr-samples/--alternatives``); :func:`load_data` turns
it into an :class:`~bayesqcd.data.ObservationSet` (and the truth, for mocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesqcd import eos as E
from bayesqcd import tov
from bayesqcd.data import (
    ObservationSet,
    RadioMass,
    load_mr_samples,
    load_observations,
    mock_mr_observations,
)
from bayesqcd.models.neutron_star import M_GRID, eos_curves


@dataclass(frozen=True)
class DataSpec:
    """The observations of a run.

    Attributes:
        source: ``"real"`` (the shipped table) or the path of a user's table with the
            columns kind,name,quantity,median,lower,upper,cl,use,source.
        mock: instead of ``source``: mock observations from this named EoS (SLy, APR4,
            MPA1, H4, WFF1), see :func:`mock_observations`.
        n_obs: mock mass-radius sources.
        mock_scatter: scatter the mock observations around the truth (default); ``False``:
            noise-free mock data (:func:`mock_observations`).
        mr_samples: ``(name, file)`` pairs: posterior (M, R) samples replacing the summary
            of source ``name`` (which must be a source of the data).
        add_mr_samples: ``(name, file)`` pairs: posterior (M, R) samples of new sources.
        alternatives: also use the alternative analyses (``use=0`` rows) of the table.
    """

    source: str = "real"
    mock: str | None = None
    n_obs: int = 6
    mock_scatter: bool = True
    mr_samples: tuple[tuple[str, str], ...] = ()
    add_mr_samples: tuple[tuple[str, str], ...] = ()
    alternatives: bool = False

    def __post_init__(self) -> None:
        if not self.mock_scatter and self.mock is None:
            raise ValueError("mock_scatter=False (--noise-free) applies to mock data (--mock) only")
        if self.mock is not None:
            if self.mock not in E.NAMED:
                raise ValueError(f"mock = {self.mock!r}: choose one of {sorted(E.NAMED)}")
            if self.n_obs < 1:
                raise ValueError(f"n_obs = {self.n_obs} is outside the valid range [1, inf)")
        for pair in (*self.mr_samples, *self.add_mr_samples):
            if len(pair) != 2 or not all(pair):
                raise ValueError(f"mr_samples entry {pair!r}: expected a (name, file) pair")


def mock_observations(eos_name: str, n_obs: int, seed: int, sigma_M: float = 0.1,
                      sigma_R: float = 0.5, scatter: bool = True) -> tuple[ObservationSet, dict[str, Any]]:
    """Mock data from a named EoS: ``n_obs`` NICER-like (M, R) sources and one radio mass.

    Masses are uniform in [1.1, min(2.0, M_TOV - 0.05)] M_sun; each (M, R) is scattered
    by N(0, sigma_M) and N(0, sigma_R) and reported with those errors (68%). The radio
    pulsar has true mass min(2.0, M_TOV - 0.05) measured with sigma 0.04 M_sun. With
    ``scatter=False`` every observation sits at its true value (same masses, same errors):
    noise-free data, whose posterior shows the analysis' own offsets from the truth.
    Needs float64 (:func:`bayesqcd.enable_x64`).

    Returns:
        (ObservationSet, truth) with truth = R_1.4 [km], M_TOV [M_sun], Lambda_1.4 and the
        true curves.
    """
    if n_obs < 1:
        raise ValueError(f"n_obs = {n_obs} is outside the valid range [1, inf)")
    if eos_name not in E.NAMED:
        raise ValueError(f"mock EoS {eos_name!r}: choose one of {sorted(E.NAMED)}")
    table = E.named(eos_name)
    curve = tov.mass_radius_curve(table, 100)
    m_tov = float(curve.M_max)
    rng = np.random.default_rng(seed)
    m_hi = min(2.0, m_tov - 0.05)
    masses = rng.uniform(1.1, m_hi, n_obs)
    radii = np.array([float(curve.at_mass(m, "R")) for m in masses])
    obs = mock_mr_observations(masses, radii, seed, sigma_M=sigma_M, sigma_R=sigma_R, scatter=scatter)
    radio = RadioMass("mock radio pulsar", float(m_hi + (0.04 * rng.standard_normal() if scatter else 0.0)), 0.04,
                      f"mock: true M={m_hi:.4f} M_sun")
    p_of_eps, cs2_of_n = (np.asarray(x) for x in eos_curves(table))
    stable = np.asarray(curve.stable)
    truth = {
        "R_1.4": float(curve.at_mass(1.4, "R")),
        "M_TOV": m_tov,
        "Lambda_1.4": float(curve.at_mass(1.4, "Lambda")),
        "curves": {"p_of_eps": p_of_eps, "cs2_of_n": cs2_of_n, "R": np.asarray(curve.stars.R)[stable],
                   "M": np.asarray(curve.stars.M)[stable], "M_GRID": M_GRID},
    }
    return ObservationSet(obs.mr, (radio,), ()), truth


def load_data(spec: DataSpec, seed: int = 0) -> tuple[ObservationSet, dict[str, Any] | None]:
    """The ObservationSet ``spec`` asks for, and the truth (mock data) or None.

    ``seed`` draws the mock observations (ignored for real data).
    """
    truth = None
    if spec.mock:
        obs, truth = mock_observations(spec.mock, spec.n_obs, seed, scatter=spec.mock_scatter)
    else:
        path = None if spec.source == "real" else spec.source
        obs = load_observations(path, include_alternatives=spec.alternatives)
    samples = [load_mr_samples(path, name=name) for name, path in spec.mr_samples]
    new = [load_mr_samples(path, name=name) for name, path in spec.add_mr_samples]
    if samples or new:
        obs = obs.with_samples(*samples, new=tuple(new))
    return obs, truth
