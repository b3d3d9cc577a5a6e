"""The task contract: what the shared trainer, inference, evaluation and export ask of a task.

A task is one kind of model this package trains: ``translate`` (pix2pix: image -> image) and
``instruct`` (image + instruction -> edited image) are two. Everything specific to a task lives
in its folder (``pix2pix_tf/tasks/<name>/``) behind one :class:`Task` object in :data:`TASKS`;
the shared machinery asks the table, never tests a task's name or its model's class. A task
provides (each has a default here, fit for a plain image -> image task):

- ``Options``: a dataclass of its own options (:func:`pix2pix_tf.options.option` fields), which
  the command line adds in a group of its own and the saved config carries; options of other
  tasks are refused;
- ``PRESETS``: name -> settings (shared and own options), ``default_preset`` among them;
- ``model_class``, with ``task_name`` naming the task (how :func:`task_of` finds a loaded
  model's task), registered with Keras when ``pix2pix_tf`` is imported;
- :meth:`Task.source_options`: the options its data is opened with (data opens through the one
  entry, :func:`pix2pix_tf.data.open_source`, where a task may register kinds of data);
- :meth:`Task.conditioning`: the hooks (:class:`pix2pix_tf.core.conditioning.Conditioning`) through
  which its conditions enter the networks, and its model's extra arguments;
- :meth:`Task.sample_labels`: row labels of the sample grids;
- :meth:`Task.add_predict_arguments` / :meth:`Task.predictor`: what ``predict`` adds for it;
- :meth:`Task.add_evaluate_arguments` / :meth:`Task.evaluate`: its evaluation and report;
- export hooks: :meth:`Task.export_examples` (real inputs and targets to verify artifacts on),
  :meth:`Task.network_conditions` (those inputs as the networks take them),
  :meth:`Task.serving_inputs` (extra SavedModel signature inputs) and :meth:`Task.write_beside`
  (files a runtime needs next to the model).

A new task is a folder (or one file) with a :class:`Task` subclass and ``register_task(...)``.
"""

import dataclasses

import numpy as np

from pix2pix_tf.core.losses import TABLE1_OBJECTIVES
from pix2pix_tf.data import available_splits, load_paired_dataset, open_source, pair_pipeline
from pix2pix_tf.errors import DataError, OptionError
from pix2pix_tf.model import Pix2Pix
from pix2pix_tf.networks import as_generator, build_discriminator, build_generator, image_of
from pix2pix_tf.networks.tiled import translate
from pix2pix_tf.options import check_choices, flag


@dataclasses.dataclass
class NoOptions:
    """A task with no options of its own."""

    def __post_init__(self):
        check_choices(self)


@dataclasses.dataclass
class Examples:
    """Real examples to verify exports on: ``images`` and ``targets`` in [-1, 1], the models'
    other inputs ``conditions`` (by name, one row per image, as the model takes them), and where
    they came from."""

    images: np.ndarray
    targets: np.ndarray
    conditions: dict
    source: str


