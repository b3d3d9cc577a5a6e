"""Evaluate a trained model on a test split: ``python -m pix2pix_tf.evaluate`` (see --help).

Reports L1, PSNR, SSIM and the paper's Lab colour-histogram intersection for the model and for
baselines computed in the same run: identity (output = input, when channel counts allow) and any
``--compare`` models (e.g. the same generator trained with ``--objective L1``). Writes a table
(printed, and metrics.json), a side-by-side PNG grid and a small HTML report.

Instruction editors (``--task instruct`` models) are scored by :mod:`pix2pix_tf.instruct_eval`
on held-out photos with held-out phrasings of the registered edits: instruction accuracy, L1,
PSNR and SSIM to the requested edit's target, beside chance (1/K), copying the input, the same
model with an empty instruction, and any ``--compare`` models (e.g. the no-text baseline,
trained with ``--instruction-dropout 1``); plus a confusion matrix and an edit grid.
"""

import argparse
import html
import json
import math
import sys
from pathlib import Path

import numpy as np

from pix2pix_tf.cli.common import EXIT_BAD_INPUT, EXIT_OK, HelpFormatter, fail
from pix2pix_tf.layers import INFERENCE_MODES

EXAMPLES = """examples:
  python -m pix2pix_tf.evaluate --model runs/quick/model.keras --data demo
  python -m pix2pix_tf.evaluate --model runs/quick/model.keras --data demo \\
      --compare runs/l1/model.keras --output reports/quick

exit codes: 0 done, 1 error, 2 bad input
"""

COLUMNS = ("l1", "psnr", "ssim", "hist_L", "hist_a", "hist_b")


