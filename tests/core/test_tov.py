"""TOV + tidal solver: exact solutions, published values, an independent scipy reference,
first-order transitions, and jit / vmap / grad."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

from bayesqcd import eos as E
from bayesqcd import tov, units
from scipy_tov import AnalyticPolytrope, AnalyticSoundSpeed, star, star_with_jumps

MEV = units.MEV_FM3_TO_KM2
N_POINTS = 60  # one sequence length throughout, so compiled solvers are reused


@pytest.fixture(scope="module")
def sly():
    return E.named("SLy")


@pytest.fixture(scope="module")
def sly_curve(sly):
    return tov.mass_radius_curve(sly, N_POINTS)


def test_incompressible_star_is_schwarzschild_interior():
    """Constant density: p_c = eps [1 - sqrt(1 - 2M/R)] / [3 sqrt(1 - 2M/R) - 1], M = 4 pi eps R^3 / 3."""
    eps0 = 500.0
    table = E.incompressible(eps0, 3000.0)
    p_c = jnp.array([20.0, 150.0, 600.0, 2000.0]) * MEV
    stars = tov.solve_tov(table, p_c, tov.TIGHT)
    e = eps0 * MEV
    for pc, m, r in zip(np.asarray(p_c), np.asarray(stars.M), np.asarray(stars.R)):
        def pc_of_r(rr):
            x = np.sqrt(1 - 8 * np.pi * e * rr**2 / 3)
            return e * (1 - x) / (3 * x - 1) - pc
        r_limit = np.sqrt(1 / (3 * np.pi * e))  # Buchdahl-type limit where p_c diverges
        r_exact = brentq(pc_of_r, 1e-3, r_limit * (1 - 1e-12), xtol=1e-14)
        m_exact = 4 * np.pi / 3 * e * r_exact**3 / units.MSUN_KM
        assert abs(r / r_exact - 1) < 1e-6
        assert abs(m / m_exact - 1) < 1e-6


def test_incompressible_love_number_newtonian_limit():
    """A homogeneous incompressible body has k2 = 3/4 as C -> 0 (needs the surface density jump)."""
    stars = tov.solve_tov(E.incompressible(300.0, 100.0), jnp.array([0.3]) * MEV, tov.TIGHT)
    compactness = float(stars.M[0] * units.MSUN_KM / stars.R[0])
    assert 1e-3 < compactness < 3e-3  # small, but large enough for k2's C^5 cancellations
    assert abs(float(stars.k2[0]) - 0.75) < 5 * compactness


@pytest.mark.parametrize("name", ["SLy", "MPA1"])
def test_published_maximum_masses(name):
    """Read et al. (2009) Table III: SLy 2.049, MPA1 2.461 M_sun."""
    curve = tov.mass_radius_curve(E.named(name), N_POINTS)
    assert abs(float(curve.M_max) - E.PUBLISHED_M_MAX[name]) < 0.01


def test_apr4_fit_maximum_mass():
    """APR4: the fit's M_max (2.188) is 1.1% below the tabulated 2.213 of Read et al. Table III;
    the solver reproduces the fit (checked against scipy) and stays within the fit's deviation."""
    curve = tov.mass_radius_curve(E.named("APR4"), N_POINTS)
    assert abs(float(curve.M_max) - E.PUBLISHED_M_MAX["APR4"]) < 0.03
    ap = AnalyticPolytrope(*E.NAMED["APR4"])
    m_ref = star(ap, float(curve.p_c_max))[0]
    assert abs(float(curve.M_max) / m_ref - 1) < 1e-5


def test_sly_canonical_star(sly_curve):
    """SLy: R_1.4 ~ 11.7 km and Lambda_1.4 ~ 300."""
    assert abs(float(sly_curve.at_mass(1.4, "R")) - 11.7) < 0.05
    assert abs(float(sly_curve.at_mass(1.4, "Lambda")) - 300.0) < 15.0
    assert bool(sly_curve.valid)


def test_converges_to_independent_scipy_solution(sly):
    """Pseudo-enthalpy scipy DOP853 at rtol 1e-12 on the analytic polytrope (no tables)."""
    ap = AnalyticPolytrope(*E.NAMED["SLy"])
    p_c = np.geomspace(10.0, 1500.0, 6) * MEV
    ref = np.array([star(ap, p) for p in p_c]).T
    for config, table in [(tov.DEFAULT, sly), (tov.TIGHT, E.named("SLy", n_grid=4096))]:
        s = tov.solve_tov(table, jnp.asarray(p_c), config)
        assert np.max(np.abs(np.asarray(s.M) / ref[0] - 1)) < 1e-5
        assert np.max(np.abs(np.asarray(s.R) - ref[1])) < 1e-3  # km: 1 m
        assert np.max(np.abs(np.asarray(s.Lambda) / ref[2] - 1)) < 1e-4


