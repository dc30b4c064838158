"""NumPyro models (installed as ``bayesqcd.models``).

Layer: models (imports core only; never inference, report, studies or cli). A model is a
plain function of its data that samples priors and observes a likelihood built on a core
forward model; any engine of :mod:`bayesqcd.inference` runs it.

* :mod:`.neutron_star`: the EoS priors (c_s^2 segments, piecewise polytrope, neural network)
  and :func:`neutron_star_model` over mass-radius, radio-mass and tidal data;
* :mod:`.spectral`: spectral functions behind Kallen-Lehmann correlators with a GP, a
  Bayesian-network or a diffusion prior, and the data-informed reparametrisation.

Names are imported on first use: ``from bayesqcd.models import neutron_star_model``.
"""

from bayesqcd._lazy import lazy_exports

_EXPORTS = {
    "EOS_PRIORS": ".neutron_star",
    "NSData": ".neutron_star",
    "NeuralPrior": ".neutron_star",
    "PolytropePrior": ".neutron_star",
    "SoundSpeedPrior": ".neutron_star",
    "derived_quantities": ".neutron_star",
    "eos_curves": ".neutron_star",
    "neutron_star_model": ".neutron_star",
    "ns_data": ".neutron_star",
    "SpectralMLP": ".spectral",
    "data_informed_model": ".spectral",
    "diffusion_prior_model": ".spectral",
    "gp_basis": ".spectral",
    "gp_model": ".spectral",
    "nn_model": ".spectral",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
