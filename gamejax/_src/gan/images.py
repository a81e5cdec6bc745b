"""A user's own images for a GAN: :func:`images` reads an array, an ``.npz``/``.npy`` file or a PNG/JPEG folder.

Every source becomes one ``(n, height, width, channels)`` float32 array in ``[-1, 1]`` (NHWC, the
layout of :mod:`gamejax._src.gan.conv_models` and of Flax's convolutions), the range of a generator
with a ``tanh`` output. ``gj.data.sampler(images)`` then draws training batches inside
:func:`gamejax.fit`. Files are read once, on the host, with Pillow (a gamejax dependency).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# ITU-R 601-2 luma, the weights of Pillow's RGB → "L" conversion.
_LUMA = np.array([0.299, 0.587, 0.114])


def _check_channels(channels: Any) -> int | None:
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ValueError(f"channels must be None (keep the images' own), 1 (grey) or 3 (RGB); got {channels!r}.")
    return channels


def _check_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
    ok = (
        isinstance(pair, Sequence)
        and len(pair) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in pair)
    )
    if not ok:
        raise ValueError(f"size must be None, an int >= 1 or a pair (height, width) of them; got {size!r}.")
    return int(pair[0]), int(pair[1])


def _check_value_range(value_range: Any) -> tuple[float, float] | None:
    if value_range is None:
        return None
    ok = isinstance(value_range, Sequence) and len(value_range) == 2
    low, high = (float(v) for v in value_range) if ok else (0.0, 0.0)
    if not ok or not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(
            f"value_range must be a pair (low, high) of finite numbers with low < high; got {value_range!r}."
        )
    return low, high


def _default_range(dtype: np.dtype) -> tuple[float, float]:
    if dtype == np.bool_:
        return 0.0, 1.0
    if dtype == np.uint16:
        return 0.0, 65535.0
    if np.issubdtype(dtype, np.integer):
        return 0.0, 255.0
    return 0.0, 1.0


def _to_channels(pixels: np.ndarray, channels: int | None) -> np.ndarray:
    """``(..., c)`` pixels with ``channels`` channels, as Pillow's ``convert("L"/"RGB")``: no alpha, luma for grey."""
    have = pixels.shape[-1]
    if channels is None or channels == have:
        return pixels
    colour = pixels[..., :3] if have >= 3 else pixels[..., :1]  # drop the alpha channel (LA, RGBA)
    if channels == 1:
        return colour if colour.shape[-1] == 1 else (colour @ _LUMA)[..., None]
    return colour if colour.shape[-1] == 3 else np.repeat(colour, 3, axis=-1)


