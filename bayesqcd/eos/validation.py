"""Boundary checks shared by the EoS builders: clear errors naming parameter, value and range."""

from __future__ import annotations

import math

import jax


def is_concrete(x) -> bool:
    """True when ``x`` is a concrete value (not a tracer inside jit / vmap / grad)."""
    return not isinstance(x, jax.core.Tracer)


def check_range(
    name: str,
    value: float,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    unit: str = "",
) -> None:
    """Raise ``ValueError`` unless ``low <= value <= high`` (``low < value`` if not inclusive)."""
    ok_low = value >= low if low_inclusive else value > low
    if not (math.isfinite(value) and ok_low and value <= high):
        bracket = "[" if low_inclusive else "("
        suffix = f" {unit}" if unit else ""
        raise ValueError(f"{name} = {value!r} is outside the valid range {bracket}{low}, {high}]{suffix}")
