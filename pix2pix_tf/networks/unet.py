"""The U-Net generator (paper section 3.1 and appendix 6.1.1).

Encoder, with Ck = Convolution(k filters, 4x4, stride 2) - Norm - LeakyReLU(0.2):

    C64 (no norm) - C128 - C256 - C512 - C512 - C512 - C512 - C512 (innermost, no norm)

Decoder, with CDk adding Dropout(0.5), ReLU activations, and each block's output concatenated
with the mirrored encoder activation (the U-Net skip connections):

    CD512 - CD512 - CD512 - C512 - C256 - C128 - C64 - conv to output channels - tanh

The innermost layer is 1x1 on a 256x256 image; normalising it would zero it at batch size 1, so
it has none. Convolutions feeding a BatchNorm have no bias (the norm's beta replaces it); like the
reference code, the whole network drops biases when BatchNorm is used, except the output layer.
With 3->3 channels this gives exactly the reference's 54,413,955 trainable parameters.

Dropout sits in the first three decoder blocks, as in the paper and the original Lua code. The
PyTorch reference shifts it one block outward (none in the innermost block, then the next
``num_downs - 5``); ``dropout_layout="reference"`` builds that, so that the reference's published
weights (:mod:`pix2pix_tf.tasks.translate.pretrained`) run with their own noise. The parameter
count is the same.

Conditions beyond the image (an instruction, a class label) enter through ``conditioning``, a
:class:`pix2pix_tf.core.conditioning.Conditioning` hook called after every encoder and decoder block:
the instruction editor modulates each block with FiLM there (per-block modulation, because the
skips bypass the 1x1 bottleneck; :mod:`pix2pix_tf.tasks.instruct`). With no hook the network is
the paper's.

``upsampling="resize_conv"`` replaces each 4x4 stride-2 transposed convolution by a
nearest-neighbour 2x resize and a 3x3 convolution (Odena, Dumoulin & Olah, "Deconvolution and
Checkerboard Artifacts", Distill 2016): a deviation from the paper that exists because
transposed convolutions whose kernel size is not a multiple of the stride can paint checkerboard
patterns (reference repository issue #190). It has fewer parameters (3x3 instead of 4x4 kernels).
"""

import keras

from pix2pix_tf.core.conditioning import NONE
from pix2pix_tf.core.layers import (
    NORMS,
    UP_INITS,
    UP_PHASES,
    BalancedPhases,
    ColourTransform,
    Dropout,
    PixelNoise,
    SeedSequence,
    check_inference_mode,
    conv_init,
    normalization,
    up_conv_init,
)
from pix2pix_tf.networks.contract import IMAGE, Generator, size_message

#: Number of decoder blocks, counted from the innermost, that carry dropout in the paper.
DROPOUT_BLOCKS = 3
#: Which decoder blocks carry dropout: the paper's first three, or the PyTorch reference's.
DROPOUT_LAYOUTS = ("paper", "reference")
#: How the decoder doubles the resolution: the paper's transposed convolution, or resize + conv.
UPSAMPLING = ("transpose", "resize_conv", "bilinear_conv")


