"""Likelihood of the h-family with exact (analytic) scores: no training involved."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.diffusion.analytic import GaussianMixture, MixtureScore, analytic_model_nll
from bayesqcd.diffusion.likelihood import (log_likelihood, wkb_log_likelihood,
                                           wkb_log_likelihood_batch)
from bayesqcd.diffusion.sampling import sample_h
from bayesqcd.diffusion.sde import VP, ConstantVP, Cosine, Simple

GAUSS = GaussianMixture(jnp.ones(1), jnp.array([[0.5, -1.0]]), jnp.array([[0.6, 0.3]]))
MIX = GaussianMixture(jnp.array([0.2, 0.5, 0.3]),
                      jnp.array([[1.0, 0.5], [-0.5, -1.0], [0.0, 1.2]]),
                      jnp.array([[0.3, 0.2], [0.2, 0.4], [0.25, 0.25]]))
POINTS = jnp.array([[0.1, 0.2], [1.0, -1.0], [-0.4, 1.1], [0.9, 0.6]])


@pytest.mark.parametrize("sde", [Simple(), Cosine(), VP()], ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("data", [GAUSS, MIX], ids=["gaussian", "mixture"])
def test_h0_nll_equals_exact_log_density(sde, data):
    """With the exact score and prior p_T, the PF-ODE density is p_{t_min} exactly."""
    score = MixtureScore(data, sde)
    prior = data.diffused(sde, sde.T)
    ll = jax.jit(jax.vmap(lambda x: log_likelihood(score, sde, x, prior=prior, rtol=1e-8,
                                                   atol=1e-8)))(POINTS)
    exact = jax.vmap(data.diffused(sde, sde.t_min).log_prob)(POINTS)
    np.testing.assert_allclose(ll, exact, atol=1e-4)


def test_hutchinson_is_unbiased():
    sde = Simple()
    score = MixtureScore(MIX, sde)
    x = POINTS[1]
    exact = log_likelihood(score, sde, x, rtol=1e-6, atol=1e-6)
    keys = jax.random.split(jax.random.key(0), 256)
    est = jax.jit(jax.vmap(lambda k: log_likelihood(score, sde, x, rtol=1e-6, atol=1e-6,
                                                    divergence="hutchinson", key=k)))(keys)
    assert float(jnp.std(est)) > 1e-3  # it is a genuine stochastic estimate
    assert abs(float(jnp.mean(est) - exact)) < 4 * float(jnp.std(est)) / 16


def test_bad_likelihood_arguments():
    sde = Simple()
    score = MixtureScore(GAUSS, sde)
    with pytest.raises(ValueError, match="divergence"):
        log_likelihood(score, sde, POINTS[0], divergence="trace")
    with pytest.raises(ValueError, match="needs a PRNG key"):
        log_likelihood(score, sde, POINTS[0], divergence="hutchinson")
    with pytest.raises(ValueError, match="method"):
        wkb_log_likelihood(score, sde, POINTS[0], method="central")
    with pytest.raises(ValueError, match="rtol"):
        log_likelihood(score, sde, POINTS[0], rtol=0.0)
    with pytest.raises(ValueError, match="max_steps"):
        wkb_log_likelihood(score, sde, POINTS[0], max_steps=0)


def test_a_failing_point_gives_nan_and_leaves_the_others_alone():
    """A score that explodes right of x = 10 (PF drift ~ 1e5 t x) overflows the solve of a point
    there: with throw=False that point is NaN, the others are unchanged; with throw=True the
    solve raises at once (collapsed step size), not after max_steps."""
    sde = Simple()
    exact = MixtureScore(MIX, sde)
    score = lambda x, t: exact(x, t) - 1e4 * x * (x[0] > 10.0)
    pts = jnp.concatenate([POINTS[:2], jnp.array([[12.0, 0.0]])])
    wkb = lambda throw: jax.jit(jax.vmap(lambda p: wkb_log_likelihood(
        score, sde, p, rtol=1e-4, atol=1e-4, throw=throw)))
    lq0, c1 = wkb(False)(pts)
    assert np.all(np.isfinite(lq0[:2])) and np.all(np.isfinite(c1[:2]))
    assert np.isnan(lq0[2]) and np.isnan(c1[2])
    throwing = wkb(True)  # one program for the batch without and with the bad point
    ref_lq0, ref_c1 = throwing(pts.at[2].set(POINTS[2]))
    np.testing.assert_allclose(lq0[:2], ref_lq0[:2], rtol=1e-12)
    np.testing.assert_allclose(c1[:2], ref_c1[:2], rtol=1e-12)
    with pytest.raises(Exception, match="minimum step size"):
        throwing(pts)
    ll = jax.jit(jax.vmap(lambda p: log_likelihood(score, sde, p, rtol=1e-4, atol=1e-4,
                                                   throw=False)))(pts)
    assert np.all(np.isfinite(ll[:2])) and np.isnan(ll[2])


def test_runaway_check_refuses_a_finished_but_absurd_solve():
    """An outward push left of x = -3 carries the trajectory of a point there to |x_T| ~ 1e4:
    every solve finishes, log q_0 is absurd; |x_T| beyond prior_radius (7.43 in 2-D) makes it
    NaN (throw=False) or an error (throw=True), and a regular point is untouched."""
    from bayesqcd.diffusion.likelihood import prior_radius

    sde = Simple()
    exact = MixtureScore(GAUSS, sde)
    score = lambda x, t: exact(x, t) - 2.0 * x * (x[0] < -3.0)
    r = prior_radius(2)
    assert r == pytest.approx(np.sqrt(-2 * np.log(1e-12)))  # chi^2_2 tail: exp(-r^2 / 2)
    pts = jnp.array([[0.5, -1.0], [-4.0, 0.0]])
    run = lambda **kw: jax.jit(jax.vmap(lambda p: log_likelihood(score, sde, p, rtol=1e-4,
                                                                 atol=1e-4, **kw)))(pts)
    free, checked = run(), run(max_radius=r, throw=False)
    assert free[1] < -1e6 and np.isnan(checked[1]) and checked[0] == free[0]
    with pytest.raises(Exception, match="ran away"):
        run(max_radius=r)
    with pytest.raises(ValueError, match="max_radius"):
        log_likelihood(score, sde, pts[0], max_radius=0.0)
    with pytest.raises(ValueError, match="inner_tol"):
        wkb_log_likelihood(score, sde, pts[0], inner_tol=1e-5)  # adjoint: no inner solve


# The paper's 1-D analytic model: data N(0, v0), f = -beta x/2, g = sqrt(beta),
# score model s = -(1 + eps) x / v_t, prior N(0, 1).
V0, BETA, T = 2.0, 1.0, 5.0
SDE1 = ConstantVP(beta=BETA, T=T)
DATA1 = GaussianMixture(jnp.ones(1), jnp.zeros((1, 1)), jnp.full((1, 1), np.sqrt(V0)))


def closed_nll(x0, h, eps):
    return analytic_model_nll(x0, h, v0=V0, eps=eps, beta=BETA, T=T)


def test_closed_form_reduces_to_data_density():
    """eps = 0, h = 0 and prior var v_T: the NLL is -log N(x0; 0, v0)."""
    vT = 1 + (V0 - 1) * np.exp(-BETA * T)
    nll = analytic_model_nll(0.7, 0.0, v0=V0, eps=0.0, beta=BETA, T=T, prior_var=vT)
    assert float(nll) == pytest.approx(0.5 * np.log(2 * np.pi * V0) + 0.49 / (2 * V0), rel=1e-12)


@pytest.mark.parametrize("eps", [0.1, -0.2])
def test_closed_form_variance_matches_h_process_samples(eps):
    """The closed-form variance w_0(h) is that of samples of the (wrong-score) h-process."""
    h = 0.5
    score = MixtureScore(DATA1, SDE1, eps)
    x = sample_h(score, SDE1, jax.random.key(3), 40000, h, shape=(1,), method="euler",
                 n_steps=400)
    # w_0 from the closed form: NLL(x0) - NLL(0) = x0^2 / (2 w_0)
    w0 = 1.0 / (2.0 * (closed_nll(1.0, h, eps) - closed_nll(0.0, h, eps)))
    var = float(jnp.var(x))
    assert var == pytest.approx(float(w0), rel=4 * np.sqrt(2 / 40000) + 0.01)


@pytest.mark.parametrize("method,eps", [("adjoint", 0.1), ("adjoint", -0.2), ("fd", 0.1),
                                        pytest.param("autodiff", 0.1, marks=pytest.mark.slow)])
def test_wkb_coefficient_is_h_derivative_of_closed_form(method, eps):
    """One case per nested method: their compilation is slow (autodiff through both solves,
    ~70 s on 2 loaded cores, runs with the slow tests)."""
    score = MixtureScore(DATA1, SDE1, eps)
    xs = jnp.array([[0.0], [0.7], [-1.9]])
    bs = 1 if method == "adjoint" else None  # a compiled loop over points, or vmap
    lq0, c1 = jax.jit(lambda p: wkb_log_likelihood_batch(score, SDE1, p, batch_size=bs,
                                                         method=method, rtol=1e-7, atol=1e-7))(xs)
    nll0 = jax.vmap(lambda x: closed_nll(x, 0.0, eps))(xs[:, 0])
    slope = jax.vmap(jax.grad(closed_nll, argnums=1), in_axes=(0, None, None))(xs[:, 0], 0.0, eps)
    np.testing.assert_allclose(-lq0, nll0, atol=1e-5)
    tol = 1e-3 if method == "fd" else 1e-5
    np.testing.assert_allclose(-c1, slope, atol=tol)
    if method == "adjoint" and eps > 0:
        # beyond first order: NLL(h) - [NLL(0) + h NLL'(0)] = O(h^2) (quarters when h halves)
        res = [float(closed_nll(0.7, h, eps) - (-lq0[1] - h * c1[1])) for h in (0.1, 0.05)]
        assert res[0] / res[1] == pytest.approx(4.0, rel=0.1)


def test_exact_score_has_zero_first_order_coefficient_in_2d():
    """With the exact score and prior, every h-process has the data marginal: c_1 = 0;
    a wrong score (eps != 0) gives c_1 != 0, and the adjoint sweep agrees with the paper's
    nested finite differences."""
    sde = Simple()
    prior = MIX.diffused(sde, sde.T)
    x = POINTS[0:1]
    # eps as an array leaf: the exact and the wrong score share one compilation
    adjoint = eqx.filter_jit(lambda sc, pts: jax.vmap(lambda p: wkb_log_likelihood(
        sc, sde, p, prior=prior, rtol=1e-7, atol=1e-7))(pts))
    _, c1 = adjoint(MixtureScore(MIX, sde, jnp.asarray(0.0)), x)
    np.testing.assert_allclose(c1, 0.0, atol=1e-4)
    wrong = MixtureScore(MIX, sde, 0.1)
    _, c_adj = adjoint(MixtureScore(MIX, sde, jnp.asarray(0.1)), x)
    _, c_fd = jax.jit(jax.vmap(lambda p: wkb_log_likelihood(wrong, sde, p, prior=prior,
                                                            method="fd", fd_step=1e-3,
                                                            rtol=1e-6, atol=1e-6)))(x)
    assert float(jnp.min(jnp.abs(c_adj))) > 0.05
    # FD errors: O(fd_step^2) truncation plus O(tol / fd_step^2) from the inner solves
    np.testing.assert_allclose(c_adj, c_fd, rtol=5e-3)
