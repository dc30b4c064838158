"""Score networks ``s_theta(x, t)`` in Equinox.

* :class:`MLPScore`: the network of Hirono, Tanaka, Fukushima (ICML 2024) for 2-D data:
  ``concat(x, t) -> 3 x [Dense 128 + swish] -> Dense d``.
* :class:`UNetScore`: a small two-level U-Net for images and lattice fields ``(C, H, W)``
  (H and W divisible by 4), with a sinusoidal time embedding added in every block and
  periodic (circular) padding, natural for lattice fields.

Both act on one unbatched point; ``jax.vmap`` them for batches.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray


class MLPScore(eqx.Module):
    """``concat(x, t) -> depth x [Linear(width) + swish] -> Linear(dim)``."""

    layers: tuple[eqx.nn.Linear, ...]

    def __init__(self, dim: int = 2, width: int = 128, depth: int = 3, *, key: PRNGKeyArray):
        if dim < 1 or width < 1 or depth < 1:
            raise ValueError(f"dim, width, depth must be >= 1, got {dim}, {width}, {depth}")
        keys = jax.random.split(key, depth + 1)
        sizes = [dim + 1] + [width] * depth + [dim]
        self.layers = tuple(eqx.nn.Linear(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys))

    def __call__(self, x: Float[Array, " d"], t: ArrayLike) -> Float[Array, " d"]:
        t = jnp.asarray(t, dtype=x.dtype)
        y = jnp.concatenate([x, t[None]])
        for layer in self.layers[:-1]:
            y = jax.nn.swish(layer(y))
        return self.layers[-1](y)


def time_embedding(t: ArrayLike, dim: int) -> Float[Array, " dim"]:
    """Sinusoidal embedding of a scalar time ``t`` (``dim`` even), frequencies 1..1000."""
    half = dim // 2
    freqs = jnp.exp(jnp.linspace(0.0, math.log(1000.0), half))
    arg = 2 * jnp.pi * jnp.asarray(t) * freqs
    return jnp.concatenate([jnp.sin(arg), jnp.cos(arg)])


class _Block(eqx.Module):
    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    temb: eqx.nn.Linear
    skip: eqx.nn.Conv2d | None

    def __init__(self, c_in: int, c_out: int, t_dim: int, *, key: PRNGKeyArray):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.conv1 = eqx.nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="CIRCULAR", key=k1)
        self.conv2 = eqx.nn.Conv2d(c_out, c_out, 3, padding=1, padding_mode="CIRCULAR", key=k2)
        self.temb = eqx.nn.Linear(t_dim, c_out, key=k3)
        self.skip = eqx.nn.Conv2d(c_in, c_out, 1, key=k4) if c_in != c_out else None

    def __call__(self, x, emb):
        y = jax.nn.swish(self.conv1(x)) + self.temb(emb)[:, None, None]
        y = self.conv2(jax.nn.swish(y))
        return y + (self.skip(x) if self.skip is not None else x)


class UNetScore(eqx.Module):
    """Two-level U-Net score network for ``(C, H, W)`` fields.

    ``down: block(C->c) -> pool -> block(c->2c) -> pool -> block(2c->2c) (bottleneck)
    -> up -> block(4c->c) ... -> 1x1 conv -> C``, skip connections by concatenation.
    """

    t_dim: int = eqx.field(static=True)
    enc1: _Block
    enc2: _Block
    mid: _Block
    dec2: _Block
    dec1: _Block
    out: eqx.nn.Conv2d

    def __init__(self, channels: int = 1, width: int = 16, t_dim: int = 32, *, key: PRNGKeyArray):
        if channels < 1 or width < 1 or t_dim < 2 or t_dim % 2:
            raise ValueError(f"need channels, width >= 1 and even t_dim >= 2; got "
                             f"{channels}, {width}, {t_dim}")
        ks = jax.random.split(key, 6)
        self.t_dim = t_dim
        self.enc1 = _Block(channels, width, t_dim, key=ks[0])
        self.enc2 = _Block(width, 2 * width, t_dim, key=ks[1])
        self.mid = _Block(2 * width, 2 * width, t_dim, key=ks[2])
        self.dec2 = _Block(4 * width, width, t_dim, key=ks[3])
        self.dec1 = _Block(2 * width, width, t_dim, key=ks[4])
        self.out = eqx.nn.Conv2d(width, channels, 1, key=ks[5])

    @staticmethod
    def _pool(x):
        c, h, w = x.shape
        return x.reshape(c, h // 2, 2, w // 2, 2).mean(axis=(2, 4))

    @staticmethod
    def _up(x):
        return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)

    def __call__(self, x: Float[Array, "C H W"], t: ArrayLike) -> Float[Array, "C H W"]:
        if x.shape[1] % 4 or x.shape[2] % 4:
            raise ValueError(f"H and W must be divisible by 4, got shape {x.shape}")
        emb = time_embedding(t, self.t_dim).astype(x.dtype)
        e1 = self.enc1(x, emb)
        e2 = self.enc2(self._pool(e1), emb)
        m = self.mid(self._pool(e2), emb)
        d2 = self.dec2(jnp.concatenate([self._up(m), e2]), emb)
        d1 = self.dec1(jnp.concatenate([self._up(d2), e1]), emb)
        return self.out(jax.nn.swish(d1))
