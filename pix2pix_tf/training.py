"""A training run: data, model, callbacks and outputs in one run directory, resumable.

``train(config)`` leaves in ``config.run_dir``:

- ``config.json``: the options used;
- ``checkpoints/epoch_NNNN.keras``: the newest checkpoints (model, both optimizers, RNG state),
  written atomically; ``checkpoints/partial.keras`` + ``partial.json``: a checkpoint inside the
  current epoch (``checkpoint_every``), removed when the epoch's own is written;
- ``history.csv``: per-epoch losses and validation metrics (L1, PSNR, SSIM, grid, sharp);
  ``steps.csv``: every step's losses (:class:`pix2pix_tf.callbacks.StepLog`);
  ``loss_curves.png``: both, plotted against the step;
- ``samples/``: input | target | output grids during and at the end of training;
- ``logs/``: TensorBoard scalars (per epoch; per step under ``logs/steps``) and sample images;
- ``model.keras``: the final model;
- ``.lock``: while a trainer runs, its PID and host (:class:`pix2pix_tf.rundir.RunLock`): a
  second trainer on the same directory is refused, a stale lock is taken over.

Every file it writes itself (all but TensorBoard's event files, which TensorFlow writes) is
written atomically; a failed write (a full disk, a read-only folder) stops training
with :class:`pix2pix_tf.rundir.RunWriteError` naming the path, and leaves the newest checkpoint
loadable for the next run to resume from.

Run it again with the same run directory after an interrupt (Ctrl-C, a killed process, a Colab
disconnect) and it continues from the newest checkpoint, inside an epoch if there is one: weights,
optimizer state and step, learning-rate schedule, dropout RNG, the data pipeline's epoch and
position, and the epoch's running losses, so the losses match an uninterrupted run.
"""

import contextlib
import shutil
import time
from pathlib import Path
from typing import NamedTuple

import keras
import tensorflow as tf

from pix2pix_tf.callbacks import (
    EpochCheckpoint,
    NaNGuard,
    RestoreEpochState,
    SampleGrid,
    StepCheckpoint,
    StepLog,
    StopOnCtrlC,
    ValidationSWD,
    checkpoints,
    read_partial,
    save_atomically,
    truncate_history,
)
from pix2pix_tf.config import TrainConfig, checkpoint_interval, preset, read_config_file
from pix2pix_tf.core.metrics import image_scores
from pix2pix_tf.core.plotting import loss_curves
from pix2pix_tf.core.schedules import LinearDecay
from pix2pix_tf.data import DataError, pair_pipeline
from pix2pix_tf.data.sources import op_error_reason
from pix2pix_tf.distribute import (
    PEER_ERRORS,
    fit_distributed,
    gather_across_workers,
    strategy,
    worker_lost_error,
)
from pix2pix_tf.evaluation import first_examples
from pix2pix_tf.finetune import initialise
from pix2pix_tf.loading import is_remote
from pix2pix_tf.model import default_optimizer
from pix2pix_tf.options import defaults as option_defaults
from pix2pix_tf.precision import policy as precision_of
from pix2pix_tf.precision import resolve as resolve_precision
from pix2pix_tf.rundir import LOCK_NAME, RunLock, RunWriteError

