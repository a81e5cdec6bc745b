"""Jacobian-vector products of a game's field (DESIGN.md §4); no dense Jacobians except ``field_jacobian``."""

from gamejax._src.derivatives import (
    field_jacobian,
    field_jvp,
    field_vjp,
    jacobian_transpose_product,
    linearize_field,
    mixed_products,
    off_diagonal_from_jvp,
    player_field_jvp,
)

__all__ = [
    "field_jacobian",
    "field_jvp",
    "field_vjp",
    "jacobian_transpose_product",
    "linearize_field",
    "mixed_products",
    "off_diagonal_from_jvp",
    "player_field_jvp",
]
