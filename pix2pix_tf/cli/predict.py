"""Translate images with a trained model: ``python -m pix2pix_tf.predict`` (see --help)."""

import argparse
import sys
from pathlib import Path

from pix2pix_tf.cli.common import (
    EXIT_BAD_INPUT,
    HelpFormatter,
    add_model_bound,
    fail,
    images_to_write,
    model_missing,
    process_images,
)
from pix2pix_tf.core.layers import INFERENCE_MODES

EXAMPLES = """examples:
  python -m pix2pix_tf.predict --model runs/quick/model.keras --input map.jpg --output out/
  python -m pix2pix_tf.predict --model m.keras --input photos/ --output translated/ \\
      --inference-mode deterministic

Any image size works (padded to the generator's size multiple and cropped back; images larger than
--tile are translated in blended tiles). Outputs are PNGs named after the inputs; inputs are
never overwritten. exit codes: 0 all translated, 1 error, 2 bad input (some files failed).
"""


def parser():
    p = argparse.ArgumentParser(prog="python -m pix2pix_tf.predict",
                                description="Translate one image or a folder of images.",
                                epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("--model", required=True,
                   help="a .keras model from pix2pix_tf.train, or pretrained:NAME (the authors' "
                        "models: facades_label2photo, sat2map, map2sat, edges2shoes, day2night)")
    p.add_argument("--input", required=True, help="an image file or a folder of images")
    p.add_argument("--output", required=True, help="folder for the translated PNGs")
    p.add_argument("--inference-mode", choices=INFERENCE_MODES,
                   help="default: the mode saved with the model")
    p.add_argument("--tile", type=int, default=1024, help="largest side translated at once")
    p.add_argument("--bits", type=int, choices=[8, 16], default=8, help="PNG bit depth")
    from pix2pix_tf.tasks import TASKS

    for task in TASKS.values():  # each task's own options, in a group of its own
        task.add_predict_arguments(p.add_argument_group(f"{task.name} models"))
    add_model_bound(p)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    output = Path(args.output)
    try:  # cheap checks first: no model is loaded for a missing file
        targets = images_to_write(args.input, output)
        if model_missing(args.model):
            raise ValueError(f"{args.model}: no such model file.")
    except ValueError as error:
        return fail(error, EXIT_BAD_INPUT)
    from pix2pix_tf.data.files import DataError
    from pix2pix_tf.inference import load_model, read_image, write_image
    from pix2pix_tf.networks import as_generator
    from pix2pix_tf.tasks import task_of
    from pix2pix_tf.tasks.base import refuse_other_tasks_arguments

    try:
        model = load_model(args.model, args.max_parameters)
        task = task_of(model)
        refuse_other_tasks_arguments(task, args, "predict", args.model)
        if args.inference_mode:
            model.inference_mode = args.inference_mode
        run = task.predictor(model, args)
        output.mkdir(parents=True, exist_ok=True)
    except (DataError, ValueError) as error:
        return fail(error, EXIT_BAD_INPUT)
    except OSError as error:
        return fail(f"cannot write to {output}: {error.strerror}", EXIT_BAD_INPUT)
    generator = as_generator(model)
    card = getattr(model, "model_card", None)
    if card and card.get("input"):
        print(f"{card.get('name', 'model')}: {card['input']} -> {card.get('output', '?')}; "
              f"expects {card.get('preparation', 'images')}")

    def translate_file(path, target):
        write_image(run(read_image(path, generator.input_channels)), target, bits=args.bits)

    return process_images(targets, translate_file, "translated", output)


if __name__ == "__main__":
    sys.exit(main())
