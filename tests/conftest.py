"""Test configuration: the whole suite runs in float64 (the neutron-star physics needs it,
and every other component must be correct in it too)."""

import jax

jax.config.update("jax_enable_x64", True)

import gc

import pytest


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Free every compiled executable after each test module: the suite compiles hundreds of
    programs (TOV solvers, samplers, networks) and keeping them all would grow the process
    by gigabytes on a 24 GiB CI machine."""
    yield
    jax.clear_caches()
    gc.collect()
