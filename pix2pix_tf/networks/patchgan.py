"""The PatchGAN discriminator (paper section 3.2 and appendix 6.1.2).

A PatchGAN classifies every NxN patch of an image as real or fake and outputs a map of logits;
its receptive field N is set by the number of stride-2 layers. The paper's default, ``n_layers=3``,
is the 70x70 PatchGAN:

    C64 (no norm) - C128 - C256 - C512 (stride 1) - conv to 1 logit (stride 1)

with 4x4 convolutions, LeakyReLU(0.2), and padding 1 as in the reference code: on 256x256 inputs
the output is 30x30. ``n_layers`` 1..5 give receptive fields 16, 34, 70, 142, 286 (286 covers the
whole image: the paper's ImageGAN); ``n_layers=0`` gives the 1x1 PixelGAN.

In the conditional form (the paper's cGAN) the discriminator sees the input image and the real or
generated output concatenated on the channel axis; the unconditional form (the "GAN" rows of
Table 1) sees only the output image.

Conditions beyond the image enter through ``conditioning`` (a
:class:`pix2pix_tf.core.conditioning.Conditioning` hook): it may add inputs, change the input pair
(e.g. append an embedding at every pixel) and add a term to every patch's logit (a projection
discriminator). The instruction editor's matching-aware discriminator is built that way
(:mod:`pix2pix_tf.tasks.instruct`).

pix2pixHD's multi-scale discriminator (:func:`multiscale_discriminator`) is the same PatchGAN
applied at two or three image scales.
"""

import keras

from pix2pix_tf.core.conditioning import NONE
from pix2pix_tf.core.layers import (
    Blur2D,
    InputCheck,
    SeedSequence,
    conv_init,
    normalization,
    walk_layers,
)


def _inputs(input_channels, target_channels, conditional):
    """The discriminator's inputs and the tensor its body sees: ``concat(input, image)``
    (conditional) or ``image``, each channel-checked."""
    image = keras.Input((None, None, target_channels), name="image")
    checked = InputCheck(target_channels, "discriminator (image)", name="image_check")(image)
    if not conditional:
        return image, checked
    condition = keras.Input((None, None, input_channels), name="input_image")
    checked_condition = InputCheck(input_channels, "discriminator (input image)",
                                   name="input_check")(condition)
    pair = keras.layers.Concatenate(name="pair")([checked_condition, checked])
    return [condition, image], pair


def patchgan_body(x, *, ndf, n_layers, norm, seeds, prefix="", conditioning=NONE,
                  antialias=False, spectral_norm=False, blurpool=False):
    """The PatchGAN's layers applied to ``x``. Returns the activations after each block
    (the features of pix2pixHD's feature-matching loss), the last being the logits.
    ``antialias``: a :class:`~pix2pix_tf.core.layers.Blur2D` before every stride-2 convolution;
    ``blurpool``: every stride-2 convolution at stride 1, then after its activation a strided
    :class:`~pix2pix_tf.core.layers.Blur2D` (BlurPool);
    ``spectral_norm``: every convolution spectrally normalised (see
    :func:`patchgan_discriminator`)."""
    if antialias and blurpool:
        raise ValueError("antialias (a blur before each strided convolution) and blurpool (the "
                         "same convolutions at stride 1, then a blur that subsamples) are two "
                         "ways to the same end; give one or the other.")

    def block(x, filters, kernel, stride, index, with_norm, bias):
        if blurpool:
            stride = 1  # the subsampling happens after the activation (pool below)
        if antialias and stride > 1:
            x = Blur2D(name=f"{prefix}conv{index}_blur")(x)
        if kernel > 1 and stride == 1:
            # PyTorch's padding=1 with a 4x4 stride-1 kernel is not Keras 'same'; pad explicitly.
            x = keras.layers.ZeroPadding2D(1, name=f"{prefix}conv{index}_pad")(x)
            padding = "valid"
        else:
            padding = "same"
        conv = keras.layers.Conv2D(
            filters, kernel, strides=stride, padding=padding, use_bias=bias,
            kernel_initializer=conv_init(seeds), name=f"{prefix}conv{index}",
        )
        if spectral_norm:
            conv = keras.layers.SpectralNormalization(conv, name=f"{prefix}conv{index}_sn")
        x = conv(x)
        layer = normalization(norm, seeds, name=f"{prefix}conv{index}_norm") if with_norm else None
        return layer(x) if layer is not None else x

    def lrelu(x, index, stride=1):
        x = keras.layers.LeakyReLU(0.2, name=f"{prefix}conv{index}_lrelu")(x)
        if blurpool and stride > 1:
            x = Blur2D(strides=2, name=f"{prefix}conv{index}_blurpool")(x)
        return x

    use_bias = norm != "batch"
    features = []
    if n_layers == 0:  # PixelGAN: 1x1 convolutions only.
        features.append(lrelu(block(x, ndf, 1, 1, 1, False, True), 1))
        features.append(lrelu(block(features[-1], ndf * 2, 1, 1, 2, True, use_bias), 2))
        logits = block(features[-1], 1, 1, 1, 3, False, use_bias)
    else:
        features.append(lrelu(block(x, ndf, 4, 2, 1, False, True), 1, 2))  # (b, H/2, W/2, ndf)
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1
            x = block(features[-1], ndf * min(2**n, 8), 4, stride, n + 1, True, use_bias)
            features.append(lrelu(x, n + 1, stride))
        logits = block(features[-1], 1 + conditioning.extra_logit_channels(ndf), 4, 1,
                       n_layers + 2, False, True)
        logits = conditioning.logits(logits)  # channel 0 is the plain logit
    logits = keras.layers.Activation("linear", dtype="float32", name=f"{prefix}logits")(logits)
    return features + [logits]


