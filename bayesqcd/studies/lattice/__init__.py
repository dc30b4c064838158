"""Study: 2-D phi^4 theory sampled by HMC, a normalizing flow or a diffusion model.

Layer: studies (imports core :mod:`bayesqcd.lattice` and :mod:`bayesqcd.diffusion`, the engines
:mod:`bayesqcd.inference.hmc` and :mod:`bayesqcd.inference.flow`, and :mod:`bayesqcd.report`;
never :mod:`bayesqcd.cli`, which calls it as ``bayesqcd lattice``).

What it is for: "generative models as inverse modelling of physical probability
distributions" -- each sampler produces configurations of ``exp(-S[phi])`` at ``(L, m^2,
lambda)`` (the flow and diffusion proposals made exact by independence Metropolis), and the run
reports the observables with binned-jackknife errors, ESS/N, acceptance, ``tau_int`` of ``|M|``
and the wall time per independent sample::

    from bayesqcd.studies import lattice
    summary = lattice.run(lattice.Config(L=8, method="flow"), out="results/flow")

* :class:`Config` -- the one settings object (validated on construction);
* :func:`run` -- sample, write ``configs.npz``, ``observables.png``, ``summary.json`` to ``out``
  atomically, return the summary;
* :func:`compute` -- the same run without a folder, returning ``(summary, idata)``;
* :func:`plot_observables` -- histogram of ``M``, ``G(t)``, ``m_eff(t)`` of one run.

Modules: :mod:`.config` (:class:`Config`), :mod:`.experiment` (:func:`compute`, :func:`run`),
:mod:`.plots`.

Precision: float32 unless ``Config.x64`` (float64), set for the run and restored afterwards.
"""

from bayesqcd.studies.lattice.config import METHODS, Config
from bayesqcd.studies.lattice.experiment import compute, run
from bayesqcd.studies.lattice.plots import plot_observables

__all__ = ["METHODS", "Config", "compute", "plot_observables", "run"]
