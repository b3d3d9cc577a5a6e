"""The ResNet generator of the reference code (``--netG resnet_9blocks`` / ``resnet_6blocks``).

Johnson et al.'s style-transfer network, which the reference pix2pix / CycleGAN code offers next
to the U-Net: no skip connections across the image, but residual blocks at 1/4 resolution.

    ReflectionPad(3) - Conv 7x7 ngf - Norm - ReLU                           (b, H, W, ngf)
    Conv 3x3 stride 2, 2ngf - Norm - ReLU                                   (b, H/2, W/2, 2ngf)
    Conv 3x3 stride 2, 4ngf - Norm - ReLU                                   (b, H/4, W/4, 4ngf)
    n_blocks x [x + (ReflectionPad(1) - Conv 3x3 - Norm - ReLU - (Dropout 0.5)
                     - ReflectionPad(1) - Conv 3x3 - Norm)]                 (b, H/4, W/4, 4ngf)
    ConvTranspose 3x3 stride 2, 2ngf - Norm - ReLU                          (b, H/2, W/2, 2ngf)
    ConvTranspose 3x3 stride 2, ngf - Norm - ReLU                           (b, H, W, ngf)
    ReflectionPad(3) - Conv 7x7 to the output channels (with bias) - tanh   (b, H, W, out)

As in the reference, convolutions feeding a BatchNorm have no bias, and dropout (on unless
``dropout=False``) sits in the middle of every residual block. Padding follows PyTorch exactly:
the stride-2 convolutions pad one pixel on every side (``ZeroPadding2D(1)`` + 'valid'), and the
transposed convolutions (``padding=1, output_padding=1`` in PyTorch) are a 'valid' transposed
convolution with its first row and column cropped, so a port of reference weights computes the
same function. Trainable parameters for 3 -> 3, ngf 64, batch norm: 11,383,427 (9 blocks) and
7,841,411 (6 blocks), the reference's counts. Height and width must be divisible by 4.
"""

import keras

from pix2pix_tf.core.layers import (
    NORMS,
    Dropout,
    ReflectionPad2D,
    SeedSequence,
    check_inference_mode,
    conv_init,
    normalization,
)
from pix2pix_tf.networks.contract import IMAGE, Generator

#: Two stride-2 downsamplings.
SIZE_MULTIPLE = 4


def resnet_generator(
    input_channels=3,
    output_channels=3,
    *,
    n_blocks=9,
    ngf=64,
    norm="batch",
    dropout=True,
    dropout_rate=0.5,
    inference_mode="paper",
    seed=None,
    name=None,
):
    """Builds the reference ResNet generator (see the module docstring).

    Args:
        input_channels, output_channels: image channels in and out.
        n_blocks: residual blocks at 1/4 resolution (reference: 9 for 256x256, 6 for 128x128).
        ngf: filters of the first layer (the residual blocks use ``4 * ngf``).
        norm: 'batch' (reference default for pix2pix), 'instance' or 'none'.
        dropout, dropout_rate: dropout inside each residual block (the reference's default
            for pix2pix; ``--no_dropout`` there is ``dropout=False`` here).
        inference_mode: 'paper', 'deterministic' or 'moving_average'.
        seed: integer fixing all initial weights and dropout masks, or ``None``.
        name: model name (default ``resnet_<n_blocks>blocks``).

    Returns:
        A :class:`~pix2pix_tf.networks.Generator` with size multiple 4.
    """
    if n_blocks < 0:
        raise ValueError(f"n_blocks must be >= 0, got {n_blocks}.")
    if norm not in NORMS:
        raise ValueError(f"Unknown norm {norm!r}; choose one of {', '.join(NORMS)}.")
    check_inference_mode(inference_mode)
    seeds = SeedSequence(seed)
    use_bias = norm != "batch"

    def conv(x, filters, kernel, layer_name, stride=1, bias=use_bias):
        return keras.layers.Conv2D(filters, kernel, strides=stride, padding="valid",
                                   use_bias=bias, kernel_initializer=conv_init(seeds),
                                   name=layer_name)(x)

    def norm_relu(x, prefix, relu=True):
        layer = normalization(norm, seeds, inference_mode, name=f"{prefix}_norm")
        if layer is not None:
            x = layer(x)
        return keras.layers.ReLU(name=f"{prefix}_relu")(x) if relu else x

    inputs = keras.Input((None, None, input_channels), name=IMAGE)  # (b, H, W, in)
    x = ReflectionPad2D(3, name="stem_pad")(inputs)
    x = norm_relu(conv(x, ngf, 7, "stem_conv"), "stem")  # (b, H, W, ngf)
    for i in range(2):  # (b, H/2, W/2, 2ngf), then (b, H/4, W/4, 4ngf)
        x = keras.layers.ZeroPadding2D(1, name=f"down{i + 1}_pad")(x)
        x = norm_relu(conv(x, ngf * 2 ** (i + 1), 3, f"down{i + 1}_conv", stride=2),
                      f"down{i + 1}")
    for b in range(n_blocks):  # residual blocks: (b, H/4, W/4, 4ngf)
        prefix = f"block{b + 1}"
        y = ReflectionPad2D(1, name=f"{prefix}_pad1")(x)
        y = norm_relu(conv(y, ngf * 4, 3, f"{prefix}_conv1"), f"{prefix}_1")
        if dropout:
            y = Dropout(dropout_rate, inference_mode=inference_mode, seed=seeds.next(),
                        name=f"{prefix}_dropout")(y)
        y = ReflectionPad2D(1, name=f"{prefix}_pad2")(y)
        y = norm_relu(conv(y, ngf * 4, 3, f"{prefix}_conv2"), f"{prefix}_2", relu=False)
        x = keras.layers.Add(name=f"{prefix}_add")([x, y])
    for i in range(2):  # (b, H/2, W/2, 2ngf), then (b, H, W, ngf)
        x = norm_relu(_upsample(x, ngf * 2 ** (1 - i), use_bias, seeds, f"up{i + 1}"),
                      f"up{i + 1}")
    x = ReflectionPad2D(3, name="output_pad")(x)
    x = conv(x, output_channels, 7, "output_conv", bias=True)
    outputs = keras.layers.Activation("tanh", dtype="float32", name="output_tanh")(x)
    return Generator(inputs, outputs, name=name or f"resnet_{n_blocks}blocks",
                     size_multiple=SIZE_MULTIPLE)


def _upsample(x, filters, use_bias, seeds, prefix):
    """PyTorch's ``ConvTranspose2d(3, stride=2, padding=1, output_padding=1)``: a 'valid'
    transposed convolution with its first row and column cropped, (b, h, w, c) -> (b, 2h, 2w,
    filters)."""
    x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="valid",
                                     use_bias=use_bias, kernel_initializer=conv_init(seeds),
                                     name=f"{prefix}_conv")(x)  # (b, 2h + 1, 2w + 1, f)
    return keras.layers.Cropping2D(((1, 0), (1, 0)), name=f"{prefix}_crop")(x)  # (b, 2h, 2w, f)
