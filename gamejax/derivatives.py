"""Jacobian-vector products of a game's field (docs/design.md §4); no dense Jacobians except ``field_jacobian``."""

from gamejax._src.derivatives import (
    diagonal_blocks,
    field_jacobian,
    field_jvp_and_vjp,
    field_vjp,
    linearize_field,
    linearize_field_and_losses,
    off_diagonal_blocks,
    per_example_field_vjp,
    player_field_jvp,
)

__all__ = [
    "diagonal_blocks",
    "field_jacobian",
    "field_jvp_and_vjp",
    "field_vjp",
    "linearize_field",
    "linearize_field_and_losses",
    "off_diagonal_blocks",
    "per_example_field_vjp",
    "player_field_jvp",
]
