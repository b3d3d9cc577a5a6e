"""ONNX via tf2onnx (opset ``ONNX_OPSET``), dynamic batch, height and width, checked with
``onnx.checker`` and run with onnxruntime.

The conversion sees the weights as inputs, not constants: the generator is traced through
``stateless_call`` with one input per variable, tf2onnx converts that small graph, and the
weights are then written into the ONNX file as initializers (the inputs they stood for are
removed). Converting a graph whose constants are the weights made TensorFlow's graph freezing,
Grappler and tf2onnx's optimisers copy them again and again: the paper's unet_256 (54 M
parameters, 218 MB) peaked at 14.7 GB of memory and took 61 s here, more than a Colab runtime
has; this way it takes 1.9 GB and 8.5 s (benchmarks/NOTES.md, "The model in a web page").
The runtime folds the transposes of the weights that the graph now carries once, when it
loads the model.

``weights="float16"`` stores the weights as float16 and casts them back to float32 when the
model is loaded: half the file, the same float32 arithmetic and speed (the web page's default).
"""

import contextlib
import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.core.subpixel import replaceable, with_subpixel_upsampling
from pix2pix_tf.exporters.common import (
    ExportError,
    condition_specs,
    exported_generator,
    matching,
    timed,
)
from pix2pix_tf.networks import IMAGE, as_generator

ONNX_OPSET = 17
#: How an ONNX file stores its weights (``weights=``).
WEIGHT_TYPES = ("float32", "float16")
#: How an ONNX file computes the U-Net's 4x4 stride-2 up-convolutions (``upsampling=``):
#: 'transpose' as ``ConvTranspose`` ops, 'subpixel' as four 2x2 ``Conv`` ops interleaved by
#: ``DepthToSpace`` (:mod:`pix2pix_tf.core.subpixel`: the same linear map, the same weights).
UPSAMPLINGS = ("transpose", "subpixel")
#: float32 initializers with fewer elements than this stay float32 (biases, norm scales: too
#: small to matter for the size, and the most sensitive to rounding).
FLOAT16_MIN_ELEMENTS = 1024


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


def _weightless_function(generator, image_spec):
    """The generator as a ``tf.function`` of (images, its other inputs..., its weights...), and
    ``{weight input name: value}``."""
    conditions = condition_specs(generator)
    trainable, fixed = generator.trainable_variables, generator.non_trainable_variables
    variables = list(trainable) + list(fixed)
    weight_specs = [tf.TensorSpec(v.shape, v.dtype, name=f"weight_{i}")
                    for i, v in enumerate(variables)]

    def translate(image, *rest):
        extra, weights = rest[:len(conditions)], list(rest[len(conditions):])
        named = {s.name: t for s, t in zip(conditions, extra)}
        inputs = image if not named else {IMAGE: image, **named}
        output, _ = generator.stateless_call(weights[:len(trainable)], weights[len(trainable):],
                                             inputs, training=False)
        return {"output": output}

    signature = [image_spec, *conditions, *weight_specs]
    values = {s.name: np.asarray(v.numpy()) for s, v in zip(weight_specs, variables)}
    return tf.function(translate, input_signature=signature), signature, values


def _weights_into_initializers(proto, values):
    """Turns the graph inputs that stand for weights into initializers holding ``values``."""
    from onnx import numpy_helper

    used = {name for node in proto.graph.node for name in node.input}
    inputs = [i for i in proto.graph.input if i.name not in values]
    proto.graph.initializer.extend(numpy_helper.from_array(values[i.name], i.name)
                                   for i in proto.graph.input
                                   if i.name in values and i.name in used)
    del proto.graph.input[:]
    proto.graph.input.extend(inputs)


