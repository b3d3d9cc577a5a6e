"""Keras callbacks for pix2pix training runs."""

import csv
import math
import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.networks import image_of
from pix2pix_tf.plotting import sample_grid
from pix2pix_tf.rundir import save_atomically, write_atomically

CHECKPOINT_PATTERN = re.compile(r"^epoch_(\d{4,})\.keras$")


def checkpoints(folder):
    """Checkpoints in ``folder`` as sorted ``[(epochs_done, path)]``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := CHECKPOINT_PATTERN.match(p.name))]
    return sorted(found)


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, before anything is saved."""

    def __init__(self):
        super().__init__()
        self.bad = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for key, value in (logs or {}).items():
            if not math.isfinite(float(value)):
                self.bad = (self._epoch, batch, key, float(value))
                self.model.stop_training = True
                return


class EpochCheckpoint(keras.callbacks.Callback):
    """At the end of every epoch: append the epoch's logs to ``history.csv``, then save
    ``checkpoints/epoch_NNNN.keras`` atomically (keeping the newest ``keep``).

    Nothing is written for an epoch in which ``guard`` saw a non-finite loss, so the newest
    checkpoint is always a good one.
    """

    def __init__(self, run_dir, keep=2, guard=None):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.folder = self.run_dir / "checkpoints"
        self.history = self.run_dir / "history.csv"
        self.keep = keep
        self.guard = guard

    def on_epoch_begin(self, epoch, logs=None):
        self._lr = float(keras.ops.convert_to_numpy(self.model.g_optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        if self.guard is not None and self.guard.bad is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}
        row["lr"] = self._lr  # the rate this epoch trained at
        append_history(self.history, row)
        save_atomically(self.model, self.folder / f"epoch_{epoch + 1:04d}.keras")
        for _, old in checkpoints(self.folder)[:-self.keep]:
            old.unlink()


def _read_history(path):
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return None, []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def _write_history(path, fields, rows):
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    write_atomically(path, write)


def append_history(path, row):
    """Adds one epoch's row to ``history.csv``, rewriting the (small) file atomically, so that a
    failed write never leaves half a row."""
    fields, rows = _read_history(path)
    _write_history(path, fields or list(row), rows + [row])


def truncate_history(path, epochs_done):
    """Drops history rows of epochs not covered by the checkpoint being resumed from."""
    fields, rows = _read_history(path)
    if fields is not None:
        _write_history(path, fields, [r for r in rows if int(r["epoch"]) < epochs_done])


class SampleGrid(keras.callbacks.Callback):
    """Every ``every`` epochs, translates fixed examples and saves input | target | output grids
    as PNG (``samples/epoch_NNNN.png``) and as TensorBoard images."""

    def __init__(self, inputs, targets, folder, every=1, log_dir=None, show=False):
        super().__init__()
        self.inputs, self.targets = inputs, targets
        self.folder = Path(folder)
        self.every = max(1, every)
        self.writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else None
        self.show = show  # also display each grid (in a notebook)

    def draw(self, name, step=None, title=None):
        self.folder.mkdir(parents=True, exist_ok=True)
        outputs = keras.ops.convert_to_numpy(self.model(self.inputs, training=False))
        pixels = sample_grid(image_of(self.inputs), self.targets, outputs,
                             self.folder / f"{name}.png", title=title)
        if self.show:
            from IPython.display import Image as ShowImage
            from IPython.display import display

            display(ShowImage(filename=str(self.folder / f"{name}.png")))
        if self.writer is not None and step is not None:
            with self.writer.as_default():
                tf.summary.image("samples (input | target | output)", pixels[None], step=step)
            self.writer.flush()
        return self.folder / f"{name}.png"

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self.draw(f"epoch_{epoch + 1:04d}", step=epoch + 1, title=f"epoch {epoch + 1}")


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
