"""Deployable artifacts from a trained model, each verified against Keras after writing.

Export targets form one table, :data:`TARGETS` (name -> how to write it, how to run it):

- ``saved_model``: TF Serving SavedModel at ``DIR/saved_model/NAME/VERSION/``
  (:mod:`~pix2pix_tf.export.serving`: float, uint8 and encoded-bytes signatures);
- ``tflite_float32``, ``tflite_float16``, ``tflite_dynamic_int8``, ``tflite_int8``: TFLite at a
  fixed size (:mod:`~pix2pix_tf.export.tflite`);
- ``onnx``: ONNX with dynamic sizes (:mod:`~pix2pix_tf.export.onnx`).

All of them wrap the generator through one function (:func:`common.translate_function`), take
the generator's named inputs from its contract, and leave the caller's model in the inference
mode it had. Inference mode: 'deterministic' by default (dropout off, per-image normalisation,
so a served batch never mixes its images' statistics). The paper's stochastic mode can be
exported to the SavedModel only: TFLite and ONNX cannot carry its random ops and RNG state.

Command line: ``python -m pix2pix_tf.export`` (:mod:`pix2pix_tf.cli.export`).
"""

import importlib

_EXPORTS = {
    "ArtifactReport": "verify", "ExportError": "common", "translate_function": "common",
    "timed": "common", "FLOAT_TYPES": "tflite", "TFLITE_TYPES": "tflite",
    "export_tflite": "tflite", "run_tflite": "tflite", "ONNX_OPSET": "onnx",
    "export_onnx": "onnx", "run_onnx": "onnx", "build_serving_archive": "serving",
    "export_saved_model": "serving", "run_saved_model": "serving", "TARGETS": "targets",
    "export_model": "targets",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    # Imported on first use, so that ``python -m pix2pix_tf.export`` sets TensorFlow's log
    # level before TensorFlow loads.
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"pix2pix_tf.export.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pix2pix_tf.export' has no attribute {name!r}")
