"""Export a trained model: ``python -m pix2pix_tf.export`` (see --help)."""

import argparse
import sys
from pathlib import Path

from pix2pix_tf.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    HelpFormatter,
    add_model_bound,
    fail,
    model_missing,
    newest,
)
from pix2pix_tf.core.layers import INFERENCE_MODES
from pix2pix_tf.exporters.targets import (
    DEFAULT_FORMATS,
    TARGETS,
    default_inference_mode,
    int8_calibration,
    target_options,
)

EXAMPLES = """examples:
  python -m pix2pix_tf.export --tflite                              # newest run, TFLite
  python -m pix2pix_tf.export runs/quick/model.keras                 # every format
  python -m pix2pix_tf.export runs/quick/model.keras --saved-model --output exports/maps
  python -m pix2pix_tf.export m.keras --tflite float16 int8 --calibration-data demo --size 256
  python -m pix2pix_tf.export m.keras --onnx --test-data ~/pairs
  python -m pix2pix_tf.export m.keras --web --serve                  # a page, opened locally
  python -m pix2pix_tf.export m.keras --web --web-runtime download   # a page that works offline
  python -m pix2pix_tf.export runs/quick/model.keras --hub me/maps --dry-run   # card, locally

With no model, the newest runs/*/model.keras is exported. Full-int8 TFLite is calibrated on
--calibration-data, else on the training data recorded in the model; each artifact is reloaded
in its own runtime (SavedModel loader, LiteRT interpreter, onnxruntime) and compared with Keras
on real test images: max |diff|, PSNR against Keras, the PSNR change against the targets
(quantised models), file size and latency. --web writes OUTPUT/web/, a static page that runs
the model in the browser (onnxruntime-web); --web-runtime says where the page's runtime comes
from: 'cdn' (loaded from the internet when the page opens), 'download' (fetched once from the
npm registry, checked and kept beside the page) or a local onnxruntime-web folder or tarball.
exit codes: 0 done, 1 error, 2 bad input
"""


