"""Wrappers: GameTransformation -> GameTransformation (lookahead, averaging, field adjustments, guards, precision)."""
