"""Tiny networks for fast tests."""

import numpy as np

from pix2pix_tf import Pix2Pix, patchgan_discriminator, unet_generator


def tiny_model(seed=1, norm="batch", dropout=True, in_ch=3, out_ch=3, **kwargs):
    generator = unet_generator(
        in_ch, out_ch, ngf=8, num_downs=3, norm=norm, dropout=dropout, seed=seed
    )
    discriminator = None
    if kwargs.get("lambda_gan", 1.0) > 0:
        discriminator = patchgan_discriminator(
            in_ch, out_ch, ndf=8, n_layers=1, norm=norm,
            conditional=kwargs.pop("conditional", True), seed=seed + 1,
        )
    kwargs.pop("conditional", None)
    return Pix2Pix(generator, discriminator, seed=seed, **kwargs)


def max_weight_diff(a, b):
    assert len(a.weights) == len(b.weights)
    return max(float(np.max(np.abs(u.numpy() - v.numpy()))) for u, v in zip(a.weights, b.weights))
