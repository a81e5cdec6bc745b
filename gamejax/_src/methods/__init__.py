"""Methods: each turns per-player Optax optimizers into a GameTransformation (one file per family)."""
