"""Deployable artifacts from a trained model, each verified against Keras after writing.

Export targets form one table, :data:`TARGETS` (name -> how to write it, how to run it):

- ``saved_model``: TF Serving SavedModel at ``DIR/saved_model/NAME/VERSION/``
  (:mod:`~pix2pix_tf.exporters.serving`: float, uint8 and encoded-bytes signatures);
- ``tflite_float32``, ``tflite_float16``, ``tflite_dynamic_int8``, ``tflite_int8``: TFLite at a
  fixed size (:mod:`~pix2pix_tf.exporters.tflite`);
- ``onnx``: ONNX with dynamic sizes (:mod:`~pix2pix_tf.exporters.onnx`).

All of them wrap the generator through one function (:func:`common.translate_function`), take
the generator's named inputs from its contract, and leave the caller's model in the inference
mode it had. Inference mode: the model's own by default, except that the paper's stochastic
mode becomes 'deterministic' (dropout off, per-image normalisation, so a served batch never
mixes its images' statistics); :func:`targets.default_inference_mode` is that policy, and
:func:`targets.int8_calibration` the full-int8 one, for Python and the command alike. The
paper's stochastic mode can be exported to the SavedModel only: TFLite and ONNX cannot carry
its random ops and RNG state.

Command line: ``python -m pix2pix_tf.export`` (:mod:`pix2pix_tf.cli.export`); from Python,
``pix2pix_tf.export(model, folder)`` (:func:`export_model`).
"""

from pix2pix_tf.exporters.common import ExportError, timed, translate_function
from pix2pix_tf.exporters.onnx import ONNX_OPSET, export_onnx, run_onnx
from pix2pix_tf.exporters.serving import build_serving_archive, export_saved_model, run_saved_model
from pix2pix_tf.exporters.targets import TARGETS, export_model
from pix2pix_tf.exporters.tflite import FLOAT_TYPES, TFLITE_TYPES, export_tflite, run_tflite
from pix2pix_tf.exporters.verify import ArtifactReport

__all__ = ["ArtifactReport", "ExportError", "FLOAT_TYPES", "ONNX_OPSET", "TARGETS",
           "TFLITE_TYPES", "build_serving_archive", "export_model", "export_onnx",
           "export_saved_model", "export_tflite", "run_onnx", "run_saved_model", "run_tflite",
           "timed", "translate_function"]