class Task:
    """The defaults of the contract (see the module docstring): a plain image -> image task
    trained as pix2pix."""

    name = None
    summary = ""
    Options = NoOptions
    PRESETS = {}
    default_preset = None
    model_class = Pix2Pix
    #: ``predict`` options this task adds (argparse dest names), refused for other tasks' models.
    predict_options = ()
    evaluate_options = ()

    # ------------------------------------------------------------------------------- options
    def option_names(self):
        return [f.name for f in dataclasses.fields(self.Options)]

    def check(self, config):
        """Raises for settings this task cannot train with (called when a config is made)."""

    # ---------------------------------------------------------------------------------- data
    def source_options(self, config):
        """Options of :func:`pix2pix_tf.data.open_source` for this task's data."""
        return {"crop_size": config.crop_size if config.preprocess == "crop" else None}

    def open_data(self, config, data, split):
        return open_source(data, split, **self.source_options(config))

    def splits(self, config, data):
        return available_splits(data)

    # --------------------------------------------------------------------------------- model
    def conditioning(self, config, train_source):
        """``(generator hook, discriminator hook, extra model arguments)``; hooks may be None
        (no conditions)."""
        return None, None, {}

    def build_model(self, config, input_channels, output_channels, train_source):
        """The (uncompiled) model ``config`` describes: the networks from the registry tables
        (:mod:`pix2pix_tf.networks`), joined by this task's hooks."""
        g_hook, d_hook, extra = self.conditioning(config, train_source)
        objective = TABLE1_OBJECTIVES[config.objective]
        lambda_gan = objective["lambda_gan"]
        lambda_l1 = config.lambda_l1 if objective["lambda_l1"] > 0 else 0.0
        hook = lambda h: {} if h is None else {"conditioning": h}  # noqa: E731
        generator = build_generator(config.generator, input_channels, output_channels,
                                    **config.generator_options(), **hook(g_hook))
        discriminator = None
        if lambda_gan > 0:
            discriminator = build_discriminator(config.discriminator, input_channels,
                                                output_channels,
                                                **config.discriminator_options(), **hook(d_hook))
        return self.model_class(generator, discriminator, lambda_l1=lambda_l1,
                                lambda_gan=lambda_gan, gan_mode=config.gan_mode,
                                inference_mode=config.inference_mode,
                                training_config=config.to_dict(), **objective_options(config),
                                **extra)

    def sample_labels(self, inputs):
        """Row labels for sample grids of ``inputs`` (None: none)."""
        return None

    # ----------------------------------------------------------------------------- inference
    def add_predict_arguments(self, group):
        """Adds this task's ``predict`` options to an argparse group."""

    def predictor(self, model, args):
        """``image (H, W, C) in [-1, 1] -> output`` for ``predict`` with ``args``."""
        generator = as_generator(model)
        if generator.condition_inputs:
            raise ValueError(f"this model also takes {sorted(generator.condition_inputs)}; its "
                             "task gives predict no way to pass them.")
        return lambda image: translate(model, image, tile=args.tile)

    # ---------------------------------------------------------------------------- evaluation
    def add_evaluate_arguments(self, group):
        """Adds this task's ``evaluate`` options to an argparse group."""

    def evaluate(self, models, args, output):
        """Scores ``models`` (``{name: model}``) as ``evaluate``'s ``args`` say, writing the
        report into ``output``."""
        from pix2pix_tf.evaluation import evaluate_pairs

        direction = args.direction or saved_direction(models["model"]) or "AtoB"
        return evaluate_pairs(models, output, data=args.data, split=args.split,
                              direction=direction, crop_size=args.crop_size,
                              batch_size=args.batch_size, samples=args.samples,
                              inference_mode=args.inference_mode)

    # -------------------------------------------------------------------------------- export
    def export_examples(self, model, size, count, data=None, split="test", direction=None):
        """Up to ``count`` real examples at ``size`` (its ``split``, else 'train') from ``data``
        (default: the model's training data); None when there is none to use."""
        trained = getattr(model, "training_config", None) or {}
        data = data or trained.get("data")
        if data is None:
            return None
        generator = model.generator if hasattr(model, "generator") else model
        splits = available_splits(data)
        split = split if split in splits or not splits else "train"
        dataset = load_paired_dataset(
            data, split if splits else None, batch_size=1, crop_size=size[0],
            load_size=size[0], augment=False, multiple=1,
            input_channels=generator.input_channels, output_channels=generator.output_channels,
            direction=direction or saved_direction(model) or "AtoB")
        return _examples(dataset, count, data)

    def network_conditions(self, model, conditions):
        """The generator's non-image inputs for ``conditions`` given as the model takes them
        (identity here)."""
        return dict(conditions)

    def serving_inputs(self, model):
        """``(specs, convert, tracked)`` for the SavedModel's signatures when they take other
        inputs than the generator's (``convert`` maps them to the generator's; ``tracked``:
        objects the archive must keep, e.g. a vocabulary's lookup layer); None: the generator's
        own."""
        return None

    def write_beside(self, model, directory, name):
        """Writes the files a runtime needs beside the exported model; returns their paths."""
        return []

    def web_page(self, model):
        """What this task's web page needs beyond an image, JSON-able (merged into the page's
        ``model.json``; :mod:`pix2pix_tf.exporters.web`). The base page takes an image only, so
        a generator with other inputs has no page until its task says how the page fills them:
        ``ValueError`` with the reason."""
        generator = model.generator if hasattr(model, "generator") else model
        if generator.condition_inputs:
            raise ValueError(f"the {self.name} task has no web page: its generator also takes "
                             f"{sorted(generator.condition_inputs)}, which the page cannot "
                             "fill (a task provides them by implementing Task.web_page).")
        return {}


