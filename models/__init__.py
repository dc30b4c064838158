"""NumPyro models (installed as ``bayesqcd.models``)."""
