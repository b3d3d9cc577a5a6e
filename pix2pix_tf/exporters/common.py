"""What every export target shares: the error type, the one translate wrapper, the one timing
runner."""

import contextlib
import time

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.core.layers import walk_layers
from pix2pix_tf.data.files import DataError
from pix2pix_tf.inference import inference_mode as mode_of
from pix2pix_tf.networks import IMAGE, as_generator


class ExportError(DataError):
    """An export that cannot be done as asked (bad option, unwritable folder, missing
    calibration data); the message says how to fix it."""


@contextlib.contextmanager
def exported_generator(model, inference_mode):
    """The generator every export writes and is verified against: ``model``'s (its weight
    average where it keeps one), in ``inference_mode``, computing in float32. A model trained
    in 16 bits (``--mixed-precision auto`` is bfloat16 on CPUs with AVX512-BF16) keeps float32
    weights, and the runtimes want float32 graphs (TFLite's builtin ops and onnxruntime's have no
    bfloat16 kernels), so such a model is exported as a float32 copy of itself. ``model`` is left
    as it was."""
    with mode_of(as_generator(model), inference_mode) as generator:
        yield in_float32(generator)


def in_float32(generator):
    """``generator`` if every layer computes in float32, else a float32 copy with its
    weights."""
    if all(getattr(layer, "compute_dtype", "float32") == "float32"
           for layer in walk_layers(generator)):
        return generator

    def clone(layer):
        return layer.__class__.from_config(_float32_config(layer.get_config()))

    copy = keras.models.clone_model(generator, clone_function=clone, recursive=True)
    copy.set_weights(generator.get_weights())
    return copy


#: Dtype policies of 16-bit compute, as layer configs name them.
SIXTEEN_BIT = ("mixed_bfloat16", "mixed_float16", "bfloat16", "float16")


def _float32_config(value):
    """A layer config with every 16-bit dtype policy in it float32, nested ones included (a
    layer that serialises a whole sub-network, such as a pretrained text backbone)."""
    if isinstance(value, dict):
        if (value.get("class_name") == "DTypePolicy"
                and (value.get("config") or {}).get("name") in SIXTEEN_BIT):
            return "float32"
        return {key: "float32" if key == "dtype" and item in SIXTEEN_BIT else _float32_config(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_float32_config(item) for item in value]
    return value


def condition_specs(generator):
    """``tf.TensorSpec``s of the generator's non-image inputs, named as in its contract."""
    return [tf.TensorSpec([None, *tensor.shape[1:]], tensor.dtype, name=name)
            for name, tensor in generator.condition_inputs.items()]


def translate_function(generator, image_spec, prepare=None, finish=None, conditions=None,
                       convert=None):
    """The generator as a ``tf.function`` with a flat input signature: ``image_spec`` (named
    ``images`` by convention) followed by the contract's other inputs. ``prepare`` maps the
    image tensor before the generator (decoding, checks), ``finish`` maps the output; the result
    is ``{"output": ...}``. Every export target builds on this. ``conditions``: specs of the
    other inputs (default: the contract's, with a free batch size); ``convert`` maps them
    (a dict by name) to the generator's named inputs, e.g. instruction strings to token ids."""
    conditions = condition_specs(generator) if conditions is None else conditions

    def translate(image, *extra):
        image = prepare(image) if prepare else image
        named = {s.name: t for s, t in zip(conditions, extra)}
        if convert is not None:
            named = convert(named)
        inputs = image if not named else {IMAGE: image, **named}
        output = generator(inputs, training=False)
        return {"output": finish(output) if finish else output}

    return tf.function(translate, input_signature=[image_spec, *conditions])


def timed(run_one, images, conditions=None):
    """Runs ``run_one(image[None], extra) -> batch of 1`` on each image after one untimed
    warm-up call; ``extra`` holds that image's row of each of ``conditions`` (named inputs
    beside the image, e.g. ``{"tokens": ids}``). Returns (outputs stacked, ms per image)."""
    images = np.asarray(images, np.float32)
    conditions = conditions or {}

    def row(i):
        return {name: np.asarray(values)[i:i + 1] for name, values in conditions.items()}

    run_one(images[:1], row(0))
    outputs, seconds = [], 0.0
    for i, image in enumerate(images):
        start = time.perf_counter()
        out = run_one(image[None], row(i))
        seconds += time.perf_counter() - start
        outputs.append(np.asarray(out)[0])
    return np.stack(outputs), 1000 * seconds / max(len(images), 1)


def matching(names, conditions):
    """The entries of ``conditions`` an artifact's inputs ``names`` take (a runtime may decorate
    names, e.g. TFLite's ``serving_default_tokens:0``): ``{artifact name: values}``."""
    found = {}
    for name in names:
        for key, values in (conditions or {}).items():
            if name == key or name.split(":")[0].endswith(key):
                found[name] = values
    return found
