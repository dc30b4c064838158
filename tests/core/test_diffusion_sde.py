"""Schedules, data sets, networks and the W2 metric of bayesqcd.diffusion."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.diffusion.data import gaussians25, make_data
from bayesqcd.diffusion.metrics import wasserstein2
from bayesqcd.diffusion.sde import VP, ConstantVP, Cosine, Simple, get_sde
from bayesqcd.nn.score_nets import MLPScore, UNetScore

SDES = [Simple(), Cosine(), VP(), ConstantVP(beta=2.0, T=3.0)]


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_alpha_sigma_solve_the_moment_odes(sde):
    """d log(alpha)/dt = f and d sigma^2/dt = 2 f sigma^2 + g^2 (variance preserving)."""
    ts = jnp.linspace(0.05, 0.95 * sde.T, 7)
    dlog_a = jax.vmap(jax.grad(sde.log_alpha))(ts)
    np.testing.assert_allclose(dlog_a, jax.vmap(sde.f)(ts), rtol=1e-10)
    ds2 = jax.vmap(jax.grad(sde.sigma2))(ts)
    rhs = 2 * jax.vmap(sde.f)(ts) * jax.vmap(sde.sigma2)(ts) + jax.vmap(sde.g2)(ts)
    np.testing.assert_allclose(ds2, rhs, rtol=1e-9)
    assert float(sde.alpha(0.0)) == pytest.approx(1.0)


def test_paper_schedule_values():
    assert float(Simple().alpha(1.0)) == pytest.approx(np.exp(-5.0))
    assert float(Cosine().alpha(0.5)) == pytest.approx(np.cos(np.pi / 4))
    assert Cosine().T == pytest.approx(1 - 1e-3)
    assert float(VP().g2(1.0)) == pytest.approx(20.0)


def test_bad_schedules_are_refused():
    with pytest.raises(ValueError, match="beta"):
        Simple(beta=-1.0)
    with pytest.raises(ValueError, match="T"):
        Cosine(T=1.0)
    with pytest.raises(ValueError, match="sde must be one of"):
        get_sde("linear")


def test_data_sets():
    x = make_data("25gauss", jax.random.key(0), 5000)
    centres = np.asarray(gaussians25().means)
    d = np.min(np.linalg.norm(np.asarray(x)[:, None] - centres[None], axis=-1), axis=1)
    assert np.sqrt(np.mean(d**2) / 2) == pytest.approx(0.05 / 2.828, rel=0.05)
    assert centres.max() == pytest.approx(4 / 2.828)
    r = make_data("swiss-roll", jax.random.key(1), 5000)
    radius = np.linalg.norm(np.asarray(r), axis=1) * 6.865
    assert radius.min() > 1.5 * np.pi - 2.5 and radius.max() < 4.5 * np.pi + 2.5
    with pytest.raises(ValueError, match="data must be one of"):
        make_data("moons", jax.random.key(0))


def test_wasserstein2_exact_cases():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    shift = np.array([0.3, -0.4])
    assert wasserstein2(x, x + shift) == pytest.approx(0.5, rel=1e-12)
    assert wasserstein2(x, x[rng.permutation(200)]) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="equal shapes"):
        wasserstein2(x, x[:10])


def test_networks_jit_vmap_grad():
    m = MLPScore(key=jax.random.key(0))
    x = jnp.ones((5, 2))
    out = jax.jit(jax.vmap(m))(x, jnp.linspace(0, 1, 5))
    assert out.shape == (5, 2) and bool(jnp.all(jnp.isfinite(out)))
    img = jax.random.normal(jax.random.key(2), (3, 1, 8, 8))

    @eqx.filter_jit
    def check(key, img):  # one compiled call: eager op-by-op U-Net calls are slow on CPU
        u = UNetScore(channels=1, width=4, key=key)
        out = jax.vmap(u)(img, jnp.array([0.1, 0.5, 0.9]))
        rolled = u(jnp.roll(img[0], 4, axis=2), 0.3) - jnp.roll(u(img[0], 0.3), 4, axis=2)
        return out, rolled

    out, rolled = check(jax.random.key(1), img)
    assert out.shape == img.shape and bool(jnp.all(jnp.isfinite(out)))
    # periodic padding: translating the field by a multiple of 4 translates the output
    np.testing.assert_allclose(rolled, 0.0, atol=1e-10)
