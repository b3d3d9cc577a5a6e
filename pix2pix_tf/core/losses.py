"""The pix2pix objective (paper section 3, eq. 1-4).

    G* = arg min_G max_D  L_cGAN(G, D) + lambda * L_L1(G),   lambda = 100

Every function returns one loss per example (shape ``(batch,)``); the model reduces them by the
*global* batch size so that gradients are right under ``tf.distribute`` strategies.

- The discriminator's loss is halved, (real + fake) / 2, to slow D relative to G (paper 3.3).
- The generator uses the non-saturating form: it maximises log D(x, G(x)), i.e. minimises the
  real-label loss on its fakes.
- ``gan_mode`` 'vanilla' is the paper's cross-entropy on logits; 'lsgan' the least-squares GAN
  (Mao et al.) that the reference code offers as an alternative.
- A multi-scale discriminator (pix2pixHD) gives a list of logit maps, one per scale; the GAN
  losses sum over the scales, as pix2pixHD does. Its feature-matching loss (pix2pixHD eq. 4) is
  :func:`feature_matching_loss`.
"""

import tensorflow as tf
from keras import ops

GAN_MODES = ("vanilla", "lsgan")

#: The rows of the paper's Table 1 as ``Pix2Pix`` keyword arguments.
#: 'GAN' is unconditional: the discriminator does not see the input image.
TABLE1_OBJECTIVES = {
    "L1": dict(lambda_l1=100.0, lambda_gan=0.0),
    "GAN": dict(lambda_l1=0.0, lambda_gan=1.0, conditional=False),
    "cGAN": dict(lambda_l1=0.0, lambda_gan=1.0, conditional=True),
    "L1+GAN": dict(lambda_l1=100.0, lambda_gan=1.0, conditional=False),
    "L1+cGAN": dict(lambda_l1=100.0, lambda_gan=1.0, conditional=True),
}


def check_gan_mode(mode):
    if mode not in GAN_MODES:
        raise ValueError(f"Unknown gan_mode {mode!r}; choose one of {', '.join(GAN_MODES)}.")
    return mode


def _per_example_mean(values):
    values = ops.reshape(values, (ops.shape(values)[0], -1))
    return ops.mean(values, axis=1)


def gan_loss(logits, real, gan_mode="vanilla"):
    """Per-example GAN loss of a map of logits (or a list of maps, one per scale, summed)
    against the label real (True) or fake (False)."""
    check_gan_mode(gan_mode)
    total = 0.0
    for scale in (logits if isinstance(logits, (list, tuple)) else [logits]):
        scale = ops.cast(scale, "float32")
        labels = ops.ones_like(scale) if real else ops.zeros_like(scale)
        if gan_mode == "vanilla":
            values = ops.binary_crossentropy(labels, scale, from_logits=True)
        else:
            values = ops.square(scale - labels)
        total = total + _per_example_mean(values)
    return total


def feature_matching_loss(fake_features, real_features):
    """pix2pixHD's discriminator feature-matching loss, per example.

    ``fake_features`` / ``real_features``: per scale, the list of the discriminator's block
    activations for the generated and the real image. The L1 distance of each pair of
    activations, weighted ``4 / len(features)`` per layer and ``1 / scales`` per scale as in
    pix2pixHD; real features are constants (no gradient flows into them).
    """
    total = 0.0
    for fakes, reals in zip(fake_features, real_features):
        for fake, real in zip(fakes, reals):
            real = ops.stop_gradient(ops.cast(real, "float32"))
            distance = _per_example_mean(ops.abs(ops.cast(fake, "float32") - real))
            total = total + distance * (4.0 / len(fakes)) / len(fake_features)
    return total


def l1_loss(target, output):
    """Per-example mean absolute error between target and output images."""
    return _per_example_mean(ops.abs(ops.cast(target, "float32") - ops.cast(output, "float32")))


def discriminator_loss(real_logits, fake_logits, gan_mode="vanilla"):
    """Per-example D loss: (loss(real -> 1) + loss(fake -> 0)) / 2."""
    return 0.5 * (gan_loss(real_logits, True, gan_mode) + gan_loss(fake_logits, False, gan_mode))


