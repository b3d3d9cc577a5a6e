"""Make synthetic pix2pix pairs from a folder of photos:
``python -m pix2pix_tf.cli.make_pairs PHOTOS OUTPUT --kind edges`` (see
:mod:`pix2pix_tf.data.synthetic`)."""

import argparse
import sys
from pathlib import Path

from pix2pix_tf.cli.common import EXIT_BAD_INPUT, EXIT_OK, fail
from pix2pix_tf.data.files import DataError
from pix2pix_tf.data.synthetic import KINDS, make_synthetic_pairs


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Make synthetic pix2pix pairs (A|B side by side) from a folder of photos.",
        epilog="example: python -m pix2pix_tf.cli.make_pairs ~/photos pairs --kind edges")
    parser.add_argument("photos", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--kind", choices=KINDS, default="edges")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        counts = make_synthetic_pairs(args.photos, args.output, args.kind, size=args.size,
                                      test_fraction=args.test_fraction, seed=args.seed)
    except DataError as error:
        return fail(error, EXIT_BAD_INPUT)
    print(f"wrote {counts['train']} train and {counts['test']} test pairs to {args.output}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
