"""Results folders, JSON summaries, provenance, and figures drawn from InferenceData.

Layer: report (imports core and arviz/matplotlib; never models, inference, studies or cli).
Every figure of the project is saved by :func:`save_figure`; generic plots take an
``arviz.InferenceData`` (or several) and variable names, so a user's model gets the same
reports as ours: :func:`plot_band` (median and credible bands of a curve along its
coordinate, several results overlaid), :func:`plot_intervals` (forest plot of intervals),
:func:`plot_corner` (pairwise densities of scalar parameters), :func:`plot_calibration`
(coverage and SBC ranks). :func:`compare` measures, variable by variable, how two results
agree (a printable, JSON-able :class:`Comparison`), :func:`plot_compare` draws it and
:func:`write_compare` writes it as a results folder (``bayesqcd compare``).

Results folders (:class:`ResultsDir`, :func:`atomic_results_dir`) are checked before any work,
written into a temporary sibling and renamed into place only when complete; only folders that
bayesqcd wrote (marked by :data:`MARKER`) are ever replaced, and only with ``overwrite``.

Modules: ``_folders`` (results folders, JSON, provenance), ``_plots`` (figures), ``_compare``
(comparisons); everything public is imported here.
"""
from bayesqcd.intervals import credible_band, credible_interval, interval_overlap

from ._compare import Comparison, VariableComparison, compare, load_result, plot_compare, write_compare
from ._folders import (
    MARKER,
    ResultsDir,
    atomic_results_dir,
    results_dir,
    to_json,
    versions,
    write_json,
)
from ._plots import (
    band_on_axes,
    plot_band,
    plot_calibration,
    plot_corner,
    plot_intervals,
    plot_mass_radius,
    pyplot,
    save_figure,
)

__all__ = [
    "MARKER", "Comparison", "ResultsDir", "VariableComparison", "atomic_results_dir", "band_on_axes", "compare",
    "credible_band", "credible_interval", "interval_overlap", "load_result", "plot_band", "plot_calibration",
    "plot_compare", "plot_corner", "plot_intervals", "plot_mass_radius", "pyplot", "results_dir", "save_figure",
    "to_json", "versions", "write_compare", "write_json",
]
