"""Inference engines (installed as ``bayesqcd.inference``); each returns ``arviz.InferenceData``."""
