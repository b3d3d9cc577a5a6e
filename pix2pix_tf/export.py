"""Deployable artifacts from a trained model, each verified against Keras after writing.

``export_model(model, output_dir, ...)`` writes any of:

- a TF Serving SavedModel at ``DIR/saved_model/NAME/VERSION/`` with three signatures:
  ``serving_default`` (float32 images in [-1, 1], (batch, H, W, C)), ``uint8`` (uint8 images),
  and ``encoded`` (a batch of JPEG/PNG bytes, as TF Serving's REST API delivers ``{"b64": ...}``,
  returning PNG bytes; any image size: padded to the generator's multiple and cropped back).
  Shapes are checked inside the graph before the generator runs, so a wrong shape returns an
  error instead of taking the server down. The model's config and inference mode travel in
  ``assets.extra/pix2pix.json``.
- TFLite models (float32, float16, dynamic-range int8, full int8 calibrated on training images)
  with the spatial size fixed at export time, since TFLite wants static shapes.
- an ONNX model via tf2onnx (opset ``ONNX_OPSET``), dynamic height and width, checked with
  ``onnx.checker``.

Inference mode: 'deterministic' by default (dropout off, per-image normalisation, so a served
batch never mixes its images' statistics). The paper's stochastic mode (dropout at test time)
can be exported to the SavedModel only: TFLite and ONNX cannot carry the random ops and the RNG
state variable it needs.
"""

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.data.files import DataError
from pix2pix_tf.inference import generator_of, size_multiple
from pix2pix_tf.subpixel import with_subpixel_upsampling

ONNX_OPSET = 17
TFLITE_TYPES = ("float32", "float16", "dynamic_int8", "int8")


@dataclass
class ArtifactReport:
    """What verification measured for one artifact."""

    name: str
    path: str
    size_bytes: int
    max_abs_diff: float
    psnr_vs_keras: float
    psnr_vs_target: float = None
    psnr_drop: float = None
    latency_ms: float = None
    notes: list = field(default_factory=list)

    def row(self):
        drop = "" if self.psnr_drop is None else f"{self.psnr_drop:+.3f}"
        return (f"{self.name:22s} {self.size_bytes / 1e6:9.2f} {self.max_abs_diff:12.2e} "
                f"{self.psnr_vs_keras:10.2f} {drop:>10s} {self.latency_ms or 0:10.1f}")


HEADER = (f"{'artifact':22s} {'size (MB)':>9s} {'max|diff|':>12s} {'PSNR/keras':>10s} "
          f"{'dPSNR tgt':>10s} {'ms/image':>10s}")


