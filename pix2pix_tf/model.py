"""``Pix2Pix``: the conditional GAN that trains with ``model.fit``.

One ``train_step`` does what the reference code's ``optimize_parameters`` does, per batch:

1. G translates the inputs once: ``fake = G(x)``.
2. D is updated on ``D(x, y)`` (real) and ``D(x, fake)`` (fake, no gradient into G) with the
   halved loss (real + fake) / 2.
3. G is updated on ``lambda_gan * GAN(D(x, fake)) + lambda_l1 * |y - fake|``, with D already
   updated in step 2, as in the reference.

Losses are summed per example and divided by the *global* batch size, so gradients, which
``tf.distribute`` sums over replicas, equal single-device gradients; under ``mixed_float16`` both
optimizers are wrapped in ``LossScaleOptimizer`` and the step scales and unscales the losses.

Make strategies with :func:`pix2pix_tf.distribute.strategy`: TensorFlow's second
``MirroredStrategy`` in a process reuses the first one's collective keys and fails ("Shape
mismatch in the collective instance"); that helper gives each strategy its own keys.

Inputs may be a bare image batch or a dict of named inputs (``{"image": ..., **conditions}``),
as the generator's contract (:class:`pix2pix_tf.networks.Generator`) names them: batches are
``(inputs, target)`` either way, and the discriminator sees the image. A generator with a second
input therefore trains, predicts and exports with no change here.

``call()`` is the translation, ``test_step`` reports L1, PSNR, SSIM and the grid and sharpness
measures (:class:`pix2pix_tf.core.metrics.TextureMetric`), and the whole model
(both networks, the loss settings, the inference mode, and both optimizers with their state)
saves to one ``.keras`` file that loads with ``safe_mode=True``.
"""

import json

import keras
import tensorflow as tf
from keras import ops

from pix2pix_tf.core import losses
from pix2pix_tf.core.layers import blur, check_inference_mode
from pix2pix_tf.core.metrics import SWDMetric, TextureMetric, image_scores
from pix2pix_tf.core.optimizers import FusedAdam
from pix2pix_tf.data.pipeline import DIRECTIONS
from pix2pix_tf.networks import (
    Generator,
    build_discriminator,
    build_generator,
    image_of,
)

#: The most a model's records (``training_config``, ``model_card``) may hold, as JSON.
MAX_RECORD_BYTES = 1 << 20
#: The training_config entries that commands read back from a model (export, evaluation, the
#: web page), and what each must be when present: they come from a .keras file.
_TRAINED_TEXT = ("data", "columns", "direction", "task", "text_encoder", "generator")
_TRAINED_SIZES = ("crop_size", "load_size", "edit_size")
_LARGEST_SIDE = 1 << 14


def check_records(training_config=None, model_card=None):
    """Raises ``ValueError`` unless ``training_config`` and ``model_card`` (what a model carries
    in its .keras file, which may come from anywhere) are JSON objects of at most
    :data:`MAX_RECORD_BYTES` with text keys; a card's values are text, and the settings that
    commands read back from a config (its data, columns, direction; image sizes up to 16,384)
    have their types."""
    for label, record in (("training_config", training_config), ("model_card", model_card)):
        if record is None:
            continue
        if not isinstance(record, dict) or not all(isinstance(k, str) for k in record):
            raise ValueError(f"the model's {label} must map names to values; got a "
                             f"{type(record).__name__}.")
        try:
            size = len(json.dumps(record, default=lambda value: repr(value)[:100]))
        except (TypeError, ValueError, RecursionError) as error:
            raise ValueError(f"the model's {label} is not plain JSON data "
                             f"({type(error).__name__}).") from None
        if size > MAX_RECORD_BYTES:
            raise ValueError(f"the model's {label} takes {size:,} bytes, more than "
                             f"{MAX_RECORD_BYTES:,}.")
    for key, value in (model_card or {}).items():
        if not isinstance(value, str):
            raise ValueError(f"the model card's {key!r:.40} must be text, got a "
                             f"{type(value).__name__}.")
    for label, record in (("training_config", training_config), ("model card", model_card)):
        direction = (record or {}).get("direction")
        if direction is not None and direction not in DIRECTIONS:
            raise ValueError(f"the model's {label} direction must be one of "
                             f"{', '.join(DIRECTIONS)}; got {direction!r:.40}.")
    for key in _TRAINED_TEXT + _TRAINED_SIZES:
        value = (training_config or {}).get(key)
        if value is None:
            continue
        if key in _TRAINED_SIZES:
            if type(value) is not int or not 1 <= value <= _LARGEST_SIDE:
                raise ValueError(f"the model's training_config {key} must be a whole number "
                                 f"from 1 to {_LARGEST_SIDE:,}; got {value!r:.40}.")
        elif not isinstance(value, str):
            raise ValueError(f"the model's training_config {key} must be text; got a "
                             f"{type(value).__name__}.")

