"""TOV + tidal throughput and accuracy: bayesqcd vs jesterTOV vs a plain scipy loop.

Same EoS (SLy, Read et al. 2009, sampled as a 600-row table of n, eps, p) and the same
100 central pressures (jesterTOV's own grid: log-spaced from p(2 n_0) to the first
acausal point) for every code. Accuracy is measured against a tight reference: scipy
DOP853 at rtol 1e-12 on the *analytic* piecewise polytrope (tests/core/scipy_tov.py), for
M_max, R_1.4 and Lambda_1.4. Throughput is TOV+tidal solves per second after
compilation, for one EoS and for 64 EoS at once. Ratios are printed last.

    pip install -e ".[bench]" && python benchmarks/tov.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq, minimize_scalar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core"))
from scipy_tov import AnalyticPolytrope, k2_of, star  # noqa: E402

import bayesqcd  # noqa: E402
from bayesqcd import eos as E  # noqa: E402
from bayesqcd import tov, units  # noqa: E402
from bayesqcd.eos.polytrope import polytrope_nodes  # noqa: E402

bayesqcd.enable_x64()  # entry point: neutron-star structure needs float64

N_ROWS, N_STARS, N_EOS, REPEATS = 600, 100, 64, 5
MEV = units.MEV_FM3_TO_KM2


def sly_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SLy as 600 rows (n [fm^-3], eps, p [MeV fm^-3]), log-spaced in density, causal throughout."""
    rho = np.geomspace(1e3, 10**15.304, N_ROWS)  # the SLy fit turns acausal just above
    n, eps, p, _, _ = (np.asarray(x) for x in polytrope_nodes(*E.NAMED["SLy"], jnp.asarray(rho)))
    return n, eps / MEV, p / MEV


def reference() -> dict[str, float]:
    """M_max, R_1.4, Lambda_1.4 from the analytic EoS, scipy DOP853 at rtol 1e-12."""
    ap = AnalyticPolytrope(*E.NAMED["SLy"])
    res = minimize_scalar(lambda lp: -star(ap, np.exp(lp))[0], bracket=(np.log(600 * MEV), np.log(1500 * MEV)),
                          tol=1e-10)
    p14 = brentq(lambda p: star(ap, p)[0] - 1.4, 30 * MEV, 300 * MEV, xtol=1e-16, rtol=1e-14)
    _, r14, l14 = star(ap, p14)
    return {"M_max": -res.fun, "R_1.4": r14, "Lambda_1.4": l14}


def family_numbers(m, r, lam) -> dict[str, float]:
    """M_max, and R, Lambda at 1.4 M_sun by linear interpolation along the stable branch (jester's way)."""
    m, r, lam = (np.asarray(x) for x in (m, r, lam))
    i = int(np.argmax(m))
    return {"M_max": m[i], "R_1.4": np.interp(1.4, m[: i + 1], r[: i + 1]),
            "Lambda_1.4": np.exp(np.interp(1.4, m[: i + 1], np.log(lam[: i + 1])))}


def curve_numbers(curve) -> dict[str, float]:
    return {"M_max": float(curve.M_max), "R_1.4": float(curve.at_mass(1.4, "R")),
            "Lambda_1.4": float(curve.at_mass(1.4, "Lambda"))}


def errors(num: dict[str, float], ref: dict[str, float]) -> str:
    return (f"|dM_max|/M = {abs(num['M_max'] / ref['M_max'] - 1):.1e}, |dR_1.4| = "
            f"{abs(num['R_1.4'] - ref['R_1.4']) * 1e3:.2f} m, |dLambda_1.4|/Lambda = "
            f"{abs(num['Lambda_1.4'] / ref['Lambda_1.4'] - 1):.1e}")


