"""Using a trained model: loading it (:func:`load_model`, from :mod:`pix2pix_tf.loading`: files,
run directories, published and Hub models, size-checked), reading and writing images, and
translating images of any size (:func:`translate`, from :mod:`pix2pix_tf.networks.tiled`: pad to
the generator's size multiple, crop back, tile very large images).

Images are float32 ``(H, W, C)`` in [-1, 1] throughout, the package's one convention.
"""

import contextlib
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from pix2pix_tf.data.files import read_header
from pix2pix_tf.data.sources import decode, to_channels
from pix2pix_tf.loading import HUB_PREFIX, PRETRAINED_PREFIX, load_model
from pix2pix_tf.networks.tiled import translate
from pix2pix_tf.tasks.base import saved_direction

__all__ = ["PRETRAINED_PREFIX", "inference_mode", "load_model", "model_label", "read_image",
           "saved_direction", "translate", "write_image"]


def model_label(reference):
    """A short name for a model reference: ``sat2map`` for ``pretrained:sat2map``, ``repo`` for
    ``hf://user/repo``, the run's folder name for ``runs/NAME/model.keras``."""
    text = str(reference)
    if text.startswith(PRETRAINED_PREFIX):
        return Path(text[len(PRETRAINED_PREFIX):]).stem
    if text.startswith(HUB_PREFIX):
        return text.rstrip("/").rsplit("/", 1)[-1]
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
