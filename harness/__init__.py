"""bench: hardware-in-the-loop benchmarking of pruned TinyML models."""

__version__ = "0.1.0"
