"""TF Serving SavedModel: three signatures over the one translate wrapper.

- ``serving_default``: float32 images in [-1, 1], ``(batch, H, W, C)``;
- ``uint8``: uint8 images, returned as uint8;
- ``encoded``: a batch of JPEG/PNG bytes (TF Serving's REST ``{"b64": ...}``), any size each
  (padded to the generator's size multiple and cropped back), returned as PNG bytes.

Every signature also takes the generator's other named inputs (none for pix2pix), or what the
model's task says to take instead (``Task.serving_inputs``): an instruction editor's take
``instruction`` strings, its vocabulary running inside the graph, and a fourth signature named
after the generator's own inputs (``tokens``) takes float images and token ids as the TFLite and
ONNX files do. Shapes are
checked inside the graph before the generator runs, so a wrong shape returns an error instead of
taking the server down. ``encoded`` reads each image's declared size from its header (PNG, JPEG,
GIF, BMP) before decoding and refuses more than ``max_pixels`` with INVALID_ARGUMENT, so a tiny
file declaring a huge image cannot exhaust the server's memory; empty, truncated and non-image
bytes are INVALID_ARGUMENT too. The model's config and inference mode travel in
``assets.extra/pix2pix.json``.
"""

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.exporters.common import (
    ExportError,
    condition_specs,
    exported_generator,
    matching,
    timed,
    translate_function,
)
from pix2pix_tf.tasks import task_of


def _checked(images, channels, multiple, what):
    """Graph-side shape checks with messages that name the fix."""
    shape = tf.shape(images)
    fix = "pad or resize the image, or use the 'encoded' signature, which pads for you"
    checks = [
        tf.debugging.assert_equal(shape[-1], channels,
                                  message=f"{what}: expected {channels} channels"),
        tf.debugging.assert_equal(shape[1] % multiple, 0,
                                  message=f"{what}: height must be a multiple of {multiple}; {fix}"),
        tf.debugging.assert_equal(shape[2] % multiple, 0,
                                  message=f"{what}: width must be a multiple of {multiple}; {fix}"),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(images)


def _pad_to_multiple(image, multiple):
    """Pads one (H, W, C) image to multiples of ``multiple``: mirror padding where the image is
    large enough, zeros (mid-grey) for images smaller than the padding."""
    shape = tf.shape(image)
    pad_h = (multiple - shape[0] % multiple) % multiple
    pad_w = (multiple - shape[1] % multiple) % multiple
    mirror = tf.logical_and(pad_h < shape[0], pad_w < shape[1])
    paddings = [[0, pad_h], [0, pad_w], [0, 0]]
    return tf.cond(mirror, lambda: tf.pad(image, paddings, mode="REFLECT"),
                   lambda: tf.pad(image, paddings, mode="CONSTANT"))


#: Default cap on the pixels of one image sent to the ``encoded`` signature (6000 x 6000).
MAX_PIXELS = 36_000_000
_SIGNATURES = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff", "gif": b"GIF",
               "bmp": b"BM"}


def _number(data, position, size, little_endian):
    """The unsigned integer at ``data[position:position + size]`` (int64)."""
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(data, position, size), tf.uint8), tf.int64)
    weights = tf.constant([256**i for i in range(size)], tf.int64)
    return tf.reduce_sum(raw * (weights if little_endian else weights[::-1]))


def declared_size(data):
    """``(height, width)`` that encoded image bytes declare in their header, read without
    decoding any pixels; ``(0, 0)`` for an unknown format (decoding then fails cleanly)."""
    padded = tf.strings.join([data, tf.constant(b"\0" * 32)])  # short input: reads zeros

    def starts(kind):
        magic = _SIGNATURES[kind]
        return tf.equal(tf.strings.substr(padded, 0, len(magic)), magic)

    def bmp():
        height = _number(padded, 22, 4, True)
        height = tf.where(height >= 2**31, 2**32 - height, height)  # top-down BMPs: negative
        return height, _number(padded, 18, 4, True)

    def jpeg():
        shape = tf.cast(tf.io.extract_jpeg_shape(data), tf.int64)
        return shape[0], shape[1]

    zero = tf.constant(0, tf.int64)
    return tf.case([
        (starts("png"), lambda: (_number(padded, 20, 4, False), _number(padded, 16, 4, False))),
        (starts("jpeg"), jpeg),
        (starts("gif"), lambda: (_number(padded, 8, 2, True), _number(padded, 6, 2, True))),
        (starts("bmp"), bmp),
    ], default=lambda: (zero, zero), exclusive=False)


def _to_uint8(images):
    return tf.cast(tf.round((tf.clip_by_value(images, -1, 1) + 1) * 127.5), tf.uint8)


