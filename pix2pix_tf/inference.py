"""Using a trained model: loading it (:func:`load_model`), reading and writing images, and
translating images of any size (:func:`translate`, from :mod:`pix2pix_tf.networks.tiled`: pad to
the generator's size multiple, crop back, tile very large images).

Images are float32 ``(H, W, C)`` in [-1, 1] throughout, the package's one convention.
"""

import contextlib
import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

import pix2pix_tf.schedules  # noqa: F401  registers LinearDecay (saved optimizers use it)
import pix2pix_tf.tasks  # noqa: F401  registers every task's model class with Keras
from pix2pix_tf.data.files import DataError, read_header
from pix2pix_tf.data.sources import decode, to_channels
from pix2pix_tf.networks import as_generator
from pix2pix_tf.networks.tiled import translate
from pix2pix_tf.tasks.base import saved_direction

__all__ = ["PRETRAINED_PREFIX", "inference_mode", "load_model", "model_label", "read_image",
           "saved_direction", "translate", "write_image"]

#: ``--model pretrained:NAME`` (or ``pretrained:/path/file.pth``) names a published model.
PRETRAINED_PREFIX = "pretrained:"


def load_model(path):
    """Loads a saved pix2pix_tf model (any task's, e.g. :class:`~pix2pix_tf.Pix2Pix` or
    :class:`~pix2pix_tf.InstructPix2Pix`, with its optimizers, or a bare
    :class:`~pix2pix_tf.networks.Generator`), with a one-line error for anything else.

    ``"pretrained:NAME"`` loads one of the authors' published generators instead (downloaded
    once; see :mod:`pix2pix_tf.tasks.translate.pretrained`), ``"pretrained:/path/file.pth"`` a
    local one.
    """
    if str(path).startswith(PRETRAINED_PREFIX):
        from pix2pix_tf.tasks.translate.pretrained import load_pretrained

        return load_pretrained(str(path)[len(PRETRAINED_PREFIX):])
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such model file.")
    try:
        model = keras.models.load_model(path)
    except Exception as error:  # noqa: BLE001  (Keras raises many kinds; name the file)
        raise DataError(load_error_message(path, error)) from None
    try:
        as_generator(model)
    except TypeError:
        raise DataError(f"{path}: a Keras model, but not a pix2pix_tf model or generator.") from None
    return model


def load_error_message(path, error):
    """One line saying why ``path`` did not load (never Keras' config dump)."""
    text = str(error)
    unknown = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
    if unknown:
        return (f"{path}: it holds a {unknown.group(1)!r}, which no imported package has "
                "registered with Keras. Install and import the package that defines it (for "
                "pix2pix_tf models: pip install pix2pix_tf; import pix2pix_tf; a task of your "
                "own: import its module first).")
    first = text.strip().splitlines()[0][:200] if text.strip() else type(error).__name__
    return (f"{path}: not a loadable Keras model ({type(error).__name__}: {first}). Give a "
            ".keras file written by pix2pix_tf (train's model.keras or a checkpoint).")


def model_label(reference):
    """A short name for a model reference: ``sat2map`` for ``pretrained:sat2map``, the run's
    folder name for ``runs/NAME/model.keras``."""
    text = str(reference)
    if text.startswith(PRETRAINED_PREFIX):
        return Path(text[len(PRETRAINED_PREFIX):]).stem
    return Path(text).parent.name or Path(text).stem


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