#: The loader of published generators (set by :mod:`pix2pix_tf.tasks.translate`, which owns
#: them), so that ``Pix2Pix.from_pretrained`` works without this module importing a task.
PRETRAINED_LOADER = [None]


class _Untracked:
    """Holds a Keras object out of Keras' tracking, so a derived view of a network (which
    shares its layers) is neither saved twice nor expected in a loaded file."""

    def __init__(self, value):
        self.value = value


def _averaged_copy(generator):
    """A copy of ``generator`` (same architecture and, to start, same weights) to hold the
    moving average of its weights."""
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(generator))
    copy.set_weights(generator.get_weights())
    return copy


def cutout_mask(shape, fraction, seed):
    """A ``(batch, H, W, 1)`` float mask of ones with one zero square per example, its side
    ``fraction`` of the image's (rounded), at a position drawn uniformly (stateless, from
    ``seed``) so the square lies inside the image; DiffAugment's cutout."""
    batch, height, width = shape[0], shape[1], shape[2]
    sides = [tf.cast(tf.round(fraction * tf.cast(d, tf.float32)), tf.int32)
             for d in (height, width)]
    corner = tf.random.stateless_uniform((batch, 2), seed, 0.0, 1.0)
    top, left = [tf.cast(tf.floor(corner[:, i] * tf.cast(d - side + 1, tf.float32)), tf.int32)
                 for i, (d, side) in enumerate(zip((height, width), sides))]
    rows = tf.range(height)[None, :, None]
    cols = tf.range(width)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + sides[0])[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + sides[1])[:, None, None]))
    return tf.cast(~inside, tf.float32)[..., None]


def default_optimizer(learning_rate=2e-4, beta_1=0.5):
    """The paper's optimizer: Adam(lr=2e-4, beta_1=0.5, beta_2=0.999).

    ``epsilon=1e-8`` is PyTorch's default, i.e. the reference code's (Keras' default is 1e-7).
    ``learning_rate`` may be a schedule such as :class:`pix2pix_tf.LinearDecay`. The update is
    Keras' Adam computed by one fused kernel per variable (:class:`pix2pix_tf.FusedAdam`).
    """
    return FusedAdam(learning_rate, beta_1=beta_1, beta_2=0.999, epsilon=1e-8)



def _check_settings(*, gan_mode, inference_mode, lambda_l1, lambda_gan, lambda_feat, lambda_ffl,
                    r1_gamma, r1_every, d_cutout, d_shift, g_ema):
    """:class:`Pix2Pix`'s argument checks, each error saying what is allowed."""
    losses.check_gan_mode(gan_mode)
    check_inference_mode(inference_mode)
    if min(lambda_l1, lambda_gan, lambda_feat, lambda_ffl, r1_gamma) < 0:
        raise ValueError("lambda_l1, lambda_gan, lambda_feat, lambda_ffl and r1_gamma must "
                         "be >= 0.")
    if not 0.0 <= d_cutout < 1.0:
        raise ValueError(f"d_cutout must be in [0, 1), got {d_cutout}.")
    if int(r1_every) < 1:
        raise ValueError(f"r1_every must be >= 1, got {r1_every}.")
    if not 0.0 <= g_ema < 1.0:
        raise ValueError(f"g_ema must be in [0, 1) (0: no average), got {g_ema}.")
    if lambda_l1 == 0 and lambda_gan == 0:
        raise ValueError("lambda_l1 and lambda_gan are both 0: there is nothing to train.")
    if int(d_shift) < 0:
        raise ValueError(f"d_shift must be >= 0, got {d_shift}.")


def _shift_rng(seed):
    """The (seed, counter) the pairs' shifts and cutouts are drawn from, saved with the model
    so that a resumed run draws the same ones."""
    initial = [int(seed) if seed is not None else 0, 0]
    return keras.Variable(
        lambda shape, dtype=None: ops.convert_to_tensor(initial, "int32"), shape=(2,),
        dtype="int32", trainable=False, name="d_shift_rng", synchronization="on_read",
        aggregation="only_first_replica")


def _default_networks(generator, discriminator, input_channels, output_channels, *, lambda_gan,
                      conditional, inference_mode, seed):
    """The paper's networks where none is given (no discriminator for an L1-only model), and
    a clear error for a generator that does not state its contract."""
    if generator is None:
        generator = build_generator("unet_256", input_channels, output_channels,
                                    inference_mode=inference_mode, seed=seed)
    if not isinstance(generator, Generator):
        raise TypeError(
            f"generator must be a pix2pix_tf.networks.Generator (which states its inputs, "
            f"channels and size multiple), got {type(generator).__name__}. Build it with a "
            "registered builder, or wrap your functional network: Generator(inputs, "
            "outputs, size_multiple=...)."
        )
    if discriminator is None and lambda_gan > 0:
        discriminator = build_discriminator(
            "patchgan", generator.input_channels, generator.output_channels,
            conditional=conditional, seed=None if seed is None else seed + 1,
        )
    return generator, discriminator

