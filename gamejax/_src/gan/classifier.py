"""The digits classifier behind :func:`gamejax.metrics.digits_scores`: a small MLP, trained once and cached.

:func:`digits_classifier` trains it on ``gj.data.digits("train")`` the first time, caches its
parameters on disk (written atomically) and in memory, and loads the cache on later calls.
"""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.typing import ArrayLike

from gamejax._src.files import write_atomically
from gamejax._src.gan.data import digits

_FORMAT_VERSION = 1
_HIDDEN = 128
_STEPS = 300
_LEARNING_RATE = 3e-3
_SEED = 0


class _MLP(nnx.Module):
    """64 → 128 → 128 → 10, ReLU."""

    def __init__(self, rngs: nnx.Rngs):
        self.hidden1 = nnx.Linear(64, _HIDDEN, rngs=rngs)
        self.hidden2 = nnx.Linear(_HIDDEN, _HIDDEN, rngs=rngs)
        self.out = nnx.Linear(_HIDDEN, 10, rngs=rngs)

    def features(self, images: jax.Array) -> jax.Array:
        return jax.nn.relu(self.hidden2(jax.nn.relu(self.hidden1(images))))

    def __call__(self, images: jax.Array) -> jax.Array:
        return self.out(self.features(images))


class DigitsClassifier:
    """A trained digits MLP; see :func:`digits_classifier`.

    Attributes:
      test_accuracy: the accuracy on ``gj.data.digits("test")``, a float.
    """

    def __init__(self, graphdef: nnx.GraphDef, params: nnx.State, test_accuracy: float):
        self._graphdef = graphdef
        self.params = params
        self.test_accuracy = float(test_accuracy)

    def _model(self) -> _MLP:
        return nnx.merge(self._graphdef, self.params)

    @staticmethod
    def _images(images: ArrayLike) -> jax.Array:
        images = jnp.asarray(images, dtype=jnp.float32)
        if images.ndim < 1 or images.shape[-1] != 64:
            raise ValueError(
                f"images must have shape (..., 64): flattened 8×8 digits in [-1, 1]; got {images.shape}. "
                "Flatten with images.reshape(n, 64)."
            )
        return images

    def logits(self, images: ArrayLike) -> jax.Array:
        """``(..., 10)`` class logits of ``(..., 64)`` images in ``[-1, 1]``."""
        return self._model()(self._images(images))

    def features(self, images: ArrayLike) -> jax.Array:
        """``(..., 128)`` penultimate-layer (second hidden ReLU layer) features of ``(..., 64)`` images."""
        return self._model().features(self._images(images))

    def __repr__(self) -> str:
        return f"DigitsClassifier(test_accuracy={self.test_accuracy:.4f})"


_MEMO: dict[str, DigitsClassifier] = {}


def _cache_dir() -> Path:
    root = os.environ.get("GAMEJAX_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "gamejax"


def _cache_file() -> Path:
    return _cache_dir() / f"digits_classifier_v{_FORMAT_VERSION}.npz"


def _template() -> tuple[nnx.GraphDef, nnx.State]:
    """The MLP's graph and the shapes/dtypes of its parameters (nothing is computed)."""
    return nnx.split(nnx.eval_shape(lambda: _MLP(nnx.Rngs(_SEED))))


def _train() -> DigitsClassifier:
    """Full-batch Adam on the cross-entropy of ``digits("train")``, ``_STEPS`` steps in one ``lax.scan``.

    Initialization, training and the test accuracy are one compiled program.
    """
    train_images, train_labels = digits("train")
    test_images, test_labels = digits("test")
    graphdef, _ = _template()
    optimizer = optax.adam(_LEARNING_RATE)

    def loss(params):
        logits = nnx.merge(graphdef, params)(train_images)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, train_labels))

    def step(carry, _):
        params, opt_state = carry
        updates, opt_state = optimizer.update(jax.grad(loss)(params), opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    @jax.jit
    def fit():
        params = nnx.split(_MLP(nnx.Rngs(_SEED)))[1]
        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), length=_STEPS)
        predictions = jnp.argmax(nnx.merge(graphdef, params)(test_images), axis=-1)
        return params, jnp.mean((predictions == test_labels).astype(jnp.float32))

    params, accuracy = fit()
    return DigitsClassifier(graphdef, params, float(accuracy))


