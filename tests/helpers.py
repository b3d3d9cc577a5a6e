"""Shared test helpers: tiny networks and models of both tasks, blocky photos, counts."""

import numpy as np

from pix2pix_tf import (
    InstructPix2Pix,
    Pix2Pix,
    build_discriminator,
    build_generator,
    patchgan_discriminator,
    unet_generator,
)
from pix2pix_tf.tasks.instruct.text import TextConditioning, spelling_options


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


def trainable(model):
    """Number of trainable parameters."""
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def photos(n=4, size=32, seed=0):
    """``n`` blocky uint8 photos (4x4 blocks), so that every edit changes them visibly."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, size // 4, size // 4, 3), dtype=np.uint8)
    return np.repeat(np.repeat(base, 4, axis=1), 4, axis=2)


def tiny_editor(vocabulary, sequence_length, *, seed=0, buckets=0, n_layers=2, text_dim=16,
                **kwargs):
    """A tiny InstructPix2Pix (3-level U-Net with FiLM, matching-aware PatchGAN), tested with
    BatchNorm's moving averages as the instruct preset trains it at batch 16; ``buckets`` > 0
    reads spelling."""
    text = dict(vocabulary_size=len(vocabulary) + 2, sequence_length=sequence_length,
                text_dim=text_dim, **spelling_options(vocabulary, buckets))
    g = build_generator("unet", num_downs=3, ngf=8, seed=seed, inference_mode="moving_average",
                        conditioning=TextConditioning("generator", **text))
    d = build_discriminator("patchgan", ndf=8, n_layers=n_layers, seed=seed + 1,
                            conditioning=TextConditioning("discriminator", **text))
    return InstructPix2Pix(g, d, vocabulary=vocabulary, sequence_length=sequence_length,
                           seed=seed, subword_buckets=buckets, inference_mode="moving_average",
                           **kwargs)


def hub_cache(cache, repo_id, folder=None, model=None):
    """A Hugging Face Hub cache under ``cache`` holding ``repo_id`` at one commit: the files of
    ``folder``, or ``model`` saved as Keras saves to the Hub; returns the snapshot folder."""
    import shutil

    commit = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    if folder is not None:
        shutil.copytree(folder, snapshot)
    else:
        model.save(snapshot, zipped=False)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot
