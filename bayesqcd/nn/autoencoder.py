"""A convolutional + fully connected autoencoder for small single-channel images, optionally with a
rotation-invariant code.

Encoder: ``n_conv`` stride-2 3x3 convolutions (``size -> size / 2**n_conv``), flatten, a hidden
dense layer, a linear map to the latent code ``z`` (dimension ``latent``). Decoder: the mirror
image (dense layers, reshape, stride-2 transposed convolutions) ending in a logit per pixel, so
that ``x_hat = sigmoid(decoder(z))`` lies in [0, 1].

With ``rotations = K > 0`` the code is made invariant under turns of the image about its centre
by averaging over the orbit of the cyclic group of K turns, ``beta_k = 2 pi k / K``, and the
decoder draws in a canonical frame that a *pose* angle turns back:

    z(x)     = (1/K) sum_k f_z(R_{beta_k} x),
    theta(x) = -arg sum_k f_s(R_{beta_k} x) exp(i beta_k),
    x_hat    = R_theta sigmoid(decoder(z)),

where ``(f_z, f_s)`` is the encoder network (``latent + 1`` outputs) and ``R_a`` turns an image
by the angle ``a`` (bilinear resampling, :func:`rotate_image`). For a turn by ``alpha = beta_j``,
``z(R_alpha x) = z(x)`` and ``theta(R_alpha x) = theta(x) + alpha``, so the reconstruction
turns with the image while the code cannot carry the orientation: exactly for quarter and half
turns (they map pixels onto pixels), up to the resampling for the other ``beta_k``, and up to the
smoothness of the network as well between them. (Group averaging
of features; the pose-and-canonical-frame decoder follows the idea of spatial-transformer
autoencoders.)

With ``pose_dims = P > 0`` the encoder also gives ``P`` *pose numbers* ``q(x)`` (averaged over the
same orbit), which the decoder reads next to the code: ``x_hat = R_theta sigmoid(decoder(z, q))``.
They are meant for what the code should not carry. Nothing in the architecture forces it; an
:func:`invariance_penalty` on the code of a drawing and of a transformed copy (its size changed,
say) during training leaves the transformation to ``q``. The pose (``theta`` and ``q``) is not part
of the code that :meth:`ConvAutoencoder.encode` returns.

The reconstruction loss is the per-pixel binary cross-entropy ``-x log x_hat - (1-x) log(1-x_hat)``
(natural for intensities in [0, 1]; its minimum is at ``x_hat = x``), averaged over pixels.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


def transform_image(image: Float[Array, "H W"], matrix: Float[Array, "2 2"],
                    mode: str = "constant") -> Float[Array, "H W"]:
    """The image under a linear map about its centre ``c``: output pixel ``p`` samples the input at
    ``c + matrix (p - c)`` (coordinates in the order (row = y, column = x), pixel units) by bilinear
    interpolation; outside the input, zero (``mode="constant"``) or the nearest edge pixel
    (``"nearest"``). ``matrix`` is the inverse of the map applied to the drawing: ``matrix = I / s``
    enlarges it ``s`` times. Differentiable in the image and in the matrix."""
    h, w = image.shape
    ys, xs = jnp.meshgrid(jnp.arange(h, dtype=image.dtype), jnp.arange(w, dtype=image.dtype),
                          indexing="ij")
    cy, cx = (h - 1) / 2, (w - 1) / 2
    dy, dx = ys - cy, xs - cx
    # the dx terms first: the rounding of earlier releases, whose trained models this reproduces
    coords = [cy + matrix[0, 1] * dx + matrix[0, 0] * dy, cx + matrix[1, 1] * dx + matrix[1, 0] * dy]
    return jax.scipy.ndimage.map_coordinates(image, coords, order=1, mode=mode, cval=0.0)


def rotate_image(image: Float[Array, "H W"], angle: Float[Array, ""] | float,
                 mode: str = "constant") -> Float[Array, "H W"]:
    """The image turned counter-clockwise (in the row = y, column = x frame) by ``angle`` [rad]
    about its centre (:func:`transform_image` with the inverse turn); ``mode`` as there.
    ``rotate_image(rotate_image(x, a), b) = rotate_image(x, a + b)`` up to the resampling;
    differentiable in the image and in the angle."""
    c, s = jnp.cos(angle), jnp.sin(angle)
    return transform_image(image, jnp.stack([jnp.stack([c, -s]), jnp.stack([s, c])]), mode)


class ConvAutoencoder(eqx.Module):
    """Conv + dense autoencoder; call ``encode`` / ``decode`` on one image ``(size, size)``.

    With ``rotations > 0``, ``encode`` is rotation invariant, ``encode_with_pose`` also gives the
    orientation and ``reconstruct_logits`` turns the canonical drawing back (module docstring).
    With ``pose_dims > 0``, ``encode_with_pose`` gives the pose numbers too, and the decoder reads
    them next to the code.
    """

    enc_convs: list[eqx.nn.Conv2d]
    enc_dense: list[eqx.nn.Linear]
    dec_dense: list[eqx.nn.Linear]
    dec_convs: list[eqx.nn.ConvTranspose2d]
    size: int = eqx.field(static=True)
    channels: tuple[int, ...] = eqx.field(static=True)
    latent: int = eqx.field(static=True)
    rotations: int = eqx.field(static=True)
    pose_dims: int = eqx.field(static=True)

    def __init__(self, key: PRNGKeyArray, *, size: int = 32, latent: int = 8,
                 channels: tuple[int, ...] = (16, 32, 32), hidden: int = 128, rotations: int = 0,
                 pose_dims: int = 0, dtype=None):
        """Args:
            key: PRNG key of the initial weights.
            size: image side in pixels (divisible by ``2**len(channels)``).
            latent: dimension of the code z (>= 1).
            channels: output channels of the stride-2 convolutions.
            hidden: width of the hidden dense layer.
            rotations: K, the number of turns the code is averaged over (0: a plain
                autoencoder; otherwise >= 2).
            pose_dims: P >= 0 pose numbers beside the code, for the decoder only.
            dtype: parameter dtype (default: JAX's default float).
        """
        n = len(channels)
        if latent < 1:
            raise ValueError(f"latent must be >= 1, got {latent}")
        if n < 1 or size % (2 ** n) != 0:
            raise ValueError(f"size must be divisible by 2**len(channels) = {2 ** n}, got {size}")
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        if rotations < 0 or rotations == 1:
            raise ValueError(f"rotations must be 0 (none) or >= 2, got {rotations}")
        if pose_dims < 0:
            raise ValueError(f"pose_dims must be >= 0, got {pose_dims}")
        dtype = dtype or jnp.zeros(()).dtype
        keys = iter(jax.random.split(key, 2 * n + 5))
        chans = (1, *channels)
        self.enc_convs = [eqx.nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1,
                                        key=next(keys), dtype=dtype) for i in range(n)]
        flat = channels[-1] * (size // 2 ** n) ** 2
        self.enc_dense = [eqx.nn.Linear(flat, hidden, key=next(keys), dtype=dtype),
                          eqx.nn.Linear(hidden, latent + pose_dims + (rotations > 0), key=next(keys),
                                        dtype=dtype)]
        self.dec_dense = [eqx.nn.Linear(latent + pose_dims, hidden, key=next(keys), dtype=dtype),
                          eqx.nn.Linear(hidden, flat, key=next(keys), dtype=dtype)]
        rev = chans[::-1]
        self.dec_convs = [eqx.nn.ConvTranspose2d(rev[i], rev[i + 1] if i < n - 1 else 8, 3,
                                                 stride=2, padding=1, output_padding=1,
                                                 key=next(keys), dtype=dtype) for i in range(n)]
        self.dec_convs.append(eqx.nn.ConvTranspose2d(8, 1, 3, padding=1, key=next(keys), dtype=dtype))
        self.size, self.channels, self.latent = size, tuple(channels), latent
        self.rotations, self.pose_dims = rotations, pose_dims

    def _features(self, x: Float[Array, "size size"]) -> Array:
        """The encoder network on one image: code, pose numbers (+1 angle score with rotations)."""
        h = x[None]
        for conv in self.enc_convs:
            h = jax.nn.gelu(conv(h))
        h = jax.nn.gelu(self.enc_dense[0](h.reshape(-1)))
        return self.enc_dense[1](h)

    def _orbit(self, x: Float[Array, "size size"]) -> tuple[Array, Array]:
        """The turns ``beta_k`` and the network's outputs on the turned images ``(K, outputs)``."""
        betas = jnp.arange(self.rotations, dtype=x.dtype) * (2 * math.pi / self.rotations)
        return betas, jax.vmap(lambda b: self._features(rotate_image(x, b)))(betas)

    def encode(self, x: Float[Array, "size size"]) -> Float[Array, " latent"]:
        """The latent code of one image (rotation invariant when ``rotations > 0``)."""
        return self.encode_with_pose(x)[0]

    def encode_with_pose(self, x: Float[Array, "size size"]) -> tuple[Array, Array, Array]:
        """``(code, pose numbers (pose_dims,), pose angle [rad])``; the angle is 0 without
        rotations. Code and pose numbers are averaged over the orbit of turns."""
        n = self.latent + self.pose_dims
        if not self.rotations:
            f = self._features(x)
            return f[:self.latent], f[self.latent:n], jnp.zeros((), x.dtype)
        betas, f = self._orbit(x)
        s = f[:, n]
        theta = -jnp.arctan2(jnp.sum(s * jnp.sin(betas)), jnp.sum(s * jnp.cos(betas)))
        zq = f[:, :n].mean(0)
        return zq[:self.latent], zq[self.latent:], theta

    def decode_logits(self, zq: Float[Array, " latent+pose_dims"]) -> Float[Array, "size size"]:
        """Per-pixel logits of the drawing of code and pose numbers ``zq`` (concatenated; in the
        canonical frame with rotations)."""
        h = jax.nn.gelu(self.dec_dense[0](zq))
        h = jax.nn.gelu(self.dec_dense[1](h))
        s = self.size // 2 ** len(self.channels)
        h = h.reshape(self.channels[-1], s, s)
        for conv in self.dec_convs[:-1]:
            h = jax.nn.gelu(conv(h))
        return self.dec_convs[-1](h)[0]

    def decode(self, zq: Float[Array, " latent+pose_dims"]) -> Float[Array, "size size"]:
        """Drawing in [0, 1] of code and pose numbers ``zq`` (in the canonical frame with
        rotations)."""
        return jax.nn.sigmoid(self.decode_logits(zq))

    def canonical(self, x: Float[Array, "size size"]) -> Float[Array, "size size"]:
        """The decoder's drawing of ``x`` before it is turned to the pose angle (the same for
        every turn of ``x`` when ``rotations > 0``)."""
        z, q, _ = self.encode_with_pose(x)
        return self.decode(jnp.concatenate([z, q]))

    def reconstruct_logits(self, x: Float[Array, "size size"]) -> Float[Array, "size size"]:
        """Per-pixel logits of the reconstruction of ``x`` (turned to its pose with rotations)."""
        z, q, theta = self.encode_with_pose(x)
        logits = self.decode_logits(jnp.concatenate([z, q]))
        return rotate_image(logits, theta, mode="nearest") if self.rotations else logits

    def __call__(self, x: Float[Array, "size size"]) -> Float[Array, "size size"]:
        """Reconstruction of one image, in [0, 1]."""
        return jax.nn.sigmoid(self.reconstruct_logits(x))


def reconstruction_loss(model: ConvAutoencoder, images: Float[Array, "B H W"]) -> Float[Array, ""]:
    """Mean per-pixel binary cross-entropy between ``images`` and their reconstructions."""
    logits = jax.vmap(model.reconstruct_logits)(images)
    bce = jnp.maximum(logits, 0) - logits * images + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    return jnp.mean(bce)


def encode_batch(model: ConvAutoencoder, images: Float[Array, "B H W"],
                 batch_size: int = 512) -> Float[Array, "B latent"]:
    """Codes of many images, computed in chunks of ``batch_size``."""
    return jax.lax.map(eqx.filter_jit(model.encode), images, batch_size=batch_size)


def invariance_penalty(codes: Float[Array, "B D"], codes_moved: Float[Array, "B D"]) -> Float[Array, ""]:
    """How much the codes change under a transformation of the inputs, relative to their spread:

        sum_j mean_b (z_bj - z'_bj)^2 / sum_j var_b(z_bj)

    for the codes ``z`` of a batch and ``z'`` of the transformed batch (dimensionless; 0 for
    invariant codes, about 2 for unrelated ones; unchanged when all codes are scaled, so it cannot
    be met by shrinking them)."""
    if codes.shape != codes_moved.shape or codes.ndim != 2:
        raise ValueError(f"codes must be two arrays of the same shape (B, D), got {codes.shape} "
                         f"and {codes_moved.shape}")
    spread = jnp.sum(jnp.var(codes, axis=0))
    return jnp.sum(jnp.mean((codes - codes_moved) ** 2, axis=0)) / (spread + 1e-12)
