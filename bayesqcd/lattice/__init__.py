"""Lattice field theory: the 2-D phi^4 action, observables, and generative samplers."""