def _psnr(a, b):
    mse = float(np.mean(((np.asarray(a) + 1) / 2 - (np.asarray(b) + 1) / 2) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


# ------------------------------------------------------------------------------ SavedModel
def _checked(images, channels, multiple, what):
    """Graph-side shape checks with messages that name the fix."""
    shape = tf.shape(images)
    checks = [
        tf.debugging.assert_rank(images, 4, message=f"{what}: expected (batch, height, width, "
                                                    f"{channels}) images"),
        tf.debugging.assert_equal(shape[-1], channels, message=f"{what}: expected {channels} "
                                                               "channels"),
        tf.debugging.assert_equal(shape[1] % multiple, 0, message=f"{what}: height must be a "
                                  f"multiple of {multiple}; pad or resize the image, or use the "
                                  "'encoded' signature, which pads for you"),
        tf.debugging.assert_equal(shape[2] % multiple, 0, message=f"{what}: width must be a "
                                  f"multiple of {multiple}; pad or resize the image, or use the "
                                  "'encoded' signature, which pads for you"),
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


def build_serving_archive(model, inference_mode="deterministic"):
    """A ``keras.export.ExportArchive`` with the three serving signatures."""
    generator = generator_of(model)
    if hasattr(model, "inference_mode"):
        model.inference_mode = inference_mode
    else:
        from pix2pix_tf.layers import set_inference_mode

        set_inference_mode(generator, inference_mode)
    channels = generator.inputs[0].shape[-1]
    multiple = size_multiple(model)

    def translate(images):
        return generator(images, training=False)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32)])
    def serving_default(images):
        return {"output": translate(_checked(images, channels, multiple, "serving_default"))}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, channels], tf.uint8)])
    def uint8(images):
        images = _checked(images, channels, multiple, "uint8")
        out = translate(tf.cast(images, tf.float32) / 127.5 - 1.0)
        return {"output": tf.cast(tf.round((tf.clip_by_value(out, -1, 1) + 1) * 127.5), tf.uint8)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def encoded(image_bytes):
        def one(data):
            image = tf.io.decode_image(data, channels=channels, expand_animations=False)
            image = tf.cast(image, tf.float32) / 127.5 - 1.0
            height, width = tf.shape(image)[0], tf.shape(image)[1]
            out = translate(_pad_to_multiple(image, multiple)[None])[0, :height, :width]
            out = tf.cast(tf.round((tf.clip_by_value(out, -1, 1) + 1) * 127.5), tf.uint8)
            return tf.io.encode_png(out)

        return {"output_bytes": tf.map_fn(one, image_bytes,
                                          fn_output_signature=tf.TensorSpec([], tf.string))}

    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint("serving_default", serving_default)
    archive.add_endpoint("uint8", uint8)
    archive.add_endpoint("encoded", encoded)
    return archive


def export_saved_model(model, directory, name="pix2pix", version=1,
                       inference_mode="deterministic", metadata=None):
    path = Path(directory) / name / str(version)
    if path.exists() and any(path.iterdir()):
        raise DataError(f"{path} exists and is not empty: TF Serving versions are immutable; "
                        "choose another --version or remove it.")
    build_serving_archive(model, inference_mode).write_out(str(path), verbose=False)
    extra = path / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / "pix2pix.json").write_text(json.dumps(metadata or {}, indent=2))
    return path


# ---------------------------------------------------------------------------------- TFLite
def _fixed_size_saved_model(model, image_size, directory, batch=1, subpixel=True):
    """A SavedModel with one fixed-shape signature: what the TFLite converter freezes best
    (converting a Keras 3 model's concrete function directly leaves its weights as variables).

    ``subpixel``: compute the up-convolutions as sub-pixel convolutions (same weights, same
    function), because TFLite's TRANSPOSE_CONV is slow; see :mod:`pix2pix_tf.subpixel`."""
    generator = generator_of(model)
    if subpixel:
        generator = with_subpixel_upsampling(generator)
    channels = generator.inputs[0].shape[-1]
    spec = tf.TensorSpec([batch, image_size[0], image_size[1], channels], tf.float32,
                         name="images")

    @tf.function(input_signature=[spec])
    def translate(images):
        return {"output": generator(images, training=False)}

    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint("serving_default", translate)
    archive.write_out(str(directory), verbose=False)
    return directory


def export_tflite(model, path, kind="float32", image_size=(256, 256), calibration=None,
                  subpixel=True):
    """Writes a TFLite model of ``kind`` (see ``TFLITE_TYPES``) with a fixed input size.

    ``subpixel=False`` keeps TRANSPOSE_CONV ops (the paper generator runs 2-3x slower so under
    XNNPACK, see
    :mod:`pix2pix_tf.subpixel`), e.g. for a delegate that implements them well."""
    if kind not in TFLITE_TYPES:
        raise ValueError(f"TFLite kind must be one of {', '.join(TFLITE_TYPES)}, got {kind!r}")
    if kind == "int8" and calibration is None:
        raise DataError("Full-int8 TFLite needs calibration images (training data): pass "
                        "--calibration-data (e.g. the training folder or 'demo').")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(_fixed_size_saved_model(model, image_size, Path(tmp) / "fixed",
                                        subpixel=subpixel)))
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


