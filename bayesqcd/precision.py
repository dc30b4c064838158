"""Floating-point precision: float64 is switched on explicitly, never by importing a module.

JAX computes in float32 unless ``jax_enable_x64`` is set. Neutron-star structure (the TOV
equations across ten decades of pressure) and the spectral and diffusion likelihoods need
float64; the entry points (``bayesqcd`` command, ``bayesqcd.studies``) switch it on, and a user
calls :func:`enable_x64` once at the top of a script (or runs a block inside :func:`x64_scope`,
as every study does). Code that needs it calls :func:`require_x64`, which raises a clear error
instead of computing garbage in float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

# jax is imported inside the functions: `import bayesqcd` (and `bayesqcd --help`) stays light.


def enable_x64(enable: bool = True) -> None:
    """Switch JAX's 64-bit mode on (or off): call it before creating any array.

    Equivalent to ``jax.config.update("jax_enable_x64", enable)``; it changes the whole process.
    """
    import jax

    jax.config.update("jax_enable_x64", bool(enable))


def x64_enabled() -> bool:
    """Whether JAX's 64-bit mode is on."""
    import jax

    return bool(jax.config.jax_enable_x64)


@contextlib.contextmanager
def x64_scope(enable: bool = True) -> Iterator[None]:
    """JAX's 64-bit mode set to ``enable`` inside the block (or decorated function), restored after.

    The studies run inside it, so calling one from a user's float32 program leaves the program
    in float32 afterwards::

        with x64_scope():
            curve = tov.mass_radius_curve(eos.named("SLy"))
    """
    before = x64_enabled()
    enable_x64(enable)
    try:
        yield
    finally:
        enable_x64(before)


def require_x64(what: str) -> None:
    """Raise ``RuntimeError`` naming ``what`` and the fix when float64 is off."""
    if not x64_enabled():
        raise RuntimeError(
            f"{what} needs float64, but JAX is in float32 mode: call bayesqcd.enable_x64() "
            "(or jax.config.update('jax_enable_x64', True)) at the start of the program, "
            "before any array is created"
        )
