"""Does an instruction editor do what it is asked? Instruction accuracy, a confusion matrix,
image scores, and the baselines beside them.

For every test image, every edit and every phrasing of it, the model's output is compared (mean
L1) with the target of *every* edit; the example counts as followed when the nearest target is
the requested edit's. With K edits, chance is 1/K. An (image, edit) whose target is nearly the
same as another edit's (mean L1 below ``tie_tolerance``, e.g. sepia of an almost gray patch)
cannot show which edit was made, and is excluded and counted, never silently.

:func:`evaluate_instructions` scores one model; :func:`instruction_table` puts models and the
baselines (chance, copying the input, the same model trained without text) in one table.
Evaluate on held-out phrasings (``phrasings="held_out"``) and held-out images (the demo's test
tiles), so that neither a wording nor a photo was seen in training.
"""

import json

import numpy as np
import tensorflow as tf

from pix2pix_tf.core.metrics import per_image_metrics
from pix2pix_tf.tasks.instruct.edits import EDITS

#: Mean L1 (images in [0, 1]) under which two edits' targets count as the same.
TIE_TOLERANCE = 0.02


def test_crops(photos, crop):
    """Non-overlapping ``crop`` x ``crop`` patches of uint8 photos, as float32 in [0, 1]."""
    patches = []
    for photo in photos:
        for top in range(0, photo.shape[0] - crop + 1, crop):
            for left in range(0, photo.shape[1] - crop + 1, crop):
                patches.append(photo[top:top + crop, left:left + crop])
    return np.stack(patches).astype(np.float32) / 255.0


def edit_targets(images, edits):
    """``(K, N, H, W, 3)`` targets in [0, 1] of every edit for images in [0, 1]."""
    return np.stack([np.clip(e.function(tf.constant(images)).numpy(), 0.0, 1.0) for e in edits])


def evaluate_instructions(model, images, *, edits=None, phrasings="held_out", batch_size=64,
                          tie_tolerance=TIE_TOLERANCE, outputs_fn=None):
    """Scores ``model`` (an :class:`pix2pix_tf.InstructPix2Pix`, or None with ``outputs_fn``)
    on ``images`` (float32 in [0, 1], ``(N, H, W, 3)``).

    ``outputs_fn(images, instructions)``: outputs in [0, 1] for [0, 1] inputs (default: the
    model in its current inference mode). Returns a dict: ``accuracy``, ``counted``,
    ``excluded``, ``confusion`` (K x K counts, rows requested, columns nearest), ``per_phrasing``
    ``{phrasing: accuracy}``, ``l1``/``psnr``/``ssim`` to the requested target, ``per_edit_psnr``
    ``{edit: PSNR to its target}``, ``edits`` (names),
    and ``examples`` (for sample grids: input, instruction, output, target of each edit's first
    image).
    """
    edits = [EDITS[e] if isinstance(e, str) else e for e in (edits or list(EDITS))]
    if outputs_fn is None:
        def outputs_fn(batch, texts):
            x = batch * 2.0 - 1.0
            out = model.predict_on_batch({"image": x, "instruction": np.array(texts)})
            return (np.asarray(out) + 1.0) / 2.0

    targets = edit_targets(images, edits)  # (K, N, H, W, 3)
    k, n = len(edits), len(images)
    spread = np.abs(targets[:, None] - targets[None]).mean(axis=(3, 4, 5))  # (K, K, N)
    for i in range(k):
        spread[i, i] = np.inf
    ambiguous = spread.min(axis=1) < tie_tolerance  # (K, N)

    confusion = np.zeros((k, k), np.int64)
    per_phrasing, scores, examples = {}, {"l1": [], "psnr": [], "ssim": []}, []
    per_edit = {}
    excluded = 0
    for e, edit in enumerate(edits):
        for phrase in getattr(edit, "phrasings" if phrasings == "train" else "held_out"):
            right = total = 0
            for start in range(0, n, batch_size):
                batch = images[start:start + batch_size]
                out = np.clip(outputs_fn(batch, [phrase] * len(batch)), 0.0, 1.0)
                dist = np.abs(out[None] - targets[:, start:start + len(batch)]).mean(
                    axis=(2, 3, 4))  # (K, b)
                nearest = dist.argmin(axis=0)
                keep = ~ambiguous[e, start:start + len(batch)]
                excluded += int((~keep).sum())
                np.add.at(confusion[e], nearest[keep], 1)
                right += int((nearest[keep] == e).sum())
                total += int(keep.sum())
                found = per_image_metrics(targets[e, start:start + len(batch)] * 2 - 1,
                                          out * 2 - 1)
                for key in scores:
                    scores[key].append(found[key])
                per_edit.setdefault(edit.name, []).append(found["psnr"])
                if start == 0 and phrase == edit_phrases(edit, phrasings)[0]:
                    examples.append((batch[0], phrase, out[0], targets[e, 0]))
            per_phrasing[phrase] = right / max(total, 1)
    counted = int(confusion.sum())
    return {"accuracy": float(np.trace(confusion)) / max(counted, 1), "counted": counted,
            "excluded": excluded, "confusion": confusion, "per_phrasing": per_phrasing,
            "edits": [e.name for e in edits], "examples": examples,
            "per_edit_psnr": {name: float(np.mean(np.concatenate(v)))
                              for name, v in per_edit.items()},
            **{key: float(np.mean(np.concatenate(v))) for key, v in scores.items()}}


