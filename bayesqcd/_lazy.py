"""Lazy re-exports for package ``__init__`` modules (heavy imports happen on first use)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str],
                 submodules: Iterable[str] = ()) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``name`` in ``exports`` is imported from the
    submodule ``exports[name]`` (``"nuts"`` or ``".nuts"``), a name in ``submodules`` is that
    submodule, each on first access (as numpy and scipy load their submodules)."""
    subs = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        if name in subs:
            return importlib.import_module(f"{package}.{name}")
        if name in exports:
            value = getattr(importlib.import_module(f"{package}.{exports[name].lstrip('.')}"), name)
            importlib.import_module(package).__dict__[name] = value  # later look-ups skip this
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(exports) | subs)

    return __getattr__, __dir__
