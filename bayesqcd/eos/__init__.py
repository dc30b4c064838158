"""Equations of state: every parametrization builds one :class:`EoSTable`.

- :func:`piecewise_polytrope`, :func:`named` (SLy, APR4, MPA1, H4, WFF1): Read et al. 2009;
- :func:`sound_speed`: c_s^2 in density segments (Fujimoto, Fukushima & Murase);
- :func:`from_file`, :func:`from_arrays`: tables of (n, eps, p);
- :func:`incompressible`: constant energy density (exact test case).

Layer: core (pure JAX; never imports models, inference, studies or cli).

Builders are pure JAX functions of their parameters (jit, vmap, grad); outside jit,
unphysical parameters raise ``ValueError``. Neutron-star structure needs float64: call
:func:`bayesqcd.enable_x64` first (building a table in float32 raises an error that says so).
"""

from bayesqcd.eos.polytrope import NAMED, PUBLISHED_M_MAX, named, piecewise_polytrope, validate_polytrope
from bayesqcd.eos.sound_speed import default_bounds, sound_speed, validate_sound_speed
from bayesqcd.eos.table import EPS_T, N_GRID, EoSTable, from_nodes
from bayesqcd.eos.tabulated import from_arrays, from_file, incompressible

__all__ = [
    "EPS_T",
    "N_GRID",
    "NAMED",
    "PUBLISHED_M_MAX",
    "EoSTable",
    "default_bounds",
    "from_arrays",
    "from_file",
    "from_nodes",
    "incompressible",
    "named",
    "piecewise_polytrope",
    "sound_speed",
    "validate_polytrope",
    "validate_sound_speed",
]
