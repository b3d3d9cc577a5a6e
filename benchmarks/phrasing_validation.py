"""Chooses the instruction editor's text settings without looking at the held-out phrasings.

Every fourth training phrasing of each edit (4 per edit, 32 in all) is withheld from training
and asked at evaluation in place of the held-out phrasings, which this script never uses. The
rest is ``python -m pix2pix_tf.train --task instruct`` and ``python -m pix2pix_tf.evaluate``
with the flags given, so two settings compare on sentences neither has seen, and only the
winner is then measured on the held-out phrasings.

    python benchmarks/phrasing_validation.py runs/val_default
    python benchmarks/phrasing_validation.py runs/val_wd3 --word-dropout 0.3

Prints the evaluation table (accuracy on the validation phrasings, held-out photos) and writes it
under RUN_DIR/evaluation.
"""

import dataclasses
import sys

from pix2pix_tf.cli import evaluate, train
from pix2pix_tf.tasks.instruct.edits import EDITS

EVERY = 4


def withhold_validation_phrasings(every=EVERY):
    """Moves every ``every``-th training phrasing of each registered edit into its evaluation
    list (replacing the held-out phrasings, which are dropped)."""
    for name, edit in list(EDITS.items()):
        validation = edit.phrasings[every - 1::every]
        training = tuple(p for p in edit.phrasings if p not in validation)
        EDITS[name] = dataclasses.replace(edit, phrasings=training, held_out=validation)


def main(argv):
    if not argv or argv[0].startswith("-"):
        sys.exit(__doc__)
    run_dir, flags = argv[0], argv[1:]
    withhold_validation_phrasings()
    code = train.main(["--task", "instruct", "--run-dir", run_dir, *flags])
    if code:
        return code
    return evaluate.main(["--model", f"{run_dir}/model.keras", "--output",
                          f"{run_dir}/evaluation"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
