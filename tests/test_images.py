"""gj.data.images: arrays, .npz/.npy files and folders of PNG/JPEG files as NHWC floats in [-1, 1], and its errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from gamejax import data

# ---------------------------------------------------------------------------------------------
# Arrays.


def test_uint8_array_maps_0_255_onto_minus_one_one():
    pixels = np.array([[[0, 51], [204, 255]]], np.uint8)  # (1, 2, 2): one 2×2 grey image
    images = data.images(pixels)
    assert images.shape == (1, 2, 2, 1) and images.dtype == jnp.float32
    # 2·v/255 − 1 by hand: 0 → −1, 51 → −0.6, 204 → 0.6, 255 → 1
    np.testing.assert_allclose(images[0, :, :, 0], [[-1.0, -0.6], [0.6, 1.0]], atol=1e-7)


def test_float_and_bool_arrays_and_value_range():
    x = np.array([0.0, 0.25, 1.0]).reshape(1, 1, 3, 1)
    np.testing.assert_allclose(data.images(x)[0, 0, :, 0], [-1.0, -0.5, 1.0], atol=1e-7)  # floats: [0, 1]
    np.testing.assert_allclose(data.images(x, value_range=(-1, 1))[0, 0, :, 0], [0.0, 0.25, 1.0], atol=1e-7)
    np.testing.assert_allclose(data.images(x * 4, value_range=(0, 4))[0, 0, :, 0], [-1.0, -0.5, 1.0], atol=1e-7)
    assert data.images(np.ones((2, 3, 3), bool)).min() == 1.0
    words = np.array([0, 1000, 65535], np.uint16).reshape(1, 1, 3)
    np.testing.assert_allclose(data.images(words)[0, 0, :, 0], [-1.0, 2000 / 65535 - 1, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match=r"outside value_range = \(0, 1\).*value_range=\(-1, 1\)"):
        data.images(x * 2 - 1)  # data already in [-1, 1] must say so
    with pytest.raises(ValueError, match="NaN/inf"):
        data.images(np.full((1, 2, 2), np.nan))
    with pytest.raises(ValueError, match="value_range must be a pair"):
        data.images(x, value_range=(1, 0))


def test_array_channels_and_size():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (2, 4, 4, 3)).astype(np.uint8)
    scaled = 2 * rgb.astype(np.float64) / 255 - 1
    grey = data.images(rgb, channels=1)
    assert grey.shape == (2, 4, 4, 1)
    # ITU-R 601-2 luma (Pillow's "L"); its weights sum to 1, so scaling first or last is the same
    luma = 0.299 * scaled[..., 0] + 0.587 * scaled[..., 1] + 0.114 * scaled[..., 2]
    np.testing.assert_allclose(grey[..., 0], luma, atol=1e-6)
    rgba = np.concatenate([rgb, np.zeros((2, 4, 4, 1), np.uint8)], axis=-1)
    np.testing.assert_allclose(data.images(rgba, channels=3), scaled, atol=1e-6)  # alpha dropped
    np.testing.assert_allclose(data.images(rgb[..., :1], channels=3), np.repeat(scaled[..., :1], 3, -1), atol=1e-6)
    constant = np.full((2, 8, 6, 1), 128, np.uint8)
    resized = data.images(constant, size=(4, 3))
    assert resized.shape == (2, 4, 3, 1)
    np.testing.assert_allclose(resized, 2 * 128 / 255 - 1, atol=1e-6)  # a constant image stays constant
    assert data.images(constant, size=16).shape == (2, 16, 16, 1)


@pytest.mark.parametrize(
    "source, error, match",
    [
        (np.zeros((2, 3, 8, 8)), ValueError, r"channels-first \(NCHW\): pass array.transpose\(0, 2, 3, 1\)"),
        (np.zeros((4, 4)), ValueError, r"shape \(n, height, width\)"),
        (np.zeros((0, 4, 4)), ValueError, "every size >= 1"),
        (np.array([["a"]]), TypeError, "must hold numbers"),
    ],
)
def test_bad_arrays(source, error, match):
    with pytest.raises(error, match=match):
        data.images(source)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"channels": 2}, r"channels must be None .*, 1 \(grey\) or 3"),
        ({"size": (4, 0)}, "size must be None"),
        ({"key": 3}, "key"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        data.images(np.zeros((1, 4, 4), np.uint8), **kwargs)


def test_sampler_draws_training_batches_of_images():
    x = data.images(np.arange(5, dtype=np.uint8)[:, None, None] * np.ones((5, 3, 3), np.uint8))
    batch = jax.jit(lambda k: data.sampler(x)(k, 16))(jax.random.key(0))
    assert batch.shape == (16, 3, 3, 1)
    rows = {float(v) for v in np.asarray(x[:, 0, 0, 0])}
    assert {float(v) for v in np.asarray(batch[:, 0, 0, 0])} <= rows
    assert np.all(np.asarray(batch) == np.asarray(batch[:, :1, :1, :]))  # whole images


# ---------------------------------------------------------------------------------------------
# .npz and .npy files.


def test_npz_and_npy_files(tmp_path):
    a = np.full((3, 4, 4), 255, np.uint8)
    np.savez(tmp_path / "one.npz", images=a)
    np.testing.assert_array_equal(data.images(tmp_path / "one.npz"), np.ones((3, 4, 4, 1)))
    np.savez(tmp_path / "two.npz", x=a, y=np.zeros((2, 5, 5), np.uint8))
    with pytest.raises(ValueError, match=r"holds 2 arrays \(x, y\); pass key="):
        data.images(tmp_path / "two.npz")
    assert data.images(str(tmp_path / "two.npz"), key="y").shape == (2, 5, 5, 1)
    with pytest.raises(ValueError, match=r"key 'z' is not in .*x, y"):
        data.images(tmp_path / "two.npz", key="z")
    np.save(tmp_path / "a.npy", a.astype(np.float32) / 255)
    np.testing.assert_allclose(data.images(tmp_path / "a.npy"), np.ones((3, 4, 4, 1)))
    with pytest.raises(ValueError, match="key selects an array of an .npz file"):
        data.images(tmp_path / "a.npy", key="x")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"is a \.txt file"):
        data.images(tmp_path / "notes.txt")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz file"):
        data.images(tmp_path / "broken.npz")


# ---------------------------------------------------------------------------------------------
# Folders of PNG/JPEG files.


def _grey(path, values):
    Image.fromarray(np.asarray(values, np.uint8), "L").save(path)


def test_folder_of_png_files_is_read_recursively_in_sorted_order(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    _grey(tmp_path / "b.png", [[51, 51], [51, 51]])
    _grey(tmp_path / "a.PNG", [[0, 255], [255, 0]])
    _grey(tmp_path / "sub" / "c.png", [[204, 204], [204, 204]])
    _grey(tmp_path / ".hidden" / "skipped.png", [[1, 2], [3, 4]])
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    images = data.images(tmp_path)
    assert images.shape == (3, 2, 2, 1) and images.dtype == jnp.float32
    np.testing.assert_allclose(images[0, :, :, 0], [[-1.0, 1.0], [1.0, -1.0]], atol=1e-7)  # a.PNG
    np.testing.assert_allclose(images[1], -0.6, atol=1e-7)  # b.png: 2·51/255 − 1
    np.testing.assert_allclose(images[2], 0.6, atol=1e-7)  # sub/c.png


def test_folder_modes_rgb_jpeg_palette_and_16_bit(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    Image.fromarray(rgb, "RGB").save(tmp_path / "red.jpg", quality=100)
    Image.fromarray(rgb, "RGB").convert("P").save(tmp_path / "red_palette.png")
    images = data.images(tmp_path)
    assert images.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(images[..., 0], 1.0, atol=0.02)  # JPEG is lossy: within a few levels
    np.testing.assert_allclose(images[..., 1:], -1.0, atol=0.02)
    # channels=1: luma of pure red is round(0.299 · 255) = 76
    np.testing.assert_allclose(data.images(tmp_path, channels=1), 2 * 76 / 255 - 1, atol=0.02)
    deep = tmp_path / "deep"
    deep.mkdir()
    Image.fromarray(np.array([[0, 65535], [1000, 65535]], np.uint16)).save(deep / "x.png")  # 16-bit greyscale
    np.testing.assert_allclose(data.images(deep)[0, :, :, 0], [[-1.0, 1.0], [2000 / 65535 - 1, 1.0]], atol=1e-6)


def test_folder_errors_name_the_files_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.*does not exist"):
        data.images(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no PNG/JPEG images"):
        data.images(empty)

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _grey(mixed / "a.png", np.zeros((4, 4)))
    _grey(mixed / "b.png", np.zeros((6, 5)))
    with pytest.raises(ValueError, match=r"different sizes: .*a.png' is 4×4 .*b.png' is 6×5.*size=\(height, width\)"):
        data.images(mixed)
    assert data.images(mixed, size=(3, 2)).shape == (2, 3, 2, 1)

    channels = tmp_path / "channels"
    channels.mkdir()
    _grey(channels / "grey.png", np.zeros((4, 4)))
    Image.fromarray(np.zeros((4, 4, 3), np.uint8), "RGB").save(channels / "rgb.png")
    with pytest.raises(ValueError, match=r"different channel counts: .*grey.png' has 1, .*rgb.png' has 3.*channels=1"):
        data.images(channels)
    assert data.images(channels, channels=3).shape == (2, 4, 4, 3)
    with pytest.raises(ValueError, match="value_range and key apply to arrays"):
        data.images(channels, value_range=(0, 1))

    others = tmp_path / "others"
    others.mkdir()
    _grey(others / "a.png", np.zeros((4, 4)))
    (others / "labels.csv").write_text("a,1")
    with pytest.raises(ValueError, match=r"1 file\(s\) that are not PNG/JPEG images: 'labels.csv'"):
        data.images(others)

    broken = tmp_path / "broken"
    broken.mkdir()
    _grey(broken / "a.png", np.zeros((4, 4)))
    (broken / "b.jpg").write_text("not a jpeg")
    with pytest.raises(ValueError, match=r"b.jpg' is not a readable PNG/JPEG image"):
        data.images(broken)