def store_float16(proto, min_elements=FLOAT16_MIN_ELEMENTS):
    """Stores the float32 initializers of at least ``min_elements`` elements as float16, each
    cast back to float32 by a ``Cast`` node under its old name (which the runtime folds at load).
    Returns the number of initializers converted."""
    from onnx import TensorProto, helper, numpy_helper

    casts, kept, converted = [], [], 0
    for tensor in proto.graph.initializer:
        if tensor.data_type == TensorProto.FLOAT and np.prod(tensor.dims) >= min_elements:
            value = numpy_helper.to_array(tensor).astype(np.float16)
            kept.append(numpy_helper.from_array(value, tensor.name + "_float16"))
            casts.append(helper.make_node("Cast", [tensor.name + "_float16"], [tensor.name],
                                          to=TensorProto.FLOAT, name=tensor.name + "_cast"))
            converted += 1
        else:
            kept.append(tensor)
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(kept)
    nodes = casts + list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return converted


def _producers(proto):
    return {name: node for node in proto.graph.node for name in node.output}


def fuse_instance_norms(proto):
    """Replaces each per-image normalisation (:class:`pix2pix_tf.core.layers.BatchNorm` at inference
    in the 'paper' and 'deterministic' modes: about ten ONNX ops, two of them full-size
    reductions) by one ``InstanceNormalization`` (the same function: per image and channel,
    over height and width, then gamma and beta). Found by the names tf2onnx keeps
    (``LAYER/moments/mean``, ``LAYER/add`` (epsilon), ``LAYER/mul_1`` (gamma), ``LAYER/add_1``
    (beta)); a layer that does not match exactly is left as it is. Returns how many were fused.
    The time it saves is in benchmarks/NOTES.md."""
    from onnx import helper, numpy_helper

    producers = _producers(proto)
    initializers = {t.name: t for t in proto.graph.initializer}
    replaced, fused = {}, 0
    for node in list(proto.graph.node):
        if node.op_type != "GlobalAveragePool" or not node.output[0].endswith("/moments/mean:0"):
            continue
        layer = node.output[0][:-len("moments/mean:0")]
        parts = [producers.get(layer + name) for name in ("add:0", "mul_1:0", "add_1:0")]
        if any(p is None for p in parts) or [p.op_type for p in parts] != ["Add", "Mul", "Add"]:
            continue
        add_eps, scale, shift = parts
        eps = [i for i in add_eps.input if i in initializers]
        gamma = [i for i in scale.input if i in initializers]
        beta = [i for i in shift.input if i in initializers]
        if not (len(eps) == len(gamma) == len(beta) == 1):
            continue
        epsilon = numpy_helper.to_array(initializers[eps[0]]).reshape(-1)
        if epsilon.size != 1 or len(initializers[gamma[0]].dims) != 1:
            continue
        normalised = layer + "instance_norm:0"
        replaced[shift.output[0]] = [
            helper.make_node("InstanceNormalization", [node.input[0], gamma[0], beta[0]],
                             [normalised], epsilon=float(epsilon[0]),
                             name=layer + "instance_norm"),
            helper.make_node("Transpose", [normalised], [shift.output[0]], perm=[0, 2, 3, 1],
                             name=layer + "to_nhwc")]
        fused += 1
    nodes = []
    for node in proto.graph.node:
        nodes.extend(replaced.get(node.output[0], [node]) if node.output else [node])
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    _drop_unused(proto)
    return fused


