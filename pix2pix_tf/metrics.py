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


def _power_spectra(images):
    """``|FFT|^2`` of each image's windowed, mean-free luminance: (batch, H, W)."""
    gray = ((np.asarray(images, np.float64) + 1) / 2).mean(axis=-1)
    gray = gray - gray.mean(axis=(1, 2), keepdims=True)
    window = np.outer(np.hanning(gray.shape[1]), np.hanning(gray.shape[2]))
    return np.abs(np.fft.fft2(gray * window)) ** 2


def _grid_masks(height, width):
    period = grid_period(height, width)
    rows = np.zeros(height, bool)
    cols = np.zeros(width, bool)
    rows[np.round(np.arange(period) * height / period).astype(int) % height] = True
    cols[np.round(np.arange(period) * width / period).astype(int) % width] = True
    grid = np.outer(rows, cols)
    grid[0, 0] = False  # the mean
    fy = np.abs(np.fft.fftfreq(height))[:, None]
    fx = np.abs(np.fft.fftfreq(width))[None, :]
    high = (np.hypot(fy, fx) > 0.25) & ~grid
    return grid, high


class TextureStats:
    """Accumulates the ``grid`` and ``sharp`` measures (see the module's doc) over a test set."""

    def __init__(self):
        self.sums = {"grid_out": 0.0, "near_out": 0.0, "grid_tgt": 0.0, "near_tgt": 0.0,
                     "high_out": 0.0, "high_tgt": 0.0}

    def update(self, targets, outputs):
        for side, images in (("tgt", targets), ("out", outputs)):
            power = _power_spectra(images)
            grid, high = _grid_masks(*power.shape[1:])
            near = sum(np.roll(power, shift, axis) for shift in (-2, 2) for axis in (1, 2)) / 4
            self.sums[f"grid_{side}"] += float(power[:, grid].sum())
            self.sums[f"near_{side}"] += float(near[:, grid].sum())
            self.sums[f"high_{side}"] += float(power[:, high].sum())

    def result(self):
        """``{"grid": ..., "sharp": ...}``: outputs relative to targets (1 = alike)."""
        s, tiny = self.sums, 1e-12
        grid_out = s["grid_out"] / max(s["near_out"], tiny)
        grid_tgt = s["grid_tgt"] / max(s["near_tgt"], tiny)
        return {"grid": grid_out / max(grid_tgt, tiny),
                "sharp": s["high_out"] / max(s["high_tgt"], tiny)}


def texture_scores(targets, outputs):
    """:class:`TextureStats` of one batch: ``{"grid": ..., "sharp": ...}``."""
    stats = TextureStats()
    stats.update(targets, outputs)
    return stats.result()