def test_first_order_transition_against_junction_condition():
    """c_s^2 = 0 segment: M, R and Lambda agree with scipy applying y+ = y- - 4 pi r^3 Delta eps / (m + 4 pi r^3 p)."""
    cs2 = [0.3, 0.0, 0.6, 0.8, 0.5]
    table = E.sound_speed(jnp.array(cs2))
    ref_eos = AnalyticSoundSpeed(cs2, E.default_bounds(5), 12 * units.N_SAT)
    p_c = np.array([30.0, 79.0, 100.0, 300.0, 600.0]) * MEV  # below, just above and well above the plateau
    ref = np.array([star_with_jumps(ref_eos, p) for p in p_c]).T
    s = tov.solve_tov(table, jnp.asarray(p_c))
    assert np.max(np.abs(np.asarray(s.M) / ref[0] - 1)) < 1e-5
    assert np.max(np.abs(np.asarray(s.R) - ref[1])) < 1e-3
    assert np.max(np.abs(np.asarray(s.Lambda) / ref[2] - 1)) < 1e-4
    # the junction matters: without the jump Lambda would differ by several per cent
    assert abs(ref[2][3] / float(s.Lambda[3]) - 1) < 1e-4


def test_first_order_segment_gives_finite_continuous_curve():
    """A curve through a transition is finite; M and R change continuously with p_c."""
    curve = tov.mass_radius_curve(E.sound_speed(jnp.array([0.5, 0.0, 0.5, 0.5, 0.5])), N_POINTS)
    m, r = np.asarray(curve.stars.M), np.asarray(curve.stars.R)
    assert np.all(np.isfinite(m)) and np.all(np.isfinite(r))
    # neighbouring stars (log p_c step ~0.1) differ little: no jump in the sequence
    assert np.max(np.abs(np.diff(m))) < 0.15 and np.max(np.abs(np.diff(r))) < 0.5
    assert float(curve.M_max) > 1.4 and np.isfinite(float(curve.at_mass(1.4, "Lambda")))


def test_jit_vmap_over_eos_and_pressures():
    """A batch of EoS under vmap + jit gives the results of separate calls."""
    cs2 = jnp.array([[0.4, 0.5, 0.6, 0.5, 0.4], [0.6, 0.0, 0.7, 0.6, 0.5], [0.3, 0.3, 0.9, 0.8, 0.3]])
    p_c = jnp.array([50.0, 200.0]) * MEV

    @jax.jit
    def masses(c):
        return tov.solve_tov(E.sound_speed(c), p_c).M

    batched = jax.vmap(masses)(cs2)
    for k in range(cs2.shape[0]):
        # adaptive steps under another compilation agree to the solver tolerance
        np.testing.assert_allclose(batched[k], tov.solve_tov(E.sound_speed(cs2[k]), p_c).M, rtol=1e-5)


def test_no_sliver_steps_before_knots_and_the_same_stars():
    """At the inference tolerance no step is a sliver left before a knot, and the stars are right.

    Without ``KnotSnapController`` the second star of this curve stopped 3e-15 before the
    knot at sigma = 7 and took 16 extra steps to regrow (26 in all, against 9 for its
    neighbours); under vmap the whole curve waits for it.
    """
    eos = E.sound_speed(jnp.array([0.3, 0.5, 0.4, 0.3, 0.3]), n_grid=256)
    p_c = jnp.exp(jnp.linspace(jnp.log(tov.P_C_MIN_DEFAULT), jnp.log(eos.p[-1, -1] * (1 - 1e-6)), 32))

    @jax.jit
    def steps(t_c):
        sol, _ = jax.vmap(lambda t: tov._solve_one(eos, t, tov.INFERENCE, diffrax.SaveAt(steps=True)))(t_c)
        return sol.ts, sol.stats["num_steps"]

    ts, n_steps = steps(eos.t_of_p(p_c))
    ts = np.asarray(ts)
    for row in ts:
        row = row[np.isfinite(row)]
        assert np.min(np.diff(row)) > 1e-3, np.diff(row)
    # about one step per segment crossed (up to 10), a few more near the centre: 34 before
    assert np.max(np.asarray(n_steps)) <= 22, np.asarray(n_steps)
    fast = tov.solve_tov(eos, p_c, tov.INFERENCE)
    tight = tov.solve_tov(eos, p_c, tov.DEFAULT)
    m = np.asarray(tight.M)
    heavy_stable = (m > 0.9) & (np.arange(m.size) <= np.argmax(m))
    assert np.max(np.abs(np.asarray(fast.M - tight.M))[heavy_stable]) < 2e-3
    assert np.max(np.abs(np.asarray(fast.R - tight.R))[heavy_stable]) < 0.03


