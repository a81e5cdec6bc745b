"""The core: players, games, the transformation protocol, batches, per-player Optax helpers, validation.

Nothing here knows a method, a wrapper or the training loop; everything else builds on it.
"""

from gamejax._src.core.batches import PerEvaluation, first_batch, per_evaluation, split_batch
from gamejax._src.core.game import (
    Batch,
    Game,
    PassCount,
    StatefulGame,
    counting_evaluations,
    general_sum,
    zero_sum,
)
from gamejax._src.core.players import PLAYERS, Players, per_player
from gamejax._src.core.transformation import (
    GameTransformation,
    State,
    apply_updates,
    check_not_transformation,
    check_transformation,
)

__all__ = [
    "PLAYERS",
    "Batch",
    "Game",
    "GameTransformation",
    "PerEvaluation",
    "PassCount",
    "Players",
    "State",
    "StatefulGame",
    "apply_updates",
    "check_not_transformation",
    "check_transformation",
    "counting_evaluations",
    "first_batch",
    "general_sum",
    "per_evaluation",
    "per_player",
    "split_batch",
    "zero_sum",
]
