"""Training options: the shared ones in one dataclass, each task's own beside them; saved as
JSON in every run directory and inside the trained model.

Every option is declared once (:func:`pix2pix_tf.options.option`: help text, command-line group,
allowed values); :class:`TrainConfig` checks every enumeration against them and ``python -m
pix2pix_tf.train`` derives its flags from them (:func:`pix2pix_tf.cli.train.parser`). Network
choices come from the registry tables (:mod:`pix2pix_tf.networks`), so a newly registered
generator is a valid ``--generator`` at once.

A config belongs to one task (``task``, a name in :data:`pix2pix_tf.tasks.TASKS`) and holds that
task's options (``config.task_options``, the task's ``Options`` dataclass); they read as
attributes of the config (``config.text_dim``) and are saved flat beside the shared ones. Build
configs with :meth:`TrainConfig.create` or :func:`preset`, which take both kinds of option by
name and refuse an option of another task, naming the task it belongs to. Presets are the
tasks' (``Task.PRESETS``): ``quick`` and ``paper`` (translate), ``instruct`` (instruct).
"""

import copy
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from pix2pix_tf.core.layers import INFERENCE_MODES, NORMS, UP_INITS
from pix2pix_tf.core.losses import GAN_MODES, TABLE1_OBJECTIVES
from pix2pix_tf.data.pipeline import DIRECTIONS, PREPROCESS_MODES
from pix2pix_tf.distribute import STRATEGIES
from pix2pix_tf.errors import OptionError
from pix2pix_tf.options import check_choices, flag, option
from pix2pix_tf.precision import PRECISIONS
from pix2pix_tf.tasks import TASKS, get_task
from pix2pix_tf.tasks.base import owner_of_option


def _tasks():
    return tuple(TASKS)


def _generators():
    from pix2pix_tf.networks import GENERATORS

    return tuple(sorted(GENERATORS))


def _discriminators():
    from pix2pix_tf.networks import DISCRIMINATORS

    return tuple(sorted(DISCRIMINATORS))


def _upsampling():
    from pix2pix_tf.networks import UPSAMPLING

    return UPSAMPLING


