"""ONNX via tf2onnx (opset ``ONNX_OPSET``), dynamic batch, height and width, checked with
``onnx.checker`` and run with onnxruntime."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from pix2pix_tf.export.common import condition_specs, timed, translate_function
from pix2pix_tf.inference import inference_mode as mode_of
from pix2pix_tf.networks import as_generator

ONNX_OPSET = 17


def export_onnx(model, path, opset=ONNX_OPSET, metadata=None, inference_mode="deterministic"):
    """Writes the generator as ONNX; the model is left as it was."""
    import onnx
    import tf2onnx

    with mode_of(as_generator(model), inference_mode) as generator:
        spec = tf.TensorSpec([None, None, None, generator.input_channels], tf.float32,
                             name="images")
        function = translate_function(generator, spec)
        proto, _ = tf2onnx.convert.from_function(
            function, input_signature=[spec, *condition_specs(generator)], opset=opset)
    for key, value in (metadata or {}).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return Path(path)


def run_onnx(path, images):
    """Runs an ONNX model with onnxruntime image by image; returns (outputs, ms per image)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return timed(lambda x: session.run(None, {name: x})[0], np.asarray(images, np.float32))
