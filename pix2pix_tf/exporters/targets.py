"""The table of export targets and :func:`export_model`, which writes and verifies them."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from pix2pix_tf.core.layers import INFERENCE_MODES
from pix2pix_tf.data.files import DataError
from pix2pix_tf.exporters.common import ExportError, exported_generator, timed
from pix2pix_tf.exporters.onnx import (
    ONNX_OPSET,
    UPSAMPLINGS,
    WEIGHT_TYPES,
    export_onnx,
    run_onnx,
)
from pix2pix_tf.exporters.serving import export_saved_model, run_saved_model
from pix2pix_tf.exporters.tflite import TFLITE_TYPES, export_tflite, run_tflite
from pix2pix_tf.exporters.verify import HEADER, ArtifactReport, compare, psnr, size_of
from pix2pix_tf.exporters.web import export_web
from pix2pix_tf.networks import IMAGE, as_generator
from pix2pix_tf.tasks import task_of

#: Python modules that verify artifacts -> the package that provides them.
RUNTIMES = {"onnxruntime": "onnxruntime", "ai_edge_litert": "ai-edge-litert"}


@dataclass(frozen=True)
class Option:
    """A target's own setting: its default, and how the export command offers it."""

    default: object
    help: str
    choices: tuple = None
    metavar: str = None


@dataclass(frozen=True)
class Target:
    """One export target: ``write(model, output_dir, job) -> path`` and
    ``run(path, images, conditions) -> (outputs, ms per image)``; ``label`` names its report
    row. The export command's flag for it is ``--FLAG`` (``flag``); targets sharing a flag are
    its ``variant`` values (``--tflite float16 int8``). ``options``: its own settings, by name
    (keywords of :func:`export_model`, ``--name-with-dashes`` on the command line), read from
    ``job.options``."""

    label: str
    write: callable
    run: callable
    help: str
    flag: str
    variant: str = None
    options: dict = field(default_factory=dict)
    stochastic_ok: bool = False  # can carry the paper's stochastic inference mode


@dataclass(frozen=True)
class Job:
    """The settings shared by every target of one export, and the targets' own ``options``."""

    name: str
    version: int
    image_size: tuple
    inference_mode: str
    calibration: object
    metadata: dict
    options: dict = field(default_factory=dict)


UPSAMPLING_HELP = ("how the file computes the U-Net's up-convolutions: as transposed "
                   "convolutions or as four 2x2 convolutions interleaved (subpixel: the same "
                   "function; which is faster depends on the runtime, see benchmarks/NOTES.md)")


def _tflite_target(kind):
    def write(model, output_dir, job):
        return export_tflite(model, output_dir / f"{job.name}_{kind}.tflite", kind,
                             job.image_size, job.calibration, inference_mode=job.inference_mode)

    return Target(f"tflite_{kind}", write, run_tflite, "TFLite variants", "tflite", kind)


TARGETS = {
    "saved_model": Target(
        "saved_model",
        lambda model, out, job: export_saved_model(model, out / "saved_model", job.name,
                                                   job.version, job.inference_mode,
                                                   job.metadata),
        run_saved_model, "TF Serving SavedModel", "saved-model", stochastic_ok=True),
    **{f"tflite_{kind}": _tflite_target(kind) for kind in TFLITE_TYPES},
    "onnx": Target(
        f"onnx (opset {ONNX_OPSET})",
        lambda model, out, job: export_onnx(
            model, out / f"{job.name}.onnx", inference_mode=job.inference_mode,
            upsampling=job.options["onnx_upsampling"],
            metadata={"pix2pix_tf": json.dumps(job.metadata, default=str)}),
        run_onnx, "ONNX", "onnx",
        options={"onnx_upsampling": Option("transpose", UPSAMPLING_HELP, UPSAMPLINGS)}),
    "web": Target(
        "web (onnx)",
        lambda model, out, job: export_web(model, out / "web",
                                           runtime=job.options["web_runtime"],
                                           weights=job.options["web_weights"],
                                           upsampling=job.options["web_upsampling"],
                                           inference_mode=job.inference_mode,
                                           metadata=job.metadata),
        run_onnx,  # the browser runs this same file (tests/test_web.py compares the two)
        "a static web page that runs the model in the browser (OUTPUT/web)", "web",
        options={"web_runtime": Option("cdn", "where the page's onnxruntime-web comes from "
                                       "(see below)", metavar="cdn|download|PATH"),
                 "web_weights": Option("float16", "how the page's model stores its weights "
                                       "(float16: half the download, the same float32 "
                                       "arithmetic)", WEIGHT_TYPES),
                 "web_upsampling": Option("transpose", UPSAMPLING_HELP, UPSAMPLINGS)}),
}
#: What :func:`export_model` writes when no formats are named: every target but the page.
DEFAULT_FORMATS = tuple(name for name in TARGETS if name != "web")
#: The older spelling of formats (``saved_model=True, tflite=[...], onnx=True, web=False``),
#: still taken by :func:`export_model`.
LEGACY_FLAGS = ("saved_model", "tflite", "onnx", "web")


