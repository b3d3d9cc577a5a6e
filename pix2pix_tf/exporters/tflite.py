"""TFLite (LiteRT) models with the spatial size fixed at export time, since TFLite wants static
shapes: float32, float16, dynamic-range int8, and full int8 calibrated on training images.

The up-convolutions are written as sub-pixel convolutions by default (the same function with
the same weights; see :mod:`pix2pix_tf.core.subpixel` and benchmarks/NOTES.md for why).
"""

import os
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.core.subpixel import with_subpixel_upsampling
from pix2pix_tf.exporters.common import (
    ExportError,
    condition_specs,
    exported_generator,
    timed,
    translate_function,
)

TFLITE_TYPES = ("float32", "float16", "dynamic_int8", "int8")
FLOAT_TYPES = ("float32", "float16", "dynamic_int8")


def _fixed_size_saved_model(generator, image_size, directory, subpixel=True):
    """A SavedModel with one fixed-shape signature: what the TFLite converter freezes best
    (converting a Keras 3 model's concrete function directly leaves its weights as variables)."""
    if subpixel:
        generator = with_subpixel_upsampling(generator)
    spec = tf.TensorSpec([1, *image_size, generator.input_channels], tf.float32, name="images")
    conditions = [tf.TensorSpec([1, *s.shape[1:]], s.dtype, name=s.name)
                  for s in condition_specs(generator)]
    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint("serving_default", translate_function(generator, spec,
                                                               conditions=conditions))
    archive.write_out(str(directory), verbose=False)
    return directory


def export_tflite(model, path, kind="float32", image_size=(256, 256), calibration=None,
                  subpixel=True, inference_mode="deterministic"):
    """Writes a TFLite model of ``kind`` (see ``TFLITE_TYPES``) with a fixed input size; the
    model is left as it was.

    ``calibration``: images (H, W, C) in [-1, 1] of ``image_size``, needed for 'int8'.
    ``subpixel=False`` keeps TRANSPOSE_CONV ops, e.g. for a delegate that implements them well.
    """
    if kind not in TFLITE_TYPES:
        raise ExportError(f"TFLite kind must be one of {', '.join(TFLITE_TYPES)}, got {kind!r}")
    if kind == "int8" and calibration is None:
        raise ExportError("Full-int8 TFLite needs calibration images (training data): pass "
                          "--calibration-data (e.g. the training folder or 'demo').")
    with tempfile.TemporaryDirectory() as tmp, \
            exported_generator(model, inference_mode) as generator:
        saved = _fixed_size_saved_model(generator, image_size, Path(tmp) / "fixed", subpixel)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        _configure(converter, kind, calibration)
        Path(path).write_bytes(converter.convert())
    return Path(path)


def _configure(converter, kind, calibration):
    if kind != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if kind == "int8":
        def representative():
            for image in calibration:
                yield [np.asarray(image, np.float32)[None]]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def run_tflite(path, images, conditions=None, threads=None):
    """Runs a TFLite model image by image (``conditions``: its other named inputs, one row per
    image, e.g. ``{"tokens": ids}``); returns (outputs, ms per image)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads or os.cpu_count())
    interpreter.allocate_tensors()
    details, (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    images_in = next((d for d in details if "images" in d["name"]), details[0])
    others = [d for d in details if d is not images_in]
    expected = tuple(images_in["shape"][1:])
    images = np.asarray(images, np.float32)
    if tuple(images.shape[1:]) != expected:
        raise ExportError(f"{Path(path).name} was exported for {expected[1]}x{expected[0]}x"
                          f"{expected[2]} images but got {images.shape[2]}x{images.shape[1]}x"
                          f"{images.shape[3]}: resize or crop to that size, or export again "
                          "with --size.")
    missing = [d["name"] for d in others
               if not any(d["name"].split(":")[0].endswith(k) for k in conditions or {})]
    if missing:
        raise ExportError(f"{Path(path).name} also takes {missing}; pass them as conditions.")

    def run_one(batch, rows):
        interpreter.set_tensor(images_in["index"], batch)
        for d in others:
            key = next(k for k in rows if d["name"].split(":")[0].endswith(k))
            interpreter.set_tensor(d["index"], rows[key].astype(d["dtype"]))
        interpreter.invoke()
        return interpreter.get_tensor(out["index"]).copy()

    return timed(run_one, images, conditions)
