"""Study: diffusion models through Feynman's path integral (Hirono, Tanaka, Fukushima, ICML 2024).

Layer: studies (imports core :mod:`bayesqcd.diffusion` and :mod:`bayesqcd.nn`, and
:mod:`bayesqcd.report`; never :mod:`bayesqcd.cli`, which calls it as ``bayesqcd diffusion``).

What it is for: the reproduction of the paper's Table 1 (NLL at ``h = 0`` and the first-order
WKB coefficient ``d NLL / dh`` at two solver tolerances) and of W2 against ``h`` for one
(data set, schedule) case, plus two checks beyond the paper: ``NLL(h) - NLL(0)`` measured
directly by a KDE of h-process samples, and the exact ``NLL(h)`` of the 1-D analytic model::

    from bayesqcd.studies import diffusion_path_integral as dpi
    summary = dpi.run(dpi.Config(data="25gauss", sde="cosine"), out="results/25gauss-cosine")

* :class:`Config` -- the one settings object of a case (validated on construction; its
  :meth:`~Config.schedule` carries the time window used by training, sampling and likelihood);
  :data:`PAPER_PROTOCOL` -- the paper's likelihood settings (nested FD, inner tol 1e-5);
* :func:`train_one` -- one training (or its checkpoint) and its held-out points;
* :func:`run` -- train, measure, write ``summary.json`` and figures to ``out`` atomically,
  return the summary; :func:`compute` -- the same without a folder, returning
  ``(summary, arrays)``;
* :func:`analytic_finite_h` -- the 1-D analytic model, exact against WKB;
* :func:`point_stats`, :func:`over_trainings`, :func:`compare_with_paper` -- the statistics of
  per-point values, over independent trainings, and against the paper;
* :func:`plot_samples`, :func:`plot_w2_finite_h`, :func:`plot_coefficients`,
  :func:`plot_analytic_finite_h` -- figures;
* :data:`PAPER_TABLE1`, :data:`PAPER_EPOCHS` -- the paper's numbers and training length.

Modules: :mod:`.config`, :mod:`.experiment` (:func:`compute`, :func:`run`, the per-point NLL and
the KDE), :mod:`.analytic`, :mod:`.plots`.

Precision: training in float32 (the network is cast), the likelihood in float64; :func:`run`,
:func:`compute` and :func:`analytic_finite_h` switch float64 on for their call and restore
JAX's setting afterwards.
"""

from bayesqcd.studies.diffusion_path_integral.analytic import analytic_finite_h
from bayesqcd.studies.diffusion_path_integral.config import (PAPER_EPOCHS, PAPER_PROTOCOL,
                                                             PAPER_TABLE1, Config)
from bayesqcd.studies.diffusion_path_integral.experiment import (compare_with_paper, compute,
                                                                 kde_log_density,
                                                                 nll_and_coefficient,
                                                                 over_trainings, point_stats, run,
                                                                 train_one)
from bayesqcd.studies.diffusion_path_integral.plots import (plot_analytic_finite_h,
                                                            plot_coefficients, plot_samples,
                                                            plot_w2_finite_h)

__all__ = [
    "PAPER_EPOCHS", "PAPER_PROTOCOL", "PAPER_TABLE1", "Config", "analytic_finite_h",
    "compare_with_paper", "compute", "kde_log_density", "nll_and_coefficient", "over_trainings",
    "plot_analytic_finite_h", "plot_coefficients", "plot_samples", "plot_w2_finite_h",
    "point_stats", "run", "train_one",
]
