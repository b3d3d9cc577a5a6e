"""Image-quality metrics: L1, PSNR, SSIM, and the paper's Lab colour-histogram intersection.

All functions take images in [-1, 1] (the models' range), shaped (batch, H, W, C).
PSNR and SSIM are computed on [0, 1] images (so PSNR is the usual dB for 8-bit-like data).

The histogram intersection is the colour-distribution score of the paper's Fig. 7: the
histograms of L, a and b over all output pixels and over all target pixels, normalised to sum
1, compared by intersection (sum of bin-wise minima; 1 = identical distributions). No pretrained
network is involved. Bins: 50 for L in [0, 100], 64 each for a and b in [-128, 128].

L1 and PSNR reward blur and do not see the checkerboard that stride-2 transposed convolutions
leave early in training (Odena et al., 2016), so :class:`TextureStats` measures both, relative
to the targets (1.0 = like the real images):

- ``grid``: the spectral energy at the up-convolution grid frequencies, ``(a * H / p, b * W / p)``
  cycles for periods ``p`` = 2, 4, ... up to :func:`grid_period` (a pattern repeating every
  ``p`` pixels puts its energy exactly there), divided by the energy two frequency bins away
  from each of those points, pooled over the set; the outputs' ratio over the targets'. Natural
  images have a smooth spectrum (about 1); a checkerboard makes spikes (well above 1).
- ``sharp``: the mean spectral energy above a quarter of the sampling rate (fine detail), grid
  frequencies left out, outputs' over targets': below 1 is blurrier than the targets.

Both use the luminance (channel mean) of each image minus its mean, under a Hann window.
"""

import keras
import numpy as np
import tensorflow as tf

LAB_BINS = ((50, 0.0, 100.0), (64, -128.0, 128.0), (64, -128.0, 128.0))


def to_unit(images):
    return (tf.cast(images, tf.float32) + 1.0) / 2.0


def image_scores(targets, outputs):
    """Per-image ``l1``, ``psnr`` and ``ssim`` tensors (shape (batch,)); graph-safe.

    SSIM's 11x11 window shrinks for images smaller than that, so tiny test images still score.
    """
    t, o = to_unit(targets), to_unit(outputs)
    filter_size = min([11] + [d for d in t.shape[1:3] if d is not None])
    return {
        "l1": tf.reduce_mean(tf.abs(tf.cast(targets, tf.float32) - tf.cast(outputs, tf.float32)),
                             axis=[1, 2, 3]),
        "psnr": tf.image.psnr(t, o, max_val=1.0),
        "ssim": tf.image.ssim(t, o, max_val=1.0, filter_size=filter_size),
    }


def per_image_metrics(targets, outputs):
    """:func:`image_scores` as numpy arrays."""
    return {key: value.numpy() for key, value in image_scores(targets, outputs).items()}


def rgb_to_lab(rgb):
    """sRGB in [0, 1] (..., 3) to CIE Lab (D65), numpy."""
    rgb = np.clip(np.asarray(rgb, np.float64), 0.0, 1.0)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    matrix = np.array([[0.4124564, 0.3575761, 0.1804375],
                       [0.2126729, 0.7151522, 0.0721750],
                       [0.0193339, 0.1191920, 0.9503041]])
    xyz = linear @ matrix.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def _as_rgb(images01):
    images01 = np.asarray(images01)
    channels = images01.shape[-1]
    if channels >= 3:
        return images01[..., :3]
    return np.repeat(images01[..., :1], 3, axis=-1)


class LabHistogram:
    """Accumulates Lab histograms of outputs and targets over a whole test set."""

    def __init__(self):
        self.outputs = [np.zeros(bins) for bins, _, _ in LAB_BINS]
        self.targets = [np.zeros(bins) for bins, _, _ in LAB_BINS]

    def update(self, targets, outputs):
        for store, images in ((self.targets, targets), (self.outputs, outputs)):
            lab = rgb_to_lab(_as_rgb(to_unit(images).numpy()))
            for channel, (bins, lo, hi) in enumerate(LAB_BINS):
                store[channel] += np.histogram(lab[..., channel], bins=bins, range=(lo, hi))[0]

    def intersection(self):
        """Dict ``hist_L``, ``hist_a``, ``hist_b``: intersection in [0, 1] per channel."""
        result = {}
        for name, out, tgt in zip(("L", "a", "b"), self.outputs, self.targets):
            out, tgt = out / max(out.sum(), 1), tgt / max(tgt.sum(), 1)
            result[f"hist_{name}"] = float(np.minimum(out, tgt).sum())
        return result