def patchgan_discriminator(
    input_channels=3,
    target_channels=3,
    *,
    ndf=64,
    n_layers=3,
    norm="batch",
    conditional=True,
    conditioning=None,
    antialias=False,
    spectral_norm=False,
    blurpool=False,
    seed=None,
    name=None,
):
    """Builds a PatchGAN (or PixelGAN, ``n_layers=0``) discriminator returning logits.

    Args:
        input_channels: channels of the conditioning input image (used when ``conditional``).
        target_channels: channels of the real or generated image.
        ndf: filters of the first layer; deeper layers use up to ``8 * ndf``.
        n_layers: stride-2 layers; 3 is the 70x70 PatchGAN, 0 the 1x1 PixelGAN.
        norm: 'batch' (paper), 'instance', or 'none'.
        conditional: see ``concat(input, image)`` (cGAN, default) or the image alone (GAN).
        conditioning: a :class:`pix2pix_tf.core.conditioning.Conditioning` hook adding inputs
            (after the images) and listening to them (default: none, the paper's).
        antialias: blur (:class:`~pix2pix_tf.core.layers.Blur2D`) before every stride-2
            convolution (Zhang, 2019); off in the paper. A deviation against the lattice a
            70x70 PatchGAN's 8-pixel output grid prints into the generator's outputs.
            The blur comes before the first convolution too, so D no longer sees detail
            finer than about 4 pixels, which is the detail the GAN term exists to add.
        blurpool: Zhang's BlurPool instead: every stride-2 convolution runs at stride 1,
            and after its activation a blur keeps every second pixel. As alias-free, and the
            first layer still sees the finest detail (the nonlinearity carries it into
            coarser features before the blur); 4x the convolutions' work. Off in the paper.
        spectral_norm: wrap every convolution in ``keras.layers.SpectralNormalization``
            (Miyato et al., 2018; SPADE's discriminator); off in the paper. It bounds D's
            Lipschitz constant, so D cannot win as fast as the paper's D does in short runs.
        seed: integer fixing the initial weights, or ``None``.
        name: model name.

    Returns:
        A ``keras.Model`` taking ``[input_image, image]`` (conditional) or ``image``, plus
        the conditioning's inputs last, and returning a ``(batch, h, w, 1)`` map of float32
        logits (no sigmoid).
    """
    if n_layers < 0:
        raise ValueError(f"n_layers must be >= 0 (0 = PixelGAN), got {n_layers}.")
    conditioning = conditioning or NONE
    seeds = SeedSequence(seed)
    inputs, x = _inputs(input_channels, target_channels, conditional)
    extra = conditioning.inputs(seeds)
    if extra:
        inputs = (inputs if isinstance(inputs, list) else [inputs]) + list(extra.values())
    x = conditioning.pixels(x)
    if n_layers == 0 and conditioning.extra_logit_channels(ndf):
        raise ValueError("the PixelGAN (n_layers=0) has no last layer to project conditions "
                         "onto; use n_layers >= 1 or a conditioning without projection.")
    logits = patchgan_body(x, ndf=ndf, n_layers=n_layers, norm=norm, seeds=seeds,
                           conditioning=conditioning, antialias=antialias,
                           spectral_norm=spectral_norm, blurpool=blurpool)[-1]
    if name is None:
        kind = "pixelgan" if n_layers == 0 else f"patchgan_{receptive_field_for(n_layers)}"
        kind = f"{conditioning.name_prefix}{kind}"
        name = kind if conditional else f"{kind}_unconditional"
    return keras.Model(inputs, logits, name=name)


