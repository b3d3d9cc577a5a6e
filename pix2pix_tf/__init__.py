"""pix2pix_tf: paired image-to-image translation (Isola et al., CVPR 2017) for Keras 3.

>>> from pix2pix_tf import Pix2Pix, load_paired_dataset
>>> model = Pix2Pix()          # the paper's unet_256 + 70x70 PatchGAN, L1 + cGAN, lambda 100
>>> model.compile()            # Adam(2e-4, beta_1=0.5) for both networks
>>> pairs = load_paired_dataset("demo")   # or a folder, arrays, or a TFDS name
>>> model.fit(pairs, epochs=200)
"""

from pix2pix_tf.callbacks import SampleGrid
from pix2pix_tf.data import DataError, load_paired_dataset, scan_pairs
from pix2pix_tf.discriminator import patchgan_discriminator, receptive_field
from pix2pix_tf.generator import unet_generator
from pix2pix_tf.layers import INFERENCE_MODES, set_inference_mode
from pix2pix_tf.losses import TABLE1_OBJECTIVES
from pix2pix_tf.model import Pix2Pix, default_optimizer
from pix2pix_tf.schedules import LinearDecay

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "INFERENCE_MODES",
    "LinearDecay",
    "Pix2Pix",
    "SampleGrid",
    "TABLE1_OBJECTIVES",
    "default_optimizer",
    "load_paired_dataset",
    "patchgan_discriminator",
    "receptive_field",
    "scan_pairs",
    "set_inference_mode",
    "unet_generator",
]
