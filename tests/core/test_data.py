"""Tests of bayesqcd.data: shipped observations, split normals, sample files, the M-R likelihood."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import gaussian_kde

from bayesqcd.data import (
    MRSamples,
    SplitNormal,
    load_mr_samples,
    load_observations,
    max_asymmetry,
    mock_mr_observations,
    mr_likelihood,
    read_measurements,
    split_normal_from_quantiles,
    two_piece_from_quantiles,
)
from bayesqcd.data.distributions import two_piece_cdf

# --------------------------------------------------------------------------- shipped table


def test_shipped_table_default_sources_and_values():
    obs = load_observations()
    names = [s.name for s in obs.mr]
    assert names == ["PSR J0030+0451", "PSR J0740+6620", "PSR J0437-4715", "PSR J1231-1411",
                     "PSR J0614-3329"]
    rows = {(m.kind, m.name, m.quantity): m for _, m in read_measurements()}
    # numbers of REFERENCE.md section 2 (medians, absolute interval ends)
    j0030 = rows[("mr", "PSR J0030+0451", "M")]
    assert (j0030.median, j0030.lower, j0030.upper, j0030.cl) == (1.34, 1.18, 1.49, 0.68)
    assert "Riley" in j0030.source and "887 L21" in j0030.source
    r0740 = rows[("mr", "PSR J0740+6620", "R")]
    assert (r0740.median, r0740.lower, r0740.upper) == (12.39, 11.41, 13.69)
    r0614 = rows[("mr", "PSR J0614-3329", "R")]
    assert r0614.median == 10.29 and r0614.upper - r0614.median == pytest.approx(1.01)
    assert r0614.median - r0614.lower == pytest.approx(0.86)
    m0437 = rows[("mr", "PSR J0437-4715", "M")]
    assert m0437.median == 1.418 and m0437.upper - m0437.median == pytest.approx(0.037)
    assert rows[("mr", "PSR J0030+0451 [Miller+2019]", "R")].median == 13.02
    assert rows[("radio", "PSR J0348+0432 [Saffer+2024]", "M")].median == 1.806
    gw = rows[("tidal", "GW170817", "Lambda_1.4")]
    assert (gw.median, gw.lower, gw.upper, gw.cl, gw.use) == (190, 70, 580, 0.90, 1)
    assert all(m.source for m in rows.values())
    # radio and tidal defaults
    assert [(r.name, r.mean) for r in obs.radio] == [("PSR J0348+0432", 2.01)]
    assert obs.radio[0].sigma == pytest.approx(0.04 / 0.994458, rel=1e-5)   # +-0.04 at 68%
    assert [(t.name, t.quantity) for t in obs.tidal] == [("GW170817", "Lambda_1.4")]
    alt = load_observations(include_alternatives=True)
    assert len(alt.mr) == 7 and len(alt.radio) == 3 and len(alt.tidal) == 2
    json.dumps(alt.table())


def test_shipped_table_every_interval_reproduced_exactly():
    """Every fitted two-piece normal has the published median and interval ends as quantiles."""
    obs = load_observations(include_alternatives=True)
    for s in obs.mr:
        for row in s.rows:
            tp = s.M if row.quantity == "M" else s.R
            q = two_piece_cdf([row.lower, row.median, row.upper], tp.loc, tp.scale_lo,
                              tp.scale_hi, tp.p_lo)
            np.testing.assert_allclose(q, [(1 - row.cl) / 2, 0.5, (1 + row.cl) / 2], atol=1e-8)
    # the asymmetric GW170817 interval is not symmetrized: Lambda_1.4 = 190 +390/-120 (90%)
    tp = obs.tidal[0].dist
    q = two_piece_cdf([70.0, 190.0, 580.0], tp.loc, tp.scale_lo, tp.scale_hi, tp.p_lo)
    np.testing.assert_allclose(q, [0.05, 0.5, 0.95], atol=1e-8)
    # region() returns the published 68% box
    j0030 = obs.mr[0]
    np.testing.assert_allclose(j0030.region(0.68), (1.18, 1.49, 11.52, 13.85), atol=1e-8)


# --------------------------------------------------------------------------- split normal


@pytest.mark.parametrize("median,lower,upper,cl", [
    (12.39, 11.41, 13.69, 0.68), (1.44, 1.37, 1.50, 0.68), (300.0, 70.0, 720.0, 0.90),
    (0.0, -1.0, 1.0, 0.5), (11.36, 10.73, 12.31, 0.68)])
def test_split_normal_from_quantiles_matches_three_quantiles(median, lower, upper, cl):
    loc, s_lo, s_hi = split_normal_from_quantiles(median, lower, upper, cl)
    p_lo = s_lo / (s_lo + s_hi)
    q = two_piece_cdf([lower, median, upper], loc, s_lo, s_hi, p_lo)
    np.testing.assert_allclose(q, [(1 - cl) / 2, 0.5, (1 + cl) / 2], atol=1e-8)
    d = SplitNormal(loc, s_lo, s_hi)
    np.testing.assert_allclose(d.cdf(jnp.array([lower, median, upper])),
                               [(1 - cl) / 2, 0.5, (1 + cl) / 2], atol=1e-8)
    asym = (upper - median) - (median - lower)
    if abs(asym) > 1e-9:
        # the mode is not the median, and lies on the short side
        assert abs(loc - median) > 1e-3 * (upper - lower)
        assert np.sign(median - loc) == np.sign(asym)
    else:
        assert loc == pytest.approx(median, abs=1e-10) and s_lo == pytest.approx(s_hi)


def test_split_normal_unreachable_asymmetry_and_median_split_fallback():
    assert max_asymmetry(0.68) == pytest.approx(1.5459, abs=1e-4)
    with pytest.raises(ValueError, match="asymmetry ratio"):
        split_normal_from_quantiles(190.0, 70.0, 580.0, 0.90)       # ratio 3.25 > 2.10
    loc, s_lo, s_hi, p_lo = two_piece_from_quantiles(190.0, 70.0, 580.0, 0.90)
    assert (loc, p_lo) == (190.0, 0.5)
    np.testing.assert_allclose(two_piece_cdf([70.0, 190.0, 580.0], loc, s_lo, s_hi, p_lo),
                               [0.05, 0.5, 0.95], atol=1e-12)
    with pytest.raises(ValueError, match="lower < median < upper"):
        split_normal_from_quantiles(1.0, 1.2, 1.5, 0.68)
    with pytest.raises(ValueError, match="cl"):
        split_normal_from_quantiles(1.0, 0.8, 1.5, 1.2)


def test_split_normal_density_formula_normalization_and_shapes():
    loc, s_lo, s_hi = 1.0, 0.5, 2.0
    d = SplitNormal(loc, s_lo, s_hi)
    x = jnp.array([-0.3, 1.0, 4.2])
    a = math.sqrt(2 / math.pi) / (s_lo + s_hi)
    hand = [a * math.exp(-(-1.3) ** 2 / (2 * s_lo**2)), a, a * math.exp(-3.2**2 / (2 * s_hi**2))]
    np.testing.assert_allclose(np.exp(d.log_prob(x)), hand, rtol=1e-12)
    for dd in (d, SplitNormal(loc, s_lo, s_hi, 0.5)):   # each half separately (a jump at loc)
        lp = jax.jit(dd.log_prob)
        left = quad(lambda t: math.exp(float(lp(t))), -np.inf, loc, epsabs=1e-12)[0]
        right = quad(lambda t: math.exp(float(lp(t))), loc, np.inf, epsabs=1e-12)[0]
        assert left + right == pytest.approx(1.0, abs=1e-8)
        assert left == pytest.approx(float(dd.p_lo), abs=1e-8)
    # batch shapes broadcast
    b = SplitNormal(jnp.zeros((3, 1)), jnp.ones(2), 2.0)
    assert b.batch_shape == (3, 2) and b.log_prob(0.5).shape == (3, 2)
    s = b.sample(jax.random.key(0), (5,))
    assert s.shape == (5, 3, 2)
    # sample moments against the closed-form mean and variance
    xs = d.sample(jax.random.key(1), (400_000,))
    assert float(jnp.mean(xs)) == pytest.approx(float(d.mean), abs=0.01)
    assert float(jnp.var(xs)) == pytest.approx(float(d.variance), rel=0.01)
    np.testing.assert_allclose(d.icdf(d.cdf(x)), x, atol=1e-10)


def test_split_normal_rejects_bad_scales_and_works_in_jit():
    with pytest.raises(ValueError, match=r"scale_lo must be > 0.*-0\.5"):
        SplitNormal(0.0, -0.5, 1.0)
    with pytest.raises(ValueError, match="scale_hi"):
        SplitNormal(0.0, 1.0, jnp.array([1.0, 0.0]))
    f = jax.jit(lambda s: SplitNormal(0.0, s, 1.0).log_prob(-1.0))
    assert float(f(2.0)) == pytest.approx(math.log(math.sqrt(2 / math.pi) / 3) - 1 / 8, rel=1e-12)
    g = jax.grad(lambda m: SplitNormal(m, 0.3, 0.7).log_prob(1.0))(0.5)
    assert float(g) == pytest.approx((1.0 - 0.5) / 0.7**2, rel=1e-10)   # right half: s_hi


# --------------------------------------------------------------------------- KDE and likelihood


def _correlated_samples(n, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2))
    m = 1.4 + 0.08 * z[:, 0]
    r = 12.0 + 0.7 * (0.8 * z[:, 0] + 0.6 * z[:, 1])
    return m, r


def test_kde_matches_scipy_normalizes_and_peaks_at_mean():
    m, r = _correlated_samples(600)
    s = MRSamples("toy", m, r, "toy")
    pts_m, pts_r = np.array([1.3, 1.4, 1.55]), np.array([11.5, 12.0, 12.8])
    np.testing.assert_allclose(s.log_density(pts_m, pts_r),
                               gaussian_kde(np.stack([m, r])).logpdf(np.stack([pts_m, pts_r])),
                               rtol=1e-10)
    lik = mr_likelihood(mock_mr_observations([1.0], [10.0], 0).with_samples(new=(s,)))
    mg = np.linspace(0.9, 1.9, 201)
    rg = np.linspace(8.5, 15.5, 201)
    mm, rr = np.meshgrid(mg, rg, indexing="ij")
    dens = np.exp(np.asarray(lik.log_prob(jnp.asarray(mm), jnp.asarray(rr)))[1])
    assert np.trapezoid(np.trapezoid(dens, rg, axis=1), mg) == pytest.approx(1.0, abs=2e-3)
    i, j = np.unravel_index(np.argmax(dens), dens.shape)
    assert abs(mg[i] - m.mean()) < 0.02 and abs(rg[j] - r.mean()) < 0.2
    cd = s.contour_data(n_grid=40)
    assert cd["density"].shape == (40, 40) and cd["thresholds"][0] < cd["thresholds"][1]


def test_mixed_likelihood_shapes_order_padding_jit_vmap_grad():
    obs = load_observations()
    m1, r1 = _correlated_samples(300, seed=1)
    m2, r2 = _correlated_samples(120, seed=2)
    sa = MRSamples("PSR J0030+0451", m1, r1, "a")       # replaces the Riley+2019 summary
    sb = MRSamples("extra", m2 + 0.4, r2 - 0.5, "b")     # appended
    obs2 = obs.with_samples(sa, new=(sb,))
    lik = mr_likelihood(obs2)
    assert lik.names == ("PSR J0740+6620", "PSR J0437-4715", "PSR J1231-1411", "PSR J0614-3329",
                         "PSR J0030+0451", "extra")
    K = 7
    M = jnp.linspace(1.0, 2.1, K)
    R = jnp.linspace(13.0, 11.0, K)
    out = lik.log_prob(M, R)
    assert out.shape == (6, K) and bool(jnp.all(jnp.isfinite(out)))
    # padding does not change a KDE source: compare with each sample source alone
    for k, s in ((4, sa), (5, sb)):
        np.testing.assert_allclose(out[k], s.log_density(np.asarray(M), np.asarray(R)), rtol=1e-10)
    # summary sources: product of the two marginal split normals
    j0437 = obs.mr[2]
    ref = (j0437.M.distribution().log_prob(M) + j0437.R.distribution().log_prob(R))
    np.testing.assert_allclose(out[1], ref, rtol=1e-12)
    # jit, vmap over a batch of curves, grad w.r.t. M and R (against central differences)
    f = jax.jit(lambda lk, m, r: lk.log_prob(m, r))
    np.testing.assert_allclose(f(lik, M, R), out, rtol=1e-12)
    Mb = jnp.stack([M, M + 0.05, M - 0.05])
    assert jax.vmap(lik.log_prob)(Mb, jnp.stack([R] * 3)).shape == (3, 6, K)
    tot = jax.jit(lambda m, r: jnp.sum(lik.log_prob(m, r)))
    gm, gr = jax.grad(tot, argnums=(0, 1))(M, R)
    assert bool(jnp.all(jnp.isfinite(gm)) & jnp.all(jnp.isfinite(gr)))
    h = 1e-6
    e = jnp.zeros(K).at[3].set(h)
    assert float(gm[3]) == pytest.approx(float(tot(M + e, R) - tot(M - e, R)) / (2 * h), rel=1e-5)
    assert float(gr[3]) == pytest.approx(float(tot(M, R + e) - tot(M, R - e)) / (2 * h), rel=1e-5)
    # only summaries / only samples
    assert mr_likelihood(obs).log_prob(M, R).shape == (5, K)
    only = mr_likelihood(type(obs)((sa,)))
    assert only.log_prob(M, R).shape == (1, K)


def test_mock_observations_scatter_and_determinism():
    n = 4000
    m_true, r_true = np.full(n, 1.4), np.full(n, 12.0)
    obs = mock_mr_observations(m_true, r_true, 3, sigma_M=0.1, sigma_R=0.7)
    zm = np.array([(s.M.loc - 1.4) / 0.1 for s in obs.mr])
    zr = np.array([(s.R.loc - 12.0) / 0.7 for s in obs.mr])
    for z in (zm, zr):
        assert abs(z.mean()) < 4 / math.sqrt(n) and abs(z.std() - 1) < 0.05
    again = mock_mr_observations(m_true[:3], r_true[:3], 3)
    assert [s.M.loc for s in again.mr] == [s.M.loc for s in obs.mr[:3]]
    k = mock_mr_observations([1.4, 2.0], [12.0, 11.5], jax.random.key(0), names=["a", "b"])
    assert k.names == ("a", "b") and mr_likelihood(k).log_prob(jnp.ones(3), jnp.ones(3)).shape == (2, 3)
    with pytest.raises(ValueError, match="sigma_R"):
        mock_mr_observations([1.4], [12.0], 0, sigma_R=0.0)
    exact = mock_mr_observations([1.4, 2.0], [12.0, 11.5], 3, sigma_M=0.1, sigma_R=0.7, scatter=False)
    assert [(s.M.loc, s.R.loc, s.M.scale_lo, s.R.scale_hi) for s in exact.mr] == [(1.4, 12.0, 0.1, 0.7), (2.0, 11.5, 0.1, 0.7)]


# --------------------------------------------------------------------------- malformed tables

HEADER = "kind,name,quantity,median,lower,upper,cl,use,source"
GOOD_M = "mr,A,M,1.4,1.3,1.5,0.68,1,src"
GOOD_R = "mr,A,R,12.0,11.0,13.0,0.68,1,src"


@pytest.mark.parametrize("lines,line,column", [
    (["kind,name,quantity,median,lower,upper,cl,use", GOOD_M, GOOD_R], 2, "source"),
    ([HEADER + ",note", GOOD_M, GOOD_R], 2, "note"),
    ([HEADER, GOOD_M, "mr,A,R,12.0,11.0,13.0,0.68,1"], 4, "source"),
    ([HEADER, GOOD_M, GOOD_R + ",x"], 4, "#10"),
    ([HEADER, GOOD_M, "mr,A,R,twelve,11.0,13.0,0.68,1,src"], 4, "median"),
    ([HEADER, GOOD_M, "mr,A,R,12.0,12.5,13.0,0.68,1,src"], 4, "lower"),
    ([HEADER, GOOD_M, "mr,A,R,12.0,11.0,12.0,0.68,1,src"], 4, "upper"),
    ([HEADER, GOOD_M, "mr,A,R,12.0,11.0,13.0,68,1,src"], 4, "cl"),
    ([HEADER, GOOD_M, "xray,A,R,12.0,11.0,13.0,0.68,1,src"], 4, "kind"),
    ([HEADER, GOOD_M, "mr,A,Lambda,12.0,11.0,13.0,0.68,1,src"], 4, "quantity"),
    ([HEADER, GOOD_M], 3, "quantity"),
    ([HEADER, "mr,A,M,0.1,-0.2,0.5,0.68,1,src", GOOD_R], 3, "lower"),
    ([HEADER, GOOD_M, GOOD_R, "radio,B,M,2.0,1.9,2.2,0.68,1,src"], 5, "upper"),
    ([HEADER, GOOD_M, GOOD_R, "radio,B,M,2.0,1.9,2.1,0.68,yes,src"], 5, "use"),
    ([HEADER, GOOD_M, GOOD_R, GOOD_R], 5, "name"),
    ([HEADER, GOOD_M, "mr,A,R,12.0,11.0,13.0,0.68,1,"], 4, "source"),
    # physical ranges of every row: M in (0, 5] M_sun, R in [3, 50] km
    ([HEADER, "mr,A,M,50,49,51,0.68,1,src", GOOD_R], 3, "lower"),
    ([HEADER, GOOD_M, "mr,A,R,12000,11000,13000,0.68,1,src"], 4, "lower"),
    ([HEADER, GOOD_M, GOOD_R, "radio,B,M,4.95,4.9,5.1,0.68,1,src"], 5, "upper"),
    # one source, one spelling: a case variant is a duplicate, not a second pulsar
    ([HEADER, GOOD_M, GOOD_R, "mr,a,M,1.4,1.3,1.5,0.68,1,src"], 5, "name"),
])
def test_malformed_table_error_names_file_line_column(tmp_path, lines, line, column):
    path = tmp_path / "my_table.csv"
    path.write_text("# a comment line\n" + "\n".join(lines) + "\n")
    with pytest.raises(ValueError) as err:
        load_observations(path)
    msg = str(err.value)
    assert "my_table.csv" in msg and f"line {line}," in msg and repr(column) in msg, msg


def test_table_encodings_and_separators(tmp_path):
    """A spreadsheet's UTF-8 BOM is accepted; binary files and ';'-separated tables get an error
    naming the file and what was expected."""
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join([HEADER, GOOD_M, GOOD_R]).encode())
    assert load_observations(path).names == ("A",)
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match="data.bin: not a UTF-8 text table"):
        load_observations(binary)
    semi = tmp_path / "semi.csv"
    semi.write_text("\n".join(x.replace(",", ";") for x in [HEADER, GOOD_M, GOOD_R]))
    with pytest.raises(ValueError, match="semi.csv: line 1.*separated by semicolons"):
        load_observations(semi)


def test_sample_names_must_match_a_source_once():
    """``--mr-samples`` names: a typo or a repeated name is an error; new sources are explicit."""
    obs = load_observations()
    m, r = _correlated_samples(100)
    with pytest.raises(ValueError, match="matches no mass-radius source.*PSR J0030\\+0451"):
        obs.with_samples(MRSamples("PSR J0030+045", m, r, "typo"))
    with pytest.raises(ValueError, match="given twice"):
        obs.with_samples(MRSamples("PSR J0030+0451", m, r, "a"), MRSamples("psr j0030+0451", m, r, "b"))
    with pytest.raises(ValueError, match="already a source"):
        obs.with_samples(new=(MRSamples("PSR J0030+0451", m, r, "a"),))
    replaced = obs.with_samples(MRSamples("psr  J0030+0451", m, r, "case and spaces"))
    assert len(replaced.mr) == len(obs.mr)
    assert len(obs.with_samples(new=(MRSamples("PSR NEW", m, r, "n"),)).mr) == len(obs.mr) + 1


def test_user_table_loads(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("\n".join([HEADER, GOOD_M, GOOD_R, '"tidal",G,Lambda_1.4,300,200,500,0.9,1,"a, b"']))
    obs = load_observations(path)
    assert obs.names == ("A",) and obs.tidal[0].source == "a, b"
    assert obs.mr[0].M.loc == pytest.approx(1.4) and obs.mr[0].M.scale_lo == pytest.approx(0.1 / 0.994458,
                                                                                          rel=1e-5)


# --------------------------------------------------------------------------- sample files


def _write(path, header, m, r, sep=" ", swap=False):
    lines = ["# posterior samples", header] if header else ["# posterior samples"]
    for a, b in zip(m, r):
        lines.append(sep.join(f"{v:.6f}" for v in ((b, a) if swap else (a, b))) + "  # ok")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("header,sep,swap", [
    (None, " ", False), ("M R", "\t", False), ("radius,mass", ",", True), ("R_km, weight, M", ", ", None)])
def test_sample_files_with_and_without_header(tmp_path, header, sep, swap):
    m, r = _correlated_samples(200)
    path = tmp_path / "J0000.txt"
    if swap is None:   # an extra ignored column between R and M
        path.write_text(header + "\n" + "\n".join(f"{b}, 0.5, {a}" for a, b in zip(m, r)))
    else:
        _write(path, header, m, r, sep, swap)
    s = load_mr_samples(path)
    assert s.name == "J0000" and s.n == 200 and s.n_read == 200
    np.testing.assert_allclose(s.M, m, atol=1e-6)
    np.testing.assert_allclose(s.R, r, atol=1e-6)


def test_sample_thinning_is_deterministic(tmp_path):
    m, r = _correlated_samples(500)
    path = tmp_path / "s.csv"
    _write(path, "M,R", m, r, ",")
    a = load_mr_samples(path, name="x", max_samples=100, seed=1)
    b = load_mr_samples(path, name="x", max_samples=100, seed=1)
    c = load_mr_samples(path, name="x", max_samples=100, seed=2)
    assert a.n == 100 and a.n_read == 500 and a.name == "x"
    np.testing.assert_array_equal(a.M, b.M)
    assert not np.array_equal(a.M, c.M)
    assert set(np.round(a.M, 6)) <= set(np.round(m, 6))


@pytest.mark.parametrize("body,line,column,match", [
    ("M R\n" + "1.4 12.0\n" * 60 + "1.4 abc\n", 62, "R", "not a number"),
    ("1.4 12.0\n" * 60 + "1.4 nan\n", 61, "R (column 2)", "non-finite"),
    ("mass,radius\n" + "1.4,12.0\n" * 60 + "1.4\n", 62, "radius", "missing value"),
    ("M R\n" + "1.4 12.0\n" * 60 + "1.4 2.5\n", 62, "R", "2.5"),
    ("M R\n" + "1.4 12.0\n" * 60 + "-0.1 12.0\n", 62, "M", "-0.1"),
    ("12.0 1.4\n" * 60, 1, "M (column 1)", "12.0"),
])
def test_malformed_sample_file_errors(tmp_path, body, line, column, match):
    path = tmp_path / "bad_samples.dat"
    path.write_text(body)
    with pytest.raises(ValueError, match=match) as err:
        load_mr_samples(path)
    msg = str(err.value)
    assert "bad_samples.dat" in msg and f"line {line}," in msg and repr(column) in msg, msg


def test_sample_file_too_few_and_bad_headers(tmp_path):
    path = tmp_path / "few.txt"
    path.write_text("M R\n" + "1.4 12.0\n" * 49)
    with pytest.raises(ValueError, match=r"few\.txt.*49 \(M, R\) samples.*at least 50"):
        load_mr_samples(path)
    path.write_text("mass weight\n" + "1.4 12.0\n" * 60)
    with pytest.raises(ValueError, match=r"line 1.*radius column"):
        load_mr_samples(path)
    path.write_text("1.4 12.0 3\n" * 60)
    with pytest.raises(ValueError, match=r"line 1.*3 columns"):
        load_mr_samples(path)


def test_family_option():
    med = load_observations(family="median_split")
    for s in med.mr:
        for row in s.rows:
            tp = s.M if row.quantity == "M" else s.R
            assert tp.loc == row.median and tp.p_lo == 0.5
    with pytest.raises(ValueError, match=r"observations\.csv: line \d+, column 'upper'.*asymmetry"):
        load_observations(family="continuous")     # J1231-1411's M (+0.05/-0.03) is out of reach
