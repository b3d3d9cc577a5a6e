"""A training run: data, model, callbacks and outputs in one run directory, resumable.

``train(config)`` leaves in ``config.run_dir``:

- ``config.json``: the options used;
- ``checkpoints/epoch_NNNN.keras``: the newest checkpoints (model, both optimizers, RNG state),
  written atomically;
- ``history.csv`` and ``loss_curves.png``: per-epoch losses and validation metrics;
- ``samples/``: input | target | output grids during and at the end of training;
- ``logs/``: TensorBoard scalars and sample images;
- ``model.keras``: the final model.

Run it again with the same run directory after an interrupt (Ctrl-C, a killed process, a Colab
disconnect) and it continues from the newest checkpoint: weights, optimizer state and step,
learning-rate schedule, dropout RNG and the data pipeline's epoch, so the losses match an
uninterrupted run.
"""

import contextlib
import dataclasses
import json
import shutil
import time
from pathlib import Path

import keras
import tensorflow as tf

from pix2pix_tf.callbacks import (
    EpochCheckpoint,
    NaNGuard,
    SampleGrid,
    checkpoints,
    first_examples,
    save_atomically,
    truncate_history,
)
from pix2pix_tf.config import TrainConfig
from pix2pix_tf.data import DataError, load_paired_dataset
from pix2pix_tf.discriminator import patchgan_discriminator
from pix2pix_tf.generator import unet_generator
from pix2pix_tf.losses import TABLE1_OBJECTIVES
from pix2pix_tf.model import Pix2Pix, default_optimizer
from pix2pix_tf.plotting import loss_curves
from pix2pix_tf.schedules import LinearDecay

