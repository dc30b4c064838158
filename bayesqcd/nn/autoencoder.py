"""A convolutional + fully connected autoencoder for small single-channel images.

Encoder: ``n_conv`` stride-2 3x3 convolutions (``size -> size / 2**n_conv``), flatten, a hidden
dense layer, a linear map to the latent code ``z`` (dimension ``latent``). Decoder: the mirror
image (dense layers, reshape, stride-2 transposed convolutions) ending in a logit per pixel, so
that ``x_hat = sigmoid(decoder(z))`` lies in [0, 1].

The reconstruction loss is the per-pixel binary cross-entropy ``-x log x_hat - (1-x) log(1-x_hat)``
(natural for intensities in [0, 1]; its minimum is at ``x_hat = x``), averaged over pixels.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class ConvAutoencoder(eqx.Module):
    """Conv + dense autoencoder; call ``encode`` / ``decode`` on one image ``(size, size)``."""

    enc_convs: list[eqx.nn.Conv2d]
    enc_dense: list[eqx.nn.Linear]
    dec_dense: list[eqx.nn.Linear]
    dec_convs: list[eqx.nn.ConvTranspose2d]
    size: int = eqx.field(static=True)
    channels: tuple[int, ...] = eqx.field(static=True)
    latent: int = eqx.field(static=True)

    def __init__(self, key: PRNGKeyArray, *, size: int = 32, latent: int = 8,
                 channels: tuple[int, ...] = (16, 32, 32), hidden: int = 128, dtype=None):
        """Args:
            key: PRNG key of the initial weights.
            size: image side in pixels (divisible by ``2**len(channels)``).
            latent: dimension of the code z (>= 1).
            channels: output channels of the stride-2 convolutions.
            hidden: width of the hidden dense layer.
            dtype: parameter dtype (default: JAX's default float).
        """
        n = len(channels)
        if latent < 1:
            raise ValueError(f"latent must be >= 1, got {latent}")
        if n < 1 or size % (2 ** n) != 0:
            raise ValueError(f"size must be divisible by 2**len(channels) = {2 ** n}, got {size}")
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        dtype = dtype or jnp.zeros(()).dtype
        keys = iter(jax.random.split(key, 2 * n + 5))
        chans = (1, *channels)
        self.enc_convs = [eqx.nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1,
                                        key=next(keys), dtype=dtype) for i in range(n)]
        flat = channels[-1] * (size // 2 ** n) ** 2
        self.enc_dense = [eqx.nn.Linear(flat, hidden, key=next(keys), dtype=dtype),
                          eqx.nn.Linear(hidden, latent, key=next(keys), dtype=dtype)]
        self.dec_dense = [eqx.nn.Linear(latent, hidden, key=next(keys), dtype=dtype),
                          eqx.nn.Linear(hidden, flat, key=next(keys), dtype=dtype)]
        rev = chans[::-1]
        self.dec_convs = [eqx.nn.ConvTranspose2d(rev[i], rev[i + 1] if i < n - 1 else 8, 3,
                                                 stride=2, padding=1, output_padding=1,
                                                 key=next(keys), dtype=dtype) for i in range(n)]
        self.dec_convs.append(eqx.nn.ConvTranspose2d(8, 1, 3, padding=1, key=next(keys), dtype=dtype))
        self.size, self.channels, self.latent = size, tuple(channels), latent

    def encode(self, x: Float[Array, "size size"]) -> Float[Array, " latent"]:
        """The latent code of one image."""
        h = x[None]
        for conv in self.enc_convs:
            h = jax.nn.gelu(conv(h))
        h = jax.nn.gelu(self.enc_dense[0](h.reshape(-1)))
        return self.enc_dense[1](h)

    def decode_logits(self, z: Float[Array, " latent"]) -> Float[Array, "size size"]:
        """Per-pixel logits of the reconstruction of code ``z``."""
        h = jax.nn.gelu(self.dec_dense[0](z))
        h = jax.nn.gelu(self.dec_dense[1](h))
        s = self.size // 2 ** len(self.channels)
        h = h.reshape(self.channels[-1], s, s)
        for conv in self.dec_convs[:-1]:
            h = jax.nn.gelu(conv(h))
        return self.dec_convs[-1](h)[0]

    def decode(self, z: Float[Array, " latent"]) -> Float[Array, "size size"]:
        """Reconstructed image in [0, 1]."""
        return jax.nn.sigmoid(self.decode_logits(z))

    def __call__(self, x: Float[Array, "size size"]) -> Float[Array, "size size"]:
        """Reconstruction of one image."""
        return self.decode(self.encode(x))


def reconstruction_loss(model: ConvAutoencoder, images: Float[Array, "B H W"]) -> Float[Array, ""]:
    """Mean per-pixel binary cross-entropy between ``images`` and their reconstructions."""
    logits = jax.vmap(lambda x: model.decode_logits(model.encode(x)))(images)
    bce = jnp.maximum(logits, 0) - logits * images + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    return jnp.mean(bce)


def encode_batch(model: ConvAutoencoder, images: Float[Array, "B H W"],
                 batch_size: int = 512) -> Float[Array, "B latent"]:
    """Codes of many images, computed in chunks of ``batch_size``."""
    return jax.lax.map(eqx.filter_jit(model.encode), images, batch_size=batch_size)