def _save(classifier: DigitsClassifier, path: Path) -> None:
    leaves = {f"leaf_{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(classifier.params))}
    buffer = io.BytesIO()
    np.savez(buffer, version=np.int64(_FORMAT_VERSION), test_accuracy=np.float64(classifier.test_accuracy), **leaves)
    write_atomically(path, buffer.getbuffer())  # readers see the old file or the complete new one


def _load(path: Path) -> DigitsClassifier | None:
    """The cached classifier, or ``None`` if the file is missing, unreadable or of another version."""
    graphdef, template = _template()
    expected, structure = jax.tree.flatten(template)
    try:
        # Open the file here: np.load leaks its handle when the archive is corrupted.
        with open(path, "rb") as handle, np.load(handle) as file:
            if int(file["version"]) != _FORMAT_VERSION:
                return None
            leaves = [np.asarray(file[f"leaf_{i}"]) for i in range(len(expected))]
            accuracy = float(file["test_accuracy"])
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    if any(leaf.shape != ref.shape or leaf.dtype != ref.dtype for leaf, ref in zip(leaves, expected, strict=True)):
        return None
    params = jax.tree.unflatten(structure, [jnp.asarray(leaf) for leaf in leaves])
    return DigitsClassifier(graphdef, params, accuracy)


def digits_classifier() -> DigitsClassifier:
    """A small MLP classifier of the 8×8 digits, trained once and cached (for :func:`digits_scores`).

    Architecture: Flax NNX MLP 64 → 128 → 128 → 10 with ReLU. Training: full-batch Adam (learning
    rate 3·10⁻³, 300 steps in one ``lax.scan``) on the softmax cross-entropy of
    ``gj.data.digits("train")`` (1,437 images), parameters initialized from ``nnx.Rngs(0)``.
    Measured accuracy on ``gj.data.digits("test")`` (360 images): **0.9667** (348/360, float32 on
    CPU, with and without ``jax_enable_x64``). Training, evaluation and saving take about 3–5 s on a
    2-core CPU (of which ~2 s is compilation); loading the cache takes ~0.1 s.

    The trained parameters are cached as ``digits_classifier_v{version}.npz`` (the parameter leaves,
    the test accuracy and a format version) in ``$GAMEJAX_CACHE``, or ``~/.cache/gamejax`` when it is
    unset, written atomically (temporary file + ``os.replace``). Later calls load that file (if its
    version matches, else they retrain and overwrite it) and keep the result in memory for the
    rest of the process. If the directory is not writable, a ``RuntimeWarning`` says so and the
    classifier is used uncached.

    Returns:
      A :class:`DigitsClassifier` with ``logits(images)``, ``features(images)`` (the 128-d
      penultimate layer) and ``test_accuracy``. Images: ``(..., 64)`` in ``[-1, 1]``.

    Example:
      >>> classifier = digits_classifier()
      >>> images, labels = gj.data.digits("test")
      >>> classifier.logits(images).shape, classifier.features(images).shape
      ((360, 10), (360, 128))
    """
    path = _cache_file()
    key = str(path.resolve())
    classifier = _MEMO.get(key)
    if classifier is None:
        classifier = _load(path) if path.exists() else None
        if classifier is None:
            classifier = _train()
            try:
                _save(classifier, path)
            except OSError as error:
                warnings.warn(
                    f"gamejax could not cache the digits classifier at {path} ({error}); it will be retrained in "
                    "the next process. Set GAMEJAX_CACHE to a writable directory.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        _MEMO[key] = classifier
    return classifier