def unet_generator(
    input_channels=3,
    output_channels=3,
    *,
    ngf=64,
    num_downs=8,
    norm="batch",
    dropout=True,
    dropout_rate=0.5,
    dropout_layout="paper",
    skips=True,
    upsampling="transpose",
    up_init="normal",
    up_phases="free",
    pixel_head=0,
    pixel_kernel=1,
    pixel_noise=0,
    colour_transform=False,
    colour_extremes=False,
    image_size=None,
    inference_mode="paper",
    conditioning=None,
    seed=None,
    name=None,
):
    """Builds the pix2pix U-Net generator as a Keras functional model.

    Args:
        input_channels: channels of the input image (3 for RGB, 1 for grayscale, ...).
        output_channels: channels of the translated image.
        ngf: filters of the first encoder layer; deeper layers use up to ``8 * ngf``.
        num_downs: number of stride-2 halvings. 8 is the paper's ``unet_256`` (the innermost
            activation is 1x1 on 256x256 images), 7 is ``unet_128``. Height and width must be
            divisible by ``2**num_downs``; use fewer for small images.
        norm: 'batch' (paper), 'instance', or 'none'.
        dropout: the paper's decoder dropout, the generator's only noise. ``False`` removes it
            (deterministic training, fewer artefacts on some datasets).
        dropout_rate: dropout probability (paper: 0.5).
        dropout_layout: 'paper' (dropout in the first three decoder blocks) or 'reference' (the
            PyTorch reference's blocks 2 to ``num_downs - 4``, counted from the innermost; exists
            for its pretrained weights).
        skips: the U-Net skip connections. ``False`` builds the paper's encoder-decoder baseline
            (Table 2), which exists to show what the skips are worth.
        upsampling: 'transpose' (paper: 4x4 stride-2 transposed convolutions), 'resize_conv'
            (nearest-neighbour 2x resize + 3x3 convolution, against checkerboard artifacts) or
            'bilinear_conv' (the same with a bilinear resize, which adds no blocks of its own).
        up_init: how the transposed convolutions start: 'normal' (paper: N(0, 0.02) taps) or
            'bilinear' (bilinear upsampling times a random channel mix,
            :class:`pix2pix_tf.core.layers.BilinearUpsamplingInit`): the same network, without the
            checkerboard the random taps paint before training, which short runs keep (a
            GAN's own lattice is another matter: see ``Pix2Pix(d_shift=)``).
        up_phases: 'free' (paper) or 'balanced': every transposed convolution trains under
            :class:`pix2pix_tf.core.layers.BalancedPhases`, which keeps its four output phases
            at one gain, so that flat regions come out flat at every layer. The lattice a GAN
            paints into its outputs needs phases that differ; this takes that freedom away
            and leaves every other, including the stride-2 taps that make fine detail.
        pixel_head: 0 (paper) or the width of a per-pixel head at full resolution: the last
            up-convolution gives ``pixel_head`` features, which are concatenated with the input
            image and pass through two 1x1 convolutions (each listening to the conditioning)
            before the output. The paper's U-Net reaches full resolution only through its
            last 4x4 up-convolution, whose input is half resolution, so every output pixel is
            interpolated: fine detail blurs even where the output is an exact per-pixel
            function of the input (the instruction editor's colour edits). The head gives
            those an exact path.
        pixel_kernel: the size of the head's two hidden convolutions: 1 (per-pixel, as
            above) or 3, a 3x3 neighbourhood at full resolution, so that the head can also
            make texture (detail finer than 4 pixels) out of the input's own fine detail; the
            U-Net alone can put energy there only in its up-convolutions' 2-pixel phases,
            which is a lattice.
        pixel_noise: 0 (paper: the generator's only noise is its dropout, at 1/32 of the
            resolution and coarser) or a number of N(0, 1) noise channels
            (:class:`pix2pix_tf.core.layers.PixelNoise`) that the last layer sees beside its
            input: the last up-convolution (at half resolution) or, with ``pixel_head``, the
            head (at full resolution). The grain of a photo cannot be predicted from the
            input, and without noise a generator can only blur it or print a pattern.
        colour_transform: False (paper: the last layer paints the output through tanh) or True:
            the last layer gives, per pixel, the coefficients of an affine map of the input's
            colours, which :class:`pix2pix_tf.core.layers.ColourTransform` applies to the input
            (starting at the identity). An edit of colours (grayscale, sepia, inversion,
            brightness) is then a few numbers per pixel that the network can hold exactly,
            and the photo's own detail passes through unchanged, instead of being repainted
            through the U-Net; the offset column still lets the output be anything.
        colour_extremes: with ``colour_transform``, False (an affine map of the colours) or True:
            the map also takes each pixel's largest and smallest channel, so that the maps HSV
            is made of, such as a half turn of the hue (``max + min - x``), are exact too.
        image_size: ``None`` for any size (fully convolutional), or ``(height, width)`` to fix
            it, as static-shape runtimes such as TFLite need.
        inference_mode: 'paper', 'deterministic' or 'moving_average'; see
            :mod:`pix2pix_tf.core.layers`.
        conditioning: a :class:`pix2pix_tf.core.conditioning.Conditioning` hook adding inputs
            beside ``"image"`` and listening to them after every block (default: none, the
            paper's U-Net).
        seed: integer fixing all initial weights and dropout masks, or ``None``.
        name: model name (default ``unet_<2**num_downs>`` or ``encoder_decoder_<...>``).

    Returns:
        A :class:`~pix2pix_tf.networks.Generator` (size multiple ``2**num_downs``) mapping
        ``(batch, H, W, input_channels)`` images in [-1, 1] to ``(batch, H, W, output_channels)``
        images in [-1, 1] (float32 even under mixed precision).
    """
    _check_options(num_downs=num_downs, norm=norm, upsampling=upsampling,
                   dropout_layout=dropout_layout, inference_mode=inference_mode,
                   pixel_head=pixel_head, pixel_kernel=pixel_kernel, up_init=up_init,
                   up_phases=up_phases, pixel_noise=pixel_noise,
                   colour=(colour_transform, colour_extremes))
    multiple = 2**num_downs
    height, width = (None, None) if image_size is None else image_size
    kind = "unet" if skips else "encoder_decoder"
    conditioning = conditioning or NONE
    name = name or f"{conditioning.name_prefix}{kind}_{multiple}"
    if height is not None and (height % multiple or width % multiple):
        # The same message as at call time, raised while building.
        raise ValueError(size_message(name, multiple, height, width))
    seeds = SeedSequence(seed)
    parts = _Parts(seeds, ngf=ngf, num_downs=num_downs, norm=norm, upsampling=upsampling,
                   up_init=up_init, up_phases=up_phases, inference_mode=inference_mode,
                   conditioning=conditioning)

    image = keras.Input((height, width, input_channels), name=IMAGE)  # (b, H, W, in)
    extra = conditioning.inputs(seeds, levels=num_downs)  # e.g. {"tokens": (b, L)}
    inputs = {IMAGE: image, **extra} if extra else image
    x, encoder_outputs = parts.encoder(image)
    dropout_blocks = (range(DROPOUT_BLOCKS) if dropout_layout == "paper"
                      else range(1, num_downs - 4))
    x = parts.decoder(x, encoder_outputs, dropout_blocks if dropout else (), dropout_rate, skips)
    x = keras.layers.ReLU(name="output_relu")(x)
    outputs = parts.output(x, image, output_channels, pixel_head=pixel_head,
                           pixel_kernel=pixel_kernel, pixel_noise=pixel_noise,
                           colour_transform=colour_transform, colour_extremes=colour_extremes)
    return Generator(inputs, outputs, name=name, size_multiple=multiple)


