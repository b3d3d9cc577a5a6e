"""The U-Net's up-convolutions rewritten as sub-pixel convolutions, for TFLite export.

Every decoder block of the generator is a 4x4, stride-2, 'same' transposed convolution. TFLite's
TRANSPOSE_CONV (XNNPACK on x86) runs these several times slower than ordinary convolutions of the
same arithmetic (measured in benchmarks/NOTES.md, experiment 14). So the TFLite export computes
each one as four ordinary 2x2 convolutions, one per output pixel phase, interleaved by
``depth_to_space``. It is the same linear map with the same weights: only
float rounding differs.

The derivation, per spatial axis. With kernel taps ``w[0..3]`` and the 'same' padding of one
pixel before, output ``o[y]`` takes input ``x[i]`` with tap ``k = y - 2i + 1``::

    o[2a]     = w[3] * x[a - 1] + w[1] * x[a]        (even outputs: taps 3 and 1)
    o[2a + 1] = w[2] * x[a]     + w[0] * x[a + 1]    (odd outputs: taps 2 and 0)

Both are 2-tap 'valid' convolutions of the input padded by one pixel on each side, starting at
padded offset 0 (even) or 1 (odd). In 2-D the four phases (even/odd rows x even/odd columns) give
four 2x2 convolutions whose outputs, stacked as channels in the order ``depth_to_space``
expects, interleave into the 2x larger output.

Training keeps ``Conv2DTranspose``: TensorFlow's own kernels for it are fast, and the saved
models stay ordinary Keras models.
"""

import keras
from keras import ops

#: Taps of the 4-tap kernel used by the even (0) and odd (1) output phases, in input order.
PHASE_TAPS = {0: [3, 1], 1: [2, 0]}


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class SubpixelConv2DTranspose(keras.layers.Layer):
    """A 4x4, stride-2, 'same' ``Conv2DTranspose`` computed as four 2x2 convolutions.

    Its weights have the shapes and order of the ``Conv2DTranspose`` it replaces (kernel
    ``(4, 4, filters, in_channels)``, then the bias if any), so ``set_weights`` copies them over.
    """

    def __init__(self, filters, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.use_bias = use_bias

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel",
                                      shape=(4, 4, self.filters, input_shape[-1]))
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
                     if self.use_bias else None)

    def call(self, x):
        height, width = ops.shape(x)[1], ops.shape(x)[2]
        kernel = ops.transpose(ops.cast(self.kernel, x.dtype), (0, 1, 3, 2))  # (4, 4, in, out)
        padded = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        phases = []
        for row in (0, 1):
            for col in (0, 1):
                taps = ops.take(ops.take(kernel, PHASE_TAPS[row], axis=0), PHASE_TAPS[col], axis=1)
                window = padded[:, row:row + height + 1, col:col + width + 1, :]
                phases.append(ops.conv(window, taps, strides=1, padding="valid"))
        out = ops.depth_to_space(ops.concatenate(phases, axis=-1), 2)
        if self.bias is not None:
            out = out + ops.cast(self.bias, out.dtype)
        return out

    def compute_output_shape(self, input_shape):
        scale = [None if d is None else 2 * d for d in input_shape[1:3]]
        return (input_shape[0], *scale, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "use_bias": self.use_bias}


def replaceable(layer):
    """Whether ``layer`` is a transposed convolution that the rewrite covers."""
    return (isinstance(layer, keras.layers.Conv2DTranspose)
            and tuple(layer.kernel_size) == (4, 4) and tuple(layer.strides) == (2, 2)
            and layer.padding == "same" and tuple(layer.dilation_rate) == (1, 1)
            and layer.data_format == "channels_last" and layer.output_padding is None
            and layer.activation in (None, keras.activations.linear))


def with_subpixel_upsampling(model):
    """A copy of ``model`` (a functional generator) whose 4x4 stride-2 'same' transposed
    convolutions are :class:`SubpixelConv2DTranspose` layers with the same weights."""

    def clone(layer):
        if replaceable(layer):
            return SubpixelConv2DTranspose(layer.filters, layer.use_bias, name=layer.name,
                                           dtype=layer.dtype_policy)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
