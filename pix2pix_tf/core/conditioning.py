"""Conditioning: how an image network listens to inputs beyond the image.

Conditions (an instruction's words, a class label, a mask, ...) enter the image networks through
one hook, :class:`Conditioning`, never by the networks importing a task's modules. A builder
(:func:`pix2pix_tf.networks.unet_generator`, :func:`pix2pix_tf.networks.patchgan_discriminator`)
takes ``conditioning=`` and calls it at fixed points while it builds the functional graph:

- :meth:`Conditioning.inputs` once, first: the extra named ``keras.Input`` s (added to the
  network's inputs beside ``"image"``) and whatever embedding of them the hook needs;
- generators: :meth:`Conditioning.block` after every encoder and decoder block (the U-Net's
  ``down1`` ... ``downN``, ``up1`` ... ``upN-1``), e.g. FiLM;
- discriminators: :meth:`Conditioning.pixels` on the (input, image) pair before the body, and
  :meth:`Conditioning.logits` on the last layer's output (which has
  :meth:`Conditioning.extra_logit_channels` channels beyond the logit), e.g. a projection term.

The base class listens to nothing, so a network built with it is the paper's. A hook object
serves one network build (it keeps the tensors it made). The layers that conditioned networks
share live here too: :class:`FiLM`, :class:`CrossAttention`, :class:`Projection`,
:class:`TileLike`. Each is registered and serialisable, so conditioned models save to ``.keras``
and load with ``safe_mode=True``.
"""

import keras
from keras import ops

#: Token id of padding in sequence conditions (the masks below ignore it).
PAD = 0


class Conditioning:
    """The hook through which conditions enter a network; this base class adds none.

    Subclasses override what they need. ``name_prefix`` is put before the network's default
    name (``"instruct_"`` gives ``instruct_unet_64``).
    """

    name_prefix = ""

    def inputs(self, seeds, levels=None):
        """The extra inputs, ``{name: keras.Input}`` (none here). ``seeds`` is the builder's
        :class:`pix2pix_tf.core.layers.SeedSequence`; ``levels`` the generator's number of
        encoder levels (None for discriminators)."""
        return {}

    def block(self, x, name, depth=None):
        """A generator block's output ``x`` (named ``down3``, ``up2``, ...) after listening;
        ``depth``: for encoder blocks, how many levels lie below (0: the innermost), else
        None."""
        return x

    def pixels(self, x):
        """The discriminator's input pair tensor after listening."""
        return x

    def extra_logit_channels(self, ndf):
        """Channels the discriminator's last layer must give beyond the logit (0 here)."""
        return 0

    def logits(self, x):
        """The discriminator's last-layer output (logit + :meth:`extra_logit_channels`) ->
        ``(b, h, w, 1)`` logits."""
        return x

    @property
    def active(self):
        """Whether this hook adds anything (the base class does not)."""
        return type(self) is not Conditioning


NONE = Conditioning()


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class FiLM(keras.layers.Layer):
    """Feature-wise linear modulation (Perez et al., 2018): ``x * (1 + gamma) + beta`` per
    channel, ``[gamma, beta]`` projected from a condition vector.

    The projection starts at zero, so a FiLM layer starts as the identity and a conditioned
    network starts as the unconditioned one.
    """

    def build(self, input_shapes):
        channels, dim = input_shapes[0][-1], input_shapes[1][-1]
        self.projection = keras.layers.Dense(2 * channels, kernel_initializer="zeros",
                                             name="projection")
        self.projection.build((None, dim))

    def call(self, inputs):
        x, condition = inputs
        gamma, beta = ops.split(ops.cast(self.projection(condition), x.dtype), 2, axis=-1)
        return x * (1.0 + gamma[:, None, None, :]) + beta[:, None, None, :]

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class CrossAttention(keras.layers.Layer):
    """Every pixel of ``x (b, h, w, c)`` attends to the instruction's token embeddings
    ``(b, L, d)`` (padding masked), added back residually; the output projection starts at zero,
    so the layer starts as the identity. Used at low resolutions, where it is cheap."""

    def __init__(self, heads=2, **kwargs):
        super().__init__(**kwargs)
        self.heads = int(heads)

    def build(self, input_shapes):
        channels = input_shapes[0][-1]
        self.attention = keras.layers.MultiHeadAttention(
            self.heads, max(channels // self.heads, 8), output_shape=channels,
            kernel_initializer="glorot_uniform", name="attention")
        self.attention.build((None, None, channels), (None, None, input_shapes[1][-1]))
        self.attention._output_dense.kernel.assign(
            ops.zeros_like(self.attention._output_dense.kernel))

    def call(self, inputs):
        x, text, tokens = inputs
        shape = ops.shape(x)
        flat = ops.reshape(x, (shape[0], shape[1] * shape[2], shape[3]))
        mask = ops.broadcast_to(ops.greater(tokens, PAD)[:, None, :],
                                (shape[0], shape[1] * shape[2], ops.shape(tokens)[1]))
        attended = self.attention(flat, ops.cast(text, x.dtype), attention_mask=mask)
        return x + ops.reshape(attended, shape)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "heads": self.heads}


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class Projection(keras.layers.Layer):
    """The projection discriminator's text term (Miyato & Koyama, 2018): from the last block's
    ``[logit | phi] (b, h, w, 1 + k)`` and the text vector ``(b, d)``, the logits
    ``logit + <phi, W text>``, ``(b, h, w, 1)``."""

    def build(self, input_shapes):
        self.embed = keras.layers.Dense(input_shapes[0][-1] - 1, use_bias=False, name="embed")
        self.embed.build((None, input_shapes[1][-1]))

    def call(self, inputs):
        features, text = inputs
        logit, phi = features[..., :1], features[..., 1:]
        projected = ops.cast(self.embed(text), phi.dtype)[:, None, None, :]
        return logit + ops.sum(phi * projected, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[0][:-1]) + (1,)


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class TileLike(keras.layers.Layer):
    """``[vector (b, d), image (b, h, w, c)] -> (b, h, w, d)``: the vector at every pixel (the
    concat-conditioned discriminator's text channels)."""

    def call(self, inputs):
        vector, image = inputs
        shape = ops.shape(image)
        tiled = ops.broadcast_to(vector[:, None, None, :],
                                 (shape[0], shape[1], shape[2], ops.shape(vector)[-1]))
        return ops.cast(tiled, image.dtype)

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[1][:-1]) + (input_shapes[0][-1],)
