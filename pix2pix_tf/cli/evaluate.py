"""Evaluate a trained model on a test split: ``python -m pix2pix_tf.evaluate`` (see --help).

Reports L1, PSNR, SSIM, the paper's Lab colour-histogram intersection, the grid-artifact
(``grid``: 1 = as clean as the targets) and sharpness (``sharp``: below 1 = blurrier) measures
of :class:`pix2pix_tf.core.metrics.TextureStats`, and ProGAN's sliced Wasserstein distance of 7x7
patches (``swd``, x1e3: 0 = the targets' texture; :class:`pix2pix_tf.core.metrics.SlicedWasserstein`),
for the model and for baselines computed in the same run: identity (output = input, when
channel counts allow) and any ``--compare`` models (e.g. the same generator trained with
``--objective L1``). Writes a table (printed, and metrics.json), a side-by-side PNG grid and a
small HTML report.

Each model is scored by its task (``Task.evaluate``). Translators as above; instruction editors
(``--task instruct`` models) by :mod:`pix2pix_tf.tasks.instruct.evaluate`
on held-out photos with held-out phrasings of the registered edits: instruction accuracy, L1,
PSNR and SSIM to the requested edit's target, beside chance (1/K), copying the input, the same
model with an empty instruction, and any ``--compare`` models (e.g. the no-text baseline,
trained with ``--instruction-dropout 1``); plus a confusion matrix and an edit grid.
"""

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
)
from pix2pix_tf.core.layers import INFERENCE_MODES

EXAMPLES = """examples:
  python -m pix2pix_tf.evaluate --model runs/quick/model.keras --data demo
  python -m pix2pix_tf.evaluate --model runs/quick/model.keras --data demo \\
      --compare runs/l1/model.keras --output reports/quick

exit codes: 0 done, 1 error, 2 bad input
"""

def parser():
    p = argparse.ArgumentParser(prog="python -m pix2pix_tf.evaluate",
                                description="Score a model against baselines on test pairs.",
                                epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("--model", required=True,
                   help="a .keras model from pix2pix_tf.train, or pretrained:NAME")
    p.add_argument("--data", help="'demo', a folder, or a TFDS name; for instruction editors "
                   "'edits' (default) or 'edits:PHOTOS'")
    p.add_argument("--split", default="test")
    p.add_argument("--direction", choices=["AtoB", "BtoA"],
                   help="default: the model's own (its training run or model card), else AtoB")
    p.add_argument("--crop-size", type=int, default=256,
                   help="test images are resized to this square size")
    p.add_argument("--compare", nargs="*", default=[], help="more models to score alongside")
    p.add_argument("--inference-mode", choices=INFERENCE_MODES,
                   help="default: the mode saved with each model")
    p.add_argument("--output", help="report folder (default: <model dir>/evaluation)")
    p.add_argument("--samples", type=int, default=6, help="rows in the PNG grid")
    p.add_argument("--batch-size", type=int, default=4)
    from pix2pix_tf.tasks import TASKS

    for task in TASKS.values():  # each task's own options, in a group of its own
        task.add_evaluate_arguments(p.add_argument_group(f"{task.name} models"))
    add_model_bound(p)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    paths = [args.model] + list(args.compare)
    missing = [p for p in paths if model_missing(p)]
    if missing:
        return fail(f"{missing[0]}: no such model file.", EXIT_BAD_INPUT)
    from pix2pix_tf.data import DataError
    from pix2pix_tf.inference import load_model, model_label
    from pix2pix_tf.tasks import task_of
    from pix2pix_tf.tasks.base import refuse_other_tasks_arguments

    try:
        # A run's model.keras is named by its run folder, other files by their names.
        names = ["model"] + [Path(p).parent.name if Path(p).stem == "model" else Path(p).stem
                             for p in args.compare]
        if len(set(names)) != len(names):  # clashing run names: use the paths
            names = ["model"] + list(args.compare)
        models = {name: load_model(p, args.max_parameters) for name, p in zip(names, paths)}
        task = task_of(models["model"])
        refuse_other_tasks_arguments(task, args, "evaluate", args.model)
    except (DataError, ValueError) as error:
        return fail(error, EXIT_BAD_INPUT)
    if args.output:
        output = Path(args.output)
    elif str(args.model).startswith("pretrained:"):
        output = Path("evaluations") / model_label(args.model)
    else:
        output = Path(args.model).parent / "evaluation"
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return fail(f"cannot write to {output}: {error.strerror}", EXIT_BAD_INPUT)
    try:
        task.evaluate(models, args, output)
    except (DataError, ValueError) as error:
        return fail(error, EXIT_BAD_INPUT)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