#: Options that may differ between an interrupted run and its resumption.
RESUMABLE_CHANGES = {"run_dir", "sample_every", "samples", "keep_checkpoints", "notes", "on_error",
                     "checkpoint_every"}


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the newest checkpoint is the last good state."""


def build_model(config, input_channels, output_channels, steps_per_epoch, train_source=None):
    """The compiled model ``config`` describes: its task builds the networks and the model
    (``Task.build_model``; e.g. the editor's vocabulary from ``train_source``'s instructions),
    the trainer adds the optimizers and the learning-rate schedule, the same for every task."""
    model = config.task_object.build_model(config, input_channels, output_channels,
                                           train_source)

    def optimizer(rate):
        schedule = LinearDecay(rate, config.epochs, config.epochs_decay, steps_per_epoch,
                               per_step=config.lr_per_step)
        return default_optimizer(schedule, beta_1=config.beta1)

    d_rate = config.lr if config.lr_d is None else config.lr_d
    model.compile(g_optimizer=optimizer(config.lr),
                  d_optimizer=optimizer(d_rate) if model.discriminator is not None else None)
    return model


@contextlib.contextmanager
def precision_policy(name):
    """Builds layers under Keras dtype policy ``name`` (None or float32: leave the global
    policy alone), restoring the previous global policy afterwards; built layers keep their
    policy."""
    if name in (None, "float32"):
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def pipeline_options(config):
    """The :func:`pix2pix_tf.data.pair_pipeline` options a config implies (less ``multiple``,
    which the generator states)."""
    return dict(direction=config.direction, batch_size=config.batch_size,
                load_size=config.load_size, crop_size=config.crop_size,
                preprocess=config.preprocess, input_channels=config.input_channels,
                output_channels=config.output_channels, seed=config.seed)


def model_channels(config, pairs):
    """(input, output) channels of the model: as configured, else as the data stores them."""
    a, b = pairs.a_channels, pairs.b_channels
    found = (a, b) if config.direction == "AtoB" else (b, a)
    return config.input_channels or found[0], config.output_channels or found[1]


def open_data(config, data, split):
    """The PairSource of ``data`` (the config's, or one given) for ``split``, for the task."""
    return config.task_object.open_data(config, data, split)


def without_autotune(dataset):
    """``dataset`` with tf.data's autotuning off: the same elements (the pipeline is
    deterministic), each parallel stage at its default parallelism (the CPU count, at most 16).

    Keras makes a new iterator every epoch and drops the last one at the next epoch's first
    step; an autotuned iterator's destruction joins its tuning thread, which now and then
    misses the wake-up (TensorFlow's ``Model::OptimizeLoop`` re-checks ``IsCancelled()`` before
    ``CancellationManager::StartCancel`` marks itself cancelled) and sleeps out its period of up
    to a minute: a stall of 0-60 s that the progress bar puts on that first step."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def validation_source(config, test_data=None):
    """The pairs validated on: ``test_data`` if given, else the data's test split, else its
    val split; ``None`` (said aloud) when the data has neither. A split that exists but is
    broken is an error, never a silent "no validation"."""
    if test_data is not None:
        return open_data(config, test_data, "test")
    splits = config.task_object.splits(config, config.data)
    for split in ("test", "val"):
        if split in splits:
            return open_data(config, config.data, split)
    print(f"note: {config.data} has no test/ or val/ split, so training runs without "
          "validation metrics. Add a test/ folder (or pass test_data=) to track them.")
    return None


def _check_resumable(run_dir, config):
    saved_path = run_dir / "config.json"
    if not saved_path.exists():
        return
    saved = read_config_file(saved_path)  # a ValueError naming the file if it is damaged
    current = config.to_dict()
    for values in (saved, current):  # precision as it runs: "auto" or None (older files) too
        values["mixed_precision"] = precision_of(values.get("mixed_precision"))
    # an option that a run's config.json lacks did not exist yet: the run had its default
    defaults = {**option_defaults(TrainConfig), **option_defaults(config.task_object.Options)}
    saved = {**{k: v for k, v in defaults.items() if k not in saved}, **saved}
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k])
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise ValueError(
            f"{run_dir} holds a run with different settings ({details}). Resume it with the "
            "same options, choose another --run-dir, or pass --fresh to start it over."
        )


def _named_data_error(error, *sources):
    """A data error inside the tf.data graph names no file: ask the sources which one. (Files
    are fully decoded before training, so this only happens to files that changed since, in
    sources too large to keep in memory.)"""
    problems = [problem for source in sources if source is not None
                for problem in source.bad_files()]
    if not problems:
        return DataError(f"the data pipeline failed: {op_error_reason(error)}")
    listed = "\n".join(f"  {path}: {message}" for path, message in problems[:10])
    return DataError(f"training stopped on bad data that changed after the start-up check:\n"
                     f"{listed}\nFix or remove the file(s) and run the same command again to "
                     "resume (or pass on_error='skip').")


def train(config=None, *, verbose="auto", fresh=False, train_data=None, test_data=None,
          **options):
    """Trains (or resumes) a run. Returns a dict of results and paths.

    ``config``: a :class:`pix2pix_tf.config.TrainConfig`, or a preset's name (``"quick"``,
    ``"paper"``, ``"instruct"``); default the task's default preset (``task="instruct"`` among
    ``options`` picks the editor's). ``options``: shared or task options applied to a preset
    (``pix2pix_tf.train("quick", epochs=1, run_dir="runs/try")``). ``train_data`` /
    ``test_data`` override ``config.data`` (anything :func:`pix2pix_tf.load_paired_dataset`
    accepts, e.g. arrays, or a PairSource).
    """
    if not isinstance(config, TrainConfig):
        if config is None:
            from pix2pix_tf.tasks import get_task

            config = get_task(options.get("task", "translate")).default_preset
        options.setdefault("run_dir", f"runs/{config}")
        config = preset(config, **options)
    elif options:
        raise TypeError("give options either in the TrainConfig or, with a preset name, as "
                        "keyword arguments.")
    run_dir = Path(config.run_dir)
    if config.strategy == "multiworker":
        from pix2pix_tf.distribute import worker_index

        strategy(config.strategy)  # first: it must exist before TensorFlow runs anything
        index = worker_index()[0]
        if index > 0:
            # Every worker saves (saving reads the replicated variables on all of them); only
            # the chief, worker 0, writes the run directory. The others write beside it, so
            # that workers sharing a filesystem never write the same files.
            run_dir = run_dir.with_name(f"{run_dir.name}.worker{index}")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunWriteError(error.errno, f"cannot create {run_dir}: {error.strerror}") from None
    with RunLock(run_dir):  # one trainer per run directory
        if fresh:
            for item in run_dir.iterdir():
                if item.name != LOCK_NAME:
                    shutil.rmtree(item) if item.is_dir() else item.unlink()
        return _train(run_dir, config, verbose, train_data, test_data)


def validation_l1(model, test_ds):
    """The mean per-image L1 of ``model``'s translations of ``test_ds``'s pairs, as validation
    logs it; a plain loop, not ``model.evaluate``, which does not run under every strategy
    (MultiWorkerMirroredStrategy)."""
    total, count = 0.0, 0
    for batch in test_ds:
        x, y = model._unpack(batch)
        l1 = image_scores(y, model(x, training=False))["l1"]
        total, count = total + float(tf.reduce_sum(l1)), count + int(l1.shape[0])
    return total / max(count, 1)


def choose_average(model, test_ds):
    """Sets ``model.use_ema`` (a model trained with ``g_ema``) to whichever of the generator
    average and the last weights translates the validation pairs with the lower L1, says which,
    and returns the two L1s (None without an average or validation data). Checkpoints keep the
    average in use, so a resumed run validates as the uninterrupted one did."""
    if getattr(model, "generator_ema", None) is None or test_ds is None:
        return None
    scores = {}
    for use in (True, False):
        model.use_ema = use
        scores[use] = validation_l1(model, test_ds)
    model.use_ema = scores[True] <= scores[False]
    print(f"generator average: validation L1 {scores[True]:.4f}, last weights "
          f"{scores[False]:.4f}; the model translates with "
          f"{'the average' if model.use_ema else 'the last weights'}.")
    return scores


class _Resume(NamedTuple):
    """Where a run starts: its epoch and the step inside it, the checkpoint it loads (None: a
    new run) and, when that is a checkpoint inside the epoch, the state saved with it."""
    epoch: int
    step: int
    path: Path | None
    partial_state: dict | None


class _Pipelines(NamedTuple):
    """The pairs and the datasets made of them, with the pipeline options they share."""
    train_pairs: object
    test_pairs: object
    options: dict
    epoch: tf.Variable  # the training pipeline's epoch, for its shuffle and augmentation
    train: tf.data.Dataset
    test: tf.data.Dataset | None


class _Callbacks(NamedTuple):
    """The callbacks of fit, with the ones the trainer asks about after."""
    every: list  # all but ctrl_c, in the order they run
    guard: NaNGuard
    samples: SampleGrid | None
    epoch_checkpoint: EpochCheckpoint
    step_checkpoint: StepCheckpoint
    ctrl_c: StopOnCtrlC


def _check_init_elsewhere(run_dir, config):
    """ValueError when ``--init`` names this run's own directory (or a file in it): the new
    run would write over its source."""
    if config.init is None or is_remote(config.init):
        return
    source, here = Path(config.init).resolve(), run_dir.resolve()
    if source == here or here in source.parents:
        raise ValueError(f"--init {config.init} is in this run's --run-dir {run_dir}: the new "
                         "run would write over its source. Give it a --run-dir of its own "
                         "(e.g. --run-dir runs/mine).")


def _train(run_dir, config, verbose, train_data, test_data):
    _check_init_elsewhere(run_dir, config)
    _check_resumable(run_dir, config)
    keras.utils.set_random_seed(config.seed)

    train_pairs = open_data(config, train_data if train_data is not None else config.data,
                            "train")
    test_pairs = validation_source(config, test_data)
    steps_per_epoch = -(-len(train_pairs) // config.batch_size)
    resume = _resume_point(run_dir, config)
    model = _load_or_build_model(run_dir, config, resume, train_pairs, steps_per_epoch)
    data = _pipelines(config, model, train_pairs, test_pairs, resume.epoch)
    if resume.path is None:  # only now: a run that failed to start leaves nothing to resume
        config.save(run_dir / "config.json")
        (run_dir / "history.csv").unlink(missing_ok=True)
        (run_dir / "steps.csv").unlink(missing_ok=True)

    callbacks = _callbacks(run_dir, config, resume, steps_per_epoch, data)
    start = time.perf_counter()
    _fit(model, config, verbose, steps_per_epoch, data, callbacks, resume)
    seconds = time.perf_counter() - start
    _raise_if_diverged(run_dir, callbacks.guard)
    return _outputs(run_dir, config, model, data.test, callbacks.samples, seconds)


def _resume_point(run_dir, config):
    """The :class:`_Resume` of ``run_dir``: its newest checkpoint, if any. The workers of a
    multi-worker run must resume at one point: where their newest checkpoints differ (a worker
    was killed between two of theirs), all take the newest epoch checkpoint that every one of
    them has."""
    found = checkpoints(run_dir / "checkpoints")
    epoch, path = found[-1] if found else (0, None)
    resume = _Resume(epoch, 0, path, None)
    partial = read_partial(run_dir / "checkpoints")
    if partial is not None and partial[0]["epoch"] == epoch:
        partial_state, path = partial  # later than the newest epoch checkpoint: resume from it
        resume = _Resume(epoch, partial_state["step"], path, partial_state)
    return _agreed(resume, found, config) if config.strategy == "multiworker" else resume


def _agreed(resume, found, config):
    """``resume`` if every worker of a multi-worker run resumes at the same step, else the
    newest epoch checkpoint they all have (``found``: this worker's epoch checkpoints)."""
    positions = gather_across_workers(strategy(config.strategy),
                                      resume.epoch * 10 ** 9 + resume.step)
    if len(set(positions)) == 1:
        return resume
    common = min(positions) // 10 ** 9
    path = dict(found).get(common)
    listed = ", ".join(f"epoch {p // 10 ** 9} step {p % 10 ** 9}" for p in positions)
    if common > 0 and path is None:
        raise ValueError(f"the workers' newest checkpoints differ ({listed}) and this worker no "
                         f"longer keeps epoch {common}'s; start the run over with --fresh on "
                         "every worker (or raise --keep-checkpoints next time).")
    print(f"The workers' newest checkpoints differ ({listed}); all resume from epoch "
          f"{common}, the newest checkpoint every worker has.")
    return _Resume(common, 0, path, None)


def _load_or_build_model(run_dir, config, resume, train_pairs, steps_per_epoch):
    """The model ``resume`` loads (the history trimmed to its epoch), else a new one."""
    if resume.path is None:
        policy = resolve_precision(config.mixed_precision)
        config.notes = {**config.notes, "precision": policy}  # what "auto" became, recorded
        with precision_policy(policy), strategy(config.strategy).scope():
            model = build_model(config, *model_channels(config, train_pairs), steps_per_epoch,
                                train_pairs)
            if config.init is not None:
                initialise(model, config)  # the source's weights; optimizers stay fresh
            return model
    with strategy(config.strategy).scope():  # layers keep the precision they were built in
        model = keras.models.load_model(resume.path)
    truncate_history(run_dir / "history.csv", resume.epoch)
    where = f", step {resume.step} of {steps_per_epoch}" if resume.step else ""
    print(f"Resuming {run_dir} from {resume.path.name} (epoch {resume.epoch} of "
          f"{config.total_epochs}{where}).")
    return model


def _pipelines(config, model, train_pairs, test_pairs, first_epoch):
    """The training and validation datasets, the training one from ``first_epoch``."""
    # The generator states the size multiple the pipeline must honour.
    options = dict(pipeline_options(config), multiple=model.generator.size_multiple)
    epoch = tf.Variable(first_epoch, dtype=tf.int64, trainable=False, name="data_epoch")
    train_ds = without_autotune(pair_pipeline(train_pairs, augment=True, shuffle=True,
                                              epoch=epoch, **options))
    test_ds = None if test_pairs is None else without_autotune(
        pair_pipeline(test_pairs, augment=False, shuffle=False, **options))
    return _Pipelines(train_pairs, test_pairs, options, epoch, train_ds, test_ds)


def _callbacks(run_dir, config, resume, steps_per_epoch, data):
    """The run's callbacks: logs, samples, checkpoints, and the Ctrl-C stop."""
    guard = NaNGuard()
    step_log = StepLog(run_dir / "steps.csv", resume.epoch * steps_per_epoch + resume.step,
                       log_dir=run_dir / "logs" / "steps")
    every = [ValidationSWD(), guard, step_log,
             keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False,
                                         profile_batch=0)]
    samples = None
    if config.samples > 0:
        # Fixed examples: the test split, else un-augmented training pairs.
        sample_source = data.test if data.test is not None else pair_pipeline(
            data.train_pairs, augment=False, shuffle=False, **data.options)
        inputs, targets = first_examples(sample_source, config.samples)
        samples = SampleGrid(inputs, targets, run_dir / "samples", every=config.sample_every,
                             log_dir=run_dir / "logs" / "samples",
                             row_labels=config.task_object.sample_labels(inputs))
        every.append(samples)
    # Last: the checkpoint must capture everything the epoch did, sample drawing included (in
    # the paper's inference mode it advances the dropout RNG), or a resumed run would diverge.
    epoch_checkpoint = EpochCheckpoint(run_dir, keep=config.keep_checkpoints, guard=guard)
    every_steps, every_minutes = checkpoint_interval(config.checkpoint_every)
    step_checkpoint = StepCheckpoint(run_dir, every_steps, every_minutes, steps_per_epoch,
                                     epoch_checkpoint, guard, step_log)
    every += [step_checkpoint, epoch_checkpoint]
    ctrl_c = StopOnCtrlC()  # called last: a Ctrl-C'd epoch end still saves its checkpoint first
    return _Callbacks(every, guard, samples, epoch_checkpoint, step_checkpoint, ctrl_c)