def matching_discriminator_loss(real_logits, fake_logits, wrong_logits, wrong_weight,
                                gan_mode="vanilla"):
    """Per-example loss of a matching-aware discriminator (GAN-INT-CLS; ManiGAN's averaging):
    ``(loss(real -> 1) + (loss(fake -> 0) + w * loss(real with a wrong instruction -> 0)) /
    (1 + w)) / 2``. ``wrong_weight`` (per example) is 0 where there is no valid wrong
    instruction, which leaves the plain :func:`discriminator_loss`."""
    weight = ops.cast(wrong_weight, "float32")
    fakes = (gan_loss(fake_logits, False, gan_mode)
             + weight * gan_loss(wrong_logits, False, gan_mode)) / (1.0 + weight)
    return 0.5 * (gan_loss(real_logits, True, gan_mode) + fakes)


def generator_loss(fake_logits, target, output, lambda_l1=100.0, lambda_gan=1.0,
                   gan_mode="vanilla", feature_matching=None, lambda_feat=0.0):
    """Per-example G losses as a dict: ``gan``, ``l1`` and ``total`` = lambda_gan*gan +
    lambda_l1*l1 (+ lambda_feat*feat, with ``feat`` in the dict, when ``lambda_feat`` > 0).

    ``fake_logits`` may be ``None`` when ``lambda_gan`` is 0 (the L1-only row of Table 1).
    ``feature_matching``: ``(fake_features, real_features)`` for :func:`feature_matching_loss`.
    """
    l1 = l1_loss(target, output)
    if fake_logits is None:
        gan = ops.zeros_like(l1)
    else:
        gan = gan_loss(fake_logits, True, gan_mode)
    losses = {"gan": gan, "l1": l1, "total": lambda_gan * gan + lambda_l1 * l1}
    if lambda_feat > 0:
        losses["feat"] = feature_matching_loss(*feature_matching)
        losses["total"] = losses["total"] + lambda_feat * losses["feat"]
    return losses


def focal_frequency_loss(target, output, alpha=1.0):
    """Per-example focal frequency loss (Jiang, Dai, Wu, Loy, ICCV 2021).

    The distance between the images' 2-D spectra (orthonormal FFT per channel), each frequency
    weighted by its own error to the power ``alpha``, normalised to [0, 1] by the largest per
    image and channel and held constant (no gradient through the weights): the frequencies the
    generator gets most wrong count most. L1 lets fine detail go (blur loses little of it) and
    a lattice is a few bright frequencies; this loss sees both.
    """
    def spectrum(images):
        channels_first = tf.transpose(tf.cast(images, tf.float32), [0, 3, 1, 2])
        size = tf.cast(tf.shape(channels_first)[2] * tf.shape(channels_first)[3], tf.float32)
        return tf.signal.fft2d(tf.complex(channels_first, 0.0)) / tf.complex(tf.sqrt(size), 0.0)

    difference = spectrum(output) - spectrum(target)
    distance = tf.math.real(difference) ** 2 + tf.math.imag(difference) ** 2
    weight = tf.sqrt(distance) ** alpha
    weight = weight / tf.maximum(tf.reduce_max(weight, axis=[2, 3], keepdims=True), 1e-12)
    weight = tf.stop_gradient(tf.clip_by_value(weight, 0.0, 1.0))
    return tf.reduce_mean(weight * distance, axis=[1, 2, 3])


def discriminator_accuracy(logits, real, gan_mode="vanilla"):
    """Per-example share of D's patches that call ``real`` pairs real (or generated ones
    generated): logits above 0 (vanilla; D(x) > 0.5) or above 0.5 (lsgan), averaged over a
    multi-scale discriminator's scales."""
    threshold = 0.0 if check_gan_mode(gan_mode) == "vanilla" else 0.5
    scales = logits if isinstance(logits, (list, tuple)) else [logits]
    total = 0.0
    for scale in scales:
        scale = ops.cast(scale, "float32")
        right = ops.greater(scale, threshold) if real else ops.less_equal(scale, threshold)
        total = total + _per_example_mean(ops.cast(right, "float32"))
    return total / len(scales)
