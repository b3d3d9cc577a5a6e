"""Translating real images of any size with a trained model.

A U-Net needs sides divisible by ``2**num_downs``. Images are reflect-padded up to the next
multiple and the output cropped back, so any size works. Very large images are translated in
overlapping tiles (a multiple of the generator's size, ``tile`` pixels at most) blended with
linear ramps across the overlaps, so memory stays bounded and seams are smoothed.
"""

import weakref
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from pix2pix_tf.data.files import DataError, read_header
from pix2pix_tf.data.pipeline import decode, to_channels
from pix2pix_tf.layers import InputCheck


def generator_of(model):
    return model.generator if hasattr(model, "generator") else model


def size_multiple(model):
    """The generator's ``2**num_downs`` (from its input check layer)."""
    for layer in generator_of(model).layers:
        if isinstance(layer, InputCheck):
            return layer.multiple
    return 1


def load_model(path):
    """Loads a saved pix2pix model (or generator), with a clear error for anything else."""
    import pix2pix_tf.model  # noqa: F401  registers Pix2Pix and the layers with Keras
    import pix2pix_tf.schedules  # noqa: F401  registers LinearDecay

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such model file.")
    try:
        model = keras.models.load_model(path)
    except Exception as error:
        raise DataError(f"{path}: not a loadable Keras model ({type(error).__name__}: "
                        f"{str(error).splitlines()[0][:200]}). Give a .keras file written by "
                        "pix2pix_tf (train's model.keras or a checkpoint).") from None
    if not any(isinstance(layer, InputCheck) for layer in generator_of(model).layers):
        raise DataError(f"{path}: a Keras model, but not a pix2pix_tf model or generator.")
    return model


def read_image(path, channels):
    """An image file as float32 (H, W, channels) in [-1, 1]; DataError naming bad files."""
    read_header(path)  # clear errors for empty, truncated, non-image files
    image = decode(tf.io.read_file(str(path)))
    return (to_channels(image, channels).numpy() * 2.0 - 1.0).astype(np.float32)


def write_image(image, path, bits=8):
    """Saves a [-1, 1] (H, W, C) image as PNG (8- or 16-bit)."""
    unit = np.clip((np.asarray(image) + 1.0) / 2.0, 0.0, 1.0)
    if unit.shape[-1] == 2:
        unit = unit[..., :1]
    if bits == 16:
        data = np.round(unit * 65535).astype(np.uint16)
        if data.shape[-1] == 1:
            Image.fromarray(data[..., 0]).save(path)
        else:  # PIL cannot write 16-bit RGB; TensorFlow can
            tf.io.write_file(str(path), tf.io.encode_png(data))
        return
    data = np.round(unit * 255).astype(np.uint8)
    Image.fromarray(data[..., 0] if data.shape[-1] == 1 else data).save(path)


_COMPILED = weakref.WeakKeyDictionary()


def _run(model, batch):
    """``model(batch, training=False)`` through a cached tf.function: about 2x faster than
    eager calls per image. Keyed by inference mode, since a trace bakes the mode in."""
    functions = _COMPILED.setdefault(model, {})
    mode = getattr(model, "inference_mode", None)
    if mode not in functions:
        functions[mode] = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return functions[mode](tf.constant(batch)).numpy()


def _pad(image, height, width):
    return np.pad(image, ((0, height - image.shape[0]), (0, width - image.shape[1]), (0, 0)),
                  mode="reflect" if min(image.shape[:2]) > 1 else "edge")


def _ramp(length, overlap):
    weights = np.ones(length, np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
        weights[:overlap] = ramp
        weights[-overlap:] = ramp[::-1]
    return weights


def _starts(size, tile, stride):
    starts = list(range(0, max(size - tile, 0) + 1, stride))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    return starts


def translate(model, image, tile=1024):
    """Translates one (H, W, C) image in [-1, 1] of any size; returns (H, W, C_out)."""
    multiple = size_multiple(model)
    height, width = image.shape[:2]
    up = lambda v: -(-v // multiple) * multiple  # noqa: E731
    tile = max(multiple, tile // multiple * multiple)
    if height <= tile and width <= tile:
        padded = _pad(image, up(height), up(width))
        return _run(model, padded[None])[0, :height, :width]
    tile_h, tile_w = min(tile, up(height)), min(tile, up(width))
    padded = _pad(image, max(height, tile_h), max(width, tile_w))
    overlap_h, overlap_w = tile_h // 4, tile_w // 4
    out_channels = generator_of(model).outputs[0].shape[-1]
    total = np.zeros(padded.shape[:2] + (out_channels,), np.float32)
    weight = np.zeros(padded.shape[:2] + (1,), np.float32)
    window = np.outer(_ramp(tile_h, overlap_h), _ramp(tile_w, overlap_w))[..., None]
    for top in _starts(padded.shape[0], tile_h, tile_h - overlap_h):
        for left in _starts(padded.shape[1], tile_w, tile_w - overlap_w):
            piece = padded[top:top + tile_h, left:left + tile_w]
            total[top:top + tile_h, left:left + tile_w] += _run(model, piece[None])[0] * window
            weight[top:top + tile_h, left:left + tile_w] += window
    return (total / weight)[:height, :width]