def default_inference_mode(model):
    """The inference mode exports use unless told: the model's own, except the paper's
    stochastic one (dropout at test time), which becomes 'deterministic' (dropout off, each
    image normalised by its own statistics), since a served batch must not differ from call to
    call."""
    return "deterministic" if model.inference_mode == "paper" else model.inference_mode


def int8_calibration(model, formats, size, source=None, asked=False, direction=None):
    """``(formats, calibration images or None)`` for an export of ``formats``: full-int8
    TFLite is calibrated on 100 training images of ``source`` (default: the training data the
    model records). Where that cannot be done (a model with other inputs than the image, or no
    training data), full int8 is dropped with a note, or, if it was ``asked`` for by name,
    refused with an :class:`ExportError` saying why. One policy for ``export_model`` and the
    export command."""
    if "tflite_int8" not in formats:
        return list(formats), None
    generator = as_generator(model)
    source = source or (getattr(model, "training_config", None) or {}).get("data")
    why = None
    if generator.condition_inputs:
        why = (f"full-int8 TFLite calibrates the image only, but this model also takes "
               f"{sorted(generator.condition_inputs)}. Use float16 or dynamic_int8.")
    elif source is None:
        why = ("Full-int8 TFLite needs calibration images: pass --calibration-data with "
               "the training data (a folder, 'demo' or a TFDS name), or calibration= in Python.")
    if why and asked:
        raise ExportError(why)
    if why:
        print(f"note: skipping full-int8 TFLite: {why}")
        return [f for f in formats if f != "tflite_int8"], None
    try:
        examples = task_of(model).export_examples(model, size, 100, source, "train", direction)
    except DataError as error:
        if asked:
            raise
        print(f"note: skipping full-int8 TFLite: its calibration data is not readable ({error})")
        return [f for f in formats if f != "tflite_int8"], None
    print(f"calibrating full-int8 TFLite on the training data {source}")
    return list(formats), list(examples.images)


def target_options():
    """Every target's own options, by name: ``{name: Option}``."""
    return {name: option for target in TARGETS.values() for name, option in target.options.items()}


def metadata(model, inference_mode):
    """What travels with every artifact: the contract, the inference mode, the model config."""
    generator = as_generator(model)
    return {"inference_mode": inference_mode, "size_multiple": generator.size_multiple,
            "inputs": generator.input_names, "input_channels": generator.input_channels,
            "output_channels": generator.output_channels, "value_range": [-1, 1],
            "model_config": None if model is generator else model.get_config()}


def export_model(model, output_dir, formats=None, *, name="pix2pix", version=None,
                 image_size=(256, 256), inference_mode=None, calibration=None,
                 test_images=None, test_targets=None, test_conditions=None, verbose=True,
                 **options):
    """Writes and verifies the artifacts ``formats`` names (names in :data:`TARGETS`; default
    :data:`DEFAULT_FORMATS`, every one but the web page). Returns a list of
    :class:`ArtifactReport` (the first row is Keras itself when there are test images).

    ``options``: the targets' own settings (:func:`target_options`; the web page's
    ``web_runtime`` "cdn", "download" or a local onnxruntime-web copy, and ``web_weights``
    "float16" or "float32"). Code written before ``formats`` may still name them by flags
    (``saved_model=``, ``tflite=[kinds]``, ``onnx=``, ``web=``).
    ``inference_mode``: default :func:`default_inference_mode` (the model's own, the paper's
    stochastic one as 'deterministic').
    ``calibration``: images (H, W, C) in [-1, 1] of ``image_size`` for full-int8 TFLite;
    default: 100 of the model's recorded training data, else no full int8
    (:func:`int8_calibration`).
    ``test_images`` / ``test_targets``: real images to verify on (default: calibration images).
    ``test_conditions``: the model's other inputs for those images, by name, one row per image,
    as the model takes them (an editor's ``{"instruction": strings}``); the task turns them into
    the generator's (``Task.network_conditions``). Files a runtime needs beside the model (an
    editor's ``NAME_vocabulary.txt``) are written too (``Task.write_beside``). The model is left
    in the inference mode it had.
    """
    names, options = _formats(formats, options)
    inference_mode = inference_mode or default_inference_mode(model)
    _check_inference_mode(names, inference_mode)
    if calibration is None:
        names, calibration = int8_calibration(model, names, tuple(image_size))
    output_dir = Path(output_dir)
    _check_writable(output_dir)
    generator = as_generator(model)
    multiple = generator.size_multiple
    if image_size[0] % multiple or image_size[1] % multiple:
        raise ExportError(f"--size {image_size[0]}x{image_size[1]} is not a multiple of the "
                          f"generator's size multiple {multiple}.")
    job = Job(name, version, tuple(image_size), inference_mode, calibration,
              metadata(model, inference_mode), options)
    test_images = calibration if test_images is None else test_images
    unverified = "not verified: no test images"
    task = task_of(model)
    task.write_beside(model, output_dir, name)
    if test_conditions:  # both forms: each runtime takes the inputs it is named for
        test_conditions = {**test_conditions,
                           **task.network_conditions(model, test_conditions)}
    missing = sorted(set(generator.condition_inputs) - set(test_conditions or {}))
    if missing and test_images is not None:
        test_images = None
        unverified = (f"not verified: the generator also takes {missing}; pass test_conditions "
                      "as the model takes them")
    reports, reference, keras_psnr = [], None, None
    targets = None if test_targets is None else np.asarray(test_targets, np.float32)
    if test_images is not None:
        test_images = np.asarray(test_images, np.float32)
        reference, keras_report = _keras_reference(generator, inference_mode, test_images,
                                                   test_conditions, targets)
        keras_psnr = keras_report.psnr_vs_target
        reports.append(keras_report)
    if verbose:
        print(HEADER)
    for target_name in names:
        target = TARGETS[target_name]
        path = target.write(model, output_dir, job)
        report = None
        if reference is not None:
            report = _verify(target, path, test_images, test_conditions, reference, targets,
                             keras_psnr)
        if report is None:
            report = ArtifactReport(target.label, str(path), size_of(path), float("nan"),
                                    float("nan"), notes=[unverified])
        reports.append(report)
        if verbose:
            print(report.row())
    return reports


