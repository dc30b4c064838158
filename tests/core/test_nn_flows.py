"""Fused spline coupling flows (bayesqcd.nn.flows): exact bijections with exact log-determinants
and normalized densities, whatever their parameters."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd.nn.flows import SplineCoupling, coupling_flow, fixed_entries, rational_quadratic

F64 = {"dtype": "float64"}  # float64 networks: round trips to 1e-10 (float32 ones round the spline parameters)


def _randomized(flow, key, scale=0.15):
    """The flow with every float parameter moved by N(0, scale^2): far from the identity it
    starts at, with uneven bins and derivatives."""
    params, static = eqx.partition(flow, eqx.is_inexact_array)
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    leaves = [x + scale * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)]
    return eqx.combine(jax.tree_util.tree_unflatten(tree, leaves), static)


@pytest.mark.parametrize("dim, cond_dim, knots", [(1, 2, 8), (3, 5, 8), (4, None, 5), (3, 5, 0)])
def test_layers_invert_exactly_with_the_jacobian_log_determinant(dim, cond_dim, knots):
    flow = _randomized(coupling_flow(jax.random.key(0), dim, cond_dim, layers=3, knots=knots, interval=3.0, **F64),
                       jax.random.key(1))
    c = None if cond_dim is None else jax.random.normal(jax.random.key(2), (cond_dim,))
    # points inside the splines' interval, near its ends and outside it (identity there)
    for x in jax.random.normal(jax.random.key(3), (6, dim)) * jnp.array([0.5, 1.0, 2.0, 2.9, 4.0, 8.0])[:, None]:
        y, log_det = flow.bijection.transform_and_log_det(x, c)
        back, inv_log_det = flow.bijection.inverse_and_log_det(y, c)
        jac = jax.jacfwd(lambda v: flow.bijection.transform(v, c))(x)
        assert np.allclose(back, x, rtol=0, atol=1e-10), (x, back)
        assert np.isclose(log_det, np.linalg.slogdet(np.asarray(jac))[1], rtol=0, atol=1e-9)
        assert np.isclose(inv_log_det, -log_det, rtol=0, atol=1e-9)
    # the batched (feature-first) path gives the per-draw numbers
    xs = jax.random.normal(jax.random.key(6), (5, dim)) * 2.0
    cs = None if cond_dim is None else jnp.broadcast_to(c, (5, cond_dim))
    per_draw = jnp.stack([flow._log_prob(v, c) for v in xs])
    assert np.allclose(flow.log_prob(xs, cs), per_draw, rtol=1e-12, atol=1e-10)
    assert np.allclose(flow.log_prob(xs, c), per_draw, rtol=1e-12, atol=1e-10)  # one condition for all


def test_a_new_flow_is_the_identity_and_densities_integrate_to_one():
    flow = coupling_flow(jax.random.key(0), 2, 1, layers=2, **F64)
    x = jnp.array([0.3, -1.7])
    y, log_det = flow.bijection.transform_and_log_det(x, jnp.ones(1))
    assert np.allclose(y, x, atol=1e-12) and abs(float(log_det)) < 1e-12
    # randomized flows: densities integrate to 1 (the tails beyond |x| = 9 hold < 1e-15)
    flow = _randomized(flow, jax.random.key(4), scale=0.1)
    g = jnp.linspace(-9.0, 9.0, 1201)
    xy = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    p = jnp.exp(flow.log_prob(xy, jnp.full((xy.shape[0], 1), 0.4))).reshape(g.size, g.size)
    total = float(jnp.trapezoid(jnp.trapezoid(p, g, axis=1), g))
    assert abs(total - 1.0) < 1e-3, total
    flow_1d = _randomized(coupling_flow(jax.random.key(1), 1, 2, layers=3, **F64), jax.random.key(6), scale=0.1)
    g = jnp.linspace(-9.0, 9.0, 400_001)
    for c in ([0.0, 0.0], [1.0, -2.0]):
        p = jnp.exp(flow_1d.log_prob(g[:, None], jnp.asarray(c)))
        assert abs(float(jnp.trapezoid(p, g)) - 1.0) < 1e-6
    # draws follow the density: sample_and_log_prob agrees with log_prob at the draws
    z, lp = flow.sample_and_log_prob(jax.random.key(5), (500,), condition=jnp.array([0.4]))
    assert np.allclose(lp, flow.log_prob(z, jnp.array([0.4])), rtol=0, atol=1e-9)


def test_spline_maps_the_interval_onto_itself_monotonically_with_unit_slope_at_its_ends():
    params = jax.random.normal(jax.random.key(0), (3 * 7 - 1,)) * 2.0  # one spline of 7 bins
    x = jnp.linspace(-2.5, 2.5, 2001)
    y, deriv = rational_quadratic(x, jnp.broadcast_to(params[:, None], (params.size, x.size)), 2.0)
    assert np.all(np.diff(y) > 0) and np.all(deriv > 0)
    assert np.allclose(y[np.abs(x) > 2.0], x[np.abs(x) > 2.0])
    assert np.allclose(rational_quadratic(jnp.array([-2.0, 2.0]), jnp.broadcast_to(params[:, None], (params.size, 2)),
                                          2.0)[0], [-2.0, 2.0], rtol=0, atol=1e-14)
    ends = jnp.array([-2.0 + 1e-7, 2.0 - 1e-7])
    assert np.allclose(rational_quadratic(ends, jnp.broadcast_to(params[:, None], (params.size, 2)), 2.0)[1], 1.0,
                       atol=1e-5)
    dy = jax.vmap(jax.grad(lambda v: rational_quadratic(v, params, 2.0)[0]))(x)
    off_ends = np.abs(np.abs(x) - 2.0) > 1e-12  # (clip's subgradient at the ends themselves is 1/2)
    assert np.allclose(dy[off_ends], deriv[off_ends], rtol=1e-10, atol=0)
    back, inv_deriv = rational_quadratic(y, jnp.broadcast_to(params[:, None], (params.size, x.size)), 2.0, inverse=True)
    assert np.allclose(back, x, rtol=0, atol=1e-12) and np.allclose(inv_deriv * deriv, 1.0, rtol=1e-10)


def test_every_entry_is_moved_and_conditions_in_turn():
    for dim in (2, 3, 5, 8):
        layers = [fixed_entries(dim, i) for i in range(4)]
        assert all(len(f) == dim // 2 for f in layers)
        assert set().union(*layers) == set(range(dim))  # each entry conditions some layer
        assert set().union(*(set(range(dim)) - set(f) for f in layers)) == set(range(dim))  # each is moved
    assert fixed_entries(1, 0) == ()
    with pytest.raises(ValueError, match="fixed"):
        SplineCoupling(jax.random.key(0), 3, None, (0, 1, 2))
