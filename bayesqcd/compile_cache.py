"""JAX's persistent compilation cache for bayesqcd runs.

Compiling a sampler for a model with ODE solves inside takes a minute or more on a CPU; with
the cache on, a second run of the same command (same model, shapes, settings and JAX version)
loads the compiled programs from disk instead. The ``bayesqcd`` command turns it on (``bayesqcd
--no-compile-cache COMMAND`` or ``BAYESQCD_COMPILE_CACHE=0`` turn it off); a script calls
:func:`enable_compile_cache` once, before its first computation. Nothing is switched on at import.

JAX does not cache programs that contain host callbacks, and Equinox's runtime checks (such
as diffrax's check of the sign of a traced ``dt0``, in every TOV solve) are host callbacks unless
``EQX_ON_ERROR=nan`` is set before Equinox is imported; the ``bayesqcd`` command sets it (a
failed check then gives NaN, which the solvers here report as a failure anyway).

The folder is ``$BAYESQCD_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/bayesqcd/jax``, else
``~/.cache/bayesqcd/jax``; it may be deleted at any time (the next run compiles again).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_SWITCH = "BAYESQCD_COMPILE_CACHE"
"""Environment variable: ``0`` turns the cache off for the ``bayesqcd`` command."""
ENV_DIR = "BAYESQCD_CACHE_DIR"
"""Environment variable naming the cache folder."""
MIN_COMPILE_TIME_S: float = 1.0
"""Programs that compile faster than this [s] are not cached (not worth a disk read)."""


def default_cache_dir() -> Path:
    """The cache folder (see the module docstring)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bayesqcd" / "jax"


def cache_enabled_by_env() -> bool:
    """False when ``BAYESQCD_COMPILE_CACHE`` is ``0``/``false``/``off``/``no``."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "off", "no")


def enable_compile_cache(path: str | os.PathLike[str] | None = None) -> Path:
    """Store compiled programs in ``path`` (default :func:`default_cache_dir`) and reuse them.

    Call before the first computation of the process. When JAX is not imported yet, the
    settings go into JAX's environment variables (so that importing JAX here does not come
    before a command's own start-up settings, such as the number of host devices). Returns
    the folder.

    Raises:
        OSError: when the folder cannot be created.
    """
    folder = Path(path).expanduser() if path is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "jax_compilation_cache_dir": str(folder),
        "jax_persistent_cache_min_compile_time_secs": MIN_COMPILE_TIME_S,
        "jax_persistent_cache_min_entry_size_bytes": 0,
    }
    if "jax" in sys.modules:
        import jax

        for name, value in settings.items():
            jax.config.update(name, value)
    else:
        os.environ.update({name.upper(): str(value) for name, value in settings.items()})
    return folder
