"""Building blocks shared by the generator and the discriminator.

Everything here is a registered, serialisable Keras layer (no Lambda layers), so models built from
these blocks save to ``.keras`` and load with ``safe_mode=True``.

The inference mode
------------------
The paper keeps dropout on at test time (it is the generator's only source of noise) and
normalises with the *test batch's* statistics rather than running averages; the paper trains with
batch size 1, so at test time that is per-image normalisation. Keras' default inference behaviour
(dropout off, BatchNorm moving averages) is therefore not the paper's. Every normalisation and
dropout layer here takes an explicit ``inference_mode``:

``"paper"``
    Dropout stays on and every image is normalised with its own statistics. Outputs are stochastic,
    as in the paper, and an image's output never depends on the other images in its batch.
``"deterministic"``
    Dropout off, per-image statistics: repeatable, and still batch-independent. The export default.
``"moving_average"``
    Keras' standard semantics: dropout off, BatchNorm uses its moving averages. Useful when a model
    was trained with large batches, where per-image statistics differ from the training ones.

In every mode, inference never updates the BatchNorm moving statistics; only ``training=True``
does.
"""

import random as _python_random

import keras
import numpy as np
from keras import ops

INFERENCE_MODES = ("paper", "deterministic", "moving_average")

#: The paper (and the reference code) initialise every convolution from N(0, 0.02).
INIT_STDDEV = 0.02


def check_inference_mode(mode):
    if mode not in INFERENCE_MODES:
        raise ValueError(
            f"Unknown inference_mode {mode!r}. Choose one of {', '.join(INFERENCE_MODES)}: "
            "'paper' keeps dropout on and normalises each image by its own statistics (the "
            "paper's test-time behaviour), 'deterministic' is the same without dropout, "
            "'moving_average' is Keras' usual BatchNorm running statistics without dropout."
        )
    return mode


class SeedSequence:
    """Hands out distinct integer seeds derived from one base seed.

    Every initializer and dropout layer gets its own integer seed, so one ``seed`` argument fixes
    all initial weights and dropout masks, while the saved configs stay plain integers.
    ``seed=None`` means fresh randomness each time.
    """

    def __init__(self, seed=None):
        self.seed = seed
        self._count = 0

    def next(self):
        if self.seed is None:
            return None
        self._count += 1
        return int(self.seed) * 1000 + self._count


def conv_init(seeds):
    return keras.initializers.RandomNormal(mean=0.0, stddev=INIT_STDDEV, seed=seeds.next())


#: How the decoder's up-convolutions start: the paper's N(0, 0.02) taps, or bilinear.
UP_INITS = ("normal", "bilinear")


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class BilinearUpsamplingInit(keras.initializers.Initializer):
    """A 4x4, stride-2 'same' ``Conv2DTranspose`` kernel that starts as bilinear upsampling
    followed by a random 1x1 channel mix: ``kernel[y, x, out, in] = b[y] * b[x] * m[out, in]``
    with ``b = [1, 3, 3, 1] / 4`` and ``m ~ N(0, stddev)``.

    With these taps each output pixel phase interpolates its two nearest input pixels with
    weights 3/4 and 1/4 (:mod:`pix2pix_tf.core.subpixel` derives the phases), so the untrained
    decoder paints smooth images; the paper's independent N(0, 0.02) taps give each of the four
    phases its own filter, the checkerboard that early training shows (Odena et al., 2016)
    until the phases learn to agree. The layer, its parameters and every export are the
    paper's; only the starting point differs. ``stddev`` defaults to 0.04: for a smooth input
    a phase's output then has about the variance of the paper's four independent taps.
    """

    def __init__(self, stddev=2 * INIT_STDDEV, seed=None):
        self.stddev = stddev
        self.seed = seed

    def __call__(self, shape, dtype=None):
        height, width, out_channels, in_channels = shape
        if (height, width) != (4, 4):
            raise ValueError(f"BilinearUpsamplingInit is for 4x4 kernels, got {shape}.")
        taps = keras.ops.convert_to_tensor([0.25, 0.75, 0.75, 0.25], dtype=dtype)
        mix = keras.random.normal((out_channels, in_channels), stddev=self.stddev, seed=self.seed,
                                  dtype=dtype)
        return taps[:, None, None, None] * taps[None, :, None, None] * mix[None, None]

    def get_config(self):
        return {"stddev": self.stddev, "seed": self.seed}


