"""Pictures with matplotlib: sample grids (input | target | output) and loss curves.

Figures are drawn with matplotlib's object API on an Agg canvas: no display is needed, and the
user's pyplot backend (e.g. a notebook's inline plots) is left alone.
"""

import csv

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


def loss_curves(history_csv, path):
    """Plots every column of a history CSV (one row per epoch) into ``path``."""
    with open(history_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    epochs = [int(r["epoch"]) + 1 for r in rows]
    keys = [k for k in rows[0] if k not in ("epoch", "lr", "seconds")]
    groups = [("GAN losses", [k for k in keys if k in ("d_loss", "g_gan", "g_feat")]),
              ("L1", [k for k in keys if k.endswith("l1")]),
              ("PSNR, dB (validation)", [k for k in keys if "psnr" in k]),
              ("SSIM (validation)", [k for k in keys if "ssim" in k])]
    groups = [(t, ks) for t, ks in groups if ks]
    fig, axes = _figure(1, len(groups), 5 * len(groups), 3.5)
    for ax, (title, ks) in zip(axes[0], groups):
        for k in ks:
            ax.plot(epochs, [float(r[k]) for r in rows], label=k)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=80))
    return path
