"""What every export target shares: the error type, the one translate wrapper, the one timing
runner."""

import time

import numpy as np
import tensorflow as tf

from pix2pix_tf.data.files import DataError
from pix2pix_tf.networks import IMAGE


class ExportError(DataError):
    """An export that cannot be done as asked (bad option, unwritable folder, missing
    calibration data); the message says how to fix it."""


def condition_specs(generator):
    """``tf.TensorSpec``s of the generator's non-image inputs, named as in its contract."""
    return [tf.TensorSpec([None, *tensor.shape[1:]], tensor.dtype, name=name)
            for name, tensor in generator.condition_inputs.items()]


def translate_function(generator, image_spec, prepare=None, finish=None):
    """The generator as a ``tf.function`` with a flat input signature: ``image_spec`` (named
    ``images`` by convention) followed by the contract's other inputs. ``prepare`` maps the
    image tensor before the generator (decoding, checks), ``finish`` maps the output; the result
    is ``{"output": ...}``. Every export target builds on this."""
    conditions = condition_specs(generator)

    def translate(image, *extra):
        image = prepare(image) if prepare else image
        inputs = image if not extra else {IMAGE: image, **{s.name: t for s, t in
                                                            zip(conditions, extra)}}
        output = generator(inputs, training=False)
        return {"output": finish(output) if finish else output}

    return tf.function(translate, input_signature=[image_spec, *conditions])


def timed(run_one, images):
    """Runs ``run_one(image[None]) -> batch of 1`` on each image after one untimed warm-up call;
    returns (outputs stacked, milliseconds per image)."""
    images = np.asarray(images, np.float32)
    run_one(images[:1])
    outputs, seconds = [], 0.0
    for image in images:
        start = time.perf_counter()
        out = run_one(image[None])
        seconds += time.perf_counter() - start
        outputs.append(np.asarray(out)[0])
    return np.stack(outputs), 1000 * seconds / max(len(images), 1)