def grid_period(height, width, largest=32):
    """The longest grid period measured for ``height`` x ``width`` images: a power of two up to
    ``largest``, at most an eighth of the shorter side (so grid frequencies stay at least 8
    bins apart and their neighbours two bins away are not grid frequencies)."""
    period = 2
    while period * 2 <= min(largest, min(height, width) // 8):
        period *= 2
    return period


def _hann(n):
    """numpy's ``hanning(n)`` (the symmetric window) for a dynamic ``n``."""
    return tf.signal.hann_window(n, periodic=False, dtype=tf.float64)


def _power_spectra(images):
    """``|FFT|^2`` of each image's windowed, mean-free luminance: (batch, H, W), float64."""
    gray = tf.reduce_mean((tf.cast(images, tf.float64) + 1.0) / 2.0, axis=-1)
    gray = gray - tf.reduce_mean(gray, axis=[1, 2], keepdims=True)
    height, width = tf.shape(gray)[1], tf.shape(gray)[2]
    window = _hann(height)[:, None] * _hann(width)[None, :]
    return tf.abs(tf.signal.fft2d(tf.cast(gray * window, tf.complex128))) ** 2


def _grid_masks(height, width):
    """The grid frequencies and the fine-detail band (both (H, W) booleans), graph-safe: the
    same as :func:`grid_period` and ``numpy.fft.fftfreq`` give for static sizes."""
    shortest = tf.minimum(32, tf.minimum(height, width) // 8)
    candidates = tf.constant([2, 4, 8, 16, 32])
    period = tf.reduce_max(tf.where(candidates <= tf.maximum(shortest, 2), candidates, 2))

    def phases(size):  # the bins a*size/period, a = 0..period-1 (numpy's rounding: half-even)
        where = tf.math.round(tf.cast(tf.range(period), tf.float64)
                              * tf.cast(size, tf.float64) / tf.cast(period, tf.float64))
        hits = tf.one_hot(tf.cast(where, tf.int32) % size, size)
        return tf.reduce_any(hits > 0, axis=0)

    grid = phases(height)[:, None] & phases(width)[None, :]
    grid &= ~(tf.equal(tf.range(height), 0)[:, None] & tf.equal(tf.range(width), 0)[None, :])

    def frequencies(size):  # |numpy.fft.fftfreq(size)|
        k = tf.range(size)
        return tf.cast(tf.minimum(k, size - k), tf.float64) / tf.cast(size, tf.float64)

    radius = tf.sqrt(frequencies(height)[:, None] ** 2 + frequencies(width)[None, :] ** 2)
    return grid, (radius > 0.25) & ~grid


#: The sums :class:`TextureStats` and :class:`TextureMetric` accumulate, per side.
TEXTURE_SUMS = ("grid_out", "near_out", "high_out", "grid_tgt", "near_tgt", "high_tgt")


def texture_sums(targets, outputs):
    """The six energy sums of one batch (a dict keyed by :data:`TEXTURE_SUMS`, float64
    scalars); graph-safe, any image size."""
    sums = {}
    for side, images in (("tgt", targets), ("out", outputs)):
        power = _power_spectra(images)
        grid, high = _grid_masks(tf.shape(power)[1], tf.shape(power)[2])
        near = sum(tf.roll(power, shift, axis) for shift in (-2, 2) for axis in (1, 2)) / 4
        sums[f"grid_{side}"] = tf.reduce_sum(tf.boolean_mask(power, grid, axis=1))
        sums[f"near_{side}"] = tf.reduce_sum(tf.boolean_mask(near, grid, axis=1))
        sums[f"high_{side}"] = tf.reduce_sum(tf.boolean_mask(power, high, axis=1))
    return sums


def texture_ratios(sums):
    """``{"grid": ..., "sharp": ...}`` from accumulated :func:`texture_sums`."""
    tiny = 1e-12
    grid_out = sums["grid_out"] / tf.maximum(sums["near_out"], tiny)
    grid_tgt = sums["grid_tgt"] / tf.maximum(sums["near_tgt"], tiny)
    return {"grid": grid_out / tf.maximum(grid_tgt, tiny),
            "sharp": sums["high_out"] / tf.maximum(sums["high_tgt"], tiny)}


class TextureStats:
    """Accumulates the ``grid`` and ``sharp`` measures (see the module's doc) over a test set."""

    def __init__(self):
        self.sums = dict.fromkeys(TEXTURE_SUMS, 0.0)

    def update(self, targets, outputs):
        for key, value in texture_sums(targets, outputs).items():
            self.sums[key] += float(value)

    def result(self):
        """``{"grid": ..., "sharp": ...}``: outputs relative to targets (1 = alike)."""
        sums = {k: tf.constant(v, tf.float64) for k, v in self.sums.items()}
        return {k: float(v) for k, v in texture_ratios(sums).items()}


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class TextureMetric(keras.metrics.Metric):
    """``grid`` and ``sharp`` as a Keras metric (its result is a dict of both), so that the
    validation of every epoch logs them beside L1, PSNR and SSIM (``val_grid``, ``val_sharp``
    in ``history.csv`` and TensorBoard)."""

    def __init__(self, name="texture", **kwargs):
        super().__init__(name=name, **kwargs)
        self.sums = {key: self.add_variable((), "zeros", dtype="float64", name=key)
                     for key in TEXTURE_SUMS}

    def update_state(self, targets, outputs):
        sums = texture_sums(targets, outputs)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # Every replica keeps the sums of all replicas' images, so its ratio is the pooled
            # one whichever replica's result is read or however they are averaged (a sum of
            # replicas' sums scales all six alike, which the ratios ignore).
            sums = context.all_reduce(tf.distribute.ReduceOp.SUM, sums)
        for key, value in sums.items():
            self.sums[key].assign_add(value)

    def result(self):
        return {k: tf.cast(v, tf.float32) for k, v in
                texture_ratios({k: tf.convert_to_tensor(v) for k, v in self.sums.items()}).items()}

    def reset_state(self):
        for variable in self.sums.values():
            variable.assign(0.0)


def texture_scores(targets, outputs):
    """:class:`TextureStats` of one batch: ``{"grid": ..., "sharp": ...}``."""
    stats = TextureStats()
    stats.update(targets, outputs)
    return stats.result()
