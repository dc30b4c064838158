"""Lattice field theory: the 2-D phi^4 action, observables and their errors, generative samplers.

Layer: core (imports jax, equinox, diffrax, optax, numpy, :mod:`bayesqcd.diffusion` and
:mod:`bayesqcd.nn`; never argparse, matplotlib, models, inference, studies or cli).

* :mod:`.action` -- the action in the mass form ``(m^2, lambda)`` (:class:`Phi4Action`) and the
  hopping form ``(kappa, lambda_h)`` with the conversions; the free theory's exact propagator.
* :mod:`.observables` -- magnetization, two-point function, effective mass, Schwinger-Dyson
  (Ward) identity; :func:`summarize` gives the ensemble observables with binned-jackknife errors.
* :mod:`.stats` -- ``tau_int``, binning, jackknife, bootstrap.
* :mod:`.flow` -- :class:`LatticeFlow`, a real-NVP flow with checkerboard affine couplings.
* :mod:`.diffusion_sq` -- a diffusion model as stochastic quantization (:class:`FieldScore`,
  :func:`train_field_score`, :class:`PFODEProposal`, :class:`HFamilyProposal`).

The samplers live in the engines: HMC on the action is :func:`bayesqcd.inference.hmc.run_hmc`
with ``Phi4Action.potential``; flows and diffusion proposals are trained and made exact by
:mod:`bayesqcd.inference.flow` (independence Metropolis). The study that compares the three,
with its results folder, is :mod:`bayesqcd.studies.lattice` (``bayesqcd lattice``).

Every name below is importable from here (``from bayesqcd.lattice import Phi4Action``); the
submodules load on first use, so that importing a light one (``stats``) does not load diffrax.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bayesqcd._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # action
    "Phi4Action": "action", "kinetic": "action", "hopping_action": "action",
    "hopping_to_mass": "action", "mass_to_hopping": "action",
    # observables
    "magnetization": "observables", "two_point": "observables", "ward_identity": "observables",
    "effective_mass": "observables", "summarize": "observables",
    # statistics
    "autocorrelation": "stats", "tau_int": "stats", "bin_size_for": "stats", "bin_means": "stats",
    "jackknife": "stats", "bootstrap": "stats",
    # normalizing flow
    "LatticeFlow": "flow", "checkerboard": "flow",
    # diffusion model as stochastic quantization
    "FieldScore": "diffusion_sq", "symmetry_augment": "diffusion_sq",
    "train_field_score": "diffusion_sq", "PFODEProposal": "diffusion_sq",
    "HFamilyProposal": "diffusion_sq", "sample_h_family": "diffusion_sq",
}
_SUBMODULES = frozenset({"action", "diffusion_sq", "flow", "observables", "stats"})

__all__ = sorted(_EXPORTS) + sorted(_SUBMODULES)

if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from bayesqcd.lattice import action, diffusion_sq, flow, observables, stats
    from bayesqcd.lattice.action import (Phi4Action, hopping_action, hopping_to_mass, kinetic,
                                         mass_to_hopping)
    from bayesqcd.lattice.diffusion_sq import (FieldScore, HFamilyProposal, PFODEProposal,
                                               sample_h_family, symmetry_augment,
                                               train_field_score)
    from bayesqcd.lattice.flow import LatticeFlow, checkerboard
    from bayesqcd.lattice.observables import (effective_mass, magnetization, summarize, two_point,
                                              ward_identity)
    from bayesqcd.lattice.stats import (autocorrelation, bin_means, bin_size_for, bootstrap,
                                        jackknife, tau_int)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)