def _check_options(*, num_downs, norm, upsampling, dropout_layout, inference_mode, pixel_head,
                   pixel_kernel, up_init, up_phases="free", pixel_noise=0,
                   colour=(False, False)):
    """:func:`unet_generator`'s argument checks, each error naming the choices."""
    if num_downs < 1:
        raise ValueError(f"num_downs must be at least 1, got {num_downs}.")
    if norm not in NORMS:
        raise ValueError(f"Unknown norm {norm!r}; choose one of {', '.join(NORMS)}.")
    if upsampling not in UPSAMPLING:
        raise ValueError(f"Unknown upsampling {upsampling!r}; choose one of "
                         f"{', '.join(UPSAMPLING)}.")
    if dropout_layout not in DROPOUT_LAYOUTS:
        raise ValueError(f"Unknown dropout_layout {dropout_layout!r}; choose one of "
                         f"{', '.join(DROPOUT_LAYOUTS)}.")
    check_inference_mode(inference_mode)
    if pixel_head < 0:
        raise ValueError(f"pixel_head must be >= 0, got {pixel_head}.")
    if pixel_kernel not in (1, 3):
        raise ValueError(f"pixel_kernel must be 1 or 3, got {pixel_kernel}.")
    if colour[1] and not colour[0]:
        raise ValueError("colour_extremes extends the colour transform; give colour_transform "
                         "too.")
    if pixel_noise < 0:
        raise ValueError(f"pixel_noise must be >= 0, got {pixel_noise}.")
    if pixel_kernel != 1 and not pixel_head:
        raise ValueError("pixel_kernel applies to the pixel head; give pixel_head > 0 too.")
    if up_init not in UP_INITS:
        raise ValueError(f"Unknown up_init {up_init!r}; choose one of {', '.join(UP_INITS)}.")
    if up_init != "normal" and upsampling != "transpose":
        raise ValueError("up_init applies to transposed convolutions (upsampling='transpose').")
    if up_phases not in UP_PHASES:
        raise ValueError(f"Unknown up_phases {up_phases!r}; choose one of "
                         f"{', '.join(UP_PHASES)}.")
    if up_phases != "free" and upsampling != "transpose":
        raise ValueError("up_phases applies to transposed convolutions (upsampling='transpose').")