def build_serving_archive(generator, max_pixels=MAX_PIXELS, serving_inputs=None):
    """A ``keras.export.ExportArchive`` with the serving signatures of ``generator`` (in
    whatever inference mode it is in); ``encoded`` refuses images over ``max_pixels``.
    ``serving_inputs``: ``(specs, convert, tracked)`` from the model's task
    (``Task.serving_inputs``) when the signatures take other inputs than the generator's."""
    channels, multiple = generator.input_channels, generator.size_multiple
    images = tf.TensorSpec([None, None, None, channels], tf.float32, name="images")
    conditions, convert, tracked = condition_specs(generator), None, []
    if serving_inputs is not None:
        conditions, convert, tracked = serving_inputs

    def function(spec, **kwargs):
        return translate_function(generator, spec, conditions=conditions, convert=convert,
                                  **kwargs)

    serving_default = function(
        images, prepare=lambda x: _checked(x, channels, multiple, "serving_default"))
    uint8 = function(
        tf.TensorSpec([None, None, None, channels], tf.uint8, name="images"),
        prepare=lambda x: tf.cast(_checked(x, channels, multiple, "uint8"), tf.float32)
        / 127.5 - 1.0,
        finish=_to_uint8)
    one_image = function(tf.TensorSpec([1, None, None, channels], tf.float32, name="images"))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes"),
                                  *conditions])
    def encoded(image_bytes, *extra):
        def one(item):
            data, rows = item[0], item[1:]
            height, width = declared_size(data)
            check = tf.debugging.assert_less_equal(
                height * width, tf.constant(max_pixels, tf.int64),
                message=f"image_bytes: the image declares more than {max_pixels} pixels; "
                        "resize it before sending")
            with tf.control_dependencies([check]):
                image = tf.io.decode_image(data, channels=channels, expand_animations=False)
            image = tf.cast(image, tf.float32) / 127.5 - 1.0
            height, width = tf.shape(image)[0], tf.shape(image)[1]
            padded = _pad_to_multiple(image, multiple)[None]
            out = one_image(padded, *[row[None] for row in rows])["output"][0, :height, :width]
            return tf.io.encode_png(_to_uint8(out))

        return {"output_bytes": tf.map_fn(one, (image_bytes, *extra),
                                          fn_output_signature=tf.TensorSpec([], tf.string))}

    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint("serving_default", serving_default)
    archive.add_endpoint("uint8", uint8)
    archive.add_endpoint("encoded", encoded)
    if convert is not None:  # the generator's own inputs too, as TFLite and ONNX take them
        for item in tracked:
            archive.track(item)
        raw = "_".join(generator.condition_inputs)
        archive.add_endpoint(raw, translate_function(
            generator, images, prepare=lambda x: _checked(x, channels, multiple, raw)))
    return archive


def export_saved_model(model, directory, name="pix2pix", version=None,
                       inference_mode="deterministic", metadata=None, max_pixels=MAX_PIXELS):
    """Writes ``DIR/NAME/VERSION/`` (TF Serving's layout); the model is left as it was.
    ``version``: None (default) takes the next free version (1, then 2, ...: TF Serving serves
    the newest, so exporting again publishes the new model); a given version must be free.
    ``max_pixels`` caps one image sent to the ``encoded`` signature."""
    if version is None:
        taken = [int(p.name) for p in (Path(directory) / name).glob("*") if p.name.isdigit()
                 and any(p.iterdir())]
        version = max(taken, default=0) + 1
    path = Path(directory) / name / str(version)
    if path.exists() and any(path.iterdir()):
        raise ExportError(f"{path} exists and is not empty: TF Serving versions are immutable; "
                          "choose another --version, leave it out for the next free one, or "
                          "remove it.")
    serving_inputs = task_of(model).serving_inputs(model)
    with exported_generator(model, inference_mode) as generator:
        build_serving_archive(generator, max_pixels, serving_inputs).write_out(str(path),
                                                                                verbose=False)
    extra = path / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / "pix2pix.json").write_text(json.dumps(metadata or {}, indent=2))
    return path


def run_saved_model(path, images, conditions=None):
    """``serving_default`` of the SavedModel at ``path`` on each image (``conditions``: its
    other named inputs, one row per image, e.g. ``{"instruction": strings}``); (outputs,
    ms/image)."""
    function = tf.saved_model.load(str(path)).signatures["serving_default"]
    names = list(function.structured_input_signature[1])
    wanted = set(matching([n for n in names if n != "images"], conditions))

    def run_one(x, rows):
        extra = {k: tf.constant(v) for k, v in rows.items() if k in wanted}
        return function(images=tf.constant(x), **extra)["output"].numpy()

    return timed(run_one, np.asarray(images, np.float32), conditions)
