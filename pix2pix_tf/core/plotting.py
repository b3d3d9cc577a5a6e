"""Pictures with matplotlib: sample grids (input | target | output) and training curves.

Figures are drawn with matplotlib's object API on an Agg canvas: no display is needed, and the
user's pyplot backend (e.g. a notebook's inline plots) is left alone.
"""

import csv
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pix2pix_tf.rundir import write_atomically


def _figure(rows, columns, width, height):
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, columns, squeeze=False)


def displayable(image):
    """[-1, 1] (H, W, C) -> [0, 1] array matplotlib can show (1 channel: gray; 2/4: drop extra)."""
    image = np.clip((np.asarray(image, np.float32) + 1.0) / 2.0, 0.0, 1.0)
    if image.shape[-1] == 1:
        return image[..., 0]
    if image.shape[-1] == 2:
        return image[..., 0]
    return image[..., :3]


def image_grid(columns, labels, path, title=None, cell=3.0, row_labels=None):
    """Saves a grid with one row per example and one column per image kind (e.g. input,
    target, outputs of several models), ``row_labels`` (e.g. instructions) written left of
    each row. Returns the figure as an RGB array."""
    rows = len(columns[0])
    fig, axes = _figure(rows, len(columns), cell * len(columns), cell * rows)
    for r in range(rows):
        for c, column in enumerate(columns):
            ax = axes[r][c]
            image = displayable(column[r])
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(labels[c][:24])
            if c == 0 and row_labels is not None:
                ax.set_ylabel(_wrap(row_labels[r]), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=80))
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _wrap(text, width=22):
    lines, line = [], ""
    for word in str(text).split():
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])


def sample_grid(inputs, targets, outputs, path, title=None, row_labels=None):
    """input | target | output, one row per example (labelled, e.g. with its instruction)."""
    return image_grid([inputs, targets, outputs], ["input", "target", "output"], path, title,
                      row_labels=row_labels)


def _csv_rows(path):
    if path is None or not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def smoothed(values, window):
    """Exponential moving average with a time constant of ``window`` points, debiased at the
    start (TensorBoard's smoothing): the trend of noisy per-step losses."""
    decay = 1.0 - 1.0 / max(1.0, window)
    out, average, weight = [], 0.0, 0.0
    for value in values:
        average = decay * average + (1 - decay) * value
        weight = decay * weight + (1 - decay)
        out.append(average / weight)
    return out


#: Panels of :func:`loss_curves`: title and which columns it shows.
CURVE_PANELS = (
    ("GAN losses", lambda k: k in ("d_loss", "g_gan", "g_feat", "d_mismatch")),
    ("D's accuracy (real, generated pairs)", lambda k: k in ("d_real_acc", "d_fake_acc")),
    ("L1", lambda k: k.endswith("l1")),
    ("PSNR, dB (validation)", lambda k: "psnr" in k),
    ("SSIM (validation)", lambda k: "ssim" in k),
    ("grid, sharp (validation; 1 = like the targets)", lambda k: k in ("val_grid", "val_sharp")),
    ("SWD x1e3 (validation; 0 = the targets' patches)", lambda k: k == "val_swd"),
)


def loss_curves(history_csv, path, steps_csv=None):
    """Plots a run's curves into ``path`` against the training step: each loss of every step
    (``steps.csv``, see :class:`pix2pix_tf.callbacks.StepLog`) faint, smoothed over it, and
    the validation metrics of each epoch (``history.csv``) where the epoch ended. Without
    ``steps_csv`` (a run from before it existed) everything is plotted per epoch."""
    history, steps = _csv_rows(history_csv), _csv_rows(steps_csv)
    if not history and not steps:
        return None
    fig = curves_figure(history, steps)
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=80))
    return path


def curves_figure(history, steps=()):
    """The figure of :func:`loss_curves` from the rows of ``history.csv`` and ``steps.csv``
    (dicts of strings, as ``csv.DictReader`` gives)."""
    epoch_end = {}
    for row in steps:
        epoch_end[int(row["epoch"])] = int(row["step"])
    per_step = bool(steps) and all(int(r["epoch"]) in epoch_end for r in history)
    if per_step:
        x_epochs = [epoch_end[int(r["epoch"])] for r in history]
        losses = {k for k in steps[0] if k not in ("step", "epoch")}
    else:
        x_epochs, steps, losses = [int(r["epoch"]) + 1 for r in history], [], set()
    columns = set(losses) | {k for k in (history[0] if history else {})
                             if k not in ("epoch", "lr", "seconds")}
    panels = [(title, sorted(k for k in columns if wanted(k))) for title, wanted in CURVE_PANELS]
    panels = [(title, keys) for title, keys in panels if keys]
    fig, axes = _figure(1, len(panels), 5 * len(panels), 3.5)
    x_steps = [int(r["step"]) for r in steps]
    for ax, (title, keys) in zip(axes[0], panels):
        for key in keys:
            if key in losses:  # every step: raw values faint, their trend on top
                raw = [float(r[key]) if r.get(key) not in (None, "") else np.nan for r in steps]
                line, = ax.plot(x_steps, raw, alpha=0.25, linewidth=0.6)
                ax.plot(x_steps, smoothed(np.nan_to_num(raw), len(raw) / 30),
                        color=line.get_color(), linewidth=1.5, label=f"{key} (per step)")
            else:
                ax.plot(x_epochs, [float(r[key]) for r in history], marker="o", label=key)
        ax.set_title(title)
        ax.set_xlabel("step" if per_step else "epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
