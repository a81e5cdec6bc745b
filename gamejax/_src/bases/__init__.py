"""Optax bases: per-parameter update rules written for games (an optax.GradientTransformation each)."""
