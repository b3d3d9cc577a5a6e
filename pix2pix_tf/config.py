"""Training options as one dataclass, with named presets; saved as JSON in every run directory.

``paper`` is the paper's facades recipe (unet_256 + 70x70 PatchGAN, L1 + cGAN with lambda 100,
Adam 2e-4 / 0.5, batch 1, 100 + 100 epochs, 286 -> 256 jitter, labels -> photo = BtoA).
``quick`` (the command line's default) keeps the same architecture shape, objective and recipe
but uses 16 base filters and 12 + 12 epochs on the bundled demo data, so that a first run
finishes in about ten minutes on a 2-core CPU.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from pix2pix_tf.losses import TABLE1_OBJECTIVES

MIXED_PRECISION = (None, "mixed_bfloat16", "mixed_float16")


@dataclass
class TrainConfig:
    # data
    data: str = "demo"
    direction: str = "AtoB"
    batch_size: int = 1
    load_size: int = 286
    crop_size: int = 256
    preprocess: str = "resize_and_crop"
    input_channels: int = None
    output_channels: int = None
    on_error: str = "raise"
    # networks
    ngf: int = 64
    ndf: int = 64
    num_downs: int = 8
    skips: bool = True
    n_layers_d: int = 3
    norm: str = "batch"
    dropout: bool = True
    # objective and optimisation
    objective: str = "L1+cGAN"
    gan_mode: str = "vanilla"
    lambda_l1: float = 100.0
    lr: float = 2e-4
    beta1: float = 0.5
    epochs: int = 100
    epochs_decay: int = 100
    seed: int = 0
    inference_mode: str = "paper"
    #: None (float32, the paper's), "mixed_bfloat16" (CPUs with AMX/AVX512-BF16 and TPUs: about
    #: 1.9x faster training on this project's CPU, bfloat16 rounding of activations) or
    #: "mixed_float16" (NVIDIA GPUs, with loss scaling). A speed option: it changes the numerics.
    mixed_precision: str = None
    # outputs
    run_dir: str = "runs/pix2pix"
    sample_every: int = 1
    samples: int = 4
    keep_checkpoints: int = 2
    preset: str = None
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.objective not in TABLE1_OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(TABLE1_OBJECTIVES)}, "
                             f"got {self.objective!r}")
        if self.crop_size % (2**self.num_downs):
            raise ValueError(f"crop_size {self.crop_size} is not divisible by 2**num_downs = "
                             f"{2**self.num_downs}: pick a crop size multiple of it or a smaller "
                             "--num-downs.")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of "
                             f"{', '.join(map(str, MIXED_PRECISION))}, got {self.mixed_precision!r}")
        if self.epochs < 0 or self.epochs_decay < 0 or self.epochs + self.epochs_decay < 1:
            raise ValueError("epochs + epochs_decay must be at least 1.")

    @property
    def total_epochs(self):
        return self.epochs + self.epochs_decay

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def save(self, path):
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path):
        return cls(**json.loads(Path(path).read_text()))


PRESETS = {
    "paper": dict(data="pix2pix/facades", direction="BtoA"),
    "quick": dict(data="demo", ngf=16, ndf=16, epochs=12, epochs_decay=12),
}


def preset(name, **overrides):
    """A :class:`TrainConfig` for preset ``name`` with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return TrainConfig(**{**PRESETS[name], "preset": name, **overrides})
