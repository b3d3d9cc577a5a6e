"""pix2pix_tf: paired image-to-image translation (Isola et al., CVPR 2017) for Keras 3.

>>> from pix2pix_tf import Pix2Pix, load_paired_dataset
>>> model = Pix2Pix()          # the paper's unet_256 + 70x70 PatchGAN, L1 + cGAN, lambda 100
>>> model.compile()            # Adam(2e-4, beta_1=0.5) for both networks
>>> pairs = load_paired_dataset("demo")   # or a folder, arrays, or a TFDS name
>>> model.fit(pairs, epochs=200)

``InstructPix2Pix`` is the instruction-conditioned editor (image + "make it sepia" -> edited
image); ``EDITS`` is the registry of the bundled edits it trains on by default.

The names below are imported on first use, so ``import pix2pix_tf`` (and the command-line
entry points, which set TensorFlow's log level first) do not load TensorFlow up front.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "DISCRIMINATORS": "pix2pix_tf.networks",
    "DataError": "pix2pix_tf.data",
    "EDITS": "pix2pix_tf.edits",
    "FusedAdam": "pix2pix_tf.optimizers",
    "GENERATORS": "pix2pix_tf.networks",
    "Generator": "pix2pix_tf.networks",
    "INFERENCE_MODES": "pix2pix_tf.layers",
    "InstructPix2Pix": "pix2pix_tf.instruct",
    "LinearDecay": "pix2pix_tf.schedules",
    "PRETRAINED": "pix2pix_tf.pretrained",
    "PairSource": "pix2pix_tf.data",
    "Pix2Pix": "pix2pix_tf.model",
    "SampleGrid": "pix2pix_tf.callbacks",
    "TABLE1_OBJECTIVES": "pix2pix_tf.losses",
    "TrainConfig": "pix2pix_tf.config",
    "build_discriminator": "pix2pix_tf.networks",
    "build_generator": "pix2pix_tf.networks",
    "default_optimizer": "pix2pix_tf.model",
    "load_paired_dataset": "pix2pix_tf.data",
    "load_pretrained": "pix2pix_tf.pretrained",
    "multiscale_discriminator": "pix2pix_tf.networks",
    "patchgan_discriminator": "pix2pix_tf.networks",
    "read_state_dict": "pix2pix_tf.torch_checkpoint",
    "receptive_field": "pix2pix_tf.networks",
    "register_discriminator": "pix2pix_tf.networks",
    "register_edit": "pix2pix_tf.edits",
    "register_generator": "pix2pix_tf.networks",
    "resnet_generator": "pix2pix_tf.networks",
    "scan_pairs": "pix2pix_tf.data",
    "set_inference_mode": "pix2pix_tf.layers",
    "unet_generator": "pix2pix_tf.networks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pix2pix_tf' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