def multiscale_discriminator(
    input_channels=3,
    target_channels=3,
    *,
    num_scales=3,
    ndf=64,
    n_layers=3,
    norm="batch",
    conditional=True,
    antialias=False,
    spectral_norm=False,
    blurpool=False,
    seed=None,
    name=None,
):
    """pix2pixHD's multi-scale discriminator (Wang et al., CVPR 2018, section 3.2).

    ``num_scales`` PatchGANs of the same architecture (separate weights) judge the pair at full
    resolution and at successive 2x average-pooled versions (3x3, stride 2), so the coarsest one
    sees global structure and the finest one texture.

    Returns a ``keras.Model`` whose output is a list with one entry per scale, finest first;
    each entry is the list of that PatchGAN's block activations followed by its logits. The
    activations feed the discriminator feature-matching loss
    (``Pix2Pix(lambda_feat=...)``, off by default); the GAN loss uses the logits of every scale.
    ``antialias``, ``blurpool`` and ``spectral_norm`` as in :func:`patchgan_discriminator`, at
    every scale.
    """
    if num_scales < 1:
        raise ValueError(f"num_scales must be >= 1, got {num_scales}.")
    if n_layers < 0:
        raise ValueError(f"n_layers must be >= 0 (0 = PixelGAN), got {n_layers}.")
    seeds = SeedSequence(seed)
    inputs, x = _inputs(input_channels, target_channels, conditional)
    scales = []
    for s in range(num_scales):
        if s > 0:  # (b, H/2^s, W/2^s, c); padding is left out of each average, as in pix2pixHD
            x = keras.layers.AveragePooling2D(3, strides=2, padding="same",
                                              name=f"downsample{s}")(x)
        scales.append(patchgan_body(x, ndf=ndf, n_layers=n_layers, norm=norm, seeds=seeds,
                                    prefix=f"scale{s}_", antialias=antialias,
                                    spectral_norm=spectral_norm, blurpool=blurpool))
    return keras.Model(inputs, scales, name=name or f"multiscale_{num_scales}x"
                       f"{'pixelgan' if n_layers == 0 else receptive_field_for(n_layers)}")


def receptive_field_for(n_layers):
    """Receptive field in pixels of the PatchGAN with ``n_layers`` (0 = PixelGAN)."""
    if n_layers == 0:
        return 1
    layers = [(4, 2)] * n_layers + [(4, 1), (4, 1)]
    return _receptive_field(layers)


def _receptive_field(kernels_and_strides):
    field = 1
    for kernel, stride in reversed(kernels_and_strides):
        field = (field - 1) * stride + kernel
    return field


def receptive_field(discriminator):
    """Receptive field, in input pixels, of one output logit of a built discriminator.

    Read from the model's own convolution layers (kernel sizes and strides; spectrally
    normalised ones and anti-aliasing blurs included), so it is true of
    whatever network is passed, not of the arguments it was built with.
    """
    layers = [getattr(layer, "layer", layer) for layer in walk_layers(discriminator)]
    convs = [(3, layer.strides) if isinstance(layer, Blur2D)
             else (layer.kernel_size[0], layer.strides[0])
             for layer in layers if isinstance(layer, (keras.layers.Conv2D, Blur2D))]
    if not convs:
        raise ValueError(f"{discriminator.name} has no Conv2D layers; is it a discriminator?")
    return _receptive_field(convs)