def run_tflite(path, images, threads=None):
    """Runs a TFLite model image by image; returns (outputs, ms per image)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads or os.cpu_count())
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    expected = tuple(inp["shape"][1:])
    outputs, seconds = [], 0.0
    for index, image in enumerate(images):
        if tuple(image.shape) != expected:
            raise DataError(f"{Path(path).name} was exported for {expected[1]}x{expected[0]}x"
                            f"{expected[2]} images but got {image.shape[1]}x{image.shape[0]}x"
                            f"{image.shape[2]}: resize or crop to that size, or export again "
                            "with --size.")
        interpreter.set_tensor(inp["index"], np.asarray(image, np.float32)[None])
        if index == 0:
            interpreter.invoke()  # warm-up: not timed
        start = time.perf_counter()
        interpreter.invoke()
        seconds += time.perf_counter() - start
        outputs.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.stack(outputs), 1000 * seconds / max(len(images), 1)


# ------------------------------------------------------------------------------------ ONNX
def export_onnx(model, path, opset=ONNX_OPSET, metadata=None):
    import onnx
    import tf2onnx

    generator = generator_of(model)
    channels = generator.inputs[0].shape[-1]
    spec = [tf.TensorSpec([None, None, None, channels], tf.float32, name="images")]

    @tf.function(input_signature=spec)
    def translate(images):
        return {"output": generator(images, training=False)}

    proto, _ = tf2onnx.convert.from_function(translate, input_signature=spec, opset=opset)
    for key, value in (metadata or {}).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return Path(path)


def run_onnx(path, images):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: np.asarray(images[0], np.float32)[None]})  # warm-up: not timed
    outputs, seconds = [], 0.0
    for image in images:
        start = time.perf_counter()
        outputs.append(session.run(None, {name: np.asarray(image, np.float32)[None]})[0][0])
        seconds += time.perf_counter() - start
    return np.stack(outputs), 1000 * seconds / max(len(images), 1)


def run_saved_model(path, images):
    loaded = tf.saved_model.load(str(path))
    function = loaded.signatures["serving_default"]
    function(images=tf.constant(images[:1]))  # warm-up: not timed
    outputs, seconds = [], 0.0
    for image in images:
        start = time.perf_counter()
        outputs.append(function(images=tf.constant(image[None]))["output"].numpy()[0])
        seconds += time.perf_counter() - start
    return np.stack(outputs), 1000 * seconds / max(len(images), 1)


# ------------------------------------------------------------------------------ everything
def export_model(model, output_dir, *, saved_model=True, tflite=TFLITE_TYPES, onnx=True,
                 name="pix2pix", version=1, image_size=(256, 256), inference_mode="deterministic",
                 calibration=None, test_images=None, test_targets=None, verbose=True):
    """Writes and verifies the requested artifacts. Returns a list of :class:`ArtifactReport`.

    ``calibration``: images (H, W, C) in [-1, 1] of ``image_size`` for full-int8 TFLite.
    ``test_images`` / ``test_targets``: real images to verify on (default: calibration images).
    """
    from pix2pix_tf.layers import INFERENCE_MODES

    if inference_mode not in INFERENCE_MODES:
        raise ValueError(f"inference_mode must be one of {', '.join(INFERENCE_MODES)}")
    if inference_mode == "paper" and (tflite or onnx):
        raise DataError("The paper's stochastic inference mode (dropout at test time) can only "
                        "be exported to the SavedModel: TFLite and ONNX cannot carry its random "
                        "ops and RNG state. Export those with --inference-mode deterministic.")
    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = output_dir / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise DataError(f"cannot write to {output_dir}: {error.strerror}") from None
    multiple = size_multiple(model)
    if image_size[0] % multiple or image_size[1] % multiple:
        raise DataError(f"--size {image_size[0]}x{image_size[1]} is not a multiple of the "
                        f"generator's {multiple}.")
    if hasattr(model, "inference_mode"):
        model.inference_mode = inference_mode
    generator = generator_of(model)
    metadata = {"pix2pix_tf": json.dumps({
        "inference_mode": inference_mode, "size_multiple": multiple,
        "input_channels": generator.inputs[0].shape[-1],
        "output_channels": generator.outputs[0].shape[-1],
        "value_range": [-1, 1],
        "model_config": model.get_config() if hasattr(model, "lambda_l1") else None,
    }, default=str)}
    if test_images is None:
        test_images = calibration
    reports = []
    reference = reference_targets = None
    if test_images is not None:
        test_images = np.asarray(test_images, np.float32)
        compiled = tf.function(lambda x: generator(x, training=False))
        compiled(test_images[:1])  # warm-up: not timed
        start = time.perf_counter()
        reference = np.stack([compiled(image[None]).numpy()[0] for image in test_images])
        keras_ms = 1000 * (time.perf_counter() - start) / len(test_images)
        reference_targets = None if test_targets is None else np.asarray(test_targets, np.float32)
        reports.append(ArtifactReport("keras", "-", 0, 0.0, float("inf"),
                                      _psnr(reference, reference_targets) if reference_targets is not None else None,
                                      0.0 if reference_targets is not None else None, keras_ms))

    def verify(label, path, runner):
        size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) \
            if Path(path).is_dir() else Path(path).stat().st_size
        if reference is None:
            reports.append(ArtifactReport(label, str(path), size, float("nan"), float("nan"),
                                          notes=["not verified: no test images"]))
            return
        outputs, ms = runner(path, test_images)
        report = ArtifactReport(label, str(path), size, float(np.max(np.abs(outputs - reference))),
                                _psnr(outputs, reference), latency_ms=ms)
        if reference_targets is not None:
            report.psnr_vs_target = _psnr(outputs, reference_targets)
            report.psnr_drop = reports[0].psnr_vs_target - report.psnr_vs_target
        reports.append(report)
        if verbose:
            print(report.row())

    if verbose:
        print(HEADER)
    if saved_model:
        path = export_saved_model(model, output_dir / "saved_model", name, version,
                                  inference_mode, json.loads(metadata["pix2pix_tf"]))
        verify("saved_model", path, run_saved_model)
    for kind in tflite or ():
        path = export_tflite(model, output_dir / f"{name}_{kind}.tflite", kind, image_size,
                             calibration)
        verify(f"tflite_{kind}", path, run_tflite)
    if onnx:
        path = export_onnx(model, output_dir / f"{name}.onnx", metadata=metadata)
        verify(f"onnx (opset {ONNX_OPSET})", path, run_onnx)
    return reports


# --------------------------------------------------------------------------- command line
EXAMPLES = """examples:
  python -m pix2pix_tf.export runs/quick/model.keras                 # every format
  python -m pix2pix_tf.export runs/quick/model.keras --saved-model --output exports/maps
  python -m pix2pix_tf.export m.keras --tflite float16 int8 --calibration-data demo --size 256
  python -m pix2pix_tf.export m.keras --onnx --test-data ~/pairs

