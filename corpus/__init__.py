"""Corpus I/O and analytics: assets, formats, label normalization, splits, checks."""
