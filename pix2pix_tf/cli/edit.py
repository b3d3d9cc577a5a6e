"""Edit images as instructed: ``python -m pix2pix_tf.edit`` (see --help)."""

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

EXAMPLES = """examples:
  python -m pix2pix_tf.edit --model runs/instruct/model.keras --input photo.jpg \\
      --instruction "make it sepia" --output out/
  python -m pix2pix_tf.edit --model m.keras --input photos/ --instruction "blur it" \\
      --strength 0.5 --output softer/

Any image size works (padded to the generator's size multiple and cropped back). Outputs are PNGs
named after the inputs; inputs are never overwritten. exit codes: 0 all edited, 1 error, 2 bad
input (a bad instruction, or some files failed).
"""


def parser():
    p = argparse.ArgumentParser(prog="python -m pix2pix_tf.edit",
                                description="Edit one image or a folder of images as a text "
                                            "instruction says.",
                                epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("--model", required=True,
                   help="a .keras model from python -m pix2pix_tf.train --task instruct")
    p.add_argument("--input", required=True, help="an image file or a folder of images")
    p.add_argument("--instruction", required=True, help='what to do, e.g. "make it sepia"')
    p.add_argument("--output", required=True, help="folder for the edited PNGs")
    p.add_argument("--strength", type=float, default=1.0,
                   help="1: the model's edit; 0: the input; between: a blend; above 1: more")
    p.add_argument("--allow-empty", action="store_true",
                   help="accept an empty instruction (the model's output without guidance)")
    p.add_argument("--tile", type=int, default=1024, help="largest side edited at once")
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

    try:
        model = load_model(args.model, args.max_parameters)
    except DataError as error:
        return fail(error, EXIT_BAD_INPUT)
    if not callable(getattr(model, "edit", None)):  # a model that edits as instructed
        return fail(f"{args.model} is not an instruction editor (train one with python -m "
                    "pix2pix_tf.train --task instruct); for plain pix2pix models use "
                    "python -m pix2pix_tf.predict.", EXIT_BAD_INPUT)
    try:
        model.vocabulary.check([args.instruction], args.allow_empty)
        output.mkdir(parents=True, exist_ok=True)
    except ValueError as error:
        return fail(str(error).replace("instruction 0", "the instruction"), EXIT_BAD_INPUT)
    except OSError as error:
        return fail(f"cannot write to {output}: {error.strerror}", EXIT_BAD_INPUT)
    def edit(path, target):
        image = read_image(path, model.input_channels)
        write_image(model.edit(image, args.instruction, args.strength,
                               allow_empty=args.allow_empty, tile=args.tile), target)

    return process_images(targets, edit, "edited", output,
                          f" ({args.instruction!r}, strength {args.strength})")

if __name__ == "__main__":
    sys.exit(main())