def edit_phrases(edit, phrasings):
    return edit.phrasings if phrasings == "train" else edit.held_out


def copy_input(images, instructions):
    """The 'copy the input' baseline's outputs: the input itself."""
    return images


def instruction_table(rows, k):
    """A plain-text table of scored rows ``[(label, result or None)]`` with chance (1/K) first.
    ``None`` results print as not measured."""
    lines = [f"{'model':34s} {'accuracy':>8s} {'L1':>7s} {'PSNR':>6s} {'SSIM':>6s}",
             f"{'chance (1/K, K=' + str(k) + ')':34s} {1 / k:8.3f} {'':>7s} {'':>6s} {'':>6s}"]
    for label, result in rows:
        if result is None:
            lines.append(f"{label:34s} {'-':>8s}")
            continue
        lines.append(f"{label:34s} {result['accuracy']:8.3f} {result['l1']:7.4f} "
                     f"{result['psnr']:6.2f} {result['ssim']:6.3f}")
    return "\n".join(lines)


def per_edit_table(rows):
    """PSNR (dB) to the requested edit's target, one column per edit, one row per scored
    model or baseline."""
    edits = list(rows[0][1]["per_edit_psnr"])
    lines = [f"{'PSNR to the target, dB':34s}" + "".join(f"{e[:11]:>12s}" for e in edits)]
    for label, result in rows:
        if result is not None:
            lines.append(f"{label:34s}" + "".join(f"{result['per_edit_psnr'][e]:12.2f}"
                                                    for e in edits))
    return "\n".join(lines)


