"""Kernels, mock spectral functions, metrics, MEM and the NumPyro models' input checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad

from bayesqcd import spectral as sp
from bayesqcd.spectral.mem import mem
from bayesqcd.spectral.prior import fit_representation, interpolation_matrix, sample_family


def test_breit_wigner_closed_forms():
    """rho ~ 4 A Gamma w / (M^2 + Gamma^2)^2 at small w; peak near M; positive."""
    w = jnp.array([1e-4, 2.0])
    rho = sp.breit_wigner(w, 1.0, 2.0, 0.5)
    np.testing.assert_allclose(rho[0], 4 * 0.5 * 1e-4 / (4.25**2), rtol=1e-6)
    np.testing.assert_allclose(rho[1], 4 * 0.5 * 2.0 / (0.25**2 + 4 * 0.25 * 4), rtol=1e-12)
    omega, _ = sp.omega_grid(2000)
    r = sp.breit_wigner(omega)
    assert abs(float(omega[jnp.argmax(r)]) - np.sqrt(4 - 0.25)) < 0.3 and bool(jnp.all(r > 0))


def test_kallen_lehmann_quadrature_matches_scipy():
    """A @ rho on 500 points reproduces int_0^20 dw rho w / (pi (w^2 + p^2)) to 0.5% (the
    right-endpoint rule on (0, 20] is first order: the missing [0, dw] strip is ~0.3% at p = 0)."""
    md = sp.make_mock(jax.random.key(0), "bw1", eps=1e-3)
    for j in (0, 5, 24):
        p = float(md.x[j])
        exact = quad(lambda w: float(sp.breit_wigner(w)) * w / (np.pi * (w**2 + p**2)), 0, 20,
                     points=[2.0], limit=200)[0]
        np.testing.assert_allclose(float(md.clean[j]), exact, rtol=5e-3)
    np.testing.assert_allclose(md.x[-1], 19.2)
    assert md.A.shape == (25, 500)


def test_time_kernels():
    omega, _ = sp.omega_grid(10, 5.0)
    K = sp.euclidean_kernel(jnp.arange(8.0), omega, 8)
    np.testing.assert_allclose(K[3], K[5], rtol=1e-12)  # periodic: tau <-> N_t - tau
    np.testing.assert_allclose(K[0], 1 + jnp.exp(-8 * omega))
    T = 0.25
    Kt = sp.thermal_kernel(jnp.array([0.0, 1.0, 3.0]), omega, T)
    direct = jnp.cosh(omega * (jnp.array([0.0, 1.0, 3.0])[:, None] - 2.0)) / jnp.sinh(omega * 2.0)
    np.testing.assert_allclose(Kt, direct, rtol=1e-10)
    np.testing.assert_allclose(Kt[1], Kt[2], rtol=1e-12)  # symmetric about 1/2T


def test_kernels_jit_vmap_grad():
    omega, w = sp.omega_grid(50)
    f = jax.jit(lambda p: sp.kallen_lehmann_kernel(p, omega) @ (w * sp.breit_wigner(omega)))
    g = jax.grad(lambda p: f(p)[0])(1.0)
    eps = 1e-5
    np.testing.assert_allclose(g, (f(1.0 + eps)[0] - f(1.0 - eps)[0]) / (2 * eps), rtol=1e-5)
    v = jax.vmap(lambda m: sp.breit_wigner(omega, 1.0, m, 0.5))(jnp.array([2.0, 5.0]))
    assert v.shape == (2, 50)


def test_physics_mocks_closed_forms():
    """The mock suite: Drude peak (max A/2 at w = Gamma, rho/w -> A/Gamma), threshold continuum
    (c w^2 far above, c w_th^2 / 2 at threshold, ~0 far below), every mock positive with a
    positive correlator at every noise level, the thermal mock on its own kernel."""
    w = jnp.array([1e-4, 0.3, 3.0, 4.0, 10.0])
    drude = sp.transport_peak(w, 1.0, 0.3)
    np.testing.assert_allclose(drude[1], 0.5, rtol=1e-12)
    np.testing.assert_allclose(drude[0] / w[0], 1.0 / 0.3, rtol=1e-6)
    cont = sp.threshold_continuum(w, 0.005, 4.0, 0.3)
    np.testing.assert_allclose(cont[3], 0.005 * 16 / 2, rtol=1e-12)
    np.testing.assert_allclose(cont[4], 0.005 * 100, rtol=1e-8)
    assert float(cont[2]) < 0.005 * 9 * 0.04
    assert set(sp.MOCKS) >= {"bw1", "bw2", "gauss1", "gauss2", "threshold", "transport", "thermal"}
    for name in sp.MOCKS:
        for eps in (1e-2, 1e-5):
            md = sp.make_mock(jax.random.key(0), name, eps=eps, n_omega=100)
            assert bool(jnp.all(md.rho > 0)) and bool(jnp.all(md.clean > 0)), name
            assert float(jnp.max(jnp.abs(md.data / md.clean - 1))) < 5 * eps
    th = sp.make_mock(jax.random.key(0), "thermal", n_omega=100)
    np.testing.assert_allclose(th.x[-1], 0.5 / 0.25)  # tau on [0, 1/(2T)], T = 0.25
    np.testing.assert_allclose(th.A, sp.forward_matrix(sp.thermal_kernel(th.x, th.omega, 0.25), th.weights))
    kl = sp.make_mock(jax.random.key(0), "thermal", n_omega=100, kernel="kallen-lehmann")
    np.testing.assert_allclose(kl.x[-1], 19.2)


def test_mock_noise_statistics():
    """Relative noise: (D - clean) / (eps clean) ~ N(0, 1); correlated covariance is SPD."""
    md = sp.make_mock(jax.random.key(0), "bw2", eps=1e-2)
    keys = jax.random.split(jax.random.key(1), 4000)
    draws = jax.vmap(lambda k: sp.mock_correlator(k, md.A, md.rho, md.cov))(keys)
    z = (draws - md.clean) / (1e-2 * md.clean)
    np.testing.assert_allclose(np.std(z), 1.0, atol=0.02)
    assert abs(float(np.mean(z))) < 0.02
    C = sp.noise_covariance(md.clean, 1e-3, model="absolute", correlation=0.5)
    np.testing.assert_allclose(C[0, 1], 0.5e-6)
    assert np.linalg.eigvalsh(np.asarray(C)).min() > 0


@pytest.mark.parametrize("call, match", [
    (lambda: sp.omega_grid(1), "n \\(omega points\\)"),
    (lambda: sp.kallen_lehmann_kernel([1.0], jnp.array([0.0, 1.0])), "omega must be > 0"),
    (lambda: sp.euclidean_kernel([9.0], jnp.array([1.0, 2.0]), 8), "tau must lie"),
    (lambda: sp.thermal_kernel([1.0], jnp.array([1.0, 2.0]), -1.0), "temperature"),
    (lambda: sp.noise_covariance(jnp.ones(3), -1e-3), "noise eps must be > 0"),
    (lambda: sp.noise_covariance(jnp.ones(3), 1e-3, model="poisson"), "noise model"),
    (lambda: sp.mock_correlator(jax.random.key(0), jnp.ones((3, 4)), jnp.ones(5), jnp.eye(3)), "do not match"),
    (lambda: sp.mock_spectrum("bw3", jnp.ones(3)), "mock must be one of"),
    (lambda: sp.mse(np.ones(3), np.ones(4)), "shapes differ"),
    (lambda: sp.kl_divergence(np.ones(3), -np.ones(3)), "non-negative"),
    (lambda: sp.make_mock(jax.random.key(0), kernel="laplace"), "kernel must be"),
])
def test_bad_inputs_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_metrics():
    truth = np.array([0.0, 1.0, 2.0, 1.0])
    assert sp.mse(truth + 0.1, truth) == pytest.approx(0.01)
    assert sp.kl_divergence(truth, truth) == pytest.approx(0.0, abs=1e-14)
    # p = (0, 1/4, 1/2, 1/4), q = 1/4: KL = 1/2 log 2
    assert sp.kl_divergence(truth, np.ones(4)) == pytest.approx(0.5 * np.log(2.0), rel=1e-12)
    rng = np.random.default_rng(0)
    samples = truth + rng.normal(size=(4000, 4))
    assert sp.coverage(samples, truth) == 1.0
    assert sp.coverage(samples, truth + 5.0) == 0.0
    # the floor: a negligible truth under a band of small positive values counts as covered
    tiny = np.array([1e-100, 1.0])
    band = np.stack([np.array([1e-8, 0.9]), np.array([1e-5, 1.1])] * 50)
    assert sp.coverage(band, tiny) == 0.5 and sp.coverage(band, tiny, floor=1e-4) == 1.0
    with pytest.raises(ValueError, match="floor"):
        sp.coverage(band, tiny, floor=-1.0)
    # a calibrated Gaussian band covers ~95% of many independent points
    many = rng.normal(size=(2000, 1000))
    assert abs(sp.coverage(many, rng.normal(size=1000)) - 0.95) < 0.03


def test_mem_recovers_breit_wigner_and_stays_positive():
    """Classic MEM on 100 points: low noise recovers the peak; every draw is positive."""
    md = sp.make_mock(jax.random.key(0), "bw1", eps=1e-4, n_omega=100)
    res = mem(md.A, md.data, md.cov, md.weights, n_samples=10)
    assert np.all(res.rho > 0) and np.all(res.samples > 0)
    assert sp.mse(res.rho, md.rho) < 3e-3
    assert abs(float(md.omega[np.argmax(res.rho)]) - 1.93) < 0.4
    assert res.chi2 / 25 < 2.0
    best = int(np.argmax(res.log_evidence))
    assert 0 < best < len(res.alphas) - 1  # the evidence has an interior maximum
    # more noise -> smoother, worse reconstruction
    noisy = sp.make_mock(jax.random.key(0), "bw1", eps=1e-2, n_omega=100)
    res2 = mem(noisy.A, noisy.data, noisy.cov, noisy.weights)
    assert sp.mse(res2.rho, noisy.rho) > sp.mse(res.rho, md.rho)


def test_mem_bad_inputs():
    md = sp.make_mock(jax.random.key(0), "bw1", eps=1e-3, n_omega=50)
    with pytest.raises(ValueError, match="shapes do not match"):
        mem(md.A, md.data[:-1], md.cov, md.weights)
    with pytest.raises(ValueError, match="positive definite"):
        mem(md.A, md.data, -md.cov, md.weights)
    with pytest.raises(ValueError, match="default_model"):
        mem(md.A, md.data, md.cov, md.weights, default_model=-1.0)


def test_representation_round_trip_and_positivity():
    omega, _ = sp.omega_grid(200)
    fam = sample_family(jax.random.key(0), 500, omega)
    assert fam.shape == (500, 200) and bool(jnp.all(fam >= 0)) and bool(jnp.all(fam.max(1) > 0.01))
    rep = fit_representation(omega, fam, 48)
    x = rep.encode(fam)
    np.testing.assert_allclose(np.mean(x, 0), 0.0, atol=1e-6)
    truth = sp.mock_spectrum("bw1", omega)
    back = rep.to_rho(rep.encode(truth))
    assert sp.mse(back, truth) < 2e-3 and sp.kl_divergence(truth, back) < 0.02
    wild = rep.to_rho(30.0 * jax.random.normal(jax.random.key(1), (48,)))
    assert bool(jnp.all(wild > 0))
    P = interpolation_matrix(np.array([0.5, 1.5]), np.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(P, [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])


def test_kernel_matrix_and_grid_with_omega_min():
    """make_mock builds its kernel with kernel_matrix (the one shared with measured data), and
    the grid (omega_min, omega_max] keeps its quadrature."""
    omega, w = sp.omega_grid(40, 12.0, omega_min=2.0)
    np.testing.assert_allclose(omega, 2.0 + 0.25 * np.arange(1, 41)) and np.testing.assert_allclose(w, 0.25)
    md = sp.make_mock(jax.random.key(0), "thermal", n_omega=40, omega_max=12.0, omega_min=2.0)
    np.testing.assert_allclose(md.A, sp.thermal_kernel(md.x, omega, 0.25) * w[None, :])
    np.testing.assert_allclose(sp.kernel_matrix("euclidean", [1.0, 2.0], omega, n_t=8),
                               sp.euclidean_kernel([1.0, 2.0], omega, 8))
    with pytest.raises(ValueError, match="needs temperature"):
        sp.kernel_matrix("thermal", [0.0], omega)
    with pytest.raises(ValueError, match="omega_max = 1.0 is outside the valid range"):
        sp.omega_grid(10, 1.0, omega_min=2.0)


def test_br_alpha_marginal_and_derivatives():
    """The alpha-marginalised BR prior: g'(s) = <alpha>, g''(s) = -Var(alpha) (finite differences),
    and for a flat P(alpha) (N/2 + 1) / s <= <alpha> <= (N + 1) / s (the limits of large and
    small alpha w: Z ~ prod (alpha w)^(-1/2) by Stirling, and Z ~ prod (alpha w)^(-1))."""
    from bayesqcd.spectral.br import AlphaMarginal

    w = np.full(60, 0.2)
    marg = AlphaMarginal(w)
    for s in (0.5, 5.0, 50.0):
        g, g1, g2 = marg(s)
        h = 1e-4 * s
        assert (marg(s + h)[0] - marg(s - h)[0]) / (2 * h) == pytest.approx(g1, rel=1e-6)
        assert (marg(s + h)[1] - marg(s - h)[1]) / (2 * h) == pytest.approx(g2, rel=1e-4)
        assert 31.0 / s <= g1 <= 61.0 / s and marg.in_range(s)
    assert marg(0.5)[1] == pytest.approx(31.0 / 0.5, rel=0.02)  # alpha w = 12: Stirling holds
    assert not marg.in_range(1e-12)  # at rho = m the flat prior piles up at alpha_max


def test_br_recovers_breit_wigner_and_stays_positive():
    """BR (alpha integrated out, full omega space) on 100 points: the peak, chi^2/point ~ 1,
    positive draws, alpha's posterior inside its range; at the MAP the gradient of the
    objective vanishes (checked by finite differences of the objective itself)."""
    from bayesqcd.spectral.br import AlphaMarginal

    md = sp.make_mock(jax.random.key(0), "bw1", eps=1e-3, n_omega=100)
    res = sp.br(md.A, md.data, md.cov, md.weights, n_samples=4)
    assert res.converged and res.alpha_in_range and np.all(res.rho > 0) and np.all(res.samples > 0)
    assert abs(float(md.omega[np.argmax(res.rho)]) - 1.93) < 0.4
    assert 0.3 < res.chi2 / 25 < 2.0 and sp.mse(res.rho, md.rho) < 5e-3
    L = np.linalg.cholesky(np.asarray(md.cov))
    Aw, dw = np.linalg.solve(L, np.asarray(md.A)), np.linalg.solve(L, np.asarray(md.data))
    m, w, marg = res.default_model, np.asarray(md.weights), AlphaMarginal(np.asarray(md.weights))

    def F(u):
        x = np.exp(u)
        r = Aw @ (m * x) - dw
        return 0.5 * r @ r + marg(float(np.sum(w * (x - 1 - u))))[0]

    u = np.log(res.rho / m)
    for i in (5, 10, 40):  # the peak, its flank, the tail: a minimum along each coordinate
        e = np.zeros_like(u)
        e[i] = 1e-3
        slope = (F(u + e) - F(u - e)) / 2e-3
        curvature = (F(u + e) - 2 * F(u) + F(u - e)) / 1e-6
        assert curvature > 0 and slope**2 / curvature < 1e-5  # what a Newton step could still gain
    # at eps 1e-2 a solve started at rho = m stopped on the prior's spike there (s = 0, alpha at
    # the top of its range, chi^2/point 2000); from the fixed-alpha start it fits the data
    loud = sp.make_mock(jax.random.key(0), "bw1", eps=1e-2, n_omega=100)
    res = sp.br(loud.A, loud.data, loud.cov, loud.weights)
    assert res.converged and res.alpha_in_range and res.chi2 / 25 < 2.0 and sp.mse(res.rho, loud.rho) < 1e-2
    with pytest.raises(ValueError, match="positive definite"):
        sp.br(md.A, md.data, -md.cov, md.weights)
    with pytest.raises(ValueError, match="alpha_range"):
        sp.br(md.A, md.data, md.cov, md.weights, alpha_range=(1.0, 0.1))
