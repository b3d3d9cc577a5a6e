"""ONNX via tf2onnx (opset ``ONNX_OPSET``), dynamic batch, height and width, checked with
``onnx.checker`` and run with onnxruntime."""

import contextlib
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from pix2pix_tf.exporters.common import condition_specs, matching, timed, translate_function
from pix2pix_tf.inference import inference_mode as mode_of
from pix2pix_tf.networks import as_generator

ONNX_OPSET = 17


class _TableCollectionWarning(logging.Filter):
    """Drops TensorFlow's "Issue encountered when serializing table_initializer ... probably
    safe to ignore ... 'NoneType' object has no attribute 'name'", which tf2onnx's graph freezing
    sets off for editors (their vocabulary's lookup table is in the graph collections, not in
    the converted function) and which reads like a failed export."""

    def filter(self, record):
        return "serializing table_initializer" not in record.getMessage()


@contextlib.contextmanager
def _quiet_table_warning():
    logger, quiet = tf.get_logger(), _TableCollectionWarning()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def export_onnx(model, path, opset=ONNX_OPSET, metadata=None, inference_mode="deterministic"):
    """Writes the generator as ONNX; the model is left as it was."""
    import onnx
    import tf2onnx

    with mode_of(as_generator(model), inference_mode) as generator, _quiet_table_warning():
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


def run_onnx(path, images, conditions=None):
    """Runs an ONNX model with onnxruntime image by image (``conditions``: its other named
    inputs, one row per image); returns (outputs, ms per image)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    extra = matching(names[1:], conditions)

    def run_one(x, rows):
        feeds = {names[0]: x}
        feeds.update({name: rows[key] for name in extra for key in rows
                      if name == key or name.split(":")[0].endswith(key)})
        return session.run(None, feeds)[0]

    return timed(run_one, np.asarray(images, np.float32), conditions)
