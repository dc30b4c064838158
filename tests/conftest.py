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
    by gigabytes on a 24 GiB CI machine (keeping them up to 5 GiB per process was tried and
    was not faster). Tests that share a program or a module fixture form an ``xdist_group``
    and run one after the other."""
    yield
    jax.clear_caches()
    gc.collect()


def pytest_collection_modifyitems(config, items):
    """Start the tests marked ``expensive(seconds)`` first, longest first. With one worker per
    core (pytest-xdist), tests are handed out in collection order, and a minute-long test that
    starts last keeps one worker busy while the others sit idle. The tests of an
    ``xdist_group`` (handed out together) move together, with the largest mark among them."""
    def own(item):
        mark = item.get_closest_marker("expensive")
        return mark.args[0] if mark else 0

    def group(item):
        mark = item.get_closest_marker("xdist_group")
        return mark.args[0] if mark else None

    largest: dict[str, float] = {}
    for item in items:
        if group(item) is not None:
            largest[group(item)] = max(largest.get(group(item), 0), own(item))

    items.sort(key=lambda item: largest.get(group(item), own(item)), reverse=True)  # stable
