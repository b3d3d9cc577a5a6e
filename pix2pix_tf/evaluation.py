"""Scoring translations against targets: the evaluation every pair task shares.

:func:`evaluate_pairs` reports L1, PSNR, SSIM, the paper's Lab colour-histogram intersection, the
grid-artifact and sharpness measures (:class:`pix2pix_tf.core.metrics.TextureStats`) and ProGAN's
sliced Wasserstein distance of 7x7 patches (:class:`pix2pix_tf.core.metrics.SlicedWasserstein`:
``swd`` in the table, every pyramid level's ``swd_<size>`` and the number of images it scored,
``swd_images``, in ``metrics.json``) for each model and for baselines computed in the same run:
identity (output = input, when channel counts allow) and the other models given (e.g. the same
generator trained with ``--objective L1``). It writes a table (printed, and ``metrics.json``), a
side-by-side PNG grid and a small HTML report. Tasks whose success is something else (an editor
following instructions) evaluate their own way (``Task.evaluate``).
"""

import html
import json
import math
from pathlib import Path

import keras
import numpy as np

from pix2pix_tf.core.plotting import image_grid
from pix2pix_tf.data import load_paired_dataset
from pix2pix_tf.networks import as_generator, image_of

COLUMNS = ("l1", "psnr", "ssim", "hist_L", "hist_a", "hist_b", "grid", "sharp", "swd")
#: Decimals per column where 4 would be noise (SWD is in the hundreds).
DECIMALS = {"swd": 1}


def _cell(row, column):
    return f"{row[column]:.{DECIMALS.get(column, 4)}f}"


def score(translate, dataset, steps, keep=0):
    """Mean metrics of ``translate`` (batch -> outputs) over ``dataset``, and its first
    ``keep`` outputs (for the sample grid)."""
    from keras.utils import Progbar

    from pix2pix_tf.core.metrics import (
        LabHistogram,
        SlicedWasserstein,
        TextureStats,
        per_image_metrics,
    )

    values = {k: [] for k in ("l1", "psnr", "ssim")}
    histogram, texture, sliced = LabHistogram(), TextureStats(), SlicedWasserstein()
    outputs = []
    progress = Progbar(steps, unit_name="batch")
    for x, y in dataset:
        out = translate(x)
        for key, v in per_image_metrics(y, out).items():
            values[key].extend(v.tolist())
        histogram.update(y, out)
        texture.update(y, out)
        sliced.update(y, out)
        if sum(len(o) for o in outputs) < keep:
            outputs.append(np.asarray(out))
        progress.add(1)
    result = {k: float(np.mean(v)) for k, v in values.items()}
    result.update(histogram.intersection())
    result.update(texture.result())
    result.update(sliced.result())
    result["images"] = len(values["l1"])
    result["swd_images"] = sliced.images
    return result, (np.concatenate(outputs)[:keep] if outputs else None)


def table(rows):
    header = f"{'':28s}" + "".join(f"{c:>9s}" for c in COLUMNS)
    lines = [header]
    for name, r in rows.items():
        lines.append(f"{name[:28]:28s}" + "".join(f"{_cell(r, c):>9s}" for c in COLUMNS))
    return "\n".join(lines)


def write_html(path, rows, grid_name, info):
    cells = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join(
        "<tr><td>" + html.escape(name) + "</td>"
        + "".join(f"<td>{_cell(r, c)}</td>" for c in COLUMNS) + "</tr>"
        for name, r in rows.items())
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8">
<title>pix2pix_tf evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 10px;text-align:right}}
td:first-child{{text-align:left}}table{{border-collapse:collapse}}tr:nth-child(even){{background:#eee}}</style>
</head><body><h1>pix2pix_tf evaluation</h1><p>{html.escape(info)}</p>
<p>L1: mean absolute error in [-1, 1] (lower is better). PSNR (dB) and SSIM on [0, 1] images,
hist_L/a/b: Lab colour-histogram intersection with the targets (paper Fig. 7); higher is better.
grid: energy at the 8/16-px (and 32-px) lattice frequencies relative to the targets' (1 = as
clean as the real images; above 1.3 is a lattice, even an invisible one). sharp: fine-detail
energy relative to the targets' (below 1: blurrier). swd: ProGAN's sliced Wasserstein distance
between the outputs' and the targets' 7x7 patches, the two finest Laplacian-pyramid levels,
x1e3 (0 = the targets' texture; blur, noise and lattices raise it; other real photos than the
targets score about 60-150 over 16-32 images; every level in metrics.json).</p>
<table><tr><th></th>{cells}</tr>{body}</table>
<h2>Samples</h2><img src="{html.escape(grid_name)}" style="max-width:100%"></body></html>
""")


def first_examples(dataset, count):
    """Up to ``count`` (inputs, targets) from a batched dataset, as numpy arrays (inputs: an
    array, or a dict of arrays when the dataset's inputs are named)."""
    xs, ys = [], []
    for x, y in dataset:
        xs.append(keras.tree.map_structure(np.asarray, x))
        ys.append(np.asarray(y))
        if sum(len(b) for b in ys) >= count:
            break
    inputs = keras.tree.map_structure(lambda *parts: np.concatenate(parts)[:count], *xs)
    return inputs, np.concatenate(ys)[:count]


def evaluate_pairs(models, output, *, data, split="test", direction="AtoB", crop_size=256,
                   batch_size=4, samples=6, inference_mode=None):
    """Scores ``models`` (``{name: model}``, the first is "the" model) on the test pairs of
    ``data`` resized to ``crop_size`` and writes the report into ``output``. Returns the rows
    ``{name: {metric: value}}``."""
    if data is None:
        raise ValueError("give --data: 'demo', a folder, or a TFDS name.")
    generator = as_generator(next(iter(models.values())))
    channels_in, channels_out = generator.input_channels, generator.output_channels
    multiples = {as_generator(m).size_multiple for m in models.values()}
    dataset = load_paired_dataset(
        data, split, direction=direction, batch_size=batch_size, crop_size=crop_size,
        load_size=crop_size, augment=False, input_channels=channels_in,
        output_channels=channels_out, multiple=math.lcm(*multiples))
    output = Path(output)
    steps = int(dataset.cardinality())
    rows, outputs, modes = {}, {}, {}
    for name, model in models.items():
        if inference_mode:
            model.inference_mode = inference_mode
        modes[name] = model.inference_mode
        print(f"scoring {name} (inference mode {modes[name]})")
        rows[name], outputs[name] = score(
            lambda x, m=model: keras.ops.convert_to_numpy(m(x, training=False)), dataset, steps,
            keep=samples)
    if channels_in == channels_out:
        print("scoring identity baseline (output = input)")
        rows["identity (output = input)"], _ = score(lambda x: np.asarray(image_of(x)), dataset,
                                                     steps)
    inputs, targets = first_examples(dataset, samples)
    columns = [image_of(inputs), targets] + [o[:len(targets)] for o in outputs.values()]
    labels = ["input", "target"] + list(outputs)
    image_grid(columns, labels, output / "samples.png", cell=2.6)
    info = (f"{rows[next(iter(rows))]['images']} test images from {data} "
            f"(split {split}, {direction}, resized to {crop_size}); inference "
            f"modes: {', '.join(f'{k}={v}' for k, v in modes.items())}")
    (output / "metrics.json").write_text(json.dumps({"info": info, "results": rows}, indent=2))
    write_html(output / "report.html", rows, "samples.png", info)
    print(info)
    print(table(rows))
    print(f"report: {output / 'report.html'}, grid: {output / 'samples.png'}")
    return rows