def parser():
    p = argparse.ArgumentParser(prog="python -m pix2pix_tf.evaluate",
                                description="Score a model against baselines on test pairs.",
                                epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("--model", required=True,
                   help="a .keras model from pix2pix_tf.train, or pretrained:NAME")
    p.add_argument("--data", help="'demo', a folder, or a TFDS name; for instruction editors "
                   "'edits' (default) or 'edits:PHOTOS'")
    p.add_argument("--phrasings", choices=["held_out", "train"], default="held_out",
                   help="instruction editors: which phrasings of the edits to ask with")
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
    return p


def score(translate, dataset, steps, keep=0):
    """Mean metrics of ``translate`` (batch -> outputs) over ``dataset``, and its first
    ``keep`` outputs (for the sample grid)."""
    from keras.utils import Progbar

    from pix2pix_tf.metrics import LabHistogram, per_image_metrics

    values = {k: [] for k in ("l1", "psnr", "ssim")}
    histogram = LabHistogram()
    outputs = []
    progress = Progbar(steps, unit_name="batch")
    for x, y in dataset:
        out = translate(x)
        for key, v in per_image_metrics(y, out).items():
            values[key].extend(v.tolist())
        histogram.update(y, out)
        if sum(len(o) for o in outputs) < keep:
            outputs.append(np.asarray(out))
        progress.add(1)
    result = {k: float(np.mean(v)) for k, v in values.items()}
    result.update(histogram.intersection())
    result["images"] = len(values["l1"])
    return result, (np.concatenate(outputs)[:keep] if outputs else None)


def table(rows):
    header = f"{'':28s}" + "".join(f"{c:>9s}" for c in COLUMNS)
    lines = [header]
    for name, r in rows.items():
        lines.append(f"{name[:28]:28s}" + "".join(f"{r[c]:9.4f}" for c in COLUMNS))
    return "\n".join(lines)


def write_html(path, rows, grid_name, info):
    cells = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join(
        "<tr><td>" + html.escape(name) + "</td>"
        + "".join(f"<td>{r[c]:.4f}</td>" for c in COLUMNS) + "</tr>" for name, r in rows.items())
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8">
<title>pix2pix_tf evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 10px;text-align:right}}
td:first-child{{text-align:left}}table{{border-collapse:collapse}}tr:nth-child(even){{background:#eee}}</style>
</head><body><h1>pix2pix_tf evaluation</h1><p>{html.escape(info)}</p>
<p>L1: mean absolute error in [-1, 1] (lower is better). PSNR (dB) and SSIM on [0, 1] images,
hist_L/a/b: Lab colour-histogram intersection with the targets (paper Fig. 7); higher is better.</p>
<table><tr><th></th>{cells}</tr>{body}</table>
<h2>Samples</h2><img src="{html.escape(grid_name)}" style="max-width:100%"></body></html>
""")


def main(argv=None):
    args = parser().parse_args(argv)
    import keras

    from pix2pix_tf.callbacks import first_examples
    from pix2pix_tf.data import DataError, load_paired_dataset
    from pix2pix_tf.inference import load_model, model_label, saved_direction
    from pix2pix_tf.instruct import InstructPix2Pix
    from pix2pix_tf.networks import as_generator, image_of
    from pix2pix_tf.plotting import image_grid

    try:
        paths = [args.model] + list(args.compare)
        # A run's model.keras is named by its run folder, other files by their names.
        names = ["model"] + [Path(p).parent.name if Path(p).stem == "model" else Path(p).stem
                             for p in args.compare]
        if len(set(names)) != len(names):  # clashing run names: use the paths
            names = ["model"] + list(args.compare)
        models = {name: load_model(p) for name, p in zip(names, paths)}
        if isinstance(models["model"], InstructPix2Pix):
            return evaluate_editor(args, models)
        if args.data is None:
            raise ValueError("give --data: 'demo', a folder, or a TFDS name.")
        generator = as_generator(next(iter(models.values())))
        channels_in, channels_out = generator.input_channels, generator.output_channels
        multiples = {as_generator(m).size_multiple for m in models.values()}
        args.direction = args.direction or saved_direction(models["model"]) or "AtoB"
        dataset = load_paired_dataset(
            args.data, args.split, direction=args.direction, batch_size=args.batch_size,
            crop_size=args.crop_size, load_size=args.crop_size, augment=False,
            input_channels=channels_in, output_channels=channels_out, multiple=math.lcm(*multiples))
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
    steps = int(dataset.cardinality())
    rows, outputs, modes = {}, {}, {}
    for name, model in models.items():
        if args.inference_mode:
            model.inference_mode = args.inference_mode
        modes[name] = model.inference_mode
        print(f"scoring {name} (inference mode {modes[name]})")
        rows[name], outputs[name] = score(
            lambda x, m=model: keras.ops.convert_to_numpy(m(x, training=False)), dataset, steps,
            keep=args.samples)
    if channels_in == channels_out:
        print("scoring identity baseline (output = input)")
        rows["identity (output = input)"], _ = score(lambda x: np.asarray(image_of(x)), dataset,
                                                     steps)
    inputs, targets = first_examples(dataset, args.samples)
    columns = [image_of(inputs), targets] + [o[:len(inputs)] for o in outputs.values()]
    labels = ["input", "target"] + list(outputs)
    image_grid(columns, labels, output / "samples.png", cell=2.6)
    info = (f"{rows[next(iter(rows))]['images']} test images from {args.data} "
            f"(split {args.split}, {args.direction}, resized to {args.crop_size}); inference "
            f"modes: {', '.join(f'{k}={v}' for k, v in modes.items())}")
    (output / "metrics.json").write_text(json.dumps({"info": info, "results": rows}, indent=2))
    write_html(output / "report.html", rows, "samples.png", info)
    print(info)
    print(table(rows))
    print(f"report: {output / 'report.html'}, grid: {output / 'samples.png'}")
    return EXIT_OK


def evaluate_editor(args, models):
    """The instruction-editing evaluation (see the module docstring)."""
    from pix2pix_tf.data import DataError
    from pix2pix_tf.data.instructions import EDITS_DATA, load_images
    from pix2pix_tf.instruct import InstructPix2Pix
    from pix2pix_tf.instruct_eval import (
        confusion_figure,
        copy_input,
        edit_grid,
        evaluate_instructions,
        instruction_table,
        test_crops,
    )

    data = args.data or EDITS_DATA
    if not (data == EDITS_DATA or data.startswith(EDITS_DATA + ":")):
        return fail("instruction accuracy is measured on the registered edits: give --data "
                    "edits or edits:PHOTOS (a folder of photos, never used in training).",
                    EXIT_BAD_INPUT)
    model = models["model"]
    settings = model.training_config or {}
    size, crop = settings.get("edit_size", 128), settings.get("crop_size", 64)
    try:
        photos = load_images(data[len(EDITS_DATA) + 1:] or None, size=size, split=args.split)
    except DataError as error:
        return fail(error, EXIT_BAD_INPUT)
    images = test_crops(photos, crop)
    output = Path(args.output) if args.output else Path(args.model).parent / "evaluation"
    output.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, candidate in models.items():
        if not isinstance(candidate, InstructPix2Pix):
            return fail(f"{name} is not an instruction editor.", EXIT_BAD_INPUT)
        if args.inference_mode:
            candidate.inference_mode = args.inference_mode
        label = "model" if name == "model" else name
        if not candidate.uses_text:
            label += " (no text)"
        print(f"scoring {label} on {len(images)} held-out images")
        rows.append((label, evaluate_instructions(candidate, images, phrasings=args.phrasings)))
    result = rows[0][1]

    def empty(batch, texts):
        x = batch * 2.0 - 1.0
        out = model.generator({"image": x, "tokens": np.zeros((len(x), model.sequence_length),
                                                              np.int32)}, training=False)
        return (np.asarray(out) + 1.0) / 2.0

    rows.append(("model, empty instruction", evaluate_instructions(
        None, images, phrasings=args.phrasings, outputs_fn=empty)))
    rows.append(("copy the input", evaluate_instructions(None, images, phrasings=args.phrasings,
                                                          outputs_fn=copy_input)))
    k = len(result["edits"])
    text = instruction_table(rows, k)
    info = (f"{len(images)} held-out {crop}x{crop} images ({data}, split {args.split}) x {k} "
            f"edits x {args.phrasings} phrasings; {result['counted']} examples counted, "
            f"{result['excluded']} excluded as ties (two edits' targets nearly equal)")
    confusion_figure(result, output / "confusion.png")
    edit_grid(result, output / "samples.png")
    report = {"info": info, "results": {label: {key: r[key] for key in (
        "accuracy", "counted", "excluded", "l1", "psnr", "ssim")} for label, r in rows},
        "per_phrasing": result["per_phrasing"],
        "confusion": {"edits": result["edits"], "counts": result["confusion"].tolist()}}
    (output / "metrics.json").write_text(json.dumps(report, indent=2))
    print(info)
    print(text)
    worst = sorted(result["per_phrasing"].items(), key=lambda item: item[1])[:3]
    print("hardest phrasings: " + ", ".join(f"{p!r} {a:.2f}" for p, a in worst))
    print(f"confusion matrix: {output / 'confusion.png'}, grid: {output / 'samples.png'}, "
          f"numbers: {output / 'metrics.json'}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
