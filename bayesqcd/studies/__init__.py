"""The project's own applications, built on the toolkit as a user's model would be.

Layer: studies (may import core, models, inference and report; never cli). One package per
study, each exporting one frozen config dataclass ``Config`` and ``run(config, out=None,
progress=True)``, which runs the experiment, writes its results folder atomically when ``out``
is given (figures through :func:`bayesqcd.report.save_figure`) and returns its summary:

* :mod:`.neutron_star` -- the EoS posterior from neutron-star observations (``bayesqcd ns-eos``)
  and the comparison of two results (``bayesqcd compare``);
* :mod:`.ns_regression` -- amortized EoS inference: neural regression with data augmentation
  and a neural posterior estimate, both calibrated on held-out simulations;
* :mod:`.spectral` -- spectral functions from noisy correlators (mocks or your own data), six methods;
* :mod:`.lattice` -- 2-D phi^4 with HMC, a normalizing flow or a diffusion model;
* :mod:`.diffusion_path_integral` -- Table 1 and W2(h) of the path-integral paper;
* :mod:`.topology` -- winding numbers of line drawings learnt by an autoencoder;
* :mod:`.regression_toy` -- observational data augmentation on a 1-D toy.

Each study switches on the precision it needs (float64 for neutron stars, spectral functions
and the diffusion likelihood) when it runs, never on import.
"""