class _Parts:
    """The U-Net's blocks, built in the order the paper lists them; every layer draws its
    initial weights from the one ``seeds`` sequence, so the order is the weights'."""

    def __init__(self, seeds, *, ngf, num_downs, norm, upsampling, up_init, up_phases,
                 inference_mode, conditioning):
        self.seeds, self.num_downs, self.norm = seeds, num_downs, norm
        self.upsampling, self.up_init = upsampling, up_init
        self.balanced = up_phases == "balanced"
        self.inference_mode, self.conditioning = inference_mode, conditioning
        self.use_bias = norm != "batch"
        self.filters = [ngf * min(2**i, 8) for i in range(num_downs)]

    def conv(self, cls, n, layer_name, bias=None):
        bias = self.use_bias if bias is None else bias
        if cls is not keras.layers.Conv2DTranspose:
            return cls(n, 4, strides=2, padding="same", use_bias=bias,
                       kernel_initializer=conv_init(self.seeds), name=layer_name)
        return cls(n, 4, strides=2, padding="same", use_bias=bias,
                   kernel_initializer=up_conv_init(self.seeds, self.up_init, self.balanced),
                   kernel_constraint=BalancedPhases() if self.balanced else None,
                   name=layer_name)

    def up(self, x, n, layer_name, bias=None):
        """Doubles height and width: ``(b, h, w, c) -> (b, 2h, 2w, n)``."""
        bias = self.use_bias if bias is None else bias
        if self.upsampling == "transpose":
            return self.conv(keras.layers.Conv2DTranspose, n, layer_name, bias)(x)
        interpolation = "nearest" if self.upsampling == "resize_conv" else "bilinear"
        x = keras.layers.UpSampling2D(2, interpolation=interpolation,
                                      name=f"{layer_name}_resize")(x)
        return keras.layers.Conv2D(n, 3, padding="same", use_bias=bias,
                                   kernel_initializer=conv_init(self.seeds), name=layer_name)(x)

    def norm_layer(self, layer_name):
        return normalization(self.norm, self.seeds, self.inference_mode, name=layer_name)

    def condition(self, x, block):
        depth = (self.num_downs - int(block[len("down"):]) if block.startswith("down")
                 else None)
        return self.conditioning.block(x, block, depth)

    def encoder(self, image):
        """The encoder, and each block's activated output (the skips)."""
        x = self.conv(keras.layers.Conv2D, self.filters[0], "down1_conv")(image)  # (b, H/2, ..)
        x = self.condition(x, "down1")
        encoder_outputs = []
        for i in range(1, self.num_downs):
            x = keras.layers.LeakyReLU(0.2, name=f"down{i + 1}_lrelu")(x)
            encoder_outputs.append(x)
            x = self.conv(keras.layers.Conv2D, self.filters[i], f"down{i + 1}_conv")(x)
            if i < self.num_downs - 1 and self.norm != "none":
                x = self.norm_layer(f"down{i + 1}_norm")(x)
            x = self.condition(x, f"down{i + 1}")
        return x, encoder_outputs

    def decoder(self, x, encoder_outputs, dropout_blocks, dropout_rate, skips):
        """The decoder, innermost first: block j restores the resolution of encoder level i."""
        for j, i in enumerate(reversed(range(self.num_downs - 1))):
            x = keras.layers.ReLU(name=f"up{j + 1}_relu")(x)
            x = self.up(x, self.filters[i], f"up{j + 1}_conv")  # (b, H/2^(i+1), .., filters[i])
            if self.norm != "none":
                x = self.norm_layer(f"up{j + 1}_norm")(x)
            x = self.condition(x, f"up{j + 1}")
            if j in dropout_blocks:
                x = Dropout(dropout_rate, inference_mode=self.inference_mode,
                            seed=self.seeds.next(), name=f"up{j + 1}_dropout")(x)
            if skips:
                x = keras.layers.Concatenate(name=f"up{j + 1}_skip")([encoder_outputs[i], x])
        return x

    def output(self, x, image, output_channels, *, pixel_head, pixel_kernel, pixel_noise,
               colour_transform, colour_extremes):
        """The last layer (the paper's up-convolution, or the pixel head) and the output: tanh
        (paper) or the colour transform of the input."""
        depth = image.shape[-1] + (3 if colour_extremes else 1)  # the colour map's basis
        width = output_channels * depth if colour_transform else output_channels
        if not pixel_head:  # the paper's last layer
            if pixel_noise:
                x = self.with_noise(x, pixel_noise)
            x = self.up(x, width, "output_conv", bias=True)  # (b, H, W, width)
        else:
            x = self.pixel_head(x, image, width, pixel_head, pixel_kernel, pixel_noise)
        if colour_transform:
            return ColourTransform(output_channels, extremes=colour_extremes, dtype="float32",
                                   name="output_colour")([x, image])
        return keras.layers.Activation("tanh", dtype="float32", name="output_tanh")(x)

    def with_noise(self, x, channels):
        """``x`` with ``channels`` of :class:`PixelNoise` at its resolution appended."""
        noise = PixelNoise(channels, inference_mode=self.inference_mode, seed=self.seeds.next(),
                           name="pixel_noise")(x)
        return keras.layers.Concatenate(name="noise_skip")([x, noise])

    def pixel_head(self, x, image, output_channels, width, kernel, noise=0):
        """Full-resolution features, then a small network that also sees the input (and
        ``noise`` channels of noise)."""
        x = self.up(x, width, "output_conv", bias=True)  # (b, H, W, width)
        x = keras.layers.Concatenate(name="pixel_skip")([image, x])
        if noise:
            x = self.with_noise(x, noise)
        for k in (1, 2):
            x = keras.layers.Conv2D(width, kernel, padding="same",
                                    kernel_initializer=keras.initializers.HeNormal(
                                        seed=self.seeds.next()), name=f"pixel{k}_conv")(x)
            x = self.condition(x, f"pixel{k}")
            x = keras.layers.ReLU(name=f"pixel{k}_relu")(x)
        return keras.layers.Conv2D(output_channels, 1, kernel_initializer=conv_init(self.seeds),
                                   name="pixel_out_conv")(x)  # (b, H, W, out)
