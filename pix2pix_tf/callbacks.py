"""Keras callbacks for pix2pix training runs."""

import csv
import math
import os
import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.networks import image_of
from pix2pix_tf.plotting import sample_grid

CHECKPOINT_PATTERN = re.compile(r"^epoch_(\d{4,})\.keras$")


def save_atomically(model, path):
    """Writes ``model`` to ``path`` via a temporary file and a rename: a crash while writing
    leaves the previous file intact."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


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


def append_history(path, row):
    path = Path(path)
    exists = path.exists() and path.stat().st_size > 0
    fields = list(row)
    if exists:
        with open(path, newline="") as f:
            fields = next(csv.reader(f))
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if not exists:
            writer.writeheader()
        writer.writerow(row)


def truncate_history(path, epochs_done):
    """Drops history rows of epochs not covered by the checkpoint being resumed from."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
        fields = rows[0].keys() if rows else None
    if fields is None:
        return
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(r for r in rows if int(r["epoch"]) < epochs_done)


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
