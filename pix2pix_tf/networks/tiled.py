"""Translating images of any size with a generator: pad to its size multiple, crop back, and
tile very large images.

A U-Net needs sides divisible by ``2**num_downs``. Images are reflect-padded up to the next
multiple and the output cropped back, so any size works. Very large images are translated in
overlapping tiles (a multiple of the generator's size, ``tile`` pixels at most) blended with
linear ramps across the overlaps, so memory stays bounded and seams are smoothed.

Images are float32 ``(H, W, C)`` in [-1, 1], the package's convention.
"""

import weakref

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.networks.contract import IMAGE, as_generator

_COMPILED = weakref.WeakKeyDictionary()


def _run(model, batch):
    """``model(batch, training=False)`` through a cached tf.function (much faster than eager
    calls per image). Keyed by inference mode, since a trace bakes the mode in. ``batch`` is an
    array or a dict of named inputs."""
    functions = _COMPILED.setdefault(model, {})
    mode = model.inference_mode
    if mode not in functions:
        functions[mode] = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return functions[mode](keras.tree.map_structure(tf.constant, batch)).numpy()


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


def translate(model, image, tile=1024, conditions=None):
    """Translates one (H, W, C) image in [-1, 1] of any size; returns (H, W, C_out).

    ``conditions``: the generator's other named inputs for this image (e.g. an instruction),
    each without the batch axis; they are given unchanged to every tile.
    """
    generator = as_generator(model)
    multiple = generator.size_multiple
    missing = set(generator.condition_inputs) - set(conditions or {})
    if missing:
        raise ValueError(f"{generator.name} also needs inputs {sorted(missing)}.")

    def run(piece):
        if not conditions:
            return _run(model, piece[None])[0]
        extra = {k: np.asarray(v)[None] for k, v in conditions.items()}
        return _run(model, {IMAGE: piece[None], **extra})[0]

    height, width = image.shape[:2]
    up = lambda v: -(-v // multiple) * multiple  # noqa: E731
    tile = max(multiple, tile // multiple * multiple)
    if height <= tile and width <= tile:
        return run(_pad(image, up(height), up(width)))[:height, :width]
    tile_h, tile_w = min(tile, up(height)), min(tile, up(width))
    padded = _pad(image, max(height, tile_h), max(width, tile_w))
    overlap_h, overlap_w = tile_h // 4, tile_w // 4
    total = np.zeros(padded.shape[:2] + (generator.output_channels,), np.float32)
    weight = np.zeros(padded.shape[:2] + (1,), np.float32)
    window = np.outer(_ramp(tile_h, overlap_h), _ramp(tile_w, overlap_w))[..., None]
    for top in _starts(padded.shape[0], tile_h, tile_h - overlap_h):
        for left in _starts(padded.shape[1], tile_w, tile_w - overlap_w):
            piece = padded[top:top + tile_h, left:left + tile_w]
            total[top:top + tile_h, left:left + tile_w] += run(piece) * window
            weight[top:top + tile_h, left:left + tile_w] += window
    return (total / weight)[:height, :width]
