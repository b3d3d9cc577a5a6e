"""Keras callbacks for pix2pix training runs."""

import csv
import json
import math
import re
import signal
import sys
import threading
import time
from pathlib import Path

import keras
import tensorflow as tf

from pix2pix_tf.core.plotting import sample_grid
from pix2pix_tf.networks import image_of
from pix2pix_tf.rundir import save_atomically, write_atomically

CHECKPOINT_PATTERN = re.compile(r"^epoch_(\d{4,})\.keras$")
#: The mid-epoch checkpoint: the model, and where in the epoch it stopped.
PARTIAL_MODEL, PARTIAL_STATE = "partial.keras", "partial.json"


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


class StopOnCtrlC(keras.callbacks.Callback):
    """Ctrl-C (SIGINT) stops training between steps, never inside TensorFlow's native code.

    Use it as a context manager around ``fit`` and last among the callbacks. Inside, the first
    Ctrl-C is only noted; at the end of the current training step (or of the epoch, after the
    checkpoint callbacks, if it came during validation) ``KeyboardInterrupt`` is raised from
    Python, where unwinding is safe. Without it, the interrupt lands wherever the main thread
    is, often inside a step or a checkpoint write; once, in CI, that ended the trainer with a
    segfault instead of exit 130. A second Ctrl-C raises at once, as without this callback. Python
    delivers signals to the main thread only; elsewhere the callback does nothing.
    """

    def __init__(self):
        super().__init__()
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this step (press again to stop at once).",
              file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False

    def _stop_if_asked(self, *args, **kwargs):
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt

    on_train_batch_end = on_epoch_end = _stop_if_asked


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
        for name in (PARTIAL_MODEL, PARTIAL_STATE):  # superseded by the epoch's checkpoint
            (self.folder / name).unlink(missing_ok=True)


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


class ValidationSWD(keras.callbacks.Callback):
    """Adds ``val_swd`` (the sliced Wasserstein texture distance, :mod:`pix2pix_tf.core.metrics`) to
    every epoch's logs that have a validation pass, from the model's ``swd_tracker``, which the
    pass's steps filled. Scored here, once, rather than at every validation step (its result
    sorts every buffered patch) and outside the replicas (its buffer is whole on each). Put it
    before the callbacks that record the logs."""

    def on_epoch_end(self, epoch, logs=None):
        tracker = getattr(self.model, "swd_tracker", None)
        if logs is not None and tracker is not None and "val_l1" in logs:
            logs["val_swd"] = float(tracker.result())


class StepLog(keras.callbacks.Callback):
    """Every training step's own losses, not the epoch's running means the progress bar and
    ``history.csv`` show: rows of ``steps.csv`` (``step``, ``epoch``, then each loss) and
    TensorBoard scalars (``logs/steps``), so that the curves of a three-epoch run are curves.

    A step's values are read off the loss trackers (Keras ``Mean`` metrics) as the change of
    their running totals over the change of their counts, so the train step is untouched and
    a resumed epoch (whose trackers :class:`RestoreEpochState` refills) continues exactly.
    ``first_step`` is the number of steps already done when this process starts. Rows are
    written (atomically) at every epoch end and whenever :class:`StepCheckpoint` saves, before
    the checkpoint, so the file covers at least every step a checkpoint holds; a resumed run
    drops the rows after its checkpoint (steps done again).
    """

    def __init__(self, path, first_step=0, log_dir=None):
        super().__init__()
        self.path = Path(path)
        self.step = first_step
        self.fields, found = _read_history(self.path)
        self.rows = [r for r in found if int(r["step"]) <= first_step]
        self.writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else None
        self._previous = None
        self._written = len(self.rows) if len(self.rows) == len(found) else -1

    def _totals(self):
        return {m.name: [float(v.value.numpy()) for v in m.variables[:2]]
                for m in self.model.train_metrics}

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._previous = epoch, None

    def on_train_batch_begin(self, batch, logs=None):
        if self._previous is None:  # after every on_epoch_begin, restored trackers included
            self._previous = self._totals()

    def on_train_batch_end(self, batch, logs=None):
        totals = self._totals()
        self.step += 1
        row = {"step": self.step, "epoch": self._epoch}
        for name, (total, count) in totals.items():
            old_total, old_count = self._previous.get(name, (0.0, 0.0))
            if count > old_count:
                row[name] = (total - old_total) / (count - old_count)
        self._previous = totals
        self.rows.append(row)
        if self.writer is not None:
            with self.writer.as_default():
                for name, value in row.items():
                    if name not in ("step", "epoch"):
                        tf.summary.scalar(name, value, step=self.step)

    def flush(self):
        """Writes the rows not yet in ``steps.csv`` (the whole small file, atomically)."""
        if len(self.rows) == self._written:
            return
        fields = self.fields or list(self.rows[-1])
        _write_history(self.path, fields, self.rows)
        self.fields, self._written = fields, len(self.rows)
        if self.writer is not None:
            self.writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        self.flush()


