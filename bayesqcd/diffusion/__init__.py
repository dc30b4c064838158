"""Diffusion models through Feynman's path integral (Hirono, Tanaka, Fukushima, ICML 2024).

Modules (imported explicitly, so that ``bayesqcd --help`` stays fast):

* :mod:`~bayesqcd.diffusion.sde`: SIMPLE, COSINE, VP schedules (``f``, ``g``, ``alpha_t``, ``sigma_t``).
* :mod:`~bayesqcd.diffusion.score`: ``g^2``-weighted denoising score matching and training.
* :mod:`~bayesqcd.diffusion.sampling`: the h-family of generating processes.
* :mod:`~bayesqcd.diffusion.likelihood`: exact NLL at ``h = 0`` and the first-order WKB term.
* :mod:`~bayesqcd.diffusion.distribution`: a score model as a NumPyro distribution.
* :mod:`~bayesqcd.diffusion.analytic`: exact scores and closed forms for tests.
* :mod:`~bayesqcd.diffusion.metrics`, :mod:`~bayesqcd.diffusion.data`,
  :mod:`~bayesqcd.studies.diffusion_path_integral.experiment`, :mod:`~bayesqcd.cli.diffusion`: the reproduction.
"""