@keras.saving.register_keras_serializable(package="pix2pix_tf")
class Pix2Pix(keras.Model):
    """Generator and discriminator trained together with the pix2pix objective.

    Args:
        generator: a :class:`~pix2pix_tf.networks.Generator` (any entry of
            ``pix2pix_tf.networks.GENERATORS``, or your own); default the paper's unet_256.
        discriminator: a discriminator model (see ``pix2pix_tf.networks.DISCRIMINATORS``);
            default the 70x70 conditional PatchGAN. Built only when ``lambda_gan > 0``: the
            L1-only objective trains no discriminator. A multi-scale discriminator's GAN losses
            are summed over its scales.
        input_channels, output_channels: channel counts for the default networks.
        lambda_l1: weight of the L1 term (paper: 100).
        lambda_gan: weight of the GAN term (paper: 1; 0 is Table 1's "L1" row).
        gan_mode: 'vanilla' (paper) or 'lsgan'.
        conditional: whether the default discriminator sees the input image (cGAN, paper) or
            only the output (GAN). Ignored when a discriminator is passed: then its number of
            inputs decides.
        inference_mode: how ``call(training=False)``, ``predict`` and ``evaluate`` treat dropout
            and normalisation: 'paper' (default: dropout on, per-image statistics),
            'deterministic' (dropout off, per-image statistics) or 'moving_average' (Keras'
            usual BatchNorm running statistics). See :mod:`pix2pix_tf.core.layers`.
        seed: integer fixing the default networks' initial weights and dropout masks.
        lambda_feat: weight of pix2pixHD's discriminator feature-matching loss (pix2pixHD: 10).
            0 (default, the paper's objective) leaves it out. It matches the discriminator's
            block activations: those a ``multiscale`` discriminator returns, or a PatchGAN's
            LeakyReLU outputs (read through a view of it that saves nothing). It exists because
            it stabilises training with multi-scale discriminators at high resolution.
        d_shift: roll the pairs the discriminator sees (real and fake, input and image
            together) by a random offset below ``d_shift`` pixels in each direction at every
            training call; 0 (default, the paper's) does not. A PatchGAN's logits lie on a
            lattice of its total stride (8 pixels for 70x70), so its gradient to the generator
            does too, and a short run paints that lattice into its outputs; random shifts
            keep the lattice from staying in place (DiffAugment-style translation, Zhao et al.,
            2020).
        d_cutout: DiffAugment's cutout (Zhao et al., 2020): in every pair the discriminator
            sees, a random square of ``d_cutout`` times the image's side is set to 0 (the same
            square in the input and the image); 0 (default, the paper's) does not. Meant to keep D
            from winning by memorising; in the first run it lowers the grid (benchmarks/NOTES.md)
            but D still wins.
        r1_gamma: weight of the R1 penalty, ``r1_gamma / 2 * |grad_y D(x, y)|^2`` at real pairs
            (Mescheder et al., 2018), applied lazily every ``r1_every`` steps and scaled by it
            (StyleGAN2); 0 (default, the paper's) leaves it out. It penalises a discriminator
            whose verdict turns on faint pixel patterns, such as the lattice it prints.
        r1_every: steps between R1 penalties (lazy regularisation; 1 = every step).
        lambda_ffl: weight of the focal frequency loss (Jiang et al., ICCV 2021:
            :func:`pix2pix_tf.core.losses.focal_frequency_loss`); 0 (default, the paper's) leaves it
            out. It asks for the targets' spectrum, hard frequencies first, which L1 (blurry)
            and a lattice (one spike) both miss.
        l1_lowpass: compare output and target in the L1 term after a blur and 2x subsampling
            (:func:`pix2pix_tf.core.layers.blur`), not pixel by pixel; False (default) is the
            paper's. Detail finer than about 4 pixels (texture) cannot be predicted from the
            input to the pixel, so a full-resolution L1 asks for its average, nothing, and
            outweighs the adversarial term that asks for it; with the low-pass L1 that band is
            the adversarial term's alone, while L1 still fixes the colours and the layout. The
            logged ``g_l1`` is then this half-resolution L1; validation's ``l1`` stays the
            full-resolution one.
        g_ema: decay of an exponential moving average of the generator's weights (Yazici et
            al., ICLR 2019; ProGAN, StyleGAN), updated after every generator step with TF's
            warm-up ``min(g_ema, (1 + t) / (10 + t))``; 0 (default, the paper's) keeps none.
            The average (``generator_ema``, saved in the .keras file) is what validation,
            ``predict``, ``evaluate`` and export use while ``use_ema`` is true: the average of
            a GAN's oscillating iterates is smoother in time and so carries less of each step's
            lattice.
        use_ema: whether inference uses the averaged generator (default: when there is one).
        training_config: the options of the run that trained the model (a
            :class:`pix2pix_tf.config.TrainConfig` as a dict), saved inside the model so that
            later steps (export calibration, evaluation) know its data and settings.
        model_card: what a published model does and how to feed it (dataset, direction, input
            preparation; see :mod:`pix2pix_tf.tasks.translate.pretrained`), saved inside the
            model.
        g_sees_updated_d: ``True`` (default, the reference's order) computes G's GAN term with
            the discriminator *after* this batch's D update, which costs a third D forward pass.
            ``False`` is the TF tutorial's single pass: both losses come from one D(x, G(x)),
            so G sees D before its update. It is a deviation that changes results; it exists for
            speed (one D forward fewer; measured in benchmarks/NOTES.md).

    ``pix2pix_tf.core.losses.TABLE1_OBJECTIVES`` maps each row of the paper's Table 1 to these
    arguments, e.g. ``Pix2Pix(**TABLE1_OBJECTIVES["L1+GAN"])``.

    It is the shared conditional GAN of every task (:mod:`pix2pix_tf.tasks`): a task with
    conditions beyond the image gives it a generator (and discriminator) that take them, and a
    task needing more (the instruction editor) subclasses it.
    """

    #: The task (:data:`pix2pix_tf.tasks.TASKS`) whose models this class makes.
    task_name = "translate"

    def __init__(
        self,
        generator=None,
        discriminator=None,
        *,
        input_channels=3,
        output_channels=3,
        lambda_l1=100.0,
        lambda_gan=1.0,
        gan_mode="vanilla",
        conditional=True,
        inference_mode="paper",
        seed=None,
        g_sees_updated_d=True,
        lambda_feat=0.0,
        d_shift=0,
        d_cutout=0.0,
        r1_gamma=0.0,
        r1_every=16,
        lambda_ffl=0.0,
        l1_lowpass=False,
        g_ema=0.0,
        use_ema=None,
        training_config=None,
        model_card=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_settings(gan_mode=gan_mode, inference_mode=inference_mode, lambda_l1=lambda_l1,
                        lambda_gan=lambda_gan, lambda_feat=lambda_feat, lambda_ffl=lambda_ffl,
                        r1_gamma=r1_gamma, r1_every=r1_every, d_cutout=d_cutout,
                        d_shift=d_shift, g_ema=g_ema)
        generator, discriminator = _default_networks(
            generator, discriminator, input_channels, output_channels, lambda_gan=lambda_gan,
            conditional=conditional, inference_mode=inference_mode, seed=seed)
        self.generator = generator
        self.discriminator = discriminator
        self.lambda_l1, self.lambda_gan = float(lambda_l1), float(lambda_gan)
        self.lambda_feat = float(lambda_feat)
        check_records(training_config, model_card)
        self.training_config = dict(training_config) if training_config else None
        self.model_card = dict(model_card) if model_card else None
        self.gan_mode = gan_mode
        self.seed = seed
        self.g_sees_updated_d = bool(g_sees_updated_d)
        self.d_shift = int(d_shift)
        self.d_cutout = float(d_cutout)
        self.r1_gamma, self.r1_every = float(r1_gamma), int(r1_every)
        self.lambda_ffl = float(lambda_ffl)
        self.l1_lowpass = bool(l1_lowpass)
        if self.d_shift or self.d_cutout:
            self.shift_rng = _shift_rng(seed)
        self._set_average(generator, g_ema, use_ema, inference_mode)
        self._feature_view = None
        if self.lambda_feat > 0:
            self._feature_view = _Untracked(self._features_of(self.discriminator))
        self._make_trackers()
        self.g_optimizer = None
        self.d_optimizer = None
        self.built = True

    def _set_average(self, generator, g_ema, use_ema, inference_mode):
        """The generator average (``g_ema`` > 0) and whether inference uses it; both networks
        take the model's inference mode."""
        self.g_ema = float(g_ema)
        self.generator_ema = _averaged_copy(generator) if self.g_ema > 0 else None
        self._use_ema = self.generator_ema is not None if use_ema is None else bool(use_ema)
        if self._use_ema and self.generator_ema is None:
            raise ValueError("use_ema=True needs g_ema > 0 (a generator average to use).")
        self._inference_mode = inference_mode
        for network in (generator, self.generator_ema):
            if network is not None:
                network.inference_mode = inference_mode

    def _make_trackers(self):
        """The losses' and the validation's running means (Keras resets them every epoch)."""
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_gan_tracker = keras.metrics.Mean(name="g_gan")
        self.g_l1_tracker = keras.metrics.Mean(name="g_l1")
        self.g_feat_tracker = keras.metrics.Mean(name="g_feat")
        self.g_total_tracker = keras.metrics.Mean(name="g_total")
        self.d_real_acc_tracker = keras.metrics.Mean(name="d_real_acc")
        self.d_fake_acc_tracker = keras.metrics.Mean(name="d_fake_acc")
        self.l1_tracker = keras.metrics.Mean(name="l1")
        self.psnr_tracker = keras.metrics.Mean(name="psnr")
        self.ssim_tracker = keras.metrics.Mean(name="ssim")
        self.texture_tracker = TextureMetric(name="texture")  # logs grid and sharp
        # Filled by every validation step, scored once per pass by callbacks.ValidationSWD
        # (its result sorts 32 images' patches: too slow to log at every step).
        self.swd_tracker = SWDMetric(channels=self.generator.output_channels, name="swd")

    # ----------------------------------------------------------------------------- properties
    @property
    def input_channels(self):
        return self.generator.input_channels

    @property
    def output_channels(self):
        return self.generator.output_channels

    @property
    def conditional(self):
        return self.discriminator is not None and len(self.discriminator.inputs) == 2

    def _features_of(self, discriminator):
        """``discriminator`` if it returns block activations beside its logits (a list of
        per-scale lists ``[features..., logits]``, as ``multiscale`` does), else a view of it
        (the same layers and weights) that does: its LeakyReLU activations, then its logits.
        ``ValueError`` when there is none to match (no discriminator, or no such layers)."""
        output = getattr(discriminator, "output", None)
        if isinstance(output, (list, tuple)) and all(
                isinstance(scale, (list, tuple)) and len(scale) > 1 for scale in output):
            return discriminator
        blocks = [layer.output for layer in getattr(discriminator, "layers", ())
                  if layer.name.endswith("_lrelu")]
        if not (self.trains_discriminator and blocks):
            raise ValueError(
                "lambda_feat > 0 needs a discriminator with block activations to match: the "
                "PatchGAN's LeakyReLU layers, or one returning per scale [features..., logits] "
                "such as 'multiscale'.")
        return keras.Model(discriminator.inputs, [[*blocks, output]],
                           name=f"{discriminator.name}_features")

    @property
    def trains_discriminator(self):
        return self.discriminator is not None and self.lambda_gan > 0

    @property
    def inference_mode(self):
        """'paper', 'deterministic' or 'moving_average'; settable on a trained model."""
        return self._inference_mode

    @inference_mode.setter
    def inference_mode(self, mode):
        check_inference_mode(mode)
        for generator in (self.generator, self.generator_ema):
            if generator is not None:
                generator.inference_mode = mode
        self._inference_mode = mode
        self._retrace()

    def _retrace(self):
        # Functions traced under the old settings baked them in; retrace on next use.
        self.predict_function = None
        self.test_function = None

    @property
    def use_ema(self):
        """Whether inference (``call``, validation, export) uses ``generator_ema``; settable
        on a model trained with ``g_ema > 0``."""
        return self._use_ema

    @use_ema.setter
    def use_ema(self, value):
        if value and self.generator_ema is None:
            raise ValueError("this model keeps no generator average (trained with g_ema=0).")
        self._use_ema = bool(value)
        self._retrace()

    @property
    def inference_generator(self):
        """The generator that translates at test time: the average when ``use_ema``."""
        return self.generator_ema if self._use_ema else self.generator

    @property
    def train_metrics(self):
        trackers = [self.g_gan_tracker, self.g_l1_tracker]
        trackers += [self.g_feat_tracker] if self.lambda_feat > 0 else []
        trackers += [self.g_total_tracker]
        balance = [self.d_real_acc_tracker, self.d_fake_acc_tracker]
        return ([self.d_loss_tracker] if self.trains_discriminator else []) + trackers + (
            balance if self.trains_discriminator else [])

    @property
    def test_metrics(self):
        """Reset before every validation pass. ``test_step`` logs all but ``swd_tracker``, which
        :class:`pix2pix_tf.callbacks.ValidationSWD` scores once at the pass's end."""
        return [self.l1_tracker, self.psnr_tracker, self.ssim_tracker, self.texture_tracker,
                self.swd_tracker]

    @property
    def metrics(self):
        # Listed here so that Keras resets them at the start of every epoch.
        return self.train_metrics + self.test_metrics

    # -------------------------------------------------------------------------------- compile
    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Configures training. Both optimizers default to :func:`default_optimizer`.

        Other keyword arguments (``steps_per_execution``, ``jit_compile``, ``run_eagerly``)
        go to ``keras.Model.compile``. ``loss``, ``metrics`` and ``optimizer`` are not used: the
        objective is fixed by the constructor's arguments.
        """
        for unused in ("loss", "optimizer", "metrics"):
            if kwargs.get(unused) is not None:
                raise ValueError(
                    f"Pix2Pix.compile does not take {unused!r}: the losses are set by "
                    "Pix2Pix(lambda_l1=..., lambda_gan=..., gan_mode=...), the optimizers by "
                    "g_optimizer= and d_optimizer=."
                )
            kwargs.pop(unused, None)
        super().compile(optimizer=None, **kwargs)
        g_optimizer = g_optimizer or default_optimizer()
        if self.trains_discriminator:
            d_optimizer = d_optimizer or default_optimizer()
        if self.dtype_policy.name == "mixed_float16":
            g_optimizer = self._loss_scaled(g_optimizer, "g")
            d_optimizer = d_optimizer and self._loss_scaled(d_optimizer, "d")
        # Create the optimizer slots now, in the caller's distribution scope; created lazily
        # inside a distributed train step they break, and loading a saved state needs them.
        g_optimizer.build(self.generator.trainable_variables)
        if d_optimizer is not None:
            d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self._pix2pix_compile_args = {
            k: kwargs[k] for k in ("steps_per_execution", "jit_compile", "run_eagerly")
            if k in kwargs
        }

    @staticmethod
    def _loss_scaled(optimizer, prefix):
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return optimizer
        return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{prefix}_loss_scale")

    def get_compile_config(self):
        if not self.compiled or self.g_optimizer is None:
            return {}
        config = dict(self._pix2pix_compile_args)
        config["g_optimizer"] = keras.optimizers.serialize(self.g_optimizer)
        if self.d_optimizer is not None:
            config["d_optimizer"] = keras.optimizers.serialize(self.d_optimizer)
        return config

    def compile_from_config(self, config):
        config = dict(config)
        for key in ("g_optimizer", "d_optimizer"):
            if key in config:
                config[key] = keras.optimizers.deserialize(config[key])
        self.compile(**config)

    # -------------------------------------------------------------------------- the networks
    def call(self, inputs, training=False):
        """Translates a batch of input images in [-1, 1], given as a tensor or as a dict of
        named inputs (honours ``inference_mode``; the average generator when ``use_ema``,
        except in training)."""
        return (self.generator if training else self.inference_generator)(
            inputs, training=training)

    def network_inputs(self, inputs, training=False):
        """The networks' inputs for model inputs (the same here; a subclass may turn, say,
        instruction strings into token ids)."""
        return inputs

    def discriminate(self, inputs, images, training=True):
        """The discriminator's verdict on ``images`` given ``inputs`` (ignored if
        unconditional): ``(logits, features)``, each a list with one entry per scale
        (features: the list of block activations, empty when the discriminator gives none)."""
        pair = self.discriminator_inputs(inputs, images)
        if training and (self.d_shift > 0 or self.d_cutout > 0):
            pair = self._augmented(pair)
        network = self._feature_view.value if self._feature_view else self.discriminator
        out = network(pair, training=training)
        if network is not self.discriminator and not isinstance(out[0], (list, tuple)):
            out = [out]  # a one-scale view's [features..., logits], which Keras unnests
        scales = list(out) if isinstance(out, (list, tuple)) else [out]
        scales = [list(s) if isinstance(s, (list, tuple)) else [s] for s in scales]
        return [s[-1] for s in scales], [s[:-1] for s in scales]

    def _augmented(self, pair):
        """The discriminator's images rolled together by a random (dy, dx) in
        ``[0, d_shift)``, then cut out (``d_shift``, ``d_cutout``: see the class docstring)."""
        state = tf.convert_to_tensor(self.shift_rng.value)
        self.shift_rng.assign(state + tf.constant([0, 1], "int32"))
        if self.d_shift > 0:
            dy, dx = tf.unstack(tf.random.stateless_uniform((2,), state, 0, self.d_shift,
                                                            "int32"))
            pair = tf.nest.map_structure(
                lambda t: tf.roll(t, [dy, dx], [1, 2]) if len(t.shape) == 4 else t, pair)
        if self.d_cutout > 0:
            images = [t for t in tf.nest.flatten(pair) if len(t.shape) == 4]
            keep = cutout_mask(tf.shape(images[0]), self.d_cutout,
                               tf.random.experimental.stateless_fold_in(state, 1))
            pair = tf.nest.map_structure(
                lambda t: t * tf.cast(keep, t.dtype) if len(t.shape) == 4 else t, pair)
        return pair

    def discriminator_inputs(self, inputs, images):
        """What the discriminator is called with: ``[input image, images]`` (conditional) or
        ``images``. Models with more conditions (an instruction) add theirs here."""
        return [image_of(inputs), images] if self.conditional else images

    def _unpack(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(
                "Pix2Pix trains and evaluates on (input, target) pairs, but the data gave "
                "inputs only. Pass a dataset of (input_batch, target_batch) tuples."
            )
        if sample_weight is not None:
            raise ValueError("Pix2Pix does not support sample weights.")
        self._check_pair(x, y)
        return x, y

    def _check_pair(self, x, y):
        x_shape, y_shape = tuple(image_of(x).shape), tuple(y.shape)
        if y_shape[-1] is not None and y_shape[-1] != self.output_channels:
            raise ValueError(
                f"The targets have {y_shape[-1]} channels but the generator produces "
                f"{self.output_channels} (target batch shape {y_shape}). Fix: convert the "
                f"targets or build the model with output_channels={y_shape[-1]}."
            )
        for axis, what in ((1, "height"), (2, "width")):
            if None not in (x_shape[axis], y_shape[axis]) and x_shape[axis] != y_shape[axis]:
                raise ValueError(
                    f"Inputs and targets differ in {what}: input batch {x_shape}, target batch "
                    f"{y_shape}. pix2pix needs pixel-aligned pairs of the same size."
                )

    # ---------------------------------------------------------------------------- the steps
    def train_step(self, data):
        x, y = self._unpack(data)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        global_batch = ops.cast(ops.shape(y)[0] * replicas, "float32")
        if self.trains_discriminator and not self.g_sees_updated_d:
            return self._single_pass_step(x, y, global_batch, replicas)

        with tf.GradientTape() as g_tape:
            fake = self.generator(x, training=True)
            fake_logits = matching = None
            if self.trains_discriminator:
                with g_tape.stop_recording():
                    d_loss = self._discriminator_step(x, y, ops.stop_gradient(fake), global_batch)
                    if self.lambda_feat > 0:  # real features from the updated D
                        real_features = self.discriminate(x, y, training=True)[1]
                fake_logits, fake_features = self.discriminate(x, fake, training=True)
                if self.lambda_feat > 0:
                    matching = (fake_features, real_features)
            g = self._generator_loss(fake_logits, y, fake, matching)
            g_loss = ops.sum(g["total"]) / global_batch
            scaled_g_loss = self.g_optimizer.scale_loss(g_loss)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply(g_tape.gradient(scaled_g_loss, g_vars), g_vars)
        self._update_average()

        return self._record(g, d_loss if self.trains_discriminator else None, replicas)

    def _update_average(self):
        """One step of ``generator_ema`` (see ``g_ema``); under a distribution strategy, in
        the cross-replica context (every replica holds the same weights)."""
        if self.generator_ema is None:
            return
        step = ops.cast(self.g_optimizer.iterations, "float32")
        decay = ops.minimum(self.g_ema, (1.0 + step) / (10.0 + step))

        def update(*_):
            for average, weight in zip(self.generator_ema.trainable_variables,
                                       self.generator.trainable_variables):
                average.assign(decay * average + (1.0 - decay) * ops.cast(weight, average.dtype))
            for average, value in zip(self.generator_ema.non_trainable_variables,
                                      self.generator.non_trainable_variables):
                average.assign(value)  # normalisation statistics, dropout seeds: the latest

        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            context.merge_call(update)
        else:
            update()

    def _record(self, g, d_loss, replicas):
        """Updates the progress-bar trackers; losses shown are per-example means."""
        if d_loss is not None:  # scaled by 1 / global batch: undo the replica split
            self.d_loss_tracker.update_state(d_loss * ops.cast(replicas, "float32"))
        self.g_gan_tracker.update_state(g["gan"])
        self.g_l1_tracker.update_state(g["l1"])
        if "feat" in g:
            self.g_feat_tracker.update_state(g["feat"])
        self.g_total_tracker.update_state(g["total"])
        return {m.name: m.result() for m in self.train_metrics}

    def _single_pass_step(self, x, y, global_batch, replicas):
        """The TF tutorial's step: one D pass serves both losses (``g_sees_updated_d=False``)."""
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(x, training=True)
            real_logits, real_features = self.discriminate(x, y, training=True)
            fake_logits, fake_features = self.discriminate(x, fake, training=True)
            d_loss = ops.sum(losses.discriminator_loss(real_logits, fake_logits, self.gan_mode))
            d_loss = d_loss / global_batch + self._r1(x, y, global_batch)
            self._record_balance(real_logits, fake_logits)
            g = self._generator_loss(fake_logits, y, fake, (fake_features, real_features))
            g_loss = ops.sum(g["total"]) / global_batch
            scaled_d_loss = self.d_optimizer.scale_loss(d_loss)
            scaled_g_loss = self.g_optimizer.scale_loss(g_loss)
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables
        self.d_optimizer.apply(d_tape.gradient(scaled_d_loss, d_vars), d_vars)
        self.g_optimizer.apply(g_tape.gradient(scaled_g_loss, g_vars), g_vars)
        self._update_average()
        return self._record(g, d_loss, replicas)

    def _generator_loss(self, fake_logits, y, fake, matching):
        target, output = (blur(y, 2), blur(fake, 2)) if self.l1_lowpass else (y, fake)
        g = losses.generator_loss(fake_logits, target, output, self.lambda_l1, self.lambda_gan,
                                  self.gan_mode, matching, self.lambda_feat)
        if self.lambda_ffl > 0:
            g["total"] = g["total"] + self.lambda_ffl * losses.focal_frequency_loss(y, fake)
        return g

    def _discriminator_step(self, x, y, fake, global_batch):
        """One update of D on real ``y`` and generated ``fake`` (R1 included); its loss."""
        with tf.GradientTape() as d_tape:
            per_example, real_logits, fake_logits = self._discriminator_loss(x, y, fake)
            d_loss = ops.sum(per_example) / global_batch + self._r1(x, y, global_batch)
            scaled = self.d_optimizer.scale_loss(d_loss)
        d_vars = self.discriminator.trainable_variables
        self.d_optimizer.apply(d_tape.gradient(scaled, d_vars), d_vars)
        self._record_balance(real_logits, fake_logits)
        return d_loss

    def _discriminator_loss(self, x, y, fake):
        """D's per-example loss, with its logits on the real and the generated pairs (a task
        with more terms, such as the editor's wrong instructions, adds them here)."""
        real_logits = self.discriminate(x, y, training=True)[0]
        fake_logits = self.discriminate(x, fake, training=True)[0]
        per_example = losses.discriminator_loss(real_logits, fake_logits, self.gan_mode)
        return per_example, real_logits, fake_logits

    def _r1(self, x, y, global_batch):
        """The lazy R1 penalty's share of D's loss this step (0 on the steps between, and when
        ``r1_gamma`` is 0): ``r1_every * r1_gamma / 2 * |grad_y D(x, y)|^2`` per example."""
        if self.r1_gamma <= 0:
            return 0.0

        def penalty():
            with tf.GradientTape() as tape:
                tape.watch(y)
                logits = self.discriminate(x, y, training=True)[0]
                total = tf.add_n([ops.sum(ops.cast(scale, "float32")) for scale in logits])
            gradient = ops.cast(tape.gradient(total, y), "float32")
            per_example = ops.sum(ops.square(gradient), axis=[1, 2, 3])
            return ops.sum(per_example) * (0.5 * self.r1_gamma * self.r1_every) / global_batch

        due = ops.equal(self.d_optimizer.iterations % self.r1_every, 0)
        return tf.cond(due, penalty, lambda: tf.constant(0.0))

    def _record_balance(self, real_logits, fake_logits):
        """D's accuracy on this step's real and generated pairs (``d_real_acc``,
        ``d_fake_acc``): how far ahead of G it is (both near 1: D is winning)."""
        self.d_real_acc_tracker.update_state(
            losses.discriminator_accuracy(real_logits, True, self.gan_mode))
        self.d_fake_acc_tracker.update_state(
            losses.discriminator_accuracy(fake_logits, False, self.gan_mode))

    def test_step(self, data):
        x, y = self._unpack(data)
        out = self(x, training=False)
        scores = image_scores(y, out)
        self.l1_tracker.update_state(scores["l1"])
        self.psnr_tracker.update_state(scores["psnr"])
        self.ssim_tracker.update_state(scores["ssim"])
        self.texture_tracker.update_state(y, out)
        self.swd_tracker.update_state(y, out)
        logs = {}
        for metric in self.test_metrics:  # the texture metric gives two: grid and sharp
            if metric is self.swd_tracker:
                continue
            result = metric.result()
            logs.update(result if isinstance(result, dict) else {metric.name: result})
        return logs

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self(x, training=False)

    # ------------------------------------------------------------------------- serialisation
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        config.update(
            generator=keras.saving.serialize_keras_object(self.generator),
            discriminator=(
                None if self.discriminator is None
                else keras.saving.serialize_keras_object(self.discriminator)
            ),
            lambda_l1=self.lambda_l1,
            lambda_gan=self.lambda_gan,
            gan_mode=self.gan_mode,
            inference_mode=self.inference_mode,
            seed=self.seed,
            g_sees_updated_d=self.g_sees_updated_d,
            lambda_feat=self.lambda_feat,
            d_shift=self.d_shift,
            d_cutout=self.d_cutout,
            r1_gamma=self.r1_gamma,
            r1_every=self.r1_every,
            lambda_ffl=self.lambda_ffl,
            l1_lowpass=self.l1_lowpass,
            g_ema=self.g_ema,
            use_ema=self.use_ema,
            training_config=self.training_config,
            model_card=self.model_card,
        )
        return config

    @classmethod
    def from_pretrained(cls, name, **kwargs):
        """The authors' published generator ``name`` (facades_label2photo, sat2map, map2sat,
        edges2shoes, day2night) or a reference ``.pth`` file, converted to Keras; see
        :func:`pix2pix_tf.tasks.translate.pretrained.load_pretrained` (which the translate
        task plugs in here) for the options."""
        return PRETRAINED_LOADER[0](name, **kwargs)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        if config.get("discriminator") is not None:
            config["discriminator"] = keras.saving.deserialize_keras_object(
                config["discriminator"]
            )
        return cls(**config)
