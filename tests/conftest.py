"""Test configuration: the whole suite runs in float64 (the neutron-star physics needs it,
and every other component must be correct in it too)."""

import jax

jax.config.update("jax_enable_x64", True)
