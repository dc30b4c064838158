"""bayesqcd: Bayesian inverse problems in QCD physics, on JAX.

Physical forward models are pure, differentiable JAX functions (``bayesqcd.tov``,
``bayesqcd.eos``, ``bayesqcd.diffusion``, ...); NumPyro models live in
``bayesqcd.models``; inference engines in ``bayesqcd.inference``; every posterior
leaves as an ``arviz.InferenceData``.

Neutron-star code needs float64: importing :mod:`bayesqcd.tov` or :mod:`bayesqcd.eos`
enables ``jax_enable_x64``.
"""

__version__ = "0.1.0"
