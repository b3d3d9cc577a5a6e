"""Export a trained model: ``python -m pix2pix_tf.export`` (see --help)."""

import argparse
import sys
from pathlib import Path

from pix2pix_tf.cli.common import EXIT_BAD_INPUT, EXIT_OK, HelpFormatter, fail
from pix2pix_tf.layers import INFERENCE_MODES

TFLITE_TYPES = ("float32", "float16", "dynamic_int8", "int8")  # as pix2pix_tf.export.TFLITE_TYPES
EXAMPLES = """examples:
  python -m pix2pix_tf.export --tflite                              # newest run, TFLite
  python -m pix2pix_tf.export runs/quick/model.keras                 # every format
  python -m pix2pix_tf.export runs/quick/model.keras --saved-model --output exports/maps
  python -m pix2pix_tf.export m.keras --tflite float16 int8 --calibration-data demo --size 256
  python -m pix2pix_tf.export m.keras --onnx --test-data ~/pairs

With no model, the newest runs/*/model.keras is exported. Full-int8 TFLite is calibrated on
--calibration-data, else on the training data recorded in the model; each artifact is reloaded
in its own runtime (SavedModel loader, LiteRT interpreter, onnxruntime) and compared with Keras
on real test images: max |diff|, PSNR against Keras, the PSNR change against the targets
(quantised models), file size and latency.
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
    p.add_argument("--saved-model", action="store_true", help="TF Serving SavedModel")
    p.add_argument("--tflite", nargs="*", choices=TFLITE_TYPES,
                   help=f"TFLite variants (no value: all of {', '.join(TFLITE_TYPES)})")
    p.add_argument("--onnx", action="store_true", help="ONNX")
    p.add_argument("--output", help="output folder (default exports/<run name>)")
    p.add_argument("--name", default="pix2pix", help="model name in the TF Serving layout")
    p.add_argument("--version", type=int, default=1, help="TF Serving model version")
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
    return p


def newest_run_model(root="runs"):
    """The most recently written ``runs/*/model.keras``, or None."""
    found = sorted(Path(root).glob("*/model.keras"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _images(source, split, size, channels, count, direction):
    """Up to ``count`` (input, target) pairs of ``size`` from ``split`` (else 'train')."""
    import numpy as np

    from pix2pix_tf.data import DataError, available_splits, load_paired_dataset

    splits = available_splits(source)
    split = split if split in splits or not splits else "train"
    dataset = load_paired_dataset(source, split if splits else None, batch_size=1,
                                  crop_size=size[0], load_size=size[0], augment=False,
                                  multiple=1, input_channels=channels[0],
                                  output_channels=channels[1], direction=direction)
    pairs = [(x.numpy()[0], y.numpy()[0]) for x, y in dataset.take(count)]
    if not pairs:
        raise DataError(f"{source}: no images to use.")
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def _edit_examples(model, size, count):
    """Up to ``count`` (inputs, instructions, targets) of an instruction editor's data (its
    test split if it has one), centre-cropped to ``size``."""
    import numpy as np

    from pix2pix_tf.data import pair_pipeline
    from pix2pix_tf.data.instructions import instruction_splits, open_instruction_source

    trained = model.training_config or {}
    data = trained.get("data") or "edits"
    split = "test" if "test" in instruction_splits(data) else "train"
    source = open_instruction_source(data, split, columns=trained.get("columns"),
                                     size=trained.get("edit_size", 128))
    dataset = pair_pipeline(source, batch_size=1, preprocess="crop", crop_size=size[0],
                            multiple=1, augment=False, shuffle=False)
    rows = [(x["image"].numpy()[0], x["instruction"].numpy()[0].decode(), y.numpy()[0])
            for x, y in dataset.take(count)]
    return (np.stack([r[0] for r in rows]), [r[1] for r in rows], np.stack([r[2] for r in rows]),
            data)


def main(argv=None):
    args = parser().parse_args(argv)
    from pix2pix_tf.data import DataError
    from pix2pix_tf.export import TFLITE_TYPES as TYPES
    from pix2pix_tf.export import export_model
    from pix2pix_tf.inference import load_model, model_label, saved_direction
    from pix2pix_tf.instruct import InstructPix2Pix
    from pix2pix_tf.networks import as_generator

    model_path = args.model or newest_run_model()
    if model_path is None:
        return fail("no model given, and no runs/*/model.keras here: train one first "
                    "(python -m pix2pix_tf.train) or name a .keras file.", EXIT_BAD_INPUT)
    if args.model is None:
        print(f"exporting {model_path} (the newest run's model)")
    everything = not (args.saved_model or args.onnx or args.tflite is not None)
    tflite = TYPES if everything or args.tflite == [] else tuple(args.tflite or ())
    try:
        model = load_model(model_path)
        generator = as_generator(model)
        trained = getattr(model, "training_config", None) or {}
        channels = (generator.input_channels, generator.output_channels)
        direction = args.direction or saved_direction(model) or "AtoB"
        side = args.size or trained.get("crop_size") or 256
        size = (side, side)
        calibration_source = args.calibration_data or trained.get("data")
        calibration = instructions = None
        editor = isinstance(model, InstructPix2Pix)
        if editor and "int8" in tflite:
            if args.tflite and "int8" in args.tflite:
                raise DataError("full-int8 TFLite of an instruction editor is not offered: its "
                                "calibration would need instructions too. Use float16 or "
                                "dynamic_int8.")
            tflite = tuple(k for k in tflite if k != "int8")
            print("note: skipping full-int8 TFLite for an instruction editor (float32, float16 "
                  "and dynamic_int8 take token ids).")
        if "int8" in tflite:
            if calibration_source is None:
                if args.tflite and "int8" in args.tflite:
                    raise DataError("Full-int8 TFLite needs calibration images: pass "
                                    "--calibration-data with the training data (a folder, "
                                    "'demo' or a TFDS name).")
                tflite = tuple(k for k in tflite if k != "int8")
                print("note: skipping full-int8 TFLite: the model records no training data; "
                      "pass --calibration-data with training images to get it.")
            else:
                calibration = list(_images(calibration_source, "train", size, channels, 100,
                                           direction)[0])
                if not args.calibration_data:
                    print(f"calibrating full-int8 TFLite on the training data {calibration_source}")
        test_source = args.test_data or calibration_source
        images = targets = None
        if editor:
            images, instructions, targets, test_source = _edit_examples(model, size,
                                                                        args.images)
        elif test_source is not None:
            images, targets = _images(test_source, "test", size, channels, args.images, direction)
        else:
            print("note: no --test-data and no recorded training data: artifacts are written "
                  "but not verified.")
        output = Path(args.output or Path("exports") / model_label(model_path))
        mode = args.inference_mode or (
            "deterministic" if model.inference_mode == "paper" else model.inference_mode)
        reports = export_model(model, output, saved_model=everything or args.saved_model,
                               tflite=tflite, onnx=everything or args.onnx, name=args.name,
                               version=args.version, image_size=size,
                               inference_mode=mode, calibration=calibration,
                               test_images=images, test_targets=targets,
                               test_instructions=instructions)
    except (DataError, ValueError) as error:
        return fail(error, EXIT_BAD_INPUT)
    if images is not None:
        keras_row = reports[0]
        psnr = "" if keras_row.psnr_vs_target is None else \
            f", PSNR vs targets {keras_row.psnr_vs_target:.2f} dB"
        print(f"verified on {len(images)} images from {test_source}; Keras "
              f"{keras_row.latency_ms:.1f} ms/image{psnr}")
    print(f"artifacts in {output}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