def _fit(model, config, verbose, steps_per_epoch, data, callbacks, resume):
    """Trains to ``config.total_epochs``: first the rest of an interrupted epoch, if any."""

    def fit(dataset, epochs, first, extra=()):
        every = [*callbacks.every, *extra, callbacks.ctrl_c]
        try:
            with callbacks.ctrl_c:
                if config.strategy == "multiworker":  # Keras' fit does not run there (README)
                    try:
                        fit_distributed(model, strategy(config.strategy), dataset,
                                        epochs=epochs, initial_epoch=first,
                                        validation_data=data.test, callbacks=every,
                                        verbose=verbose, steps_per_epoch=steps_per_epoch)
                    except PEER_ERRORS as error:  # a worker is gone: say which, and stop
                        raise worker_lost_error(error, callbacks.epoch_checkpoint.folder) \
                            from None
                else:
                    model.fit(dataset, epochs=epochs, initial_epoch=first,
                              validation_data=data.test, callbacks=every, verbose=verbose,
                              shuffle=False)  # the dataset shuffles itself, seeded
        except tf.errors.InvalidArgumentError as error:
            raise _named_data_error(error, data.train_pairs, data.test_pairs) from error

    initial_epoch = resume.epoch
    if resume.step:  # finish the interrupted epoch from its next step, then go on as usual
        rest = without_autotune(pair_pipeline(
            data.train_pairs, augment=True, shuffle=True, skip_batches=resume.step,
            epoch=tf.Variable(initial_epoch, dtype=tf.int64, trainable=False), **data.options))
        fit(rest, initial_epoch + 1, initial_epoch,
            [RestoreEpochState(resume.partial_state, callbacks.epoch_checkpoint,
                               callbacks.step_checkpoint)])
        initial_epoch += 1
        data.epoch.assign(initial_epoch)
    if initial_epoch < config.total_epochs and callbacks.guard.bad is None:
        fit(data.train, config.total_epochs, initial_epoch)