@pytest.mark.slow  # the model gradient (TOV inside) is checked in tests/models in the default suite
def test_grad_of_r14_and_mtov_match_finite_differences():
    """d R_1.4 / d c_s^2 and d M_TOV / d c_s^2 by autodiff agree with central differences."""
    base = jnp.array([0.35, 0.45, 0.55, 0.6, 0.5])

    def observables(c):
        curve = tov.mass_radius_curve(E.sound_speed(c), N_POINTS)
        return jnp.stack([curve.at_mass(1.4, "R"), curve.M_max])

    jac = jax.jacrev(observables)(base)
    h = 2e-3  # adaptive-step noise (~1e-6) must stay far below h * slope
    for k in (0, 2):
        dc = jnp.zeros(5).at[k].set(h)
        fd = (observables(base + dc) - observables(base - dc)) / (2 * h)
        np.testing.assert_allclose(jac[0, k], fd[0], rtol=2e-2, atol=5e-3)
        np.testing.assert_allclose(jac[1, k], fd[1], rtol=2e-2, atol=5e-3)
    assert float(jnp.abs(jac[0, 0])) > 0.1  # R_1.4 responds to the stiffness at 1-2.5 n_0


def test_the_causal_limit_itself_is_causal():
    """c_s^2 at (or within 1e-8 of) 1 in a segment is causal: the table's nodes, read back, lie
    above 1 by interpolation only (< E.table.CAUSAL_TOL), and the stars through it are valid.
    Flagging them acausal made the likelihood -inf above c_s^2 = 1 - 1e-7: NUTS divergences."""
    for cs2 in ([0.15, 1.0 - 1e-8, 0.9, 0.3, 0.5], [0.15, 1.0, 1.0, 1.0, 1.0]):
        eos = E.sound_speed(jnp.array(cs2))
        s = tov.solve_tov(eos, jnp.array([100.0, 300.0]) * MEV)
        assert bool(jnp.all(s.valid)) and np.all(np.asarray(s.M) > 1.0)
        assert bool(jnp.all(eos.causal))
        read = np.asarray(eos.cs2)[np.isfinite(np.asarray(eos.cs2))]
        assert 0.0 < read.max() - 1.0 < E.table.CAUSAL_TOL  # above 1 by interpolation only


def test_invalid_parameters_under_jit_give_nan_not_numbers():
    """Inside jit an acausal c_s^2 yields an invalid table and NaN stars, never a silent number."""
    s = jax.jit(lambda c: tov.solve_tov(E.sound_speed(c), jnp.array([100.0 * MEV])))(jnp.array([0.5, 1.5, 0.5, 0.5, 0.5]))
    assert not bool(s.valid[0])
    assert np.isnan(float(s.M[0]))


def test_interpolating_cubic_is_exact_for_cubics():
    """``at_mass``'s cubic through four points reproduces any cubic and its derivative (value and
    slope, also between and outside the points), and jit and grad agree with the slope."""
    rng = np.random.default_rng(3)
    for _ in range(5):
        coef = rng.normal(size=4)
        xs = jnp.asarray(np.sort(rng.uniform(-2.0, 2.0, 4)))
        ys = jnp.polyval(coef, xs)
        for x in (-2.5, -0.3, 0.1, 1.7, 3.0):
            val, der = jax.jit(tov._lagrange)(xs, ys, jnp.asarray(x))
            np.testing.assert_allclose(val, np.polyval(coef, x), rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(der, np.polyval(np.polyder(coef), x), rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(jax.grad(lambda t: tov._lagrange(xs, ys, t)[0])(jnp.asarray(x)), der,
                                       rtol=1e-9, atol=1e-9)
