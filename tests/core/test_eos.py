"""Equations of state: thermodynamic consistency, parametrizations, and clear errors on bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesqcd import eos as E
from bayesqcd import units

MEV = units.MEV_FM3_TO_KM2


def _dense(table, n=20001):
    t = jnp.linspace(0.0, float(table.t_max) * 0.999, n)
    eps, p, lam = table(t)
    return np.asarray(t), np.asarray(eps), np.asarray(p), np.asarray(lam)


@pytest.mark.parametrize("table", [E.named("SLy"), E.sound_speed(jnp.array([0.4, 0.0, 0.7, 0.6, 0.5]))],
                         ids=["SLy", "cs2-with-transition"])
def test_first_law_along_the_table(table):
    """dh = dp / (eps + p): the tabulated h equals the integral of dp / (eps + p)."""
    t, eps, p, _ = _dense(table)
    h_int = np.concatenate([[0.0], np.cumsum(np.diff(p) / (0.5 * (eps[1:] + p[1:] + eps[:-1] + p[:-1])))])
    h_tab = np.asarray(jnp.interp(jnp.asarray(t), table.t_nodes.reshape(-1), table.h.reshape(-1)))
    assert np.max(np.abs(h_int - h_tab)) < 2e-4 * h_tab.max()


def test_sound_speed_segments_are_recovered():
    """dp/deps inside each segment equals the c_s^2 given, including 0 (a first-order transition)."""
    cs2 = np.array([0.3, 0.0, 0.6, 0.8, 0.5])
    table = E.sound_speed(jnp.asarray(cs2))
    bounds = E.default_bounds(5)
    n = np.asarray(table.n).reshape(-1)
    c = np.asarray(table.cs2).reshape(-1)
    for k in range(5):
        inside = (n > bounds[k] * 1.02) & (n < bounds[k + 1] * 0.98)
        assert inside.sum() > 10
        np.testing.assert_allclose(c[inside], cs2[k], rtol=1e-4, atol=1e-9)
    # the plateau: pressure constant, energy density rising by mu * Delta n
    inside = (n > bounds[1]) & (n < bounds[2])
    p = np.asarray(table.p).reshape(-1)[inside]
    assert np.ptp(p) < 1e-10 * p.mean()


def test_polytrope_pressure_at_rho1():
    """p(rho1 = 10^14.7 g/cm^3) = 10^log10_p1 dyn/cm^2 by construction (Read et al. 2009)."""
    table = E.named("SLy")
    rho1_n = 10**14.7 / units.M_BARYON_G * units.FM_CM**3
    p = np.interp(rho1_n, np.asarray(table.n).reshape(-1), np.asarray(table.p).reshape(-1))
    assert abs(p / (10**34.384 * units.DYN_CM2_TO_KM2) - 1) < 1e-4


def test_build_is_jittable_vmappable_differentiable():
    build = jax.jit(jax.vmap(lambda c: E.sound_speed(c).p[-1, -1]))
    cs2 = jnp.array([[0.3, 0.4, 0.5, 0.6, 0.7], [0.5, 0.5, 0.5, 0.5, 0.5]])
    assert build(cs2).shape == (2,)
    g = jax.grad(lambda c: E.sound_speed(c).p[-1, -1])(cs2[0])
    assert np.all(np.asarray(g) > 0)  # stiffer segments raise the top pressure


@pytest.mark.parametrize("args, match", [
    ((34.3, 0.9, 3.0, 3.0), r"Gamma1 = 0.9 is outside the valid range \(1.0, 8.0\]"),
    ((37.0, 3.0, 3.0, 3.0), r"log10_p1 = 37.0 is outside the valid range \[32.5, 36.0\]"),
    ((33.0, 1.2, 3.0, 3.0), r"crust-core junction density"),
])
def test_polytrope_errors_name_parameter_value_and_range(args, match):
    with pytest.raises(ValueError, match=match):
        E.piecewise_polytrope(*args)


def test_sound_speed_errors():
    with pytest.raises(ValueError, match=r"cs2\[1\] = 1.2 is outside the valid range \[0.0, 1.0\]"):
        E.sound_speed([0.3, 1.2, 0.5])
    with pytest.raises(ValueError, match=r"n_bounds must have len\(cs2\) \+ 1 = 3"):
        E.sound_speed([0.3, 0.4], n_bounds=[0.176, 0.5])


def _write(tmp_path, rows, name="eos.txt"):
    path = tmp_path / name
    path.write_text("# n eps p\n" + "\n".join(rows) + "\n")
    return path


GOOD = ["0.01 9.4 0.001", "0.05 47.5 0.1", "0.16 152.0 2.5", "0.32 310.0 30.0", "0.64 680.0 200.0"]


def test_table_file_loads_and_matches_arrays(tmp_path):
    path = _write(tmp_path, GOOD)
    a = E.from_file(path)
    data = np.loadtxt(path)
    b = E.from_arrays(data[:, 0], data[:, 1], data[:, 2])
    np.testing.assert_allclose(np.asarray(a.p), np.asarray(b.p))
    assert bool(a.valid)


@pytest.mark.parametrize("rows, match", [
    (GOOD[:2] + ["0.16 152.0 abc"] + GOOD[3:], r"line 4: column p = 'abc' is not a number"),
    (GOOD[:2] + ["0.16 152.0"] + GOOD[3:], r"line 4: expected 3 columns"),
    (GOOD[:2] + ["0.16 152.0 -2.5"] + GOOD[3:], r"line 4: p = -2.5 must be finite and non-negative"),
    (GOOD[:3] + ["0.12 310.0 30.0"] + GOOD[4:], r"line 5: non-monotonic table, n = 0.12"),
    (GOOD[:3] + ["0.32 160.0 30.0"] + GOOD[4:], r"line 5: acausal table, c_s\^2 = dp/deps = 3.4"),
])
def test_table_file_errors_name_file_line_and_value(tmp_path, rows, match):
    path = _write(tmp_path, rows)
    with pytest.raises(ValueError, match=match) as err:
        E.from_file(path)
    assert str(path) in str(err.value)


def test_missing_table_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        E.from_file(tmp_path / "nope.txt")


def test_polytrope_under_jit_equals_eager():
    """Knots are found under jit too (XLA may round the two copies of a knot differently)."""
    args = (34.57081156, 2.66441128, 2.43783968, 3.73931478)
    eager = E.piecewise_polytrope(*args, n_grid=256)
    traced = jax.jit(lambda *a: E.piecewise_polytrope(*a, n_grid=256))(*args)
    assert bool(eager.valid) and bool(traced.valid)
    np.testing.assert_allclose(np.asarray(traced.p), np.asarray(eager.p), rtol=1e-12)
