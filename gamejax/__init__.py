"""gamejax: composable, jit-compiled optimizers for differentiable two-player games.

Each player minimizes its own loss; ``v = (∇x loss_x, ∇y loss_y)`` is the game's vector field.
Methods turn per-player Optax optimizers into a :class:`GameTransformation`; wrappers map a
``GameTransformation`` to another one::

    import optax, gamejax as gj
    game, init, optimum = gj.games.bilinear()
    tx = gj.ema(0.999)(gj.lookahead(k=5, alpha=0.5)(gj.extragradient(optax.sgd(0.1))))
    result = gj.fit(game, tx, init, steps=1000, equilibrium=optimum)
"""

from gamejax import data, derivatives, equinox, flax, games, gan, metrics, plots
from gamejax._src.bases.complex_momentum import ComplexMomentumState, complex_momentum
from gamejax._src.core import (
    Game,
    GameTransformation,
    PassCount,
    PerEvaluation,
    Players,
    StatefulGame,
    apply_updates,
    general_sum,
    per_evaluation,
    zero_sum,
)
from gamejax._src.core.schedules import per_step
from gamejax._src.diagnostics import decompose_jacobian, jacobian_eigenvalues, spectral_radius, step_jacobian
from gamejax._src.linear_solve import SolveInfo
from gamejax._src.methods.alternating import AlternatingState, alternating
from gamejax._src.methods.alternating_lookahead import AlternatingLookaheadState, alternating_lookahead
from gamejax._src.methods.anchored import (
    AnchoredExtragradientState,
    FastExtragradientState,
    anchored_extragradient,
    fast_extragradient,
)
from gamejax._src.methods.competitive import ACGDState, CGDState, acgd, cgd
from gamejax._src.methods.extragradient import (
    ExtragradientState,
    PastExtragradientState,
    extragradient,
    past_extragradient,
)
from gamejax._src.methods.follow_the_ridge import FollowTheRidgeState, follow_the_ridge
from gamejax._src.methods.gda import GDAState, gda
from gamejax._src.methods.lead import LEADState, lead
from gamejax._src.methods.opponent_shaping import LOLAState, SOSState, lola, sos
from gamejax._src.methods.optimistic import OptimisticState, optimistic
from gamejax._src.methods.svre import SVREState, svre
from gamejax._src.methods.unrolled import UnrolledState, unrolled
from gamejax._src.training.cost import evaluations_per_step, passes_per_step, reported_evaluations
from gamejax._src.training.fit import DivergenceWarning, FitResult, fit
from gamejax._src.training.program import Status
from gamejax._src.training.sharding import replicate, shard, shard_local
from gamejax._src.training.step import Step, WithModelState, evaluate, init_state, make_step
from gamejax._src.wrappers.averaging import EmaState, MovingAverageState, averaged, ema, moving_average
from gamejax._src.wrappers.field_adjustments import consensus, hamiltonian, sga
from gamejax._src.wrappers.guards import SkipNonFiniteState, skip_nonfinite
from gamejax._src.wrappers.lookahead import LookaheadState, lookahead
from gamejax._src.wrappers.precision import MixedPrecisionState, mixed_precision

__version__ = "0.1.0"

__all__ = [
    # core
    "Players",
    "Game",
    "GameTransformation",
    "zero_sum",
    "general_sum",
    "apply_updates",
    "per_step",
    "PerEvaluation",
    "per_evaluation",
    "StatefulGame",
    "WithModelState",
    "init_state",
    # methods
    "gda",
    "alternating",
    "extragradient",
    "anchored_extragradient",
    "fast_extragradient",
    "past_extragradient",
    "optimistic",
    "alternating_lookahead",
    "lead",
    "cgd",
    "acgd",
    "follow_the_ridge",
    "lola",
    "sos",
    "unrolled",
    "svre",
    "complex_momentum",
    # wrappers
    "lookahead",
    "ema",
    "moving_average",
    "averaged",
    "consensus",
    "sga",
    "hamiltonian",
    "skip_nonfinite",
    "mixed_precision",
    # diagnostics
    "step_jacobian",
    "spectral_radius",
    "jacobian_eigenvalues",
    "decompose_jacobian",
    # training
    "make_step",
    "Step",
    "fit",
    "FitResult",
    "DivergenceWarning",
    "Status",
    "PassCount",
    "evaluate",
    "evaluations_per_step",
    "passes_per_step",
    "reported_evaluations",
    # devices
    "shard",
    "replicate",
    "shard_local",
    # states
    "GDAState",
    "AlternatingState",
    "ExtragradientState",
    "AnchoredExtragradientState",
    "FastExtragradientState",
    "PastExtragradientState",
    "OptimisticState",
    "LookaheadState",
    "AlternatingLookaheadState",
    "EmaState",
    "MovingAverageState",
    "LEADState",
    "CGDState",
    "ACGDState",
    "FollowTheRidgeState",
    "LOLAState",
    "SOSState",
    "SolveInfo",
    "UnrolledState",
    "SVREState",
    "ComplexMomentumState",
    "SkipNonFiniteState",
    "MixedPrecisionState",
    # modules
    "games",
    "derivatives",
    "plots",
    "flax",
    "equinox",
    "gan",
    "data",
    "metrics",
]