def _resize(pixels: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Bilinear resizing of ``(n, h, w, c)`` floats, antialiased when shrinking (``jax.image.resize``)."""
    if size is None or pixels.shape[1:3] == size:
        return pixels
    shape = (pixels.shape[0], *size, pixels.shape[3])
    return np.asarray(jax.image.resize(jnp.asarray(pixels, jnp.float32), shape, "linear", antialias=True))


def _scale(pixels: np.ndarray, value_range: tuple[float, float], what: str) -> np.ndarray:
    """``[low, high] → [-1, 1]``, after checking every value lies in ``value_range``."""
    low, high = value_range
    values = pixels.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} holds {np.size(values) - np.isfinite(values).sum()} NaN/inf values.")
    if values.min() < low or values.max() > high:
        raise ValueError(
            f"{what} has values in [{values.min():g}, {values.max():g}], outside value_range = ({low:g}, {high:g}) "
            f"(the default for dtype {pixels.dtype}: integers 0..255, uint16 0..65535, floats 0..1). Pass the data's "
            "range, e.g. value_range=(-1, 1) for data already in [-1, 1]."
        )
    return 2.0 * (values - low) / (high - low) - 1.0


def _from_array(
    array: Any, what: str, channels: int | None, size: tuple[int, int] | None, value_range: tuple[float, float] | None
) -> jax.Array:
    pixels = np.asarray(array)
    if pixels.dtype == object or not (np.issubdtype(pixels.dtype, np.number) or pixels.dtype == np.bool_):
        raise TypeError(f"{what} must hold numbers; got dtype {pixels.dtype}.")
    if np.iscomplexobj(pixels):
        raise TypeError(f"{what} must hold real numbers; got dtype {pixels.dtype}.")
    if pixels.ndim == 3:
        pixels = pixels[..., None]
    if pixels.ndim != 4 or min(pixels.shape) < 1:
        raise ValueError(
            f"{what} must have shape (n, height, width) or (n, height, width, channels) with every size >= 1; "
            f"got shape {pixels.shape}."
        )
    if pixels.shape[-1] > 4:
        hint = (
            " It looks channels-first (NCHW): pass array.transpose(0, 2, 3, 1)."
            if pixels.shape[1] in (1, 2, 3, 4)
            else ""
        )
        raise ValueError(
            f"{what} must be channels-last (NHWC) with 1 to 4 channels (grey, grey + alpha, RGB, RGBA); got shape "
            f"{pixels.shape}, i.e. {pixels.shape[-1]} channels.{hint}"
        )
    scaled = _scale(pixels, value_range or _default_range(pixels.dtype), what)
    return jnp.asarray(_resize(_to_channels(scaled, channels), size), jnp.float32)


def _from_file(
    path: Path,
    key: str | None,
    channels: int | None,
    size: tuple[int, int] | None,
    value_range: tuple[float, float] | None,
) -> jax.Array:
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy"):
        raise ValueError(
            f"source {str(path)!r} is a {suffix or 'suffix-less'} file; images() reads an array, an .npz or .npy file, "
            f"or a folder of {'/'.join(s[1:].upper() for s in IMAGE_SUFFIXES)} files."
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"source {str(path)!r} is not a readable {suffix} file ({error}).") from None
    if suffix == ".npy":
        if key is not None:
            raise ValueError(f"key selects an array of an .npz file; source {str(path)!r} is an .npy file (drop key).")
        return _from_array(loaded, f"the array in {str(path)!r}", channels, size, value_range)
    with loaded:
        names = list(loaded.files)
        if key is None and len(names) != 1:
            raise ValueError(
                f"source {str(path)!r} holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                "pass key= to choose one."
            )
        name = names[0] if key is None else key
        if name not in names:
            raise ValueError(f"key {key!r} is not in {str(path)!r}, which holds {', '.join(names) or 'no arrays'}.")
        array = loaded[name]
    return _from_array(array, f"array {name!r} of {str(path)!r}", channels, size, value_range)


def _decode(path: Path, channels: int | None, size: tuple[int, int] | None) -> np.ndarray:
    """One PNG/JPEG as ``(h, w, c)`` float64 in ``[-1, 1]``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if channels is not None:
                image = image.convert("L" if channels == 1 else "RGB")
            elif image.mode in ("P", "PA"):
                image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB")
            elif image.mode == "1":
                image = image.convert("L")
            elif image.mode not in ("L", "LA", "RGB", "RGBA", "I", "I;16", "I;16B", "I;16L"):
                image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValueError(
            f"{str(path)!r} is not a readable PNG/JPEG image ({error}). Remove it from the folder."
        ) from None
    high = 65535.0 if image.mode.startswith("I") else 255.0  # 16-bit greyscale PNGs
    pixels = pixels.astype(np.float64)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return 2.0 * np.clip(pixels, 0.0, high) / high - 1.0


def _files(folder: Path) -> list[Path]:
    """The folder's PNG/JPEG files, recursively, in sorted path order (hidden files and folders skipped)."""
    found, others = [], []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(root) / name
            (found if path.suffix.lower() in IMAGE_SUFFIXES else others).append(path)
    if others:
        listed = ", ".join(repr(str(p.relative_to(folder))) for p in others[:5])
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        raise ValueError(
            f"source folder {str(folder)!r} holds {len(others)} file(s) that are not PNG/JPEG images: {listed}{more}. "
            "Move them out of the folder (hidden files are skipped)."
        )
    if not found:
        raise ValueError(f"source folder {str(folder)!r} holds no PNG/JPEG images (.png, .jpg, .jpeg).")
    return found


def _from_folder(folder: Path, channels: int | None, size: tuple[int, int] | None) -> jax.Array:
    paths = _files(folder)
    decoded = [_decode(path, channels, size) for path in paths]
    first = decoded[0].shape
    for path, pixels in zip(paths, decoded, strict=True):
        if pixels.shape[:2] != first[:2]:
            raise ValueError(
                f"the images of {str(folder)!r} have different sizes: {str(paths[0])!r} is {first[0]}×{first[1]} "
                f"(height × width), {str(path)!r} is {pixels.shape[0]}×{pixels.shape[1]}. Pass size=(height, width) "
                "to resize them all."
            )
        if pixels.shape[2] != first[2]:
            raise ValueError(
                f"the images of {str(folder)!r} have different channel counts: {str(paths[0])!r} has {first[2]}, "
                f"{str(path)!r} has {pixels.shape[2]}. Pass channels=1 (grey) or channels=3 (RGB) to convert them all."
            )
    return jnp.asarray(np.stack(decoded), jnp.float32)


def images(
    source: Any,
    *,
    channels: int | None = None,
    size: int | tuple[int, int] | None = None,
    key: str | None = None,
    value_range: tuple[float, float] | None = None,
) -> jax.Array:
    """A user's own images as one NHWC float32 array in ``[-1, 1]``, to train a GAN on.

    ``source`` is one of

    - an **array** (NumPy, JAX, or anything ``np.asarray`` takes) of shape ``(n, height, width)`` or
      ``(n, height, width, channels)`` (channels-last, 1 to 4 channels). Pixels are mapped linearly
      from ``value_range`` to ``[-1, 1]``; by default the range is ``(0, 255)`` for integers,
      ``(0, 65535)`` for ``uint16``, ``(0, 1)`` for floats and booleans, and a value outside it
      raises (pass ``value_range=(-1, 1)`` for data already in ``[-1, 1]``);
    - the path of an **.npz** file (its only array, or the one named ``key``) or an **.npy** file,
      read as an array;
    - the path of a **folder** of PNG/JPEG files (``.png``, ``.jpg``, ``.jpeg``, any case), read
      recursively in sorted path order with Pillow; 8-bit pixels map from ``[0, 255]``, 16-bit
      greyscale ones from ``[0, 65535]``. Palette images become RGB (RGBA with transparency),
      black-and-white ones greyscale, CMYK/YCbCr RGB; hidden files are skipped.

    Args:
      source: the array, or a ``str``/``os.PathLike`` path of an ``.npz``/``.npy`` file or a folder.
      channels: ``None`` keeps the images' own channels (all must agree); ``1`` converts to greyscale
        (ITU-R 601-2 luma, Pillow's ``"L"``), ``3`` to RGB; either drops an alpha channel.
      size: ``None`` keeps the images' size (all must agree); an int or ``(height, width)`` resizes
        every image, bilinearly (Pillow's for files, ``jax.image.resize`` with antialiasing for
        arrays).
      key: the array of an ``.npz`` file holding several.
      value_range: ``(low, high)`` of an array's pixels (arrays and ``.npz``/``.npy`` only).

    Returns:
      A ``(n, height, width, channels)`` float32 ``jax.Array`` in ``[-1, 1]``. Draw batches with
      ``gj.data.sampler(images)`` (pure, for :func:`gamejax.fit`'s scan).

    Raises:
      FileNotFoundError: the path does not exist.
      ValueError: a folder holds no images, a file that is not a PNG/JPEG image, or images whose
        sizes or channel counts differ (the message names two of them and the argument that fixes
        it); an array of the wrong shape, or values outside ``value_range``; an unknown ``key``.
      TypeError: an array of non-numbers.

    Example:
      >>> import numpy as np, jax, gamejax as gj
      >>> x = gj.data.images(np.zeros((10, 28, 28), np.uint8))       # or "my_images/", "faces.npz"
      >>> x.shape, float(x.min())
      ((10, 28, 28, 1), -1.0)
      >>> sample = gj.gan.batch_sampler(gj.data.sampler(x), noise_dim=128, batch_size=50)
    """
    channels, size, value_range = _check_channels(channels), _check_size(size), _check_value_range(value_range)
    if key is not None and not isinstance(key, str):
        raise TypeError(f"key must be the name of an array in an .npz file (a str); got {type(key).__name__}.")
    if not isinstance(source, (str, os.PathLike)):
        if key is not None:
            raise ValueError("key selects an array of an .npz file; source is an array (drop key).")
        return _from_array(source, "source", channels, size, value_range)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"source {str(path)!r} does not exist: pass an existing folder of images or .npz/.npy file."
        )
    if path.is_dir():
        if value_range is not None or key is not None:
            raise ValueError(
                "value_range and key apply to arrays and .npz/.npy files; a folder's PNG/JPEG pixels are scaled from "
                "their bit depth (drop them)."
            )
        return _from_folder(path, channels, size)
    return _from_file(path, key, channels, size, value_range)