def confusion_figure(result, path, title="instruction confusion"):
    """Saves the confusion matrix (rows: requested edit, columns: nearest target) as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from pix2pix_tf.rundir import write_atomically

    confusion = result["confusion"].astype(np.float64)
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    names = result["edits"]
    fig = Figure(figsize=(1.0 + 0.7 * len(names), 0.8 + 0.6 * len(names)))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("nearest target")
    ax.set_ylabel("requested edit")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{rates[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_title(f"{title}: accuracy {result['accuracy']:.3f}")
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100))
    return path


def edit_grid(result, path, title="instruction | input | output | target"):
    """Saves one row per edit: the instruction, the input, the output and the target."""
    from pix2pix_tf.core.plotting import image_grid

    examples = result["examples"]
    columns = [[e[0] * 2 - 1 for e in examples], [e[2] * 2 - 1 for e in examples],
               [e[3] * 2 - 1 for e in examples]]
    return image_grid(columns, ["input", "output", "target"], path, title=title, cell=2.2,
                      row_labels=[e[1] for e in examples])


def evaluate_editor(models, output, *, data=None, split="test", phrasings="held_out",
                    inference_mode=None, photo_size=None):
    """Scores editors ``models`` (``{name: model}``, the first is "the" model) on held-out
    photos of ``data`` with ``phrasings`` of the registered edits, beside chance, copying the
    input and the model with an empty instruction; writes a confusion matrix, an edit grid and
    ``metrics.json`` into ``output``. Returns the rows ``[(label, result)]``.

    Photos are scored as training saw them (crops of the training size from photos at the
    run's ``edit_size``) or, with ``photo_size``, whole, resized to ``photo_size`` square (a
    multiple of the generator's size multiple): ``--data edits:skimage --photo-size 256``
    scores scikit-image's everyday photos at 256x256.
    """
    from pix2pix_tf.tasks.instruct.data import EDITS_DATA

    data = data or EDITS_DATA
    if not (data == EDITS_DATA or data.startswith(EDITS_DATA + ":")):
        raise ValueError("instruction accuracy is measured on the registered edits: give --data "
                         "edits or edits:PHOTOS (a folder of photos, never used in training).")
    model = models["model"]
    images, crop = _held_out_images(model, data[len(EDITS_DATA) + 1:] or None, split, photo_size)
    rows = _score_editors(models, images, phrasings, inference_mode)
    result = rows[0][1]
    rows += _baselines(model, images, phrasings)
    k = len(result["edits"])
    info = (f"{len(images)} held-out {crop}x{crop} images ({data}, split {split}) x {k} "
            f"edits x {phrasings} phrasings; {result['counted']} examples counted, "
            f"{result['excluded']} excluded as ties (two edits' targets nearly equal)")
    _write_scores(rows, output, info)
    return rows


def _held_out_images(model, photos, split, photo_size):
    """(the images scored, float32 in [0, 1], their side): crops of ``model``'s training size
    from ``photos`` at its ``edit_size``, or the whole photos at ``photo_size``."""
    from pix2pix_tf.tasks.instruct.data import load_images

    settings = model.training_config or {}
    size, crop = settings.get("edit_size", 128), settings.get("crop_size", 64)
    if photo_size:
        multiple = model.generator.size_multiple
        if photo_size % multiple:
            raise ValueError(f"--photo-size {photo_size} is not a multiple of {multiple}, the "
                             "generator's size multiple; use e.g. "
                             f"{max(multiple, photo_size // multiple * multiple)}.")
        size = crop = photo_size
    return test_crops(load_images(photos, size=size, split=split), crop), crop


def _score_editors(models, images, phrasings, inference_mode):
    """``[(label, result)]`` of every editor of ``models``, in their order."""
    from pix2pix_tf.tasks.instruct.model import InstructPix2Pix

    rows = []
    for name, candidate in models.items():
        if not isinstance(candidate, InstructPix2Pix):
            raise ValueError(f"{name} is not an instruction editor.")
        if inference_mode:
            candidate.inference_mode = inference_mode
        label = "model" if name == "model" else name
        if not candidate.uses_text:
            label += " (no text)"
        print(f"scoring {label} on {len(images)} held-out images")
        rows.append((label, evaluate_instructions(candidate, images, phrasings=phrasings)))
    return rows


def _baselines(model, images, phrasings):
    """The rows of ``model`` given an empty instruction and of copying the input."""

    def empty(batch, texts):
        x = batch * 2.0 - 1.0
        out = model.inference_generator({"image": x, "tokens": np.zeros((len(x), model.sequence_length),
                                                              np.int32)}, training=False)
        return (np.asarray(out) + 1.0) / 2.0

    return [("model, empty instruction", evaluate_instructions(
                None, images, phrasings=phrasings, outputs_fn=empty)),
            ("copy the input", evaluate_instructions(None, images, phrasings=phrasings,
                                                     outputs_fn=copy_input))]


def _write_scores(rows, output, info):
    """Writes the confusion matrix, the edit grid and ``metrics.json`` of the first row into
    ``output``, and prints the tables."""
    result = rows[0][1]
    text = instruction_table(rows, len(result["edits"]))
    confusion_figure(result, output / "confusion.png")
    edit_grid(result, output / "samples.png")
    report = {"info": info, "results": {label: {key: r[key] for key in (
        "accuracy", "counted", "excluded", "l1", "psnr", "ssim")} for label, r in rows},
        "per_phrasing": result["per_phrasing"],
        "confusion": {"edits": result["edits"], "counts": result["confusion"].tolist()}}
    report["per_edit_psnr"] = {label: r["per_edit_psnr"] for label, r in rows}
    (output / "metrics.json").write_text(json.dumps(report, indent=2))
    print(info)
    print(text)
    print(per_edit_table(rows))
    worst = sorted(result["per_phrasing"].items(), key=lambda item: item[1])[:3]
    print("hardest phrasings: " + ", ".join(f"{p!r} {a:.2f}" for p, a in worst))
    print(f"confusion matrix: {output / 'confusion.png'}, grid: {output / 'samples.png'}, "
          f"numbers: {output / 'metrics.json'}")