def timed(fn, *args) -> float:
    """Best wall time of REPEATS calls after one warm-up (compilation) call."""
    jax.block_until_ready(fn(*args))
    best = np.inf
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def scipy_loop(n, eps, p, p_c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A plain per-star solve_ivp loop (RK45, rtol 1e-5) in the pseudo-enthalpy, linear table interpolation."""
    e_k, p_k = eps * MEV, p * MEV
    h_k = np.log((e_k + p_k) / n / ((e_k[0] + p_k[0]) / n[0]))
    dedh = np.gradient(e_k, h_k)

    def rhs(h, x):
        r, m, y = x
        e, pp, de = (np.interp(h, h_k, arr) for arr in (e_k, p_k, dedh))
        f = 1 - 2 * m / r
        drdh = -r * r * f / (m + 4 * np.pi * r**3 * pp)
        big_f = (1 + 4 * np.pi * r * r * (pp - e)) / f
        r2q = 4 * np.pi * r * r * (5 * e + 9 * pp + de) / f - 6 / f - 4 * (m + 4 * np.pi * r**3 * pp) ** 2 / (r * r * f * f)
        return [drdh, 4 * np.pi * r * r * e * drdh, (-y * y - y * big_f - r2q) / r * drdh]

    out = []
    for pc in p_c:
        hc = np.interp(pc, p_k, h_k)
        ec = np.interp(hc, h_k, e_k)
        dh = 1e-3 * hc
        r0 = np.sqrt(3 * dh / (2 * np.pi * (ec + 3 * pc)))
        sol = solve_ivp(rhs, (hc - dh, 0.0), [r0, 4 * np.pi / 3 * ec * r0**3, 2.0], rtol=1e-5, atol=1e-8)
        r, m, y = sol.y[:, -1]
        out.append((m / units.MSUN_KM, r, 2 / 3 * k2_of(m / r, y) / (m / r) ** 5))
    return tuple(np.array(col) for col in zip(*out))


def main() -> None:
    import jesterTOV.eos as jeos

    print(f"SLy as a {N_ROWS}-row table, {N_STARS} stars per EoS; devices: {jax.devices()}")
    n, eps, p = sly_table()
    ref = reference()
    print("reference (scipy DOP853 rtol 1e-12, analytic EoS): " +
          ", ".join(f"{k} = {v:.6g}" for k, v in ref.items()))

    # jesterTOV: its own interpolation of the same rows and its own central-pressure grid
    jtab = jeos.Interpolate_EOS_model().interpolate_eos(jnp.asarray(n), jnp.asarray(p), jnp.asarray(eps))
    jfam = jax.jit(lambda t: jeos.construct_family(t, ndat=N_STARS))
    log_pc, jm, jr, jl = jfam(jtab)
    p_c_geo = np.exp(np.asarray(log_pc))  # jester's pressures (geometric SI units, m^-2)
    p_c = p_c_geo / jeos.utils.MeV_fm_inv3_to_geometric * MEV  # -> km^-2
    t_j1 = timed(jfam, jtab)
    jtab64 = jax.tree_util.tree_map(lambda x: jnp.stack([x] * N_EOS), jtab)
    t_j64 = timed(jax.jit(jax.vmap(lambda t: jeos.construct_family(t, ndat=N_STARS))), jtab64)
    jnum = family_numbers(jm, jr, jl)

    # bayesqcd: the same rows through bayesqcd.eos.from_arrays, the same central pressures
    table = E.from_arrays(n, eps, p)
    pcs = jnp.asarray(p_c)
    table64 = jax.tree_util.tree_map(lambda x: jnp.stack([x] * N_EOS), table)
    ours = {}
    for label, cfg in (("DEFAULT", tov.DEFAULT), ("FAST", tov.FAST)):
        t1 = timed(jax.jit(lambda tb, pc: tov.solve_tov(tb, pc, cfg)), table, pcs)
        t64 = timed(jax.jit(jax.vmap(lambda tb: tov.solve_tov(tb, pcs, cfg))), table64)
        curve = jax.jit(lambda tb: tov.mass_radius_curve(tb, N_STARS, config=cfg))(table)
        ours[label] = (t1, t64, curve_numbers(curve))
    bnum_exact = curve_numbers(tov.mass_radius_curve(E.named("SLy"), N_STARS))

    # plain scipy loop on 20 of the stars (time per star scaled to 100)
    sub = np.asarray(p_c)[:: N_STARS // 20]
    t0 = time.perf_counter()
    scipy_loop(n, eps, p, sub)
    t_s1 = (time.perf_counter() - t0) / len(sub) * N_STARS
    sm, sr, sl = scipy_loop(n, eps, p, np.asarray(p_c))
    snum = family_numbers(sm, sr, sl)

    rate = lambda seconds, count: count / seconds  # noqa: E731
    rows = []
    for label, (t1, t64, _) in ours.items():
        rows += [(f"bayesqcd {label}, 1 EoS", rate(t1, N_STARS)), (f"bayesqcd {label}, 64 EoS", rate(t64, N_STARS * N_EOS))]
    rows += [("jesterTOV, 1 EoS", rate(t_j1, N_STARS)), ("jesterTOV, 64 EoS", rate(t_j64, N_STARS * N_EOS)),
             ("scipy solve_ivp loop", rate(t_s1, N_STARS))]
    print("\nthroughput (TOV + tidal solves per second):")
    for name, r in rows:
        print(f"  {name:22s} {r:10.0f}")
    print("\naccuracy against the reference:")
    for label, (_, _, num) in ours.items():
        print(f"  bayesqcd {label:7s} (600-row table): {errors(num, ref)}")
    print(f"  bayesqcd DEFAULT (analytic SLy)  : {errors(bnum_exact, ref)}")
    print(f"  jesterTOV (600-row table): {errors(jnum, ref)}")
    print(f"  scipy loop (600-row table, rtol 1e-5): {errors(snum, ref)}")
    d = dict(rows)
    print("\nratios:")
    for label in ours:
        print(f"  bayesqcd {label} / jesterTOV, 1 EoS : {d[f'bayesqcd {label}, 1 EoS'] / d['jesterTOV, 1 EoS']:.2f}x"
              "  (target >= 3)")
        print(f"  bayesqcd {label} / jesterTOV, 64 EoS: {d[f'bayesqcd {label}, 64 EoS'] / d['jesterTOV, 64 EoS']:.2f}x"
              "  (target >= 3)")
        print(f"  bayesqcd {label} / scipy loop       : {d[f'bayesqcd {label}, 1 EoS'] / d['scipy solve_ivp loop']:.0f}x"
              "  (target >= 100)")


if __name__ == "__main__":
    main()
