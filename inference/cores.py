"""CPU cores and the default number of NUTS chains, read without importing JAX.

The command line sizes JAX's CPU host devices (one per chain) before JAX starts, so this module
must not import JAX.
"""

from __future__ import annotations

import os

MIN_CHAINS: int = 2
"""Fewest chains of the default: R-hat needs chains to compare."""
MAX_CHAINS: int = 4
"""Most chains of the default (PyMC's rule: one chain per core, 2 to 4)."""


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity mask where the OS has one (a container's
    CPU set), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_chains(cores: int | None = None) -> int:
    """Chains for a run that does not name a number: one per core, at least :data:`MIN_CHAINS`
    and at most :data:`MAX_CHAINS` (``cores`` defaults to :func:`usable_cores`).

    Every chain pays for its own warm-up, so chains beyond the cores only add work that waits for
    a core: on 2 cores the main job's 2 chains reach the same ESS with ~40% fewer gradients than
    4 (README, "Two chains on two cores").
    """
    n = usable_cores() if cores is None else int(cores)
    if n < 1:
        raise ValueError(f"cores = {n} must be >= 1")
    return min(MAX_CHAINS, max(MIN_CHAINS, n))