class StepCheckpoint(keras.callbacks.Callback):
    """Inside an epoch, every ``every_steps`` steps or ``every_minutes`` minutes, saves
    ``checkpoints/partial.keras`` (model, optimizers, RNG) and ``partial.json`` (epoch, step, the
    running means of the epoch's losses, the epoch's learning rate), both atomically. The next
    epoch checkpoint removes them. A run resumed from them continues at the next step exactly
    (:func:`pix2pix_tf.training.train`).
    """

    def __init__(self, run_dir, every_steps=None, every_minutes=None, steps_per_epoch=None,
                 epoch_checkpoint=None, guard=None, step_log=None):
        super().__init__()
        self.step_log = step_log  # its rows are written before each checkpoint
        self.folder = Path(run_dir) / "checkpoints"
        self.every_steps, self.every_minutes = every_steps, every_minutes
        self.steps_per_epoch = steps_per_epoch
        self.epoch_checkpoint, self.guard = epoch_checkpoint, guard
        self.offset = 0  # steps of this epoch done before this process (set when resuming)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._last_step, self._last_time = epoch, self.offset, time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        self.offset = 0

    def on_train_batch_end(self, batch, logs=None):
        step = self.offset + batch + 1
        if self.steps_per_epoch and step >= self.steps_per_epoch:
            return  # the epoch checkpoint comes next
        due = ((self.every_steps and step - self._last_step >= self.every_steps)
               or (self.every_minutes and time.monotonic() - self._last_time
                   >= 60 * self.every_minutes))
        if not due or (self.guard is not None and self.guard.bad is not None):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {"epoch": self._epoch, "step": step,
                 "lr": getattr(self.epoch_checkpoint, "_lr", None),
                 "metrics": {m.name: [float(keras.ops.convert_to_numpy(v)) for v in m.variables]
                             for m in self.model.train_metrics}}
        if self.step_log is not None:
            self.step_log.flush()
        # The state last: a partial.json always describes the partial.keras beside it.
        (self.folder / PARTIAL_STATE).unlink(missing_ok=True)
        save_atomically(self.model, self.folder / PARTIAL_MODEL)
        write_atomically(self.folder / PARTIAL_STATE,
                         lambda tmp: Path(tmp).write_text(json.dumps(state)))
        self._last_step, self._last_time = step, time.monotonic()


def read_partial(folder):
    """``(state, model path)`` of a complete mid-epoch checkpoint in ``folder``, else None."""
    folder = Path(folder)
    state_path, model_path = folder / PARTIAL_STATE, folder / PARTIAL_MODEL
    if not (state_path.is_file() and model_path.is_file()):
        return None
    try:
        return json.loads(state_path.read_text()), model_path
    except (OSError, ValueError):
        return None


class RestoreEpochState(keras.callbacks.Callback):
    """Put it last: at the start of the resumed epoch, restores the running means of its losses,
    its learning rate for the history, and the step count of :class:`StepCheckpoint`."""

    def __init__(self, state, epoch_checkpoint=None, step_checkpoint=None):
        super().__init__()
        self.state = state
        self.epoch_checkpoint, self.step_checkpoint = epoch_checkpoint, step_checkpoint

    def on_epoch_begin(self, epoch, logs=None):
        for metric in self.model.train_metrics:
            saved = self.state["metrics"].get(metric.name)
            if saved is not None:
                for variable, value in zip(metric.variables, saved):
                    variable.assign(keras.ops.cast(value, variable.dtype))
        if self.epoch_checkpoint is not None and self.state.get("lr") is not None:
            self.epoch_checkpoint._lr = self.state["lr"]
        if self.step_checkpoint is not None:
            self.step_checkpoint.offset = self.state["step"]
            self.step_checkpoint.on_epoch_begin(epoch)


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

    def __init__(self, inputs, targets, folder, every=1, log_dir=None, show=False,
                 row_labels=None):
        super().__init__()
        self.inputs, self.targets = inputs, targets
        self.row_labels = row_labels  # e.g. each row's instruction (its task's sample_labels)
        self.folder = Path(folder)
        self.every = max(1, every)
        self.writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else None
        self.show = show  # also display each grid (in a notebook)

    def draw(self, name, step=None, title=None):
        self.folder.mkdir(parents=True, exist_ok=True)
        outputs = keras.ops.convert_to_numpy(self.model(self.inputs, training=False))
        pixels = sample_grid(image_of(self.inputs), self.targets, outputs,
                             self.folder / f"{name}.png", title=title,
                             row_labels=self.row_labels)
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