def up_conv_init(seeds, up_init="normal", balanced=False):
    """The kernel initializer of a 4x4 stride-2 transposed convolution (see :data:`UP_INITS`);
    ``balanced``: projected by :class:`BalancedPhases`, the constraint it will train under."""
    init = (BilinearUpsamplingInit(seed=seeds.next()) if up_init == "bilinear"
            else conv_init(seeds))
    return BalancedPhasesInit(init) if balanced else init


#: How the up-convolutions' four output phases may differ: 'free' (paper) or 'balanced'.
UP_PHASES = ("free", "balanced")


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class BalancedPhases(keras.constraints.Constraint):
    """Keeps a stride-2 transposed convolution's four output phases at one gain.

    A stride-2 transposed convolution computes each output pixel phase (even or odd row and
    column) with its own sub-kernel: the taps whose kernel row and column have that parity. Where
    the four sub-kernels sum to different gains, a flat input comes out as a 2-pixel
    checkerboard, and a stack of such layers prints a lattice of period 2, 4, ... 2^k (Odena et
    al., 2016): the one thing in the paper's U-Net that ties the output to a fixed grid. This
    constraint projects the kernel, after every optimizer step, onto the kernels whose four
    sub-kernels have the same sum for every input-output channel pair (the mean of the four):
    each sub-kernel's taps move by an equal share of its excess. Flat regions then stay flat
    at every layer, and the network keeps every other freedom of its sub-kernels (Sugawara et
    al., 2019, make the same condition hold by construction). The projection is linear and
    exact, and the layer stays a plain ``Conv2DTranspose``, so exports are unchanged.
    """

    def __call__(self, kernel):
        height, width, out_channels, in_channels = kernel.shape
        grouped = ops.reshape(kernel, (height // 2, 2, width // 2, 2, out_channels, in_channels))
        sums = ops.sum(grouped, axis=(0, 2), keepdims=True)  # per phase (row, column parity)
        excess = sums - ops.mean(sums, axis=(1, 3), keepdims=True)
        grouped = grouped - excess / ((height // 2) * (width // 2))
        return ops.reshape(grouped, (height, width, out_channels, in_channels))


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class BalancedPhasesInit(keras.initializers.Initializer):
    """``initializer``'s kernel projected by :class:`BalancedPhases`, so that a balanced layer
    is balanced from its first step (the bilinear start already is)."""

    def __init__(self, initializer):
        self.initializer = keras.initializers.get(initializer)

    def __call__(self, shape, dtype=None):
        return BalancedPhases()(self.initializer(shape, dtype=dtype))

    def get_config(self):
        return {"initializer": keras.initializers.serialize(self.initializer)}

    @classmethod
    def from_config(cls, config):
        return cls(keras.initializers.deserialize(config["initializer"]))


def gamma_init(seeds):
    return keras.initializers.RandomNormal(mean=1.0, stddev=INIT_STDDEV, seed=seeds.next())


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class InputCheck(keras.layers.Layer):
    """Identity layer that rejects an input with the wrong channel count, with a message for
    people, before it fails deep inside the graph with an opaque shape error. (Generators check
    their images through their contract, :class:`pix2pix_tf.networks.Generator`.)"""

    def __init__(self, channels, network="network", **kwargs):
        kwargs.pop("multiple", None)  # accepted from configs written before the contract
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.network = network

    def call(self, inputs):
        shape = inputs.shape
        if shape[-1] is not None and shape[-1] != self.channels:
            raise ValueError(
                f"The {self.network} was built for {self.channels}-channel images but got "
                f"{shape[-1]} channels (input shape {tuple(shape)}). Fix: convert the images "
                f"(e.g. grayscale <-> RGB) or build the model with matching channels."
            )
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "network": self.network}


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class BatchNorm(keras.layers.BatchNormalization):
    """BatchNormalization with the paper's test-time statistics available.

    Training (``training=True``) is ordinary BatchNorm: batch statistics, moving averages updated.
    At inference, ``inference_mode`` "paper" or "deterministic" normalises each image with its own
    per-channel mean and variance (over height and width) and the learned gamma/beta, which is
    what the paper's batch-size-1 BatchNorm does at test time and never mixes images of a batch;
    "moving_average" uses the moving statistics. Defaults ``momentum=0.9``, ``epsilon=1e-5`` are
    PyTorch's, i.e. the reference implementation's.

    Under ``tf.distribute`` the training statistics are per replica (``synchronized=False``):
    with one image per replica every image keeps its own statistics, as in the paper's
    batch-size-1 training, instead of being coupled to images on other devices.
    """

    def __init__(self, inference_mode="paper", momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(momentum=momentum, epsilon=epsilon, **kwargs)
        self.inference_mode = check_inference_mode(inference_mode)

    def call(self, inputs, training=None, mask=None):
        if training or self.inference_mode == "moving_average":
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")
        mean, variance = ops.moments(x, axes=[1, 2], keepdims=True)
        x = (x - mean) * ops.rsqrt(variance + self.epsilon)
        if self.scale:
            x = x * ops.cast(self.gamma, "float32")
        if self.center:
            x = x + ops.cast(self.beta, "float32")
        return ops.cast(x, self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config["inference_mode"] = self.inference_mode
        return config


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class InstanceNorm(keras.layers.GroupNormalization):
    """Instance normalisation (one group per channel), as the reference code's ``--norm instance``.

    Non-affine by default, like PyTorch's ``InstanceNorm2d``. Always per-image, so it behaves the
    same in every inference mode; ``inference_mode`` is accepted only for a uniform interface.
    """

    def __init__(self, inference_mode="paper", center=False, scale=False, epsilon=1e-5, **kwargs):
        kwargs.pop("groups", None)
        super().__init__(groups=-1, center=center, scale=scale, epsilon=epsilon, **kwargs)
        self.inference_mode = check_inference_mode(inference_mode)

    def get_config(self):
        config = super().get_config()
        config["inference_mode"] = self.inference_mode
        return config


class _StatelessDraws:
    """Random draws from stateless ops keyed by ``(seed, counter)``, where the counter is a
    saved weight of the layer (``rng_state``). Unlike Keras' seed generators, whose state
    Keras neither saves nor keeps consistent under ``tf.distribute``, this makes a reloaded
    model draw exactly what the original would have drawn (exact resume), and the counter is
    kept per replica with no cross-replica traffic; each replica folds its replica id into the
    key, so replicas draw differently."""

    def _build_rng(self):
        initial = self.seed if self.seed is not None else _python_random.randint(1, 2**30)
        # A keras.Variable assigned to the layer is tracked (and saved) like add_weight's, but
        # add_weight does not pass on ``synchronization``.
        self.rng_state = keras.Variable(
            name="rng_state",
            shape=(2,),
            dtype="int32",
            initializer=lambda shape, dtype=None: ops.convert_to_tensor([initial, 0], "int32"),
            trainable=False,
            synchronization="on_read",
            aggregation="only_first_replica",
        )

    def _next_key(self):
        """This call's key; advances the counter."""
        import tensorflow as tf

        state = tf.convert_to_tensor(self.rng_state.value)
        key = state
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            key = tf.random.experimental.stateless_fold_in(
                state, tf.cast(context.replica_id_in_sync_group, "int32")
            )
        self.rng_state.assign(state + tf.constant([0, 1], "int32"))
        return key


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class Dropout(_StatelessDraws, keras.layers.Layer):
    """Dropout that, in the paper's inference mode, stays on at test time.

    In pix2pix, dropout is the generator's only noise source, and the paper applies it at test
    time too. With ``inference_mode="paper"`` this layer drops units whether or not ``training``
    is set; in the other modes it is ordinary inverted dropout, active only in training. Masks
    are stateless draws (:class:`_StatelessDraws`): exact on resume and under ``tf.distribute``.
    """

    def __init__(self, rate, inference_mode="paper", seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}.")
        self.rate = float(rate)
        self.seed = seed
        self.inference_mode = check_inference_mode(inference_mode)
        self.supports_masking = True

    def build(self, input_shape):
        self._build_rng()

    def call(self, inputs, training=False):
        if self.rate == 0 or not (training or self.inference_mode == "paper"):
            return inputs
        import tensorflow as tf

        noise = tf.random.stateless_uniform(tf.shape(inputs), seed=self._next_key(),
                                            dtype="float32")
        keep = tf.cast(noise >= self.rate, self.compute_dtype)
        return inputs * keep / ops.cast(1.0 - self.rate, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed, inference_mode=self.inference_mode)
        return config


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class PixelNoise(_StatelessDraws, keras.layers.Layer):
    """Gaussian noise channels at full resolution, for a generator to make texture from.

    Called on an image ``(b, h, w, c)``; returns ``(b, h, w, channels)`` of N(0, 1) noise.
    Detail finer than a few pixels (the grain of a satellite photo) cannot be predicted from
    the input, so a deterministic generator can only blur it or print a pattern; with noise
    it can draw it (StyleGAN's per-pixel noise inputs, Karras et al., 2019). In training, and
    in the paper's inference mode (as the paper's dropout), every call draws fresh noise
    (stateless, :class:`_StatelessDraws`). In the other modes the noise is a fixed field: a
    saved N(0, 1) tile of :attr:`PERIOD` pixels square, repeated, so that inference and every
    export are deterministic and agree exactly. The period is prime, so the repeat shares no
    lattice with the networks' power-of-two strides.
    """

    PERIOD = 251

    def __init__(self, channels, inference_mode="paper", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.seed = seed
        self.inference_mode = check_inference_mode(inference_mode)

    def build(self, input_shape):
        self._build_rng()
        self.field = self.add_weight(
            name="field", shape=(self.PERIOD, self.PERIOD, self.channels), trainable=False,
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=self.seed))

    def call(self, image, training=False):
        shape = ops.shape(image)
        size = (shape[0], shape[1], shape[2], self.channels)
        if training or self.inference_mode == "paper":
            import tensorflow as tf

            return tf.random.stateless_normal(size, seed=self._next_key(),
                                              dtype=self.compute_dtype)
        repeats = (1, shape[1] // self.PERIOD + 1, shape[2] // self.PERIOD + 1, 1)
        field = ops.tile(ops.cast(self.field, self.compute_dtype)[None], repeats)
        return ops.broadcast_to(field[:, :shape[1], :shape[2]], size)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, seed=self.seed, inference_mode=self.inference_mode)
        return config


NORMS = ("batch", "instance", "none")


def normalization(norm, seeds, inference_mode="paper", name=None):
    """The normalisation layer for ``norm`` ('batch', 'instance' or 'none' -> None)."""
    if norm == "batch":
        return BatchNorm(
            inference_mode=inference_mode, gamma_initializer=gamma_init(seeds), name=name
        )
    if norm == "instance":
        return InstanceNorm(inference_mode=inference_mode, name=name)
    if norm == "none":
        return None
    raise ValueError(f"Unknown norm {norm!r}; choose one of {', '.join(NORMS)}.")


def walk_layers(model):
    """Every layer inside ``model``, depth first, through nested models (``Model.layers`` is
    Keras' public view of direct sublayers)."""
    for layer in getattr(model, "layers", ()):
        yield layer
        yield from walk_layers(layer)


def set_inference_mode(model, mode):
    """Switches every mode-aware layer of ``model`` (recursively) to ``mode``.

    Compiled functions traced under the old mode must be retraced; ``Pix2Pix.inference_mode``
    takes care of that for its own functions.
    """
    check_inference_mode(mode)
    for layer in walk_layers(model):
        if isinstance(layer, (BatchNorm, InstanceNorm, Dropout, PixelNoise)):
            layer.inference_mode = mode


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class ReflectionPad2D(keras.layers.Layer):
    """Mirror padding of height and width by ``padding`` pixels (PyTorch's ``ReflectionPad2d``,
    which the reference ResNet generator uses before its 7x7 and 3x3 convolutions)."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        return ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        grow = [None if d is None else d + 2 * self.padding for d in input_shape[1:3]]
        return (input_shape[0], *grow, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def blur(images, strides=1):
    """:class:`Blur2D`'s filter as a function: the ``[1, 2, 1]``-squared binomial blur per
    channel, reflect-padded, keeping every ``strides``-th row and column."""
    channels = images.shape[-1]
    taps = np.array([1.0, 2.0, 1.0])
    kernel = np.outer(taps, taps) / 16.0
    kernel = np.tile(kernel[:, :, None, None], (1, 1, channels, 1)).astype("float32")
    padded = ops.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
    kernel = ops.cast(ops.convert_to_tensor(kernel), images.dtype)
    return ops.depthwise_conv(padded, kernel, strides=strides, padding="valid")


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class Blur2D(keras.layers.Layer):
    """A fixed 3x3 binomial low-pass filter (``[1, 2, 1]`` outer ``[1, 2, 1]`` / 16) per channel,
    reflect-padded so the size is kept; no weights.

    Placed before a strided convolution it is Zhang's anti-aliasing ("Making Convolutional
    Networks Shift-Invariant Again", ICML 2019): a stride-2 convolution alone aliases every
    frequency above a quarter of the sampling rate onto its output lattice, so a discriminator
    built from them is most sensitive to patterns at that lattice (Schwarz et al., NeurIPS 2021)
    and its gradient paints them into the generator's outputs.

    ``strides=2`` keeps every second row and column of the blurred image: Zhang's BlurPool,
    which placed after a stride-1 convolution and its activation replaces a stride-2
    convolution without hiding the finest detail from it.
    """

    def __init__(self, strides=1, **kwargs):
        super().__init__(**kwargs)
        if strides not in (1, 2):
            raise ValueError(f"Blur2D strides must be 1 or 2, got {strides}.")
        self.strides = strides

    def call(self, inputs):
        return blur(inputs, self.strides)

    def compute_output_shape(self, input_shape):
        if self.strides == 1:
            return input_shape
        half = [None if d is None else (d + 1) // 2 for d in input_shape[1:3]]
        return (input_shape[0], *half, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "strides": self.strides}


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class ColourTransform(keras.layers.Layer):
    """A per-pixel affine colour transform of an image, with predicted coefficients.

    Called on ``[coefficients, image]``: ``image`` ``(b, h, w, c)`` and ``coefficients``
    ``(b, h, w, channels * d)``, read per pixel as a ``channels x d`` matrix ``C`` (row-major)
    acting on the pixel's basis vector ``v``: ``[x, 1]`` (``d = c + 1``), or with
    ``extremes=True`` ``[x, 1, max(x), min(x)]`` (``d = c + 3``), the pixel's largest and
    smallest channel. The output is ``clip((I + C) v, -1, 1)``: the identity ``I`` (ones on
    the diagonal, none elsewhere) plus the coefficients, so small coefficients copy the input.
    The network then describes an edit by how it changes each pixel's colour, and the image's
    own detail passes through exactly (Gharbi et al. 2017, HDRNet, predict such coefficients
    for photo enhancement). The output is clipped rather than squashed by tanh, so that an
    affine map of the colours (grayscale, sepia, inversion, brightness) is exactly
    representable; with the extremes, so are the maps HSV is made of (a half turn of the hue
    is ``max + min - x`` per channel). ``channels`` is the output's channel count.
    """

    def __init__(self, channels, extremes=False, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.extremes = bool(extremes)

    def call(self, inputs):
        coefficients, image = inputs
        image = ops.cast(image, coefficients.dtype)
        basis = [image, ops.ones_like(image[..., :1])]
        if self.extremes:
            basis += [ops.max(image, axis=-1, keepdims=True),
                      ops.min(image, axis=-1, keepdims=True)]
        basis = ops.concatenate(basis, axis=-1)
        depth = basis.shape[-1]
        shape = ops.shape(image)
        matrix = ops.reshape(coefficients, (shape[0], shape[1], shape[2], self.channels, depth))
        identity = np.eye(self.channels, depth, dtype="float32")
        out = ops.sum((matrix + ops.cast(identity, matrix.dtype)) * basis[..., None, :], axis=-1)
        return ops.clip(out, -1.0, 1.0)

    def compute_output_shape(self, input_shapes):
        return (*input_shapes[1][:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "extremes": self.extremes}
