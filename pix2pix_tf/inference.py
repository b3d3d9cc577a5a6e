"""Translating real images of any size with a trained model.

A U-Net needs sides divisible by ``2**num_downs``. Images are reflect-padded up to the next
multiple and the output cropped back, so any size works. Very large images are translated in
overlapping tiles (a multiple of the generator's size, ``tile`` pixels at most) blended with
linear ramps across the overlaps, so memory stays bounded and seams are smoothed.
"""

import contextlib
import weakref
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from pix2pix_tf.data.files import DataError, read_header
from pix2pix_tf.data.sources import decode, to_channels
from pix2pix_tf.networks import IMAGE, as_generator

#: ``--model pretrained:NAME`` (or ``pretrained:/path/file.pth``) names a published model.
PRETRAINED_PREFIX = "pretrained:"


def load_model(path):
    """Loads a saved pix2pix_tf model (a trained :class:`~pix2pix_tf.Pix2Pix` or a bare
    :class:`~pix2pix_tf.networks.Generator`), with a clear error for anything else.

    ``"pretrained:NAME"`` loads one of the authors' published generators instead (downloaded
    once; see :mod:`pix2pix_tf.pretrained`), ``"pretrained:/path/file.pth"`` a local one.
    """
    import pix2pix_tf.model  # noqa: F401  registers Pix2Pix, the networks and layers with Keras
    import pix2pix_tf.schedules  # noqa: F401  registers LinearDecay

    if str(path).startswith(PRETRAINED_PREFIX):
        from pix2pix_tf.pretrained import load_pretrained

        return load_pretrained(str(path)[len(PRETRAINED_PREFIX):])
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such model file.")
    try:
        model = keras.models.load_model(path)
    except Exception as error:
        raise DataError(f"{path}: not a loadable Keras model ({type(error).__name__}: "
                        f"{str(error).splitlines()[0][:200]}). Give a .keras file written by "
                        "pix2pix_tf (train's model.keras or a checkpoint).") from None
    try:
        as_generator(model)
    except TypeError:
        raise DataError(f"{path}: a Keras model, but not a pix2pix_tf model or generator.") from None
    return model


def model_label(reference):
    """A short name for a model reference: ``sat2map`` for ``pretrained:sat2map``, the run's
    folder name for ``runs/NAME/model.keras``."""
    text = str(reference)
    if text.startswith(PRETRAINED_PREFIX):
        return Path(text[len(PRETRAINED_PREFIX):]).stem
    return Path(text).parent.name or Path(text).stem


def saved_direction(model):
    """The direction a model was trained in, from its training config or its model card."""
    for record in (getattr(model, "training_config", None), getattr(model, "model_card", None)):
        if record and record.get("direction"):
            return record["direction"]
    return None


@contextlib.contextmanager
def inference_mode(model, mode):
    """Runs the block with ``model`` (a Pix2Pix or a Generator) in inference ``mode`` (None:
    as saved), then restores the mode it had: callers' models are never changed."""
    if mode is None:
        yield model
        return
    previous = model.inference_mode
    model.inference_mode = mode
    try:
        yield model
    finally:
        model.inference_mode = previous


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
