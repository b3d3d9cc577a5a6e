"""The ``translate`` task: pix2pix, image -> image (Isola et al., CVPR 2017).

The shared GAN (:class:`pix2pix_tf.Pix2Pix`) with no conditions beyond the image. Presets:

- ``paper``: the paper's facades recipe (unet_256 + 70x70 PatchGAN, L1 + cGAN with lambda 100,
  Adam 2e-4 / 0.5, batch 1, 100 + 100 epochs, 286 -> 256 jitter, labels -> photo = BtoA);
- ``quick`` (the command line's default): the same architecture shape, objective and recipe with
  16 base filters and a short schedule on the bundled demo data, so that a first run finishes in
  about two minutes on a 2-core CPU: 2 epochs (1,158 steps) at a constant 2e-4. Its length and
  schedule are chosen from measurements (benchmarks/NOTES.md): with the grain below, a third
  epoch decaying the rate to 0 added grain and cost accuracy (held-out L1 0.191 -> 0.202). It
  computes in float32 on every machine (``mixed_precision="float32"``, not ``auto``), so that
  the first run's numbers do not depend on whether the CPU has bfloat16, which moved them
  (sharp 0.48 -> 0.29 in a run of this length). It keeps the paper's objective (lambda 100) and adds named deviations
  so that the adversarial term adds texture and no lattice (benchmarks/NOTES.md, "Texture
  without a lattice"): ``up_init="bilinear"``
  and ``up_phases="balanced"`` (the paper's transposed convolutions, starting as bilinear
  upsampling and trained with their four output phases at one gain: a fixed lattice needs
  phases that differ), ``pixel_noise=4`` (noise channels beside the last up-convolution's
  input: the grain of a satellite photo cannot be predicted from the map), ``l1_lowpass``
  (the L1 term between blurred half-resolution images, so the finest octave is the
  adversarial term's alone), ``d_shift=32`` (the discriminator's pairs rolled at random, so its
  8-pixel logit lattice does not stay in place) and ``g_ema=0.999`` (an average of G's
  weights, kept when it validates better). Measured on the 32 held-out tiles: grid 1.11 (real
  photos score 1), sharp 0.65, SWD 218 (L1 alone: 2.9, 0.03, 373), at L1 0.192 and PSNR 18.3
  (L1 alone: 0.187, 18.6). The ``paper`` preset keeps the paper's values.

Its own options: ``on_error`` (what folders of pairs do with bad files). The authors' published
generators (:mod:`.pretrained`) are translators too.
"""

from dataclasses import dataclass

from pix2pix_tf import model as _model
from pix2pix_tf.options import check_choices, option
from pix2pix_tf.tasks.base import Task, register_task
from pix2pix_tf.tasks.translate.pretrained import PRETRAINED, load_pretrained

ON_ERROR = ("raise", "skip")


@dataclass
class TranslateOptions:
    on_error: str = option("raise", "bad files in folders of pairs: stop with a list of them, "
                           "or skip them with a warning", "translate", ON_ERROR)

    def __post_init__(self):
        check_choices(self)


class TranslateTask(Task):
    name = "translate"
    summary = "pix2pix: image -> image"
    Options = TranslateOptions
    PRESETS = {
        "paper": dict(data="pix2pix/facades", direction="BtoA"),
        "quick": dict(data="demo", ngf=16, ndf=16, epochs=2, epochs_decay=0,
                      mixed_precision="float32", up_init="bilinear", up_phases="balanced",
                      pixel_noise=4, l1_lowpass=True, d_shift=32, g_ema=0.999),
    }
    default_preset = "quick"

    def source_options(self, config):
        return {**super().source_options(config), "on_error": config.on_error}


TASK = register_task(TranslateTask())
_model.PRETRAINED_LOADER[0] = load_pretrained

__all__ = ["PRETRAINED", "TASK", "TranslateOptions", "TranslateTask", "load_pretrained"]
