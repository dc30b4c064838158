"""Spectral functions from Euclidean correlators: kernels, mock data, error metrics, MEM (core).

Layer: core (pure JAX and numpy; never imports models, inference, studies or cli).
Modules: :mod:`.kernels`, :mod:`.mocks`, :mod:`.data` (a user's correlator file),
:mod:`.metrics`, :mod:`.mem` (the Maximum Entropy Method), :mod:`.br` (the Bayesian
Reconstruction of Burnier and Rothkopf), :mod:`.prior` (peak families and the coarse log-rho representation of the diffusion prior).
The methods that turn data into posteriors are NumPyro models (:mod:`bayesqcd.models.spectral`)
run by :mod:`bayesqcd.inference`; the benchmark study is :mod:`bayesqcd.studies.spectral`.


A spectral function ``rho(omega) >= 0`` determines a correlator through a kernel,
``D(x) = int_0^inf d omega K(x, omega) rho(omega)``. On a uniform grid
``omega_i = i omega_max / n`` (``i = 1..n``, so the grid is ``(0, omega_max]``) with weights
``dw = omega_max / n`` the integral becomes the matrix ``A = K W``: ``D = A rho``.

Kernels (units: ``omega``, ``p`` and ``1/tau`` in the same energy unit, e.g. GeV, or lattice
units ``a = 1``; ``rho`` and ``D`` in whatever unit the user chooses, the map is linear):

* :func:`kallen_lehmann_kernel`: momentum space, ``K(p, w) = w / [pi (w^2 + p^2)]``.
* :func:`euclidean_kernel`: Euclidean time at zero temperature on a periodic lattice of
  ``N_t`` sites, ``K(tau, w) = exp(-w tau) + exp(-w (N_t - tau))`` (``tau`` in lattice units).
* :func:`thermal_kernel`: finite temperature ``T``,
  ``K(tau, w) = cosh(w (tau - 1/(2T))) / sinh(w / (2T))`` for ``0 <= tau < 1/T``.

Mock spectral functions: :func:`breit_wigner`
``rho = 4 A Gamma w / [(M^2 + Gamma^2 - w^2)^2 + 4 Gamma^2 w^2]``, :func:`gaussian_peak`,
:func:`transport_peak` (Drude) and :func:`threshold_continuum` (``c w^2`` above a smoothed
threshold); :func:`mock_spectrum` builds the named mocks of :data:`MOCKS` (Wang, Shi, Zhou,
arXiv:2111.14760: one peak ``A=1, M=2, Gamma=0.5``; two peaks at ``M = 2, 5``; Gaussians; a
resonance plus continuum; a transport peak; a thermal-kernel case). :func:`mock_correlator` adds noise with a
chosen model and covariance. Metrics: :func:`mse`, :func:`kl_divergence`, :func:`coverage`.
"""

from bayesqcd.spectral.br import BRResult, br
from bayesqcd.spectral.data import Correlator, data_problem, load_correlator, load_covariance
from bayesqcd.spectral.kernels import (
    KERNELS,
    euclidean_kernel,
    forward_matrix,
    kallen_lehmann_kernel,
    kernel_matrix,
    kernel_valid_range,
    omega_grid,
    thermal_kernel,
)
from bayesqcd.spectral.mem import MEMResult, mem
from bayesqcd.spectral.metrics import (
    chi2_per_point,
    coverage,
    fit_metrics,
    kl_divergence,
    log10_eps_label,
    metrics,
    mse,
)
from bayesqcd.spectral.mocks import (
    MOCK_KERNEL,
    MOCKS,
    MockData,
    breit_wigner,
    gaussian_peak,
    make_mock,
    mock_correlator,
    mock_spectrum,
    noise_covariance,
    threshold_continuum,
    transport_peak,
)

__all__ = [
    "BRResult", "Correlator", "KERNELS", "MEMResult", "MOCK_KERNEL", "MOCKS", "MockData", "br", "breit_wigner",
    "chi2_per_point", "coverage", "data_problem", "euclidean_kernel", "fit_metrics",
    "forward_matrix", "gaussian_peak", "kallen_lehmann_kernel", "kernel_matrix", "kernel_valid_range",
    "kl_divergence", "load_correlator", "load_covariance", "log10_eps_label",
    "make_mock", "mem", "metrics", "mock_correlator", "mock_spectrum", "mse", "noise_covariance",
    "omega_grid", "thermal_kernel", "threshold_continuum", "transport_peak",
]
