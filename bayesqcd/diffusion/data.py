"""The 2-D data sets of Hirono, Tanaka, Fukushima (ICML 2024), 3000 points by default.

* swiss roll (as ``sklearn.datasets.make_swiss_roll``, noise 0.5): ``u = 1.5 pi (1 + 2 U)``,
  ``(x, z) = (u cos u, u sin u) + 0.5 N(0, I)``, divided by 6.865.
* 25 Gaussians: centres uniform on ``{-4, -2, 0, 2, 4}^2``, standard deviation 0.05, the
  points divided by 2.828.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from bayesqcd.diffusion.analytic import GaussianMixture

DATASETS = ("swiss-roll", "25gauss")


def swiss_roll(key: PRNGKeyArray, n: int = 3000, noise: float = 0.5) -> Float[Array, "n 2"]:
    """Swiss roll in the ``(x, z)`` plane, scaled by ``1/6.865``."""
    ku, kn = jax.random.split(key)
    u = 1.5 * jnp.pi * (1.0 + 2.0 * jax.random.uniform(ku, (n,)))
    x = jnp.stack([u * jnp.cos(u), u * jnp.sin(u)], axis=1)
    return (x + noise * jax.random.normal(kn, (n, 2))) / 6.865


def gaussians25() -> GaussianMixture:
    """The 25-Gaussian mixture (after scaling), as an exact density."""
    g = jnp.arange(-4.0, 5.0, 2.0)
    means = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2) / 2.828
    return GaussianMixture(jnp.ones(25), means, jnp.full((25, 2), 0.05 / 2.828))


def make_data(name: str, key: PRNGKeyArray, n: int = 3000) -> Float[Array, "n 2"]:
    """``n`` points of the data set ``name`` (``swiss-roll`` or ``25gauss``)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if name == "swiss-roll":
        return swiss_roll(key, n)
    if name == "25gauss":
        return gaussians25().sample(key, n)
    raise ValueError(f"data must be one of {DATASETS}, got {name!r}")