def static_up_convolutions(proto):
    """Gives each 4x4, stride-2 ``ConvTranspose`` its 'same' padding as the static
    ``pads=[1, 1, 1, 1]``. tf2onnx writes Keras' 'same' transposed convolution at a dynamic size
    as the full (2H + 2) output, then a ``Slice`` and a ``Pad`` whose bounds about fifteen small
    shape ops compute at every run; for this kernel and stride that crop is always one pixel on
    each side. Call it only for generators whose transposed convolutions are all 4x4, stride-2,
    'same' (:func:`pix2pix_tf.core.subpixel.replaceable`). Returns how many were rewritten."""
    from onnx import helper

    consumers = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    rewritten = 0
    for node in proto.graph.node:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "ConvTranspose" or attributes.get("strides") != [2, 2]
                or attributes.get("kernel_shape") != [4, 4] or any(attributes.get("pads", []))
                or "output_shape" in attributes or "output_padding" in attributes):
            continue
        users = consumers.get(node.output[0], [])
        crops = [u for u in users if u.op_type == "Slice"]
        if len(crops) != 1 or any(u.op_type not in ("Slice", "Shape") for u in users):
            continue
        after = consumers.get(crops[0].output[0], [])
        end = after[0] if len(after) == 1 and after[0].op_type == "Pad" else crops[0]
        for attribute in [a for a in node.attribute if a.name == "pads"]:
            node.attribute.remove(attribute)
        node.attribute.append(helper.make_attribute("pads", [1, 1, 1, 1]))
        node.output[0] = end.output[0]  # the crop's consumers now read the padded result
        end.output[0] = end.output[0] + "_unused"
        rewritten += 1
    _drop_unused(proto)
    return rewritten


def _drop_unused(proto):
    """Removes the nodes and initializers that no longer feed the graph's outputs."""
    needed = {o.name for o in proto.graph.output}
    kept = []
    for node in reversed(list(proto.graph.node)):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    del proto.graph.node[:]
    proto.graph.node.extend(reversed(kept))
    for tensor in [t for t in proto.graph.initializer if t.name not in needed]:
        proto.graph.initializer.remove(tensor)


def export_onnx(model, path, opset=ONNX_OPSET, metadata=None, inference_mode="deterministic",
                weights="float32", fuse=True, upsampling="transpose"):
    """Writes the generator as ONNX (``weights``: one of :data:`WEIGHT_TYPES`; ``upsampling``:
    one of :data:`UPSAMPLINGS`; ``fuse``: :func:`fuse_instance_norms` and
    :func:`static_up_convolutions`, the same function in fewer ops); the model is left as it
    was."""
    import onnx
    import tf2onnx

    if weights not in WEIGHT_TYPES:
        raise ExportError(f"weights must be one of {', '.join(WEIGHT_TYPES)}, got {weights!r}.")
    if upsampling not in UPSAMPLINGS:
        raise ExportError(f"upsampling must be one of {', '.join(UPSAMPLINGS)}, got "
                          f"{upsampling!r}.")
    generator = as_generator(model)
    up_convolutions = [layer for layer in generator.layers
                       if isinstance(layer, keras.layers.Conv2DTranspose)]
    static_ok = all(replaceable(layer) for layer in up_convolutions)
    with exported_generator(model, inference_mode) as generator, _quiet_table_warning():
        if upsampling == "subpixel" and up_convolutions:
            generator = with_subpixel_upsampling(generator)
        spec = tf.TensorSpec([None, None, None, generator.input_channels], tf.float32,
                             name="images")
        function, signature, values = _weightless_function(generator, spec)
        proto, _ = tf2onnx.convert.from_function(function, input_signature=signature,
                                                 opset=opset)
    _weights_into_initializers(proto, values)
    del values
    if fuse:
        fuse_instance_norms(proto)
        if static_ok:
            static_up_convolutions(proto)
    if weights == "float16":
        store_float16(proto)
    for key, value in (metadata or {}).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return Path(path)


def run_onnx(path, images, conditions=None, threads=None):
    """Runs an ONNX model with onnxruntime image by image (``conditions``: its other named
    inputs, one row per image; ``threads``: intra-op threads, default the runtime's); returns
    (outputs, ms per image)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # no warnings about initializers it folds away
    if threads:
        options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    extra = matching(names[1:], conditions)

    def run_one(x, rows):
        feeds = {names[0]: x}
        feeds.update({name: rows[key] for name in extra for key in rows
                      if name == key or name.split(":")[0].endswith(key)})
        return session.run(None, feeds)[0]

    return timed(run_one, np.asarray(images, np.float32), conditions)