#: Options that may differ between an interrupted run and its resumption.
RESUMABLE_CHANGES = {"run_dir", "sample_every", "samples", "keep_checkpoints", "notes", "on_error"}


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the newest checkpoint is the last good state."""


def build_model(config, input_channels, output_channels, steps_per_epoch):
    """The compiled :class:`Pix2Pix` that ``config`` describes."""
    objective = TABLE1_OBJECTIVES[config.objective]
    lambda_gan = objective["lambda_gan"]
    lambda_l1 = config.lambda_l1 if objective["lambda_l1"] > 0 else 0.0
    generator = unet_generator(
        input_channels, output_channels, ngf=config.ngf, num_downs=config.num_downs,
        norm=config.norm, dropout=config.dropout, skips=config.skips,
        inference_mode=config.inference_mode, seed=config.seed,
    )
    discriminator = None
    if lambda_gan > 0:
        discriminator = patchgan_discriminator(
            input_channels, output_channels, ndf=config.ndf, n_layers=config.n_layers_d,
            norm=config.norm, conditional=objective.get("conditional", True),
            seed=config.seed + 1,
        )
    model = Pix2Pix(generator, discriminator, lambda_l1=lambda_l1, lambda_gan=lambda_gan,
                    gan_mode=config.gan_mode, inference_mode=config.inference_mode)

    def optimizer():
        schedule = LinearDecay(config.lr, config.epochs, config.epochs_decay, steps_per_epoch)
        return default_optimizer(schedule, beta_1=config.beta1)

    model.compile(g_optimizer=optimizer(), d_optimizer=optimizer() if discriminator else None)
    return model


@contextlib.contextmanager
def precision_policy(name):
    """Builds layers under Keras dtype policy ``name`` (None: leave the global policy alone),
    restoring the previous global policy afterwards; built layers keep their policy."""
    if name is None:
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _data_options(config):
    """The :func:`load_paired_dataset` options a config implies."""
    return dict(direction=config.direction, batch_size=config.batch_size,
                load_size=config.load_size, crop_size=config.crop_size,
                preprocess=config.preprocess, input_channels=config.input_channels,
                output_channels=config.output_channels, multiple=2**config.num_downs,
                seed=config.seed, on_error=config.on_error)


def _datasets(config, epoch_counter, train_data=None, test_data=None):
    common = _data_options(config)
    train = load_paired_dataset(train_data if train_data is not None else config.data, "train",
                                epoch=epoch_counter, **common)
    test = None
    if test_data is not None:
        test = load_paired_dataset(test_data, "test", **common)
    else:
        for split in ("test", "val"):
            try:
                test = load_paired_dataset(config.data, split, **common)
                break
            except (DataError, ValueError):
                continue
    return train, test


def _check_resumable(run_dir, config):
    saved_path = run_dir / "config.json"
    if not saved_path.exists():
        return
    saved = json.loads(saved_path.read_text())
    current = dataclasses.asdict(config)
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k])
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise ValueError(
            f"{run_dir} holds a run with different settings ({details}). Resume it with the "
            "same options, choose another --run-dir, or pass --fresh to start it over."
        )


def train(config, *, verbose="auto", fresh=False, train_data=None, test_data=None):
    """Trains (or resumes) the run ``config`` describes. Returns a dict of results and paths.

    ``train_data`` / ``test_data`` override ``config.data`` (anything
    :func:`pix2pix_tf.load_paired_dataset` accepts, e.g. arrays).
    """
    run_dir = Path(config.run_dir)
    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_resumable(run_dir, config)
    keras.utils.set_random_seed(config.seed)

    epoch_counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")
    train_ds, test_ds = _datasets(config, epoch_counter, train_data, test_data)
    steps_per_epoch = int(train_ds.cardinality())
    x_spec, y_spec = train_ds.element_spec

    found = checkpoints(run_dir / "checkpoints")
    if found:
        initial_epoch, path = found[-1]
        model = keras.models.load_model(path)  # its layers keep the precision they were built in
        truncate_history(run_dir / "history.csv", initial_epoch)
        print(f"Resuming {run_dir} from {path.name} (epoch {initial_epoch} of "
              f"{config.total_epochs}).")
    else:
        initial_epoch = 0
        with precision_policy(config.mixed_precision):
            model = build_model(config, x_spec.shape[-1], y_spec.shape[-1], steps_per_epoch)
        config.save(run_dir / "config.json")
        (run_dir / "history.csv").unlink(missing_ok=True)
    epoch_counter.assign(initial_epoch)

    guard = NaNGuard()
    callbacks = [guard, keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False,
                                                    profile_batch=0)]
    samples = None
    if config.samples > 0:
        # Fixed examples: the test split, else un-augmented training pairs.
        sample_source = test_ds if test_ds is not None else load_paired_dataset(
            train_data if train_data is not None else config.data, "train", augment=False,
            **_data_options(config))
        inputs, targets = first_examples(sample_source, config.samples)
        samples = SampleGrid(inputs, targets, run_dir / "samples", every=config.sample_every,
                             log_dir=run_dir / "logs" / "samples")
        callbacks.append(samples)
    # Last: the checkpoint must capture everything the epoch did, sample drawing included (in
    # the paper's inference mode it advances the dropout RNG), or a resumed run would diverge.
    callbacks.append(EpochCheckpoint(run_dir, keep=config.keep_checkpoints, guard=guard))

    start = time.perf_counter()
    if initial_epoch < config.total_epochs:
        model.fit(train_ds, epochs=config.total_epochs, initial_epoch=initial_epoch,
                  validation_data=test_ds, callbacks=callbacks, verbose=verbose,
                  shuffle=False)  # the dataset shuffles itself, seeded
    seconds = time.perf_counter() - start
    if guard.bad is not None:
        epoch, batch, key, value = guard.bad
        good = checkpoints(run_dir / "checkpoints")
        raise TrainingDiverged(
            f"{key} became {value} at epoch {epoch + 1}, batch {batch + 1}; training stopped. "
            + (f"The last good checkpoint is {good[-1][1]}. " if good else "No epoch finished, "
               "so there is no checkpoint. ")
            + "Try a lower --lr, --gan-mode lsgan, or check the data for constant or corrupt "
            "images."
        )

    save_atomically(model, run_dir / "model.keras")
    outputs = {"model": run_dir / "model.keras", "run_dir": run_dir,
               "history": run_dir / "history.csv", "seconds": seconds,
               "epochs": config.total_epochs}
    if samples is not None:
        samples.set_model(model)
        outputs["samples"] = samples.draw("final", title="final model")
    if (run_dir / "history.csv").exists():
        outputs["loss_curves"] = loss_curves(run_dir / "history.csv", run_dir / "loss_curves.png")
    return outputs