#: The config's objective options that the model takes under the same name.
OBJECTIVE_OPTIONS = ("lambda_feat", "d_shift", "d_cutout", "r1_gamma", "r1_every", "lambda_ffl",
                     "l1_lowpass", "g_ema")


def objective_options(config):
    """The model's keyword arguments for ``config``'s :data:`OBJECTIVE_OPTIONS`."""
    return {name: getattr(config, name) for name in OBJECTIVE_OPTIONS}


def saved_direction(model):
    """The direction a model was trained in, from its training config or its model card."""
    for record in (getattr(model, "training_config", None), getattr(model, "model_card", None)):
        if record and record.get("direction"):
            return record["direction"]
    return None


def _examples(dataset, count, source):
    rows = [(x, y.numpy()[0]) for x, y in dataset.take(count)]
    if not rows:
        raise DataError(f"{source}: no images to use.")
    images = np.stack([image_of(x).numpy()[0] for x, _ in rows])
    conditions = {}
    if isinstance(rows[0][0], dict):
        for key in rows[0][0]:
            if key != "image":
                values = [x[key].numpy()[0] for x, _ in rows]
                values = [v.decode() if isinstance(v, bytes) else v for v in values]
                conditions[key] = np.asarray(values, object if isinstance(values[0], str)
                                             else None)
    return Examples(images, np.stack([y for _, y in rows]), conditions, str(source))


def crop_examples(data, size, count, **source_options):
    """Examples of ``data``'s test split (else train) centre-cropped to ``size``."""
    splits = available_splits(data)
    split = "test" if "test" in splits else "train"
    source = open_source(data, split, **source_options)
    dataset = pair_pipeline(source, batch_size=1, preprocess="crop", crop_size=size[0],
                            multiple=1, augment=False, shuffle=False)
    return _examples(dataset, count, data)


#: Tasks by name.
TASKS = {}


def register_task(task):
    """Adds ``task`` (a :class:`Task` instance) to :data:`TASKS`; its presets must not clash
    with another task's, and its options not with the shared ones or another task's."""
    if task.name in TASKS and type(TASKS[task.name]) is not type(task):
        raise ValueError(f"a task named {task.name!r} is already registered.")
    for other in TASKS.values():
        if other.name == task.name:
            continue
        clash = set(other.PRESETS) & set(task.PRESETS)
        if clash:
            raise ValueError(f"preset(s) {sorted(clash)} of task {task.name!r} already belong "
                             f"to task {other.name!r}.")
        shared = set(other.option_names()) & set(task.option_names())
        if shared:
            raise ValueError(f"option(s) {sorted(shared)} of task {task.name!r} already belong "
                             f"to task {other.name!r}; name them apart.")
    TASKS[task.name] = task
    return task


def get_task(name):
    if not isinstance(name, str) or name not in TASKS:
        raise OptionError(f"Unknown task {name!r:.80}; choose one of {', '.join(TASKS)}.")
    return TASKS[name]


def task_of(model):
    """The task of a model (its class's ``task_name``); a bare generator is a translator."""
    return get_task(getattr(model, "task_name", None) or "translate")


def owner_of_option(name):
    """The task whose option ``name`` is, or None."""
    return next((t for t in TASKS.values() if name in t.option_names()), None)


def refuse_other_tasks_arguments(task, args, kind, model):
    """Raises ``ValueError`` for a command-line option (``kind``: 'predict' or 'evaluate') that
    another task added and ``args`` sets, for ``model``, a ``task`` model: refused, not ignored."""
    for other in TASKS.values():
        if other is task:
            continue
        for name in getattr(other, f"{kind}_options"):
            if getattr(args, name, None) is not None:
                raise ValueError(f"{flag(name)} applies to {other.name} models; {model} is a "
                                 f"{task.name} model.")