def _raise_if_diverged(run_dir, guard):
    """:class:`TrainingDiverged` if ``guard`` saw a NaN or infinite loss."""
    if guard.bad is None:
        return
    epoch, batch, key, value = guard.bad
    good = checkpoints(run_dir / "checkpoints")
    raise TrainingDiverged(
        f"{key} became {value} at epoch {epoch + 1}, batch {batch + 1}; training stopped. "
        + (f"The last good checkpoint is {good[-1][1]}. " if good else "No epoch finished, "
           "so there is no checkpoint. ")
        + "Try a lower --lr, --gan-mode lsgan, or check the data for constant or corrupt "
        "images."
    )


def _outputs(run_dir, config, model, test_ds, samples, seconds):
    """Chooses the generator average, saves the final model, draws the final samples and the
    loss curves; returns the results and paths :func:`train` returns."""
    choose_average(model, test_ds)
    save_atomically(model, run_dir / "model.keras")
    outputs = {"model": run_dir / "model.keras", "run_dir": run_dir,
               "history": run_dir / "history.csv", "seconds": seconds,
               "epochs": config.total_epochs}
    if samples is not None:
        samples.set_model(model)
        outputs["samples"] = samples.draw("final", title="final model")
    if (run_dir / "history.csv").exists():
        outputs["loss_curves"] = loss_curves(run_dir / "history.csv", run_dir / "loss_curves.png",
                                             steps_csv=run_dir / "steps.csv")
    return outputs
