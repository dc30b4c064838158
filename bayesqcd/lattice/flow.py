"""A real-NVP normalizing flow for ``L x L`` lattice fields (Albergo et al., arXiv:2101.08176).

``x = f(z)`` with ``z ~ N(0, 1)`` at every site and ``f`` a stack of affine coupling layers.
Layer ``k`` freezes the sites of one checkerboard colour (``(x_0 + x_1 + k) % 2 == 0``) and
updates the others:

    y = m * x + (1 - m) * [x * exp(s(m * x)) + t(m * x)],   log|det dy/dx| = sum (1 - m) s,

where ``(s, t)`` come from a small conv net with circular (periodic) padding, so the flow
respects the lattice's translations by even shifts. Colours alternate from layer to layer.
The exact density of a draw is

    log q(x) = log N(z; 0, 1) - sum_layers log|det J_k|.

:class:`LatticeFlow` provides ``sample_and_log_prob`` (the proposal protocol of
:mod:`bayesqcd.inference.flow`), ``log_prob`` (by the inverse map) and ``forward``.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


def checkerboard(L: int, parity: int, dtype=float) -> Float[Array, "L L"]:
    """1 on the sites with ``(x_0 + x_1 + parity) % 2 == 0`` (frozen), 0 elsewhere."""
    i = jnp.arange(L)
    return ((i[:, None] + i[None, :] + parity) % 2 == 0).astype(dtype)


class ConvNet(eqx.Module):
    """``1 -> hidden... -> 2`` channels, kernel ``k``, circular padding, leaky-ReLU between
    layers; outputs ``s = tanh(.)`` and ``t``."""

    convs: tuple[eqx.nn.Conv2d, ...]

    def __init__(self, hidden: tuple[int, ...], kernel: int, *, key: PRNGKeyArray):
        sizes = (1, *hidden, 2)
        keys = jax.random.split(key, len(sizes) - 1)
        convs = [eqx.nn.Conv2d(a, b, kernel, padding=kernel // 2, padding_mode="CIRCULAR", key=k)
                 for a, b, k in zip(sizes[:-1], sizes[1:], keys)]
        last = convs[-1]  # start near the identity map
        convs[-1] = eqx.tree_at(lambda c: (c.weight, c.bias), last,
                                (0.01 * last.weight, jnp.zeros_like(last.bias)))
        self.convs = tuple(convs)

    def __call__(self, x: Float[Array, "L L"]) -> tuple[Float[Array, "L L"], Float[Array, "L L"]]:
        y = x[None]
        for c in self.convs[:-1]:
            y = jax.nn.leaky_relu(c(y))
        y = self.convs[-1](y)
        return jnp.tanh(y[0]), y[1]


class AffineCoupling(eqx.Module):
    """One checkerboard affine coupling layer (see the module docstring)."""

    net: ConvNet
    parity: int = eqx.field(static=True)

    def forward(self, x: Float[Array, "L L"]) -> tuple[Float[Array, "L L"], Float[Array, ""]]:
        """``(y, log|det dy/dx|)``."""
        m = checkerboard(x.shape[0], self.parity, x.dtype)
        s, t = self.net(m * x)
        s, t = (1 - m) * s, (1 - m) * t
        return m * x + (1 - m) * (x * jnp.exp(s) + t), jnp.sum(s)

    def inverse(self, y: Float[Array, "L L"]) -> tuple[Float[Array, "L L"], Float[Array, ""]]:
        """``(x, log|det dx/dy|)``."""
        m = checkerboard(y.shape[0], self.parity, y.dtype)
        s, t = self.net(m * y)
        s, t = (1 - m) * s, (1 - m) * t
        return m * y + (1 - m) * (y - t) * jnp.exp(-s), -jnp.sum(s)


class LatticeFlow(eqx.Module):
    """Real-NVP flow on ``L x L`` fields with a standard-normal prior.

    Args:
        L: lattice extent (even, >= 2).
        n_layers: coupling layers (colours alternate).
        hidden: hidden channels of each conv net (Albergo et al.: ``(8, 8)``).
        kernel: conv kernel size (odd).
        key: PRNG key of the initialisation.
    """

    layers: tuple[AffineCoupling, ...]
    L: int = eqx.field(static=True)

    def __init__(self, L: int, n_layers: int = 16, hidden: tuple[int, ...] = (8, 8),
                 kernel: int = 3, *, key: PRNGKeyArray):
        if L < 2 or L % 2:
            raise ValueError(f"L must be even and >= 2 (checkerboard masks), got {L}")
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be odd and >= 1, got {kernel}")
        keys = jax.random.split(key, n_layers)
        self.layers = tuple(AffineCoupling(ConvNet(tuple(hidden), kernel, key=k), i % 2)
                            for i, k in enumerate(keys))
        self.L = L

    def _check(self, x: Array) -> None:
        if x.shape[-2:] != (self.L, self.L):
            raise ValueError(f"field must have shape (..., {self.L}, {self.L}), got {x.shape}")

    def forward(self, z: Float[Array, "L L"]) -> tuple[Float[Array, "L L"], Float[Array, ""]]:
        """``(x = f(z), log|det df/dz|)`` for one prior draw."""
        self._check(z)
        ld = jnp.zeros((), z.dtype)
        for layer in self.layers:
            z, d = layer.forward(z)
            ld = ld + d
        return z, ld

    def inverse(self, x: Float[Array, "L L"]) -> tuple[Float[Array, "L L"], Float[Array, ""]]:
        """``(z = f^{-1}(x), log|det df^{-1}/dx|)``."""
        self._check(x)
        ld = jnp.zeros((), x.dtype)
        for layer in reversed(self.layers):
            x, d = layer.inverse(x)
            ld = ld + d
        return x, ld

    @staticmethod
    def prior_log_prob(z: Float[Array, "L L"]) -> Float[Array, ""]:
        """``log N(z; 0, 1)`` summed over sites."""
        return -0.5 * jnp.sum(z**2) - 0.5 * z.size * math.log(2 * math.pi)

    def log_prob(self, x: Float[Array, "L L"]) -> Float[Array, ""]:
        """Exact ``log q(x)`` by the inverse map."""
        z, ld = self.inverse(x)
        return self.prior_log_prob(z) + ld

    def sample_and_log_prob(self, key: PRNGKeyArray, n: int, dtype=None
                            ) -> tuple[Float[Array, "n L L"], Float[Array, " n"]]:
        """``n`` draws and their exact ``log q`` (``dtype``: that of the parameters by default)."""
        dtype = self.layers[0].net.convs[0].weight.dtype if dtype is None else dtype
        z = jax.random.normal(key, (n, self.L, self.L), dtype)

        def one(zi):
            x, ld = self.forward(zi)
            return x, self.prior_log_prob(zi) - ld

        return jax.vmap(one)(z)
