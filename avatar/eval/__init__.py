"""Measuring a trained avatar on the held-out tail of its video."""