def parser():
    p = argparse.ArgumentParser(prog="python -m pix2pix_tf.export",
                                description="Export a trained model to SavedModel (TF Serving), "
                                            "TFLite and ONNX, verifying each.",
                                epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("model", nargs="?",
                   help="a .keras model from pix2pix_tf.train (default: the newest "
                        "runs/*/model.keras), or pretrained:NAME (the authors' models)")
    _format_flags(p)
    p.add_argument("--serve", action="store_true",
                   help="after --web, serve the page on 127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int, default=8000, help="port for --serve")
    p.add_argument("--output", help="output folder (default exports/<run name>)")
    p.add_argument("--name", default="pix2pix", help="model name in the TF Serving layout")
    p.add_argument("--version", type=int, default=None,
                   help="TF Serving model version (default: the next free one, 1 at first)")
    p.add_argument("--size", type=int, help="TFLite input side, fixed at export (square; "
                   "default: the model's training crop, else 256; export_model(image_size=(h, "
                   "w)) takes any shape)")
    p.add_argument("--inference-mode", choices=INFERENCE_MODES,
                   help="default: the model's own mode, except that 'paper' (dropout at test "
                        "time) exports as 'deterministic'")
    p.add_argument("--calibration-data", help="training images for full-int8 TFLite: 'demo', a "
                                              "folder, or a TFDS name (default: the model's "
                                              "training data)")
    p.add_argument("--test-data", help="pairs to verify on (default: the calibration data, "
                                       "else the model's training data)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"],
                   help="default: the model's training direction, else AtoB")
    p.add_argument("--images", type=int, default=8, help="images used to verify")
    p.add_argument("--hub", metavar="USER/REPO",
                   help="publish to the Hugging Face Hub with a model card (OUTPUT/hub; with "
                        "--web the page goes too)")
    p.add_argument("--dry-run", action="store_true",
                   help="with --hub: write OUTPUT/hub (model, README.md card, sample) only")
    p.add_argument("--license", default="other",
                   help="with --hub: the licence in the card's metadata (e.g. mit, cc-by-4.0)")
    p.add_argument("--metrics", help="with --hub: an evaluation's metrics.json for the card "
                                     "(default: the run's evaluation/, else its last "
                                     "validation epoch)")
    add_model_bound(p)
    return p


def _format_flags(p):
    """A flag per target flag of the table (:data:`pix2pix_tf.exporters.TARGETS`; targets that
    share one are its values, as ``--tflite float16 int8``), then every target's own options."""
    groups = {}
    for target in TARGETS.values():
        groups.setdefault(target.flag, []).append(target)
    for flag, members in groups.items():
        if members[0].variant is None:
            p.add_argument(f"--{flag}", action="store_true", help=members[0].help)
        else:
            variants = [t.variant for t in members]
            p.add_argument(f"--{flag}", nargs="*", choices=variants,
                           help=f"{members[0].help} (no value: all of {', '.join(variants)})")
    for name, option in target_options().items():
        p.add_argument(f"--{name.replace('_', '-')}", default=option.default,
                       choices=option.choices, metavar=option.metavar, help=option.help)


def asked_formats(args):
    """The names in TARGETS that the format flags ask for, in the table's order."""
    names = []
    for name, target in TARGETS.items():
        value = getattr(args, target.flag.replace("-", "_"))
        if target.variant is None:
            asked = bool(value)  # --onnx
        else:  # --tflite (all variants) or --tflite float16 int8
            asked = value is not None and (value == [] or target.variant in value)
        if asked:
            names.append(name)
    return names


def newest_run_model(root="runs"):
    """The most recently written ``runs/*/model.keras``, or None."""
    return newest("*/model.keras", root)


def main(argv=None):
    args = parser().parse_args(argv)
    model_path = args.model or newest_run_model()
    if model_path is None:
        return fail("no model given, and no runs/*/model.keras here: train one first "
                    "(python -m pix2pix_tf.train) or name a .keras file.", EXIT_BAD_INPUT)
    if model_missing(model_path):
        return fail(f"{model_path}: no such model file.", EXIT_BAD_INPUT)
    from pix2pix_tf.data import DataError
    from pix2pix_tf.inference import load_model

    if args.serve and not args.web:
        return fail("--serve serves the page of --web: add --web.", EXIT_BAD_INPUT)
    if args.model is None:
        print(f"exporting {model_path} (the newest run's model)")
    if args.dry_run and not args.hub:
        return fail("--dry-run applies to --hub: add --hub USER/REPO.", EXIT_BAD_INPUT)
    asked = asked_formats(args)
    formats = asked or ([] if args.hub else list(DEFAULT_FORMATS))
    try:
        model = load_model(model_path, args.max_parameters)
        output, examples, reports = (_export(args, model, model_path, formats) if formats
                                     else (_output(args, model_path), None, []))
        if args.hub:
            _publish(args, model, model_path, output)
    except (DataError, ValueError) as error:
        return fail(error, EXIT_BAD_INPUT)
    if examples is not None:
        keras_row = reports[0]
        psnr = "" if keras_row.psnr_vs_target is None else \
            f", PSNR vs targets {keras_row.psnr_vs_target:.2f} dB"
        print(f"verified on {len(examples.images)} images from {examples.source}; Keras "
              f"{keras_row.latency_ms:.1f} ms/image{psnr}")
    print(f"artifacts in {output}")
    if args.web:
        from pix2pix_tf.cli.serve import serve

        print(f"web page in {output / 'web'}: python -m pix2pix_tf.serve {output / 'web'}")
        if args.serve:
            return serve(output / "web", args.port)
    return EXIT_OK


def _output(args, model_path):
    from pix2pix_tf.inference import model_label

    return Path(args.output or Path("exports") / model_label(model_path))


def _publish(args, model, model_path, output):
    """``--hub``: the Hub folder in OUTPUT/hub, uploaded unless ``--dry-run``."""
    from pix2pix_tf.exporters.hub import publish
    from pix2pix_tf.loading import is_remote

    local = None if is_remote(model_path) else model_path
    folder = publish(model, args.hub, output / "hub", model_path=local,
                     metrics_file=args.metrics, license=args.license,
                     web=output / "web" if args.web else None, dry_run=args.dry_run)
    print(f"Hub folder in {folder} (model card {folder / 'README.md'})"
          + ("; --dry-run: nothing uploaded" if args.dry_run else ""))


def _export(args, model, model_path, formats):
    """Exports ``model`` to ``formats`` (names in TARGETS), verified on the test examples;
    returns (output folder, examples or None, the reports of
    :func:`pix2pix_tf.exporters.export_model`)."""
    from pix2pix_tf.exporters import export_model
    from pix2pix_tf.tasks import task_of

    task = task_of(model)
    trained = getattr(model, "training_config", None) or {}
    side = args.size or trained.get("crop_size") or 256
    size = (side, side)
    formats, calibration = int8_calibration(
        model, formats, size, args.calibration_data,
        asked=bool(args.tflite and "int8" in args.tflite), direction=args.direction)
    examples = task.export_examples(model, size, args.images,
                                    args.test_data or args.calibration_data,
                                    direction=args.direction)
    if examples is None:
        print("note: no --test-data and no recorded training data: artifacts are written "
              "but not verified.")
    output = _output(args, model_path)
    mode = args.inference_mode or default_inference_mode(model)
    options = {name: getattr(args, name) for name in target_options()}
    reports = export_model(model, output, formats, name=args.name, version=args.version,
                           image_size=size, inference_mode=mode, calibration=calibration,
                           test_images=None if examples is None else examples.images,
                           test_targets=None if examples is None else examples.targets,
                           test_conditions=None if examples is None else examples.conditions,
                           **options)
    return output, examples, reports


if __name__ == "__main__":
    sys.exit(main())
