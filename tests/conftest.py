"""Test configuration: the whole suite runs in float64 (the neutron-star physics needs it,
and every other component must be correct in it too)."""

import os

import jax

jax.config.update("jax_enable_x64", True)
# the command's persistent compilation cache stays off in tests (nothing written to ~/.cache)
os.environ.setdefault("BAYESQCD_COMPILE_CACHE", "0")

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


def pytest_collection_modifyitems(config, items):
    """Start the tests marked ``expensive(seconds)`` first, longest first. With one worker per
    core (pytest-xdist), tests are handed out in collection order, and a minute-long test that
    starts last keeps one worker busy while the others sit idle."""
    def seconds(item):
        mark = item.get_closest_marker("expensive")
        return mark.args[0] if mark else 0

    items.sort(key=seconds, reverse=True)  # stable: the rest keep their order