@dataclass
class TrainConfig:
    # data
    task: str = option("translate", "what to train: translate (pix2pix pairs), instruct (image "
                       "+ text instruction -> edited image), or any registered task", "data",
                       _tasks)
    data: str = option("demo", "'demo', a folder (A|B images or A/ B/), or a TFDS name such as "
                       "pix2pix/facades; with --task instruct: 'edits' (the bundled edits of the "
                       "demo's photos), 'edits:PHOTOS' (of your photos), a folder with a "
                       "metadata.jsonl (Hugging Face imagefolder), or 'hf:NAME' (a Hugging "
                       "Face dataset: hub name or saved folder; needs pip install datasets)",
                       "data")
    direction: str = option("AtoB", "which side is the input", "data", DIRECTIONS)
    batch_size: int = option(1, "images per batch (paper 1)", "data")
    load_size: int = option(286, "resize before the random crop (paper 286)", "data")
    crop_size: int = option(256, "training crop (paper 256)", "data")
    preprocess: str = option("resize_and_crop", "how training images are sized", "data",
                             PREPROCESS_MODES)
    input_channels: int = option(None, "convert inputs to this many channels (default: as "
                                 "found)", "data", (1, 2, 3, 4))
    output_channels: int = option(None, "convert targets to this many channels (default: as "
                                  "found)", "data", (1, 2, 3, 4))
    # networks
    generator: str = option("unet_256", "generator from pix2pix_tf.networks.GENERATORS",
                            "networks", _generators)
    ngf: int = option(64, "generator base filters (paper 64)", "networks")
    num_downs: int = option(None, "U-Net halvings for --generator unet (unet_256 = 8, "
                            "unet_128 = 7)", "networks")
    upsampling: str = option("transpose", "U-Net decoder: transposed convolutions (paper) or "
                             "resize + conv (against checkerboard artifacts)", "networks",
                             _upsampling)
    up_init: str = option("normal", "how the U-Net's transposed convolutions start: N(0, 0.02) "
                          "taps (paper) or bilinear upsampling times a random channel mix (no "
                          "checkerboard at the start, which short runs keep; the same network)", "networks", UP_INITS)
    pixel_head: int = option(0, "U-Net: width of a per-pixel head at full resolution that also "
                             "sees the input (0: paper); keeps detail in per-pixel edits",
                             "networks")
    pixel_kernel: int = option(1, "U-Net: kernel of the --pixel-head's hidden convolutions, 1 "
                               "or 3 (a 3x3 neighbourhood at full resolution: texture from the "
                               "input's own fine detail)", "networks")
    skips: bool = option(True, "U-Net skip connections (off: Table 2's encoder-decoder)",
                         "networks")
    norm: str = option("batch", "normalisation in both networks", "networks", NORMS)
    dropout: bool = option(True, "generator dropout, its only noise (paper: on)", "networks")
    discriminator: str = option("patchgan", "discriminator from "
                                "pix2pix_tf.networks.DISCRIMINATORS", "networks", _discriminators)
    ndf: int = option(64, "discriminator base filters (paper 64)", "networks")
    n_layers_d: int = option(3, "PatchGAN layers: 1 16x16, 3 70x70 (paper), 5 286x286",
                             "networks")
    num_scales_d: int = option(None, "scales of the multiscale discriminator (pix2pixHD: 3)",
                               "networks")
    d_antialias: bool = option(False, "blur before every strided convolution of the "
                               "discriminator (Zhang 2019; off: paper), against the lattice its "
                               "8-pixel output grid prints", "networks")
    d_blurpool: bool = option(False, "the discriminator's strided convolutions at stride 1, "
                              "then after each activation a blur and 2x subsampling (Zhang "
                              "2019's BlurPool; off: paper): alias-free like --d-antialias, and "
                              "its first layer still sees the finest detail", "networks")
    d_spectral_norm: bool = option(False, "spectral normalisation of every discriminator "
                                   "convolution (Miyato 2018; off: paper): a slower-winning D",
                                   "networks")
    g_options: dict = option(dict, "the generator's own options, those its builder declares "
                             "beyond the shared fields above (``{'width': 6}``)", "networks",
                             cli=False)
    d_options: dict = option(dict, "the discriminator's own options, as g_options",
                             "networks", cli=False)
    # objective and optimisation
    objective: str = option("L1+cGAN", "a row of the paper's Table 1", "objective",
                            tuple(TABLE1_OBJECTIVES))
    gan_mode: str = option("vanilla", "GAN loss: cross-entropy (paper) or least squares",
                           "objective", GAN_MODES)
    lambda_l1: float = option(100.0, "L1 weight (paper 100)", "objective")
    lambda_feat: float = option(0.0, "pix2pixHD discriminator feature-matching weight (0: off, "
                                "the paper's objective; pix2pixHD uses 10 with --discriminator "
                                "multiscale)", "objective")
    d_shift: int = option(0, "roll the discriminator's pairs by a random offset below this many "
                          "pixels every step (0: paper); weakens the print of its 8-pixel logit "
                          "lattice in the generator's outputs", "objective")
    d_cutout: float = option(0.0, "DiffAugment's cutout: blank a random square of this "
                             "fraction of the side in the discriminator's pairs every step "
                             "(0: paper; DiffAugment 0.5)", "objective")
    r1_gamma: float = option(0.0, "R1 penalty weight on D's gradient at real pairs (0: paper; "
                             "StyleGAN2 uses 1-10)", "objective")
    r1_every: int = option(16, "apply the R1 penalty every N steps, scaled by N (lazy "
                           "regularisation, StyleGAN2)", "objective")
    lambda_ffl: float = option(0.0, "focal frequency loss weight (Jiang 2021; 0: paper)",
                               "objective")
    l1_lowpass: bool = option(False, "the L1 term compares blurred, 2x subsampled images "
                              "(off: paper, pixel by pixel): detail finer than 4 px is left to "
                              "the adversarial term, which L1 would otherwise outweigh",
                              "objective")
    g_ema: float = option(0.0, "decay of an exponential moving average of G's weights, used "
                          "for validation, evaluation and export (0: paper; e.g. 0.999)",
                          "objective")
    lr: float = option(2e-4, "Adam learning rate (paper 2e-4)", "objective")
    lr_d: float = option(None, "the discriminator's learning rate (default: --lr, the "
                         "paper's; two time-scale updates, TTUR, set it apart)", "objective")
    beta1: float = option(0.5, "Adam beta_1 (paper 0.5)", "objective")
    epochs: int = option(100, "epochs at constant learning rate (paper 100)", "objective")
    epochs_decay: int = option(100, "epochs of linear decay to 0 (paper 100)", "objective")
    lr_per_step: bool = option(False, "decay the rate a little every step instead of once per "
                               "epoch (the reference); with few epochs it reaches 0 at the end",
                               "objective")
    seed: int = option(0, "seed of all weights, dropout masks, shuffles and jitter", "objective")
    inference_mode: str = option("paper", "test-time dropout and normalisation saved with the "
                                 "model", "objective", INFERENCE_MODES)
    #: "auto" (the fastest precision this hardware runs natively, float32 where none is:
    #: :mod:`pix2pix_tf.precision`), "float32" (the paper's), "mixed_bfloat16" or
    #: "mixed_float16" (with loss scaling). 16 bits change the numerics slightly; speeds are in
    #: benchmarks/NOTES.md.
    mixed_precision: str = option("auto", "compute precision, float32 weights kept: auto (16 "
                                  "bits only where native: bfloat16 on TPUs, Ampere+ GPUs and "
                                  "CPUs with AMX/AVX512-BF16, float16 on older NVIDIA GPUs; "
                                  "else float32), or one of the others (said when emulated)",
                                  "objective", PRECISIONS)
    strategy: str = option("none", "devices to train on: one, all GPUs of this machine "
                           "(mirrored), several machines (multiworker, with TF_CONFIG), a TPU; "
                           "batch_size is the global batch", "objective", STRATEGIES)
    init: str = option(None, "start from a trained model's weights (fine-tuning): a .keras "
                       "file or run directory, pretrained:NAME (the authors' models) or "
                       "hf://user/repo; a fresh optimizer and schedule, epochs from 0",
                       "objective")
    # outputs
    run_dir: str = option("runs/pix2pix", "where checkpoints, samples, logs and the model go")
    sample_every: int = option(1, "epochs between sample grids")
    samples: int = option(4, "examples per sample grid")
    keep_checkpoints: int = option(2, "newest checkpoints kept")
    checkpoint_every: str = option("10min", "also checkpoint inside an epoch, every N steps "
                                   "('500') or minutes ('10min'); '0' turns it off")
    preset: str = option(None, "the preset this config started from", cli=False)
    notes: dict = option(dict, "free-form notes saved with the run", cli=False)
    #: The task's own options (its ``Options`` dataclass, or a dict of them); they read as
    #: attributes of the config.
    task_options: object = option(None, "the task's own options", cli=False)

    def __post_init__(self):
        for f in dataclasses.fields(self):  # configs are JSON: paths as text, NumPy numbers
            setattr(self, f.name, _plain(getattr(self, f.name)))  # as Python's
        check_choices(self)
        task = get_task(self.task)
        options = self.task_options
        if options is None or isinstance(options, dict):
            options = {k: _plain(v) for k, v in (options or {}).items()}
            refuse_other_tasks(task, options)
            self.task_options = task.Options(**options)
        elif not isinstance(options, task.Options):
            raise OptionError(f"task_options must be {task.name}'s options "
                              f"({task.Options.__name__}), got {type(options).__name__}.")
        if self.epochs < 0 or self.epochs_decay < 0 or self.epochs + self.epochs_decay < 1:
            raise ValueError("epochs + epochs_decay must be at least 1.")
        checkpoint_interval(self.checkpoint_every)  # raises for a bad value
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}.")
        if self.preprocess == "resize_and_crop" and self.load_size < self.crop_size:
            raise ValueError(f"load_size ({self.load_size}) must be >= crop_size "
                             f"({self.crop_size}).")
        self.generator_options()  # options that do not apply to the chosen networks
        self.discriminator_options()
        task.check(self)

    def __getattr__(self, name):
        # Called only for names that are not shared fields: the task's own options.
        options = self.__dict__.get("task_options")
        if options is not None and name in {f.name for f in dataclasses.fields(options)}:
            return getattr(options, name)
        owner = owner_of_option(name)
        if owner is not None:
            raise AttributeError(f"{name!r} is an option of task {owner.name!r}; this config "
                                 f"is for task {self.__dict__.get('task')!r}.")
        raise AttributeError(f"'TrainConfig' has no option {name!r}.")

    @property
    def task_object(self):
        """The :class:`pix2pix_tf.tasks.Task` this config trains."""
        return get_task(self.task)

    @classmethod
    def create(cls, **values):
        """A config from shared, network and task options given by name (see the module
        docstring)."""
        shared = {f.name for f in dataclasses.fields(cls)}
        values = _route_network_options(values, shared)
        task = get_task(values.get("task", "translate"))
        own = {k: values.pop(k) for k in list(values) if k not in shared}
        refuse_other_tasks(task, own)
        given = values.pop("task_options", None)
        if given is not None and own:
            raise OptionError("give task options by name or as task_options, not both.")
        if given is not None and not isinstance(given, dict):
            given = dataclasses.asdict(given)
        return cls(**values, task_options=given if given is not None else own)

    @property
    def total_epochs(self):
        return self.epochs + self.epochs_decay

    # ---------------------------------------------------------------------- network options
    #: Shared config field -> builder option, for each network kind: options that several
    #: networks take, under the names saved configs use. A network's other options need no
    #: entry: its builder's declaration (:meth:`pix2pix_tf.networks.Entry.declared`) puts
    #: them in ``g_options`` / ``d_options`` and on the command line.
    GENERATOR_FIELDS = {"ngf": "ngf", "num_downs": "num_downs", "upsampling": "upsampling",
                        "up_init": "up_init", "pixel_head": "pixel_head",
                        "pixel_kernel": "pixel_kernel", "skips": "skips",
                        "norm": "norm", "dropout": "dropout", "inference_mode": "inference_mode"}
    DISCRIMINATOR_FIELDS = {"ndf": "ndf", "n_layers_d": "n_layers", "num_scales_d": "num_scales",
                            "norm": "norm", "d_antialias": "antialias", "d_blurpool": "blurpool",
                            "d_spectral_norm": "spectral_norm"}

    def _network_options(self, table, name, fields, own):
        from pix2pix_tf.networks import options_for

        defaults = {f.name: f.default for f in dataclasses.fields(self)
                    if f.name in fields}
        values = {option: getattr(self, key) for key, option in fields.items()}
        option_defaults = {option: defaults[key] for key, option in fields.items()}
        flags = {option: "--" + key.replace("_", "-") for key, option in fields.items()}
        covered = set(fields.values())
        for key in own:
            if key in covered:
                raise ValueError(f"{key!r} is a shared option: give it as "
                                 f"{flags[key]}, not inside the network's own options.")
        chosen = options_for(table, name, values, option_defaults, label=flags.get)
        return {**chosen, **options_for(table, name, own, {}, label=flag)}

    def generator_options(self):
        """Options for ``build_generator(self.generator, ...)`` (seed included)."""
        from pix2pix_tf.networks import GENERATORS

        options = self._network_options(GENERATORS, self.generator, self.GENERATOR_FIELDS,
                                        self.g_options)
        return {**options, "seed": self.seed}

    def discriminator_options(self):
        """Options for ``build_discriminator(self.discriminator, ...)`` (seed and
        conditioning from the objective included)."""
        from pix2pix_tf.networks import DISCRIMINATORS

        options = self._network_options(DISCRIMINATORS, self.discriminator,
                                        self.DISCRIMINATOR_FIELDS, self.d_options)
        conditional = TABLE1_OBJECTIVES[self.objective].get("conditional", True)
        return {**options, "seed": self.seed + 1, "conditional": conditional}

    # ------------------------------------------------------------------------ serialisation
    def to_dict(self):
        """Shared and task options, flat (as ``config.json`` and models store them)."""
        values = {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self)
                  if f.name != "task_options"}
        return {**values, **dataclasses.asdict(self.task_options)}

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path):
        from pix2pix_tf.rundir import write_atomically

        write_atomically(path, lambda tmp: Path(tmp).write_text(self.to_json() + "\n"))

    @classmethod
    def from_dict(cls, values):
        """The config :meth:`to_dict` wrote. Files written before tasks had options of their
        own hold every task's fields; those of other tasks never applied and are left out.
        Anything else (a value of the wrong type, an unknown option) is a ``ValueError``."""
        if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
            raise ValueError(f"a training config maps option names to values; got a "
                             f"{type(values).__name__}.")
        values = dict(values)
        if "mixed_precision" in values and values["mixed_precision"] is None:
            values["mixed_precision"] = "float32"  # written before "auto": None was float32
        task = get_task(values.get("task", "translate"))
        for name in list(values):
            owner = owner_of_option(name)
            if owner is not None and owner is not task:
                values.pop(name)
        known = {f.name for f in dataclasses.fields(cls)} | set(task.option_names())
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training options {', '.join(unknown)}.")
        return cls.create(**values)

    @classmethod
    def load(cls, path):
        """The config saved in ``path`` (a run's ``config.json``); a ``ValueError`` names the
        file and what is wrong in it."""
        try:
            return cls.from_dict(read_config_file(path))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


