"""bayesqcd: Bayesian inverse problems in QCD physics, on JAX.

A physical forward model, written as a pure, differentiable JAX function, is wrapped in a
NumPyro model; interchangeable inference engines turn data into a posterior; every posterior
leaves as an ``arviz.InferenceData``, and every figure is drawn from that object.

Layers, decided by what a module imports:

* core -- ``bayesqcd.units``, ``eos``, ``tov``, ``data``, ``spectral``, ``lattice``,
  ``diffusion``, ``topology``, ``nn``, ``intervals``, ``precision``: pure JAX and numpy physics;
* ``bayesqcd.models`` (NumPyro models) and ``bayesqcd.inference`` (engines): import core only;
* ``bayesqcd.report``: results folders, JSON, figures from InferenceData;
* ``bayesqcd.studies``: the project's own applications, one package each (a config dataclass
  and ``run(config)``), built on the layers above exactly as a user's model would be;
* ``bayesqcd.cli``: the ``bayesqcd`` command, one module per subcommand.

Core never imports argparse, matplotlib, models, inference, studies or cli; models and
inference never import studies or cli (``tests/test_layers.py`` checks it).

Importing bayesqcd changes no JAX setting. Neutron-star structure needs float64: call
:func:`enable_x64` once at the start of a program (the ``bayesqcd`` command and the studies do).
Submodules load on first use: ``from bayesqcd import eos, tov`` or ``bayesqcd.report``.
"""

from __future__ import annotations

from bayesqcd._lazy import lazy_exports
from bayesqcd.precision import enable_x64, require_x64, x64_enabled

__version__ = "0.1.0"

_SUBMODULES = frozenset({
    "cli", "data", "diffusion", "eos", "inference", "intervals", "lattice", "models", "nn",
    "precision", "report", "spectral", "studies", "topology", "tov", "units",
})

__all__ = ["__version__", "enable_x64", "require_x64", "x64_enabled", *sorted(_SUBMODULES)]

__getattr__, __dir__ = lazy_exports(__name__, {}, _SUBMODULES)
