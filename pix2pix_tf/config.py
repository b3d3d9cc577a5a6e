"""Training options as one dataclass, with named presets; saved as JSON in every run directory
and inside the trained model.

Every option is declared once, below, with its help text, its command-line group and (for
enumerations) its allowed values; :meth:`TrainConfig.__post_init__` checks every enumeration
against them and ``python -m pix2pix_tf.train`` derives its flags from them
(:func:`pix2pix_tf.cli.train.parser`). Network choices come from the registry tables
(:mod:`pix2pix_tf.networks`), so a newly registered generator is a valid ``--generator`` at once.

``paper`` is the paper's facades recipe (unet_256 + 70x70 PatchGAN, L1 + cGAN with lambda 100,
Adam 2e-4 / 0.5, batch 1, 100 + 100 epochs, 286 -> 256 jitter, labels -> photo = BtoA).
``quick`` (the command line's default) keeps the same architecture shape, objective and recipe
but uses 16 base filters and a short schedule on the bundled demo data, so that a first run
finishes in minutes on a 2-core CPU: 2 epochs at 2e-4 then 1 of decay, the rate decaying every
step so that it reaches 0 at the end (``lr_per_step``; with so few epochs the reference's
once-per-epoch steps would end at a third of the rate). Its length is chosen from measurements:
on the demo's held-out regions, validation L1 keeps improving for about 1,700 steps at batch 1
and then rises again however the rate is scheduled (more tiles or an average of the weights did
not change that), so the preset stops there, with its best validation L1 at its end.

``instruct`` (``--task instruct``'s default) trains the instruction editor
(:class:`pix2pix_tf.InstructPix2Pix`) on the bundled edits of the demo's photos: the same objective
and optimiser, a 64x64 crop of 128x128 photos, ``unet`` with 6 halvings and 16 base filters,
batch 16 (the matching-aware discriminator's wrong instructions come from the batch) for 4 + 1
epochs, about 12 minutes on a 2-core CPU. At batch 16 BatchNorm's per-image statistics at test
time are not the training statistics, so the preset saves ``inference_mode="moving_average"``.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from pix2pix_tf.layers import INFERENCE_MODES, NORMS
from pix2pix_tf.losses import GAN_MODES, TABLE1_OBJECTIVES
from pix2pix_tf.text import WORD_LISTS

DIRECTIONS = ("AtoB", "BtoA")
PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "none")
ON_ERROR = ("raise", "skip")
#: ``TrainConfig.strategy``: see :mod:`pix2pix_tf.distribute`.
STRATEGIES = ("none", "mirrored", "multiworker", "tpu")
#: ``TrainConfig.task``: pix2pix pairs, or image + instruction -> edited image.
TASKS = ("translate", "instruct")
MIXED_PRECISION = ("mixed_bfloat16", "mixed_float16")


def _generators():
    from pix2pix_tf.networks import GENERATORS

    return tuple(sorted(GENERATORS))


def _discriminators():
    from pix2pix_tf.networks import DISCRIMINATORS

    return tuple(sorted(DISCRIMINATORS))


def _upsampling():
    from pix2pix_tf.networks import UPSAMPLING

    return UPSAMPLING


def option(default, help, group="outputs", choices=None, cli=True):
    """A config field with its help text, command-line group and allowed values (a tuple, or a
    function returning one for tables that can grow)."""
    kwargs = {"default_factory": default} if callable(default) else {"default": default}
    return field(**kwargs, metadata={"help": help, "group": group, "choices": choices,
                                     "cli": cli})


def choices_of(f):
    """The allowed values of config field ``f`` (None: any)."""
    choices = f.metadata.get("choices")
    return choices() if callable(choices) else choices


@dataclass
class TrainConfig:
    # data
    task: str = option("translate", "translate: pix2pix pairs; instruct: image + text "
                       "instruction -> edited image (InstructPix2Pix)", "data", TASKS)
    data: str = option("demo", "'demo', a folder (A|B images or A/ B/), or a TFDS name such as "
                       "pix2pix/facades; with --task instruct: 'edits' (the bundled edits of the "
                       "demo's photos), 'edits:PHOTOS' (of your photos), a folder with a "
                       "metadata.jsonl (Hugging Face imagefolder), or 'hf:NAME' (a Hugging "
                       "Face dataset: hub name or saved folder; needs pip install datasets)",
                       "data")
    columns: str = option(None, "instruct data: metadata columns as "
                          "input=COL,instruction=COL,target=COL (default: the usual names)",
                          "data")
    edit_size: int = option(128, "instruct data 'edits': photos are resized to this square "
                            "before cropping", "data")
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
    on_error: str = option("raise", "bad files: stop with a list of them, or skip them with a "
                           "warning", "data", ON_ERROR)
    # networks
    generator: str = option("unet_256", "generator from pix2pix_tf.networks.GENERATORS",
                            "networks", _generators)
    ngf: int = option(64, "generator base filters (paper 64)", "networks")
    num_downs: int = option(None, "U-Net halvings for --generator unet (unet_256 = 8, "
                            "unet_128 = 7)", "networks")
    upsampling: str = option("transpose", "U-Net decoder: transposed convolutions (paper) or "
                             "resize + conv (against checkerboard artifacts)", "networks",
                             _upsampling)
    skips: bool = option(True, "U-Net skip connections (off: Table 2's encoder-decoder)",
                         "networks")
    norm: str = option("batch", "normalisation in both networks", "networks", NORMS)
    dropout: bool = option(True, "generator dropout, its only noise (paper: on)", "networks")
    discriminator: str = option("patchgan", "discriminator from "
                                "pix2pix_tf.networks.DISCRIMINATORS", "networks", _discriminators)
    text_dim: int = option(64, "instruct: width of the instruction embeddings", "networks")
    sequence_length: int = option(16, "instruct: most words per instruction (with "
                                  "--text-encoder: word pieces, start and end included)",
                                  "networks")
    text_encoder: str = option(None, "instruct: a pretrained keras-hub text encoder for the "
                               "generator: preset name, Kaggle/hf:// handle or folder (needs "
                               "pip install 'pix2pix_tf[hub]'; default: the built-in encoder "
                               "learning words from scratch)", "networks")
    text_encoder_trainable: bool = option(False, "instruct: fine-tune the pretrained text "
                                          "encoder (default frozen)", "networks")
    text_blocks: int = option(0, "instruct: self-attention blocks in the text encoder (0: "
                              "masked mean of word embeddings)", "networks")
    text_pooling: str = option("mean", "instruct: pool word embeddings equally (mean) or by "
                               "learned weights (attention)", "networks", ("mean", "attention"))
    subword_buckets: int = option(16384, "instruct: hash buckets of the built-in encoder's "
                                  "whole-word and character n-gram vectors, so that it reads "
                                  "spelling (0: a vector per word, trained words only)",
                                  "networks")
    extra_words: str = option("english", "instruct: words the built-in encoder may meet beyond its "
                              "training instructions, read by their spelling (so not with "
                              "--subword-buckets 0): 'english' (30,000 common words, bundled) or "
                              "'none'", "networks", WORD_LISTS)
    cross_attention: int = option(0, "instruct: innermost U-Net levels that also attend to the "
                                  "instruction's words (0: FiLM only)", "networks")
    text_conditioning: str = option("projection", "instruct: how the matching-aware "
                                    "discriminator reads the instruction", "networks",
                                    ("projection", "concat"))
    ndf: int = option(64, "discriminator base filters (paper 64)", "networks")
    n_layers_d: int = option(3, "PatchGAN layers: 1 16x16, 3 70x70 (paper), 5 286x286",
                             "networks")
    num_scales_d: int = option(None, "scales of the multiscale discriminator (pix2pixHD: 3)",
                               "networks")
    # objective and optimisation
    objective: str = option("L1+cGAN", "a row of the paper's Table 1", "objective",
                            tuple(TABLE1_OBJECTIVES))
    gan_mode: str = option("vanilla", "GAN loss: cross-entropy (paper) or least squares",
                           "objective", GAN_MODES)
    lambda_l1: float = option(100.0, "L1 weight (paper 100)", "objective")
    lambda_feat: float = option(0.0, "pix2pixHD discriminator feature-matching weight (0: off, "
                                "the paper's objective; pix2pixHD uses 10 with --discriminator "
                                "multiscale)", "objective")
    instruction_dropout: float = option(0.05, "instruct: fraction of training instructions "
                                        "blanked (1.0 trains the no-text baseline)",
                                        "objective")
    word_dropout: float = option(0.1, "instruct: fraction of training words replaced by the "
                                 "unknown word, for instructions with unseen words",
                                 "objective")
    lambda_mismatch: float = option(1.0, "instruct: weight of real images with a wrong "
                                    "instruction among the discriminator's fakes", "objective")
    lr: float = option(2e-4, "Adam learning rate (paper 2e-4)", "objective")
    beta1: float = option(0.5, "Adam beta_1 (paper 0.5)", "objective")
    epochs: int = option(100, "epochs at constant learning rate (paper 100)", "objective")
    epochs_decay: int = option(100, "epochs of linear decay to 0 (paper 100)", "objective")
    lr_per_step: bool = option(False, "decay the rate a little every step instead of once per "
                               "epoch (the reference); with few epochs it reaches 0 at the end",
                               "objective")
    seed: int = option(0, "seed of all weights, dropout masks, shuffles and jitter", "objective")
    inference_mode: str = option("paper", "test-time dropout and normalisation saved with the "
                                 "model", "objective", INFERENCE_MODES)
    #: None (float32, the paper's), "mixed_bfloat16" (CPUs with AMX/AVX512-BF16 and TPUs;
    #: bfloat16 rounding of activations) or "mixed_float16" (NVIDIA GPUs, with loss scaling).
    #: A speed option: it changes the numerics. Speeds are in benchmarks/NOTES.md.
    mixed_precision: str = option(None, "compute in 16 bits, keep float32 weights: "
                                  "mixed_bfloat16 for CPUs with AMX/AVX512-BF16 and TPUs, "
                                  "mixed_float16 for NVIDIA GPUs (loss-scaled); changes the "
                                  "numerics slightly", "objective", MIXED_PRECISION)
    strategy: str = option("none", "devices to train on: one, all GPUs of this machine "
                           "(mirrored), several machines (multiworker, with TF_CONFIG), a TPU; "
                           "batch_size is the global batch", "objective", STRATEGIES)
    # outputs
    run_dir: str = option("runs/pix2pix", "where checkpoints, samples, logs and the model go")
    sample_every: int = option(1, "epochs between sample grids")
    samples: int = option(4, "examples per sample grid")
    keep_checkpoints: int = option(2, "newest checkpoints kept")
    checkpoint_every: str = option("10min", "also checkpoint inside an epoch, every N steps "
                                   "('500') or minutes ('10min'); '0' turns it off")
    preset: str = option(None, "the preset this config started from", cli=False)
    notes: dict = option(dict, "free-form notes saved with the run", cli=False)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            allowed = choices_of(f)
            value = getattr(self, f.name)
            if allowed is not None and value is not None and value not in allowed:
                raise ValueError(f"{f.name} must be one of {', '.join(map(str, allowed))}; got "
                                 f"{value!r}.")
        if self.epochs < 0 or self.epochs_decay < 0 or self.epochs + self.epochs_decay < 1:
            raise ValueError("epochs + epochs_decay must be at least 1.")
        checkpoint_interval(self.checkpoint_every)  # raises for a bad value
        if (self.text_encoder or self.text_encoder_trainable) and self.task != "instruct":
            raise ValueError("--text-encoder reads instructions: it applies to --task instruct.")
        if self.subword_buckets < 0:
            raise ValueError(f"subword_buckets must be >= 0, got {self.subword_buckets}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}.")
        if self.preprocess == "resize_and_crop" and self.load_size < self.crop_size:
            raise ValueError(f"load_size ({self.load_size}) must be >= crop_size "
                             f"({self.crop_size}).")
        self.generator_options()  # options that do not apply to the chosen networks
        self.discriminator_options()

    @property
    def total_epochs(self):
        return self.epochs + self.epochs_decay

    # ---------------------------------------------------------------------- network options
    #: config field -> builder option, for each network kind
    GENERATOR_FIELDS = {"ngf": "ngf", "num_downs": "num_downs", "upsampling": "upsampling",
                        "skips": "skips", "norm": "norm", "dropout": "dropout",
                        "inference_mode": "inference_mode", "text_blocks": "text_blocks",
                        "text_pooling": "text_pooling", "cross_attention": "cross_attention"}
    DISCRIMINATOR_FIELDS = {"ndf": "ndf", "n_layers_d": "n_layers", "num_scales_d": "num_scales",
                            "norm": "norm", "text_conditioning": "text_conditioning",
                            "text_pooling": "text_pooling"}

    def _network_options(self, table, name, fields):
        from pix2pix_tf.networks import options_for

        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        values = {option: getattr(self, key) for key, option in fields.items()}
        option_defaults = {option: defaults[key] for key, option in fields.items()}
        flags = {option: "--" + key.replace("_", "-") for key, option in fields.items()}
        return options_for(table, name, values, option_defaults, label=flags.get)

    def generator_options(self):
        """Options for ``build_generator(self.generator, ...)`` (seed included)."""
        from pix2pix_tf.networks import GENERATORS

        options = self._network_options(GENERATORS, self.generator, self.GENERATOR_FIELDS)
        if self.task != "instruct":
            options = {k: v for k, v in options.items()
                       if k not in ("text_blocks", "text_pooling", "cross_attention")}
        return {**options, "seed": self.seed}

    def discriminator_options(self):
        """Options for ``build_discriminator(self.discriminator, ...)`` (seed and
        conditioning from the objective included)."""
        from pix2pix_tf.networks import DISCRIMINATORS

        options = self._network_options(DISCRIMINATORS, self.discriminator,
                                        self.DISCRIMINATOR_FIELDS)
        conditional = TABLE1_OBJECTIVES[self.objective].get("conditional", True)
        if self.task != "instruct":
            options.pop("text_conditioning", None)
            options.pop("text_pooling", None)
        return {**options, "seed": self.seed + 1, "conditional": conditional}

    # ------------------------------------------------------------------------ serialisation
    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path):
        from pix2pix_tf.rundir import write_atomically

        write_atomically(path, lambda tmp: Path(tmp).write_text(self.to_json() + "\n"))

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training options {', '.join(unknown)}.")
        return cls(**values)

    @classmethod
    def load(cls, path):
        return cls.from_dict(json.loads(Path(path).read_text()))


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


PRESETS = {
    "paper": dict(data="pix2pix/facades", direction="BtoA"),
    "quick": dict(data="demo", ngf=16, ndf=16, epochs=2, epochs_decay=1, lr_per_step=True),
    "instruct": dict(task="instruct", data="edits", generator="unet", num_downs=6, ngf=16,
                     ndf=16, crop_size=64, preprocess="crop", batch_size=16, epochs=4,
                     epochs_decay=1, lr_per_step=True, inference_mode="moving_average"),
}


def preset(name, **overrides):
    """A :class:`TrainConfig` for preset ``name`` with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return TrainConfig(**{**PRESETS[name], "preset": name, **overrides})