Each artifact is reloaded in its own runtime (SavedModel loader, LiteRT interpreter,
onnxruntime) and compared with Keras on real test images: max |diff|, PSNR against Keras, the
PSNR change against the targets (quantised models), file size and latency.
exit codes: 0 done, 1 error, 2 bad input
"""


def _images(source, split, size, channels, count, direction):
    """Up to ``count`` (input, target) pairs of ``size`` from ``split`` (else 'train')."""
    from pix2pix_tf.data import load_paired_dataset

    for attempt in dict.fromkeys([split, "train"]):
        try:
            dataset = load_paired_dataset(
                source, attempt, batch_size=1, crop_size=size[0], load_size=size[0],
                augment=False, multiple=1, input_channels=channels[0],
                output_channels=channels[1], direction=direction)
            break
        except DataError:
            if attempt == "train":
                raise
    xs, ys = [], []
    for x, y in dataset.take(count):
        xs.append(x.numpy()[0])
        ys.append(y.numpy()[0])
    return np.stack(xs), np.stack(ys)


def main(argv=None):
    import argparse
    import sys

    from pix2pix_tf.cli import EXIT_BAD_INPUT, EXIT_OK, HelpFormatter, fail
    from pix2pix_tf.inference import load_model

    p = argparse.ArgumentParser(prog="python -m pix2pix_tf.export",
                                description="Export a trained model to SavedModel (TF Serving), "
                                            "TFLite and ONNX, verifying each.",
                                epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("model", help="a .keras model from pix2pix_tf.train")
    p.add_argument("--saved-model", action="store_true", help="TF Serving SavedModel")
    p.add_argument("--tflite", nargs="*", choices=TFLITE_TYPES,
                   help=f"TFLite variants (no value: all of {', '.join(TFLITE_TYPES)})")
    p.add_argument("--onnx", action="store_true", help=f"ONNX (opset {ONNX_OPSET})")
    p.add_argument("--output", help="output folder (default exports/<model name>)")
    p.add_argument("--name", default="pix2pix", help="model name in the TF Serving layout")
    p.add_argument("--version", type=int, default=1, help="TF Serving model version")
    p.add_argument("--size", type=int, default=256,
                   help="TFLite input side, fixed at export (square; the Python API "
                        "export_model(image_size=(h, w)) takes any shape)")
    p.add_argument("--inference-mode", choices=["deterministic", "paper", "moving_average"],
                   default="deterministic")
    p.add_argument("--calibration-data", help="training images for full-int8 TFLite: 'demo', a "
                                              "folder, or a TFDS name")
    p.add_argument("--test-data", help="pairs to verify on (default: calibration data, else "
                                       "the demo test set)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB")
    p.add_argument("--images", type=int, default=8, help="images used to verify")
    args = p.parse_args(argv)
    everything = not (args.saved_model or args.onnx or args.tflite is not None)
    tflite = TFLITE_TYPES if everything or args.tflite == [] else tuple(args.tflite or ())
    size = (args.size, args.size)
    try:
        model = load_model(args.model)
        generator = generator_of(model)
        channels = (generator.inputs[0].shape[-1], generator.outputs[0].shape[-1])
        calibration = None
        if args.calibration_data:
            calibration = list(_images(args.calibration_data, "train", size, channels, 100,
                                       args.direction)[0])
        elif "int8" in tflite and not everything:
            raise DataError("Full-int8 TFLite needs calibration images: pass --calibration-data "
                            "with the training data (a folder, 'demo' or a TFDS name).")
        elif "int8" in tflite:
            tflite = tuple(k for k in tflite if k != "int8")
            print("note: skipping full-int8 TFLite (no --calibration-data given)")
        test_source = args.test_data or args.calibration_data or "demo"
        images, targets = _images(test_source, "test", size, channels, args.images,
                                  args.direction)
        output = Path(args.output or Path("exports") / Path(args.model).stem)
        reports = export_model(model, output, saved_model=everything or args.saved_model,
                               tflite=tflite, onnx=everything or args.onnx, name=args.name,
                               version=args.version, image_size=size,
                               inference_mode=args.inference_mode, calibration=calibration,
                               test_images=images, test_targets=targets)
    except (DataError, ValueError) as error:
        return fail(error, EXIT_BAD_INPUT)
    keras_row = reports[0]
    print(f"verified on {len(images)} images from {test_source}; Keras "
          f"{keras_row.latency_ms:.1f} ms/image, PSNR vs targets {keras_row.psnr_vs_target:.2f} dB")
    print(f"artifacts in {output}")
    return EXIT_OK


if __name__ == "__main__":
    import sys

    sys.exit(main())