def network_options():
    """``{option: {(kind, network): (default, help)}}``: what registered networks' builders declare
    beyond the shared fields, generators' and discriminators' together (the train command's
    flags for them)."""
    from pix2pix_tf.networks import declared_options

    merged = {}
    for kind, fields in (("generator", TrainConfig.GENERATOR_FIELDS),
                         ("discriminator", TrainConfig.DISCRIMINATOR_FIELDS)):
        for name, networks in declared_options(kind).items():
            if name not in fields.values():
                merged.setdefault(name, {}).update(
                    {(kind, network): value for network, value in networks.items()})
    return merged


def _route_network_options(values, shared):
    """``values`` with each option that a registered network's builder declares, and no shared
    field covers, moved into ``g_options`` / ``d_options`` (of whichever chosen network takes
    it); one that neither chosen network takes is an :class:`OptionError` naming the networks
    that do."""
    from pix2pix_tf.networks import declared_options

    values = dict(values)
    kinds = (("generator", "g_options", TrainConfig.GENERATOR_FIELDS),
             ("discriminator", "d_options", TrainConfig.DISCRIMINATOR_FIELDS))
    declared = {kind: {name: networks for name, networks in declared_options(kind).items()
                       if name not in fields.values()}
                for kind, _, fields in kinds}
    task_own = set(get_task(values.get("task", "translate")).option_names())
    for name in [k for k in values if k not in shared and k not in task_own]:
        takers = {kind: declared[kind].get(name, {}) for kind, _, _ in kinds}
        if not any(takers.values()):
            continue  # a task's option, or unknown: the task's check says which
        value = values.pop(name)
        chosen = {kind: values.get(kind, _default_of(kind)) for kind, _, _ in kinds}
        placed = [key for kind, key, _ in kinds if chosen[kind] in takers[kind]]
        for key in placed:
            values[key] = {**values.get(key, {}), name: value}
        if not placed:
            owners = ", ".join(f"{kind} {network}" for kind, networks in takers.items()
                               for network in networks)
            raise OptionError(f"{flag(name)} is an option of {owners}, not of the chosen "
                              f"{chosen['generator']} and {chosen['discriminator']}. Choose "
                              f"a network that takes it, or leave {flag(name)} unset.")
    return values


