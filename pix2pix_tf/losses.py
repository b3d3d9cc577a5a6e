"""The pix2pix objective (paper section 3, eq. 1-4).

    G* = arg min_G max_D  L_cGAN(G, D) + lambda * L_L1(G),   lambda = 100

Every function returns one loss per example (shape ``(batch,)``); the model reduces them by the
*global* batch size so that gradients are right under ``tf.distribute`` strategies.

- The discriminator's loss is halved, (real + fake) / 2, to slow D relative to G (paper 3.3).
- The generator uses the non-saturating form: it maximises log D(x, G(x)), i.e. minimises the
  real-label loss on its fakes.
- ``gan_mode`` 'vanilla' is the paper's cross-entropy on logits; 'lsgan' the least-squares GAN
  (Mao et al.) that the reference code offers as an alternative.
"""

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
    """Per-example GAN loss of a map of logits against the label real (True) or fake (False)."""
    check_gan_mode(gan_mode)
    logits = ops.cast(logits, "float32")
    labels = ops.ones_like(logits) if real else ops.zeros_like(logits)
    if gan_mode == "vanilla":
        values = ops.binary_crossentropy(labels, logits, from_logits=True)
    else:
        values = ops.square(logits - labels)
    return _per_example_mean(values)


def l1_loss(target, output):
    """Per-example mean absolute error between target and output images."""
    return _per_example_mean(ops.abs(ops.cast(target, "float32") - ops.cast(output, "float32")))


def discriminator_loss(real_logits, fake_logits, gan_mode="vanilla"):
    """Per-example D loss: (loss(real -> 1) + loss(fake -> 0)) / 2."""
    return 0.5 * (gan_loss(real_logits, True, gan_mode) + gan_loss(fake_logits, False, gan_mode))


def generator_loss(fake_logits, target, output, lambda_l1=100.0, lambda_gan=1.0,
                   gan_mode="vanilla"):
    """Per-example G losses as a dict: ``gan``, ``l1`` and ``total`` = lambda_gan*gan + lambda_l1*l1.

    ``fake_logits`` may be ``None`` when ``lambda_gan`` is 0 (the L1-only row of Table 1).
    """
    l1 = l1_loss(target, output)
    if fake_logits is None:
        gan = ops.zeros_like(l1)
    else:
        gan = gan_loss(fake_logits, True, gan_mode)
    return {"gan": gan, "l1": l1, "total": lambda_gan * gan + lambda_l1 * l1}
