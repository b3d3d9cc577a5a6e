"""pix2pix_tf: paired image-to-image translation (Isola et al., CVPR 2017) for Keras 3.

>>> import pix2pix_tf
>>> result = pix2pix_tf.train("quick")              # the bundled demo data, minutes on a CPU
>>> model = pix2pix_tf.load_model(result["model"])  # any model this package writes
>>> output = pix2pix_tf.translate(model, image)     # (H, W, C) in [-1, 1], any size
>>> pix2pix_tf.export(model, "exports/quick")       # SavedModel, TFLite, ONNX, each verified

or, piece by piece, the paper's recipe:

>>> from pix2pix_tf import Pix2Pix, load_paired_dataset
>>> model = Pix2Pix()          # the paper's unet_256 + 70x70 PatchGAN, L1 + cGAN, lambda 100
>>> model.compile()            # Adam(2e-4, beta_1=0.5) for both networks
>>> model.fit(load_paired_dataset("demo"), epochs=200)

``InstructPix2Pix`` is the instruction editor (image + "make it sepia" -> edited image), the
second task (:data:`TASKS`); ``EDITS`` is the registry of the bundled edits it trains on.

Importing the package registers every model, layer, schedule and optimizer class it writes with
Keras, so ``keras.models.load_model`` loads its ``.keras`` files in a fresh process. That imports
Keras and TensorFlow (about 3 s on a 2-core CPU); their start-up notices are kept off the
terminal (:mod:`pix2pix_tf.quiet`; ``PIX2PIX_TF_VERBOSE=1`` shows them).
"""

__version__ = "0.1.0"

from pix2pix_tf.quiet import import_tensorflow as _import_tensorflow

_import_tensorflow()

from pix2pix_tf.config import TrainConfig, preset  # noqa: E402
from pix2pix_tf.core.conditioning import Conditioning  # noqa: E402
from pix2pix_tf.core.layers import INFERENCE_MODES, set_inference_mode  # noqa: E402
from pix2pix_tf.core.losses import TABLE1_OBJECTIVES  # noqa: E402
from pix2pix_tf.core.optimizers import FusedAdam  # noqa: E402
from pix2pix_tf.core.schedules import LinearDecay  # noqa: E402
from pix2pix_tf.data import DataError, PairSource, load_paired_dataset, scan_pairs  # noqa: E402
from pix2pix_tf.data.sources import SOURCE_KINDS, open_source, register_source  # noqa: E402
from pix2pix_tf.exporters import TARGETS  # noqa: E402
from pix2pix_tf.exporters import export_model as export  # noqa: E402
from pix2pix_tf.exporters.hub import publish  # noqa: E402
from pix2pix_tf.inference import load_model, read_image, translate, write_image  # noqa: E402
from pix2pix_tf.model import Pix2Pix, default_optimizer  # noqa: E402
from pix2pix_tf.networks import (  # noqa: E402
    DISCRIMINATORS,
    GENERATORS,
    Generator,
    build_discriminator,
    build_generator,
    multiscale_discriminator,
    patchgan_discriminator,
    receptive_field,
    register_discriminator,
    register_generator,
    resnet_generator,
    unet_generator,
)
from pix2pix_tf.tasks import TASKS, Task, get_task, register_task, task_of  # noqa: E402
from pix2pix_tf.tasks.instruct import EDITS, InstructPix2Pix, register_edit  # noqa: E402
from pix2pix_tf.tasks.translate import PRETRAINED, load_pretrained  # noqa: E402
from pix2pix_tf.tasks.translate.torch_checkpoint import read_state_dict  # noqa: E402
from pix2pix_tf.training import train  # noqa: E402

__all__ = [
    "Conditioning", "DISCRIMINATORS", "DataError", "EDITS", "FusedAdam", "GENERATORS", "Generator",
    "INFERENCE_MODES", "InstructPix2Pix", "LinearDecay", "PRETRAINED", "PairSource", "Pix2Pix",
    "SOURCE_KINDS", "TABLE1_OBJECTIVES", "TARGETS", "TASKS", "Task", "TrainConfig",
    "build_discriminator", "build_generator", "default_optimizer", "export", "get_task",
    "load_model", "load_paired_dataset", "load_pretrained", "multiscale_discriminator",
    "open_source", "patchgan_discriminator", "preset", "publish", "read_image", "read_state_dict",
    "receptive_field", "register_discriminator", "register_edit", "register_generator",
    "register_source", "register_task", "resnet_generator", "scan_pairs", "set_inference_mode",
    "task_of", "train", "translate", "unet_generator", "write_image",
]
