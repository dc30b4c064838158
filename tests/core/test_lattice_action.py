"""phi^4 action, parametrizations, observables and error analysis."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.lattice import stats
from bayesqcd.lattice.action import (Phi4Action, hopping_action, hopping_to_mass, kinetic,
                                     mass_to_hopping)
from bayesqcd.lattice.observables import effective_mass, magnetization, summarize, two_point


def laplacian_matrix(L):
    """Dense -Laplacian on the periodic L x L lattice (row-major site index)."""
    V = L * L
    A = np.zeros((V, V))
    for x0 in range(L):
        for x1 in range(L):
            i = x0 * L + x1
            A[i, i] += 4
            for y0, y1 in ((x0 + 1) % L, x1), ((x0 - 1) % L, x1), (x0, (x1 + 1) % L), (x0, (x1 - 1) % L):
                A[i, y0 * L + y1] -= 1
    return A


def test_action_gradient_matches_finite_differences():
    a = Phi4Action(m2=-4.0, lam=8.0)
    phi = jax.random.normal(jax.random.key(0), (4, 4))
    g = jax.grad(a)(phi)
    eps = 1e-6
    s = jax.jit(a)
    fd = np.zeros((4, 4))
    for i in range(4):
        for j in range(4):
            e = jnp.zeros((4, 4)).at[i, j].set(eps)
            fd[i, j] = (s(phi + e) - s(phi - e)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-7, atol=1e-7)
    # analytic gradient: dS/dphi = 2 (-Lap phi) + 2 m2 phi + 4 lam phi^3
    lap = (laplacian_matrix(4) @ np.asarray(phi).ravel()).reshape(4, 4)
    np.testing.assert_allclose(g, 2 * lap + 2 * -4.0 * phi + 4 * 8.0 * phi**3, rtol=1e-10)
    # jit and vmap agree with the plain call
    batch = jax.random.normal(jax.random.key(1), (3, 4, 4))
    np.testing.assert_allclose(jax.jit(jax.vmap(a))(batch), [a(p) for p in batch], rtol=1e-12)


def test_kinetic_is_the_laplacian_quadratic_form():
    phi = np.asarray(jax.random.normal(jax.random.key(2), (6, 6)))
    v = phi.ravel()
    assert float(kinetic(jnp.asarray(phi))) == pytest.approx(v @ laplacian_matrix(6) @ v, rel=1e-12)


def test_hopping_form_equals_mass_form_after_rescaling():
    kappa, lam_h = 0.27, 0.022
    m2, lam = hopping_to_mass(kappa, lam_h)
    assert m2 == pytest.approx((1 - 2 * lam_h) / kappa - 4)
    varphi = jax.random.normal(jax.random.key(3), (8, 8))
    s_h = hopping_action(varphi, kappa, lam_h)
    s_m = Phi4Action(m2, lam)(jnp.sqrt(kappa) * varphi)
    assert float(s_h) == pytest.approx(float(s_m), rel=1e-12)
    k2, l2 = mass_to_hopping(m2, lam)
    assert (k2, l2) == pytest.approx((kappa, lam_h), rel=1e-12)
    assert mass_to_hopping(1.0, 0.0) == pytest.approx((0.2, 0.0))


def test_free_propagator_is_inverse_precision():
    L, m2 = 4, 0.7
    G = np.asarray(Phi4Action(m2, 0.0).free_propagator(L)).ravel()
    cov = np.linalg.inv(2 * (laplacian_matrix(L) + m2 * np.eye(L * L)))
    np.testing.assert_allclose(G, cov[0], rtol=1e-10)


@pytest.mark.parametrize("kwargs", [dict(m2=-1.0, lam=-0.1), dict(m2=-1.0, lam=0.0),
                                    dict(m2=float("nan"), lam=1.0)])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ValueError, match="m2|lam"):
        Phi4Action(**kwargs)


def test_bad_field_shape_is_refused():
    with pytest.raises(ValueError, match="phi"):
        Phi4Action(1.0, 1.0)(jnp.zeros((4, 5)))
    with pytest.raises(ValueError, match="kappa"):
        hopping_to_mass(-0.1, 0.02)


def test_two_point_and_magnetization_match_brute_force():
    phi = np.asarray(jax.random.normal(jax.random.key(4), (2, 4, 4)))
    C = np.asarray(two_point(jnp.asarray(phi)))
    for b in range(2):
        for d0 in range(4):
            for d1 in range(4):
                ref = np.mean(phi[b] * np.roll(phi[b], (-d0, -d1), axis=(0, 1)))
                assert C[b, d0, d1] == pytest.approx(ref, rel=1e-10)
    np.testing.assert_allclose(magnetization(jnp.asarray(phi)), phi.mean(axis=(1, 2)))


def test_effective_mass_of_a_cosh():
    L, m = 8, 0.6
    t = np.arange(L)
    G = np.cosh(m * (t - L / 2))
    np.testing.assert_allclose(effective_mass(G), m, rtol=1e-10)


def test_tau_int_of_ar1_process():
    rho, n = 0.8, 200_000
    rng = np.random.default_rng(0)
    eps = rng.normal(size=n)
    x = np.empty(n)
    x[0] = eps[0]
    for i in range(1, n):
        x[i] = rho * x[i - 1] + np.sqrt(1 - rho**2) * eps[i]
    tau, err = stats.tau_int(x)
    exact = 0.5 * (1 + rho) / (1 - rho)  # 4.5
    assert abs(tau - exact) < 3 * err + 0.05
    assert stats.tau_int(rng.normal(size=(4, 5000)))[0] == pytest.approx(0.5, abs=0.05)


def test_jackknife_and_bootstrap_of_the_mean():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, size=400)
    v, e = stats.jackknife(lambda m: m, x)
    assert v == pytest.approx(x.mean())
    assert e == pytest.approx(x.std(ddof=1) / np.sqrt(400), rel=1e-10)
    vb, eb = stats.bootstrap(lambda m: m, x, n_boot=2000)
    assert eb == pytest.approx(e, rel=0.1)
    # nonlinear function: jackknife of m^2 ~ 2 m sigma_m
    _, e2 = stats.jackknife(lambda m: m**2, x)
    assert e2 == pytest.approx(2 * abs(x.mean()) * e, rel=0.05)
    with pytest.raises(ValueError, match="bin_size"):
        stats.bin_means(x, 0)


def test_summarize_on_independent_gaussian_fields():
    """Fields iid N(0, s^2) at each site: M ~ N(0, s^2/V), so chi = V(<M^2> - <|M|>^2)
    = s^2 (1 - 2/pi) and U4 = 0."""
    s, L = 0.5, 4
    phi = s * np.asarray(jax.random.normal(jax.random.key(5), (4, 5000, L, L)))
    out = summarize(phi)
    chi, dchi = out["chi"]["value"], out["chi"]["error"]
    assert abs(chi - s**2 * (1 - 2 / np.pi)) < 4 * dchi
    assert abs(out["binder"]["value"]) < 4 * out["binder"]["error"]
    assert out["tau_int_absM"]["value"] == pytest.approx(0.5, abs=0.05)
