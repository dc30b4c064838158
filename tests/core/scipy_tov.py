"""Independent tight-tolerance TOV + tidal reference with scipy (no bayesqcd physics code).

Pseudo-enthalpy form (Lindblom 1992) with the analytic piecewise polytrope of Read et al.
(2009): for each h the density follows in closed form, so there is no interpolation; the
integration is split at the h of every dividing density, so kinks of the EoS never fall
inside a step. Variables (r, m, y) in km; eps and p in km^-2.

    dr/dh = -r (r - 2m) / (m + 4 pi r^3 p),   dm/dh = 4 pi r^2 eps dr/dh,
    dy/dh = [-y^2 - y F - r^2 Q] / r * dr/dh,  with (eps + p)/c_s^2 = d eps/dh.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

C_CGS = 2.99792458e10
G_CGS = 6.67430e-8
MSUN_KM = 1.3271244e26 / C_CGS**2 / 1e5
RHO_TO_KM2 = G_CGS / C_CGS**2 * 1e10

CRUST_K = [6.80110e-9, 1.06186e-6, 5.32697e1, 3.99874e-8]
CRUST_G = [1.58425, 1.28733, 0.62223, 1.35692]
CRUST_RHO = [2.44034e7, 3.78358e11, 2.62780e12]


class AnalyticPolytrope:
    """Read et al. piecewise polytrope + SLy crust in closed form (cgs internally)."""

    def __init__(self, log10_p1: float, g1: float, g2: float, g3: float):
        rho1, rho2 = 10**14.7, 10**15.0
        k1 = 10**log10_p1 / C_CGS**2 / rho1**g1
        k2 = k1 * rho1 ** (g1 - g2)
        k3 = k2 * rho2 ** (g2 - g3)
        rho0 = (CRUST_K[3] / k1) ** (1 / (g1 - CRUST_G[3]))
        self.k = CRUST_K + [k1, k2, k3]
        self.g = CRUST_G + [g1, g2, g3]
        self.lower = [0.0] + CRUST_RHO + [rho0, rho1, rho2]
        self.a = [0.0]
        for i in range(1, 7):
            r = self.lower[i]
            e_prev = (1 + self.a[-1]) * r + self.k[i - 1] / (self.g[i - 1] - 1) * r ** self.g[i - 1]
            self.a.append(e_prev / r - 1 - self.k[i] / (self.g[i] - 1) * r ** (self.g[i] - 1))
        # h at each dividing density (continuous across pieces)
        self.h_div = [np.log(self._mu(i, self.lower[i])) for i in range(1, 7)]

    def _mu(self, i: int, rho: float) -> float:
        return 1 + self.a[i] + self.k[i] * self.g[i] / (self.g[i] - 1) * rho ** (self.g[i] - 1)

    def piece_of_h(self, h: float) -> int:
        return int(np.searchsorted(self.h_div, h, side="right"))

    def state(self, h: float) -> tuple[float, float, float]:
        """(eps, p, d eps/dh) in km^-2 at pseudo-enthalpy h."""
        i = self.piece_of_h(h)
        k, g, a = self.k[i], self.g[i], self.a[i]
        rho = ((np.exp(h) - 1 - a) * (g - 1) / (k * g)) ** (1 / (g - 1))
        p = k * rho**g
        eps = (1 + a) * rho + k / (g - 1) * rho**g
        cs2 = g * p / (eps + p)
        return eps * RHO_TO_KM2, p * RHO_TO_KM2, (eps + p) * RHO_TO_KM2 / cs2

    def h_of_p(self, p_km2: float) -> float:
        p = p_km2 / RHO_TO_KM2
        for i in range(7):
            hi = self.lower[i + 1] if i < 6 else np.inf
            rho = (p / self.k[i]) ** (1 / self.g[i])
            if rho < hi:
                return float(np.log(self._mu(i, rho)))
        raise AssertionError


def _rhs(h, x, eos):
    r, m, y = x
    eps, p, dedh = eos.state(h)
    f = 1 - 2 * m / r
    drdh = -r * r * f / (m + 4 * np.pi * r**3 * p)
    dmdh = 4 * np.pi * r * r * eps * drdh
    big_f = (1 + 4 * np.pi * r * r * (p - eps)) / f
    r2q = (4 * np.pi * r * r * (5 * eps + 9 * p + dedh) / f - 6 / f
           - 4 * (m + 4 * np.pi * r**3 * p) ** 2 / (r * r * f * f))
    dydh = (-y * y - y * big_f - r2q) / r * drdh
    return [drdh, dmdh, dydh]


def k2_of(c: float, y: float) -> float:
    num = 1.6 * c**5 * (1 - 2 * c) ** 2 * (2 + 2 * c * (y - 1) - y)
    den = (2 * c * (6 - 3 * y + 3 * c * (5 * y - 8))
           + 4 * c**3 * (13 - 11 * y + c * (3 * y - 2) + 2 * c * c * (1 + y))
           + 3 * (1 - 2 * c) ** 2 * (2 - y + 2 * c * (y - 1)) * np.log(1 - 2 * c))
    return num / den


def star(eos, p_c_km2: float, rtol: float = 1e-12, atol: float = 1e-14, method: str = "DOP853"):
    """(M [M_sun], R [km], Lambda) of the star with central pressure p_c [km^-2]."""
    h_c = eos.h_of_p(p_c_km2)
    eps_c, p_c, dedh_c = eos.state(h_c)
    dh = 1e-8 * h_c
    r0 = np.sqrt(3 * dh / (2 * np.pi * (eps_c + 3 * p_c)))
    m0 = 4 * np.pi / 3 * eps_c * r0**3
    y0 = 2 - 4 * np.pi / 7 * (eps_c / 3 + 11 * p_c + dedh_c) * r0**2
    x = [r0, m0, y0]
    h_start = h_c - dh
    breaks = sorted([hb for hb in eos.h_div if 0 < hb < h_start], reverse=True) + [0.0]
    for h_end in breaks:
        sol = solve_ivp(_rhs, (h_start, h_end), x, args=(eos,), method=method, rtol=rtol, atol=atol)
        x, h_start = sol.y[:, -1], h_end
    r, m, y = x
    c = m / r
    return m / MSUN_KM, r, 2 / 3 * k2_of(c, y) / c**5


class AnalyticSoundSpeed:
    """SLy below 1.1 n_0, then constant c_s^2 segments, in closed form as functions of h.

    A c_s^2 = 0 segment has zero width in h: it is an energy-density jump, applied to y by
    the junction condition y+ = y- - 4 pi r^3 Delta eps / (m + 4 pi r^3 p).
    """

    def __init__(self, cs2, n_bounds, n_max):
        self.sly = AnalyticPolytrope(34.384, 3.005, 2.988, 2.851)
        m_b, fm3 = 1.66053907e-24, 1e-39
        n0 = n_bounds[0]
        rho = n0 / fm3 * m_b
        i = int(np.searchsorted(self.sly.lower, rho, side="right") - 1)
        k, g, a = self.sly.k[i], self.sly.g[i], self.sly.a[i]
        p = k * rho**g * RHO_TO_KM2
        eps = ((1 + a) * rho + k / (g - 1) * rho**g) * RHO_TO_KM2
        self.h_match = float(np.log(self.sly._mu(i, rho)))
        ends = list(n_bounds[1:-1]) + [max(n_max, n_bounds[-1])]
        self.segs = []  # (h_start, s, n_i, mu_i, p_i)
        h, n_i, mu_i, p_i = self.h_match, n0, (eps + p) / n0, p
        self.jumps = []  # (h, delta eps)
        for s, n_end in zip(cs2, ends):
            self.segs.append((h, s, n_i, mu_i, p_i))
            x = n_end / n_i
            if s == 0:
                self.jumps.append((h, mu_i * (n_end - n_i)))
            p_i = p_i + s * mu_i * n_i / (1 + s) * (x ** (1 + s) - 1)
            h = h + s * np.log(x)
            mu_i, n_i = mu_i * x**s, n_end
        self.h_top = h
        self.h_div = sorted(set(self.sly.h_div[:4] + [self.h_match] + [sg[0] for sg in self.segs[1:]]))

    def state(self, h):
        if h <= self.h_match:
            return self.sly.state(h)
        starts = [sg[0] for sg in self.segs]
        j = int(np.searchsorted(starts, h, side="left") - 1)  # a jump's h belongs to the phase below
        h_i, s, n_i, mu_i, p_i = self.segs[j]
        while s == 0:  # zero-width segment: use the one after it
            j += 1
            h_i, s, n_i, mu_i, p_i = self.segs[j]
        x = np.exp((h - h_i) / s)
        mu = mu_i * np.exp(h - h_i)
        p = p_i + s * mu_i * n_i / (1 + s) * (x ** (1 + s) - 1)
        eps = mu * n_i * x - p
        return eps, p, (eps + p) / s

    def h_of_p(self, p_km2):
        from scipy.optimize import brentq

        return brentq(lambda h: self.state(h)[1] - p_km2, 1e-9, self.h_top - 1e-12, xtol=1e-15, rtol=1e-15)


def star_with_jumps(eos, p_c_km2, rtol=1e-12, atol=1e-14):
    """Like :func:`star`, applying the energy-density jumps of ``eos.jumps`` to y and r, m unchanged."""
    h_c = eos.h_of_p(p_c_km2)
    eps_c, p_c, dedh_c = eos.state(h_c)
    dh = 1e-8 * h_c
    r0 = np.sqrt(3 * dh / (2 * np.pi * (eps_c + 3 * p_c)))
    x = [r0, 4 * np.pi / 3 * eps_c * r0**3, 2 - 4 * np.pi / 7 * (eps_c / 3 + 11 * p_c + dedh_c) * r0**2]
    h_start = h_c - dh
    jumps = {hj: de for hj, de in eos.jumps if hj < h_c}
    breaks = sorted({hb for hb in eos.h_div if 0 < hb < h_start} | set(jumps), reverse=True) + [0.0]
    for h_end in breaks:
        sol = solve_ivp(_rhs, (h_start, h_end), x, args=(eos,), method="DOP853", rtol=rtol, atol=atol)
        x, h_start = sol.y[:, -1], h_end
        if h_end in jumps:
            r, m, y = x
            _, p, _ = eos.state(h_end)
            x = [r, m, y - 4 * np.pi * r**3 * jumps[h_end] / (m + 4 * np.pi * r**3 * p)]
    r, m, y = x
    c = m / r
    return m / MSUN_KM, r, 2 / 3 * k2_of(c, y) / c**5
