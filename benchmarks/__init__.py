"""Benchmarks: each module prints our figures beside the raw engine's, as ratios."""
