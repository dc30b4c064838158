"""Physical constants and unit conversions: the one place where units are defined.

Neutron-star code works in geometrized units (G = c = 1) with lengths in kilometres:
masses are in km (multiply solar masses by :data:`MSUN_KM`), energy densities and
pressures in km^-2. Nuclear inputs are in MeV fm^-3 (energy density, pressure),
fm^-3 (baryon number density) and MeV (chemical potential); cgs inputs of the
piecewise-polytrope literature are in g cm^-3 (rest-mass density) and dyn cm^-2
(pressure).

Constants: CODATA 2018 (G, c, MeV) and the IAU 2015 nominal solar mass parameter.
"""

from __future__ import annotations

# --- fundamental constants (cgs) -------------------------------------------------
G_CGS: float = 6.67430e-8
"""Newton's constant [cm^3 g^-1 s^-2] (CODATA 2018)."""
C_CGS: float = 2.99792458e10
"""Speed of light [cm s^-1] (exact)."""
GM_SUN_CGS: float = 1.3271244e26
"""Nominal solar mass parameter G M_sun [cm^3 s^-2] (IAU 2015 Resolution B3)."""
MEV_ERG: float = 1.602176634e-6
"""1 MeV in erg (exact)."""
FM_CM: float = 1.0e-13
"""1 fm in cm."""
KM_CM: float = 1.0e5
"""1 km in cm."""

# --- geometrized units, lengths in km --------------------------------------------
MSUN_KM: float = GM_SUN_CGS / C_CGS**2 / KM_CM
"""G M_sun / c^2 in km (= 1.47662 km): solar masses -> km."""

MEV_FM3_TO_KM2: float = MEV_ERG / FM_CM**3 * G_CGS / C_CGS**4 * KM_CM**2
"""Energy density or pressure: MeV fm^-3 -> km^-2 (= 1.3234e-6)."""

DYN_CM2_TO_KM2: float = G_CGS / C_CGS**4 * KM_CM**2
"""Pressure: dyn cm^-2 (= erg cm^-3) -> km^-2."""

G_CM3_TO_KM2: float = G_CGS / C_CGS**2 * KM_CM**2
"""Mass density: g cm^-3 -> km^-2 (multiply by c^2 G / c^4)."""

# --- nuclear physics --------------------------------------------------------------
N_SAT: float = 0.16
"""Nuclear saturation density n_0 [fm^-3]."""
M_BARYON_MEV: float = 931.494
"""Baryon mass used to convert rest-mass density to number density: the atomic mass unit [MeV]."""
M_BARYON_G: float = 1.66053907e-24
"""The same baryon mass in grams."""
MEV_FM3_TO_G_CM3: float = MEV_ERG / FM_CM**3 / C_CGS**2
"""Energy density MeV fm^-3 -> equivalent mass density g cm^-3 (divide by c^2)."""


def msun_to_km(m: float) -> float:
    """Mass in solar masses -> geometrized mass in km."""
    return m * MSUN_KM


def km_to_msun(m: float) -> float:
    """Geometrized mass in km -> solar masses."""
    return m / MSUN_KM


def mev_fm3_to_km2(x: float) -> float:
    """Energy density or pressure in MeV fm^-3 -> km^-2."""
    return x * MEV_FM3_TO_KM2


def km2_to_mev_fm3(x: float) -> float:
    """Energy density or pressure in km^-2 -> MeV fm^-3."""
    return x / MEV_FM3_TO_KM2
