"""Slow reproduction check (``pytest -m slow``): one case of the paper's Table 1."""

import pytest

from bayesqcd.studies.diffusion_path_integral import Config, run


@pytest.mark.slow
def test_swiss_roll_simple_reproduces_nll_and_falling_w2():
    """20000 steps (the paper: ~96000), window [0.01, 1]: NLL at h = 0 within 0.3 nats of the
    paper's 1.39, a negative median first-order coefficient, and W2 lower at h = 0.2 than at
    h = 0."""
    summary = run(Config(data="swiss-roll", sde="simple", n_steps=20000, n_eval=128,
                         n_samples=2000), progress=False)
    assert abs(summary["nll_h0"]["mean"] - 1.39) < 0.3
    assert summary["first_order"]["tol=1e-05"]["median"] < 0
    w2 = summary["w2_vs_h"]["w2"]
    assert w2[-1] < w2[0]
