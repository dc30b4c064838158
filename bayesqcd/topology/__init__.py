"""Line drawings with exact topological labels, and their label-free normalisations (core).

Layer: core (pure JAX; never imports models, inference, studies or cli).

* :mod:`.drawings`: curves winding 0..W times drawn as images (Fukushima, Funai, Iida,
  arXiv:1908.00281), their winding numbers and simple pixel statistics.
* :mod:`.frames`: label-free normalisations of the drawings (centring, affine and
  principal-axis frames, stroke width) and the random zooms of the invariance penalty.

The autoencoder is :class:`bayesqcd.nn.autoencoder.ConvAutoencoder`; the clustering study that
trains it and scores its codes is :mod:`bayesqcd.studies.topology`.
"""

from bayesqcd.topology.drawings import (
    DrawingConfig,
    Drawings,
    pixel_statistics,
    render,
    sample_drawings,
    topological_class,
    winding_number,
)
from bayesqcd.topology.frames import (
    FRAMES,
    affine_normalise,
    centre_images,
    centroid_normalise,
    normalise_images,
    orient_images,
    prepare_images,
    radial_profile,
    random_zoom_stretch,
    shift_to_centroid,
    stroke_normalise,
)

__all__ = [
    "FRAMES", "DrawingConfig", "Drawings", "affine_normalise", "centre_images", "centroid_normalise",
    "normalise_images", "orient_images", "pixel_statistics", "prepare_images", "radial_profile",
    "random_zoom_stretch", "render", "sample_drawings", "shift_to_centroid", "stroke_normalise",
    "topological_class", "winding_number",
]