def _formats(formats, options):
    """(the target names, the targets' options with their defaults) of an export; TypeError
    for an unknown format or option."""
    legacy = {k: options.pop(k) for k in LEGACY_FLAGS if k in options}
    if legacy and formats is not None:
        raise TypeError("give formats=[...] or the flags saved_model=, tflite=, onnx=, web=, "
                        "not both.")
    if legacy:
        flags = {**dict(saved_model=True, tflite=TFLITE_TYPES, onnx=True, web=False), **legacy}
        formats = ((["saved_model"] if flags["saved_model"] else [])
                   + [f"tflite_{k}" for k in flags["tflite"] or ()]
                   + (["onnx"] if flags["onnx"] else []) + (["web"] if flags["web"] else []))
    names = list(DEFAULT_FORMATS if formats is None else formats)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise TypeError(f"unknown export formats {unknown}; choose from {', '.join(TARGETS)}.")
    known = target_options()
    extra = sorted(set(options) - set(known))
    if extra:
        raise TypeError(f"export_model() got unknown options {extra}; the targets take "
                        f"{', '.join(known) or 'none'}.")
    return names, {k: options.get(k, option.default) for k, option in known.items()}


def _check_inference_mode(names, inference_mode):
    """ExportError for an unknown inference mode, or for the paper's where a target cannot
    carry it."""
    if inference_mode not in INFERENCE_MODES:
        raise ExportError(f"inference_mode must be one of {', '.join(INFERENCE_MODES)}")
    if inference_mode == "paper" and any(not TARGETS[n].stochastic_ok for n in names):
        raise ExportError("The paper's stochastic inference mode (dropout at test time) can only "
                          "be exported to the SavedModel: TFLite and ONNX cannot carry its random "
                          "ops and RNG state. Export those with --inference-mode deterministic.")


def _check_writable(output_dir):
    """Creates ``output_dir``; ExportError if it cannot be written to."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = output_dir / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ExportError(f"cannot write to {output_dir}: {error.strerror}") from None


def _keras_reference(generator, inference_mode, test_images, test_conditions, targets):
    """(Keras' outputs for ``test_images``, the Keras row of the report): what every artifact's
    outputs are compared with."""
    feeds = {k: v for k, v in (test_conditions or {}).items()
             if k in generator.condition_inputs}
    with exported_generator(generator, inference_mode) as generator:
        compiled = tf.function(lambda x, extra: generator(
            {IMAGE: x, **extra} if extra else x, training=False))
        reference, keras_ms = timed(lambda x, rows: compiled(x, rows).numpy(), test_images,
                                    feeds)
    keras_psnr = None if targets is None else psnr(reference, targets)
    return reference, ArtifactReport("keras", "-", 0, 0.0, float("inf"), keras_psnr,
                                     None if targets is None else 0.0, keras_ms)


def _verify(target, path, test_images, test_conditions, reference, targets, keras_psnr):
    """The report of the artifact at ``path``, run in its own runtime on ``test_images`` and
    compared with Keras' ``reference``; without that runtime, a row that says so."""
    try:
        outputs, ms = target.run(path, test_images, test_conditions)
    except ModuleNotFoundError as error:  # the runtime that verifies it is not installed
        note = (f"written, not verified: its runtime ({error.name}) is not installed; "
                f"pip install {RUNTIMES.get(error.name, error.name)} to verify")
        print(f"note: {target.label}: {note}")
        return ArtifactReport(target.label, str(path), size_of(path), float("nan"),
                              float("nan"), notes=[note])
    return compare(target.label, path, outputs, ms, reference, targets, keras_psnr)