def _default_of(name):
    return next(f.default for f in dataclasses.fields(TrainConfig) if f.name == name)


def _plain(value):
    """``value`` as JSON can hold it: a path as text, a NumPy scalar as a Python number."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


#: The largest config.json read (a run's is about 2 KB).
MAX_CONFIG_BYTES = 1 << 20


def read_config_file(path):
    """The JSON object in ``path`` (a run's ``config.json``), or a ``ValueError`` naming the
    file: larger than :data:`MAX_CONFIG_BYTES`, not UTF-8, not JSON, not an object."""
    path = Path(path)
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size:,} bytes, more than a config's "
                         f"{MAX_CONFIG_BYTES:,}: not a pix2pix_tf config.json.")
    try:
        values = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason}): not a config.json.") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error.msg}, line {error.lineno}).") from None
    except (ValueError, RecursionError) as error:  # huge numbers, deep nesting
        raise ValueError(f"{path}: not readable JSON ({type(error).__name__}).") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a JSON {type(values).__name__}, not an object of options.")
    return values


def checkpoint_interval(text):
    """``'500'`` -> (500, None) steps; ``'10min'`` -> (None, 10.0) minutes; ``'0'`` -> (None, None)."""
    value = str(text).strip().lower()
    try:
        if value.endswith("min"):
            minutes = float(value[:-3])
            if minutes > 0:
                return None, minutes
        elif int(value) >= 0:
            return (int(value) or None), None
    except ValueError:
        pass
    raise ValueError(f"checkpoint_every {text!r}: give a number of steps ('500'), of minutes "
                     "('10min'), or '0' for none.")


def refuse_other_tasks(task, values):
    """Raises :class:`OptionError` for options in ``values`` that are not ``task``'s own,
    naming the task each belongs to."""
    own = set(task.option_names())
    for name in values:
        if name in own:
            continue
        owner = owner_of_option(name)
        if owner is not None:
            raise OptionError(f"{flag(name)} applies to --task {owner.name} (an option of that "
                              f"task), not to --task {task.name}.")
        raise OptionError(f"unknown option {name!r} for --task {task.name}.")


def presets():
    """Every task's presets: ``{name: (task, settings)}``."""
    return {name: (task, settings) for task in TASKS.values()
            for name, settings in task.PRESETS.items()}


def _for_chosen_networks(settings, overrides):
    """A preset's settings less its network options that a network chosen in ``overrides``
    does not take (the quick preset's ``up_init`` with ``generator="resnet_9blocks"``): the
    preset set them for its own networks. Options given in ``overrides`` are kept, and refused
    later if they do not apply."""
    from pix2pix_tf.networks import DISCRIMINATORS, GENERATORS, accepted_options, declared_options

    kept = dict(settings)
    for table, kind, fields in ((GENERATORS, "generator", TrainConfig.GENERATOR_FIELDS),
                                (DISCRIMINATORS, "discriminator",
                                 TrainConfig.DISCRIMINATOR_FIELDS)):
        chosen = overrides.get(kind)
        if chosen is None or chosen not in table:
            continue
        takes = accepted_options(table, chosen)
        # shared fields under their builder names, and options only some builders declare
        options = {**{key: key for key in declared_options(kind)}, **fields}
        for key, builder_option in options.items():
            if key in kept and key not in overrides and builder_option not in takes:
                del kept[key]
    return kept


def preset(name, **overrides):
    """A :class:`TrainConfig` for preset ``name`` (of whichever task has it) with ``overrides``
    (shared or task options) applied."""
    table = presets()
    if name not in table:
        raise ValueError(f"Unknown preset {name!r}; choose one of {', '.join(table)}.")
    task, settings = table[name]
    settings = _for_chosen_networks(settings, overrides)
    if overrides.get("task", task.name) != task.name:
        raise OptionError(f"preset {name!r} is a preset of --task {task.name}; for --task "
                          f"{overrides['task']} choose one of "
                          f"{', '.join(get_task(overrides['task']).PRESETS) or 'no preset'}.")
    return TrainConfig.create(**{**settings, "task": task.name, "preset": name, **overrides})
