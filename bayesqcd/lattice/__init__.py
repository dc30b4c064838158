"""Lattice field theory: the 2-D phi^4 action, observables, and generative samplers.

Modules (imported explicitly, so that ``bayesqcd --help`` stays fast):

* :mod:`~bayesqcd.lattice.action`: the action in the mass form ``(m^2, lambda)`` and the hopping
  form ``(kappa, lambda_h)`` with the conversion; the free theory's exact propagator.
* :mod:`~bayesqcd.lattice.observables`: magnetization, two-point function, effective mass,
  Schwinger-Dyson identity; :func:`~bayesqcd.lattice.observables.summarize` with errors.
* :mod:`~bayesqcd.lattice.stats`: ``tau_int``, binning, jackknife, bootstrap.
* :mod:`~bayesqcd.lattice.flow`: real-NVP flow with checkerboard affine couplings (trained and
  Metropolis-corrected by :mod:`bayesqcd.inference.flow`).
* :mod:`~bayesqcd.lattice.diffusion_sq`: diffusion model as stochastic quantization.
* :mod:`~bayesqcd.studies.lattice.experiment`, :mod:`~bayesqcd.cli.lattice`: ``bayesqcd lattice``.

HMC on the action is :func:`bayesqcd.inference.hmc.run_hmc` with ``Phi4Action.potential``.
"""
