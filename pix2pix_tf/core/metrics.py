"""Image-quality metrics: L1, PSNR, SSIM, the paper's Lab colour-histogram intersection, and
the texture measures ``grid``, ``sharp`` and ``swd``.

All functions take images in [-1, 1] (the models' range), shaped (batch, H, W, C).
PSNR and SSIM are computed on [0, 1] images (so PSNR is the usual dB for 8-bit-like data).

The histogram intersection is the colour-distribution score of the paper's Fig. 7: the
histograms of L, a and b over all output pixels and over all target pixels, normalised to sum
1, compared by intersection (sum of bin-wise minima; 1 = identical distributions). No pretrained
network is involved. Bins: 50 for L in [0, 100], 64 each for a and b in [-128, 128].

L1 and PSNR reward blur and do not see the checkerboard that stride-2 transposed convolutions
leave early in training (Odena et al., 2016), so :class:`TextureStats` measures both, relative
to the targets (1.0 = like the real images):

- ``grid``: the outputs' excess energy, over the targets', where a pattern repeating every ``p``
  pixels puts all of its energy: the lattice points ``(a * H / p, b * W / p)`` cycles. Per image,
  the energy at the points of the 16-pixel lattice (which holds every period dividing 16: the 2,
  4, 8 and 16 px of stacked stride-2 up-convolutions and the PatchGAN's 8-px logit lattice; DC
  left out) over the mean energy of the ring of bins two away from each point (a smooth
  spectrum gives about 1, a lattice a spike above its ring), and the same for the points the
  32-px lattice adds; each ratio's geometric mean over the images, the outputs' over the
  targets', and ``grid`` the larger of the two. :func:`lattice_period` says which lattices
  smaller images get. Before issue 30 the energies were pooled over all periods 2..32 at once:
  the 32-px lattice's extra points lie nearer DC and hold about five times the natural energy
  of the 16-px lattice's, so a faint 8 or 16-px lattice drowned in them (an 8 or 16-px lattice
  of RMS 0.01 planted on the demo tiles: 2.1 pooled, 12.7 now; 16 tiles against 16 others:
  0.98-1.09 either way). The geometric mean over images (a running sum of per-image log
  ratios, so :class:`TextureMetric` computes it exactly) weighs every image alike: a lattice on
  flat ground, where it shows, is not outweighed by busy tiles.
- ``sharp``: the mean spectral energy above a quarter of the sampling rate (fine detail), the
  points of the lattice up to :func:`grid_period` left out, pooled over the set, outputs' over
  targets': below 1 is blurrier than the targets.

Both use the luminance (channel mean) of each image minus its mean, under a Hann window.

:class:`SlicedWasserstein` (``swd``) is the sliced Wasserstein distance of ProGAN (Karras et al.,
2018, "Progressive growing of GANs for improved quality, stability, and variation", Sec. 5 and
their ``metrics/sliced_wasserstein.py``): the distribution of 7x7 patches of the outputs against
that of the targets, per level of a Laplacian pyramid. It is tied to no frequency and is not a
ratio: 0 is the targets' patch statistics, and blur, noise, a lattice or wrong texture all
raise it. As theirs: images as 8-bit values, a Laplacian pyramid with the 5x5 binomial filter
(``[1, 4, 6, 4, 1] / 16``, mirrored edges; each level = image - up(down(image)), the coarsest the
blurred image itself) from full size down to 16 px; 128 random 7x7 patches per image and level
(descriptors of ``7 * 7 * C`` values) normalised per channel; 4 x 128 random unit directions,
both sets projected and sorted, and the mean absolute difference of the sorted projections,
times 1e3. Ours differs in four ways. Both sets are normalised by the targets' per-channel
mean and standard deviation, not each by its own (:func:`sliced_wasserstein` says why; ProGAN's
is ``normalisation="own"``). Patch positions are a seeded function of the image's index in the
set, the same for output ``i`` and target ``i`` (so the targets score exactly 0 against
themselves and batch splitting changes nothing), and the directions one of the level. And the
summary ``swd`` is the mean of the two finest levels, where up-sampling artifacts and missing
detail live (ProGAN's averages all levels, which the coarse ones, colour and layout, dominate).
The value falls as the number of images grows (a finite sample of patches is never exactly
the distribution), so compare scores over the same images. On the 32 demo test tiles: 16
tiles against 16 others 57-64 (interleaved) and 109-132 (the Old World's against the New),
the targets blurred by a Gaussian of sigma 1 / 1.5 245 / 332, noise of sigma 0.05 644, an 8 or
16-px lattice of RMS 0.03 (8 grey levels) 330-340; one of RMS 0.01 only 68, which ``grid``
sees (benchmarks/NOTES.md has the table).
"""

import keras
import numpy as np
import tensorflow as tf

LAB_BINS = ((50, 0.0, 100.0), (64, -128.0, 128.0), (64, -128.0, 128.0))

#: Marks graph code that needs no AutoGraph (no Python control flow on tensors): traced as it
#: is, a Keras test step with the texture metrics traces in a third of the time.
_plain_graph = tf.autograph.experimental.do_not_convert


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


def _grid_period_tensor(height, width):
    """:func:`grid_period` of dynamic sizes."""
    shortest = tf.minimum(32, tf.minimum(height, width) // 8)
    candidates = tf.constant([2, 4, 8, 16, 32])
    return tf.reduce_max(tf.where(candidates <= tf.maximum(shortest, 2), candidates, 2))


def _phases(size, period):
    """The frequency bins ``a * size / period`` (``a = 0..period-1``, numpy's half-even
    rounding) as a (size,) boolean; graph-safe."""
    where = tf.math.round(tf.cast(tf.range(period), tf.float64)
                          * tf.cast(size, tf.float64) / tf.cast(period, tf.float64))
    return tf.reduce_any(tf.one_hot(tf.cast(where, tf.int32) % size, size) > 0, axis=0)


def _grid_masks(height, width):
    """The grid frequencies and the fine-detail band (both (H, W) booleans), graph-safe: the
    same as :func:`grid_period` and ``numpy.fft.fftfreq`` give for static sizes."""
    period = _grid_period_tensor(height, width)
    grid = _phases(height, period)[:, None] & _phases(width, period)[None, :]
    grid &= ~(tf.equal(tf.range(height), 0)[:, None] & tf.equal(tf.range(width), 0)[None, :])

    def frequencies(size):  # |numpy.fft.fftfreq(size)|
        k = tf.range(size)
        return tf.cast(tf.minimum(k, size - k), tf.float64) / tf.cast(size, tf.float64)

    radius = tf.sqrt(frequencies(height)[:, None] ** 2 + frequencies(width)[None, :] ** 2)
    return grid, (radius > 0.25) & ~grid


def lattice_period(height, width):
    """The lattices ``grid`` measures for ``height`` x ``width`` images: ``(fine, with_32)``,
    the fine lattice's period (16 px, or :func:`grid_period` if that is less: points at least 8
    bins apart, so the ring two bins around one point holds neither a neighbour nor its Hann
    window's spread) and whether the 32-px lattice's other points are a term of their own
    (from 256 px on)."""
    period = grid_period(height, width)
    return min(period, 16), period == 32


def _lattice_masks(height, width):
    """The ``fine`` and ``coarse`` lattice points of :func:`lattice_period` (coarse: the points
    the 32-px lattice adds; without a 32-px term, the fine points again), DC left out, as
    (H, W) booleans; graph-safe."""
    period = _grid_period_tensor(height, width)

    def lattice(p):
        return _phases(height, p)[:, None] & _phases(width, p)[None, :]

    not_dc = ~(tf.equal(tf.range(height), 0)[:, None] & tf.equal(tf.range(width), 0)[None, :])
    fine = lattice(tf.minimum(period, 16)) & not_dc
    coarse = tf.where(tf.equal(period, 32), lattice(32) & ~fine & not_dc, fine)
    return fine, coarse


def _ring_weights(mask):
    """(H, W) weights whose sum with a power spectrum is, summed over the points of ``mask``,
    the mean power of the 16 bins at Chebyshev distance 2 around each point (circularly)."""
    mask = tf.cast(mask, tf.float64)
    ring = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if max(abs(dy), abs(dx)) == 2]
    return sum(tf.roll(mask, shift, (0, 1)) for shift in ring) / len(ring)


#: The sums :class:`TextureStats` and :class:`TextureMetric` accumulate: per side the sum over
#: images of the log lattice-to-ring ratio at the fine and the coarse lattice points and the
#: pooled fine-detail energy, and the number of images.
TEXTURE_SUMS = ("fine_out", "coarse_out", "high_out", "fine_tgt", "coarse_tgt", "high_tgt",
                "images")


@_plain_graph
def texture_sums(targets, outputs):
    """The :data:`TEXTURE_SUMS` of one batch (a dict of float64 scalars); graph-safe (no
    data-dependent shapes, so it also runs under XLA), any image size."""
    sums = {}
    for side, images in (("tgt", targets), ("out", outputs)):
        power = _power_spectra(images)
        height, width = tf.shape(power)[1], tf.shape(power)[2]
        _, high = _grid_masks(height, width)
        # A floor far below float32 rounding, so that an image without any detail (flat, or
        # blurred to nothing) has ratio 1 instead of 0 / 0.
        floor = 1e-10 * tf.reduce_sum(power, axis=[1, 2]) + 1e-30
        for name, mask in zip(("fine", "coarse"), _lattice_masks(height, width)):
            on = tf.reduce_sum(power * tf.cast(mask, tf.float64), axis=[1, 2])
            ring = tf.reduce_sum(power * _ring_weights(mask), axis=[1, 2])
            sums[f"{name}_{side}"] = tf.reduce_sum(tf.math.log((on + floor) / (ring + floor)))
        sums[f"high_{side}"] = tf.reduce_sum(power * tf.cast(high, tf.float64))
    sums["images"] = tf.cast(tf.shape(power)[0], tf.float64)
    return sums


def texture_ratios(sums):
    """``{"grid": ..., "sharp": ...}`` from accumulated :func:`texture_sums`."""
    images = tf.maximum(sums["images"], 1.0)
    fine = tf.exp((sums["fine_out"] - sums["fine_tgt"]) / images)
    coarse = tf.exp((sums["coarse_out"] - sums["coarse_tgt"]) / images)
    return {"grid": tf.maximum(fine, coarse),
            "sharp": sums["high_out"] / tf.maximum(sums["high_tgt"], 1e-12)}


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
    in ``history.csv`` and TensorBoard): the same sums as :class:`TextureStats`, so the same
    numbers over the same images."""

    def __init__(self, name="texture", **kwargs):
        super().__init__(name=name, **kwargs)
        self.sums = {key: self.add_variable((), "zeros", dtype="float64", name=key)
                     for key in TEXTURE_SUMS}

    @_plain_graph
    def update_state(self, targets, outputs):
        sums = texture_sums(targets, outputs)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # Every replica keeps the sums of all replicas' images, so its ratio is the pooled
            # one whichever replica's result is read or however they are averaged (a sum of
            # replicas' sums scales all of them alike, the image count too, which the ratios
            # and means ignore).
            sums = context.all_reduce(tf.distribute.ReduceOp.SUM, sums)
        for key, value in sums.items():
            self.sums[key].assign_add(value)

    @_plain_graph
    def result(self):
        return {k: tf.cast(v, tf.float32) for k, v in
                texture_ratios({k: tf.convert_to_tensor(v) for k, v in self.sums.items()}).items()}

    def reset_state(self):
        for variable in self.sums.values():
            variable.assign(0.0)


#: ProGAN's settings of the sliced Wasserstein distance: 7x7 patches, 128 of them per image and
#: pyramid level, 4 repeats of 128 random directions, levels down to 16 px.
SWD_PATCH, SWD_PATCHES, SWD_REPEATS, SWD_DIRECTIONS, SWD_COARSEST = 7, 128, 4, 128, 16
_BINOMIAL = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def swd_levels(height, width):
    """The (height, width) of each Laplacian level of ``height`` x ``width`` images, finest
    first: halved (rounding up) while the shorter side stays at least 16 px (ProGAN's rule:
    5 levels for 256 px, 3 for 64, one for anything under 32)."""
    sizes = [(height, width)]
    while min(-(-sizes[-1][0] // 2), -(-sizes[-1][1] // 2)) >= SWD_COARSEST:
        sizes.append((-(-sizes[-1][0] // 2), -(-sizes[-1][1] // 2)))
    return sizes


def swd_names(height, width):
    """The per-level keys of :meth:`SlicedWasserstein.result`, finest first: ``swd_<the
    level's shorter side>`` (``swd_256``, ``swd_128``, ... ``swd_16`` for 256 px images)."""
    return [f"swd_{min(h, w)}" for h, w in swd_levels(height, width)]


def _gather_replicas(context, x):
    """Every replica's ``x``, concatenated along the batch in replica order, on every replica.
    ``all_gather`` where it works; under ``MultiWorkerMirroredStrategy`` (whose ``all_gather``
    inside a ``tf.function`` fails: "destinations can not be empty") the same rows by two
    all-reduces, each replica's rows placed in its own slot of a zero-padded stack."""
    if not isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return context.all_gather(x, axis=0)
    replicas, me = context.num_replicas_in_sync, context.replica_id_in_sync_group
    count = tf.shape(x)[0]
    counts = tf.cast(context.all_reduce(
        tf.distribute.ReduceOp.SUM, tf.one_hot(me, replicas) * tf.cast(count, tf.float32)),
        tf.int32)
    longest = tf.reduce_max(counts)
    padding = tf.concat([[[0, longest - count]], tf.zeros([tf.rank(x) - 1, 2], tf.int32)], 0)
    padded = tf.pad(x, padding)
    slots = tf.scatter_nd([[me]], padded[None], tf.concat([[replicas], tf.shape(padded)], 0))
    stacked = context.all_reduce(tf.distribute.ReduceOp.SUM, slots)
    return tf.boolean_mask(stacked, tf.range(longest)[None, :] < counts[:, None])


def _binomial(images, gain=1.0):
    """The 5x5 binomial filter (separable ``[1, 4, 6, 4, 1] / 16`` times ``gain`` per axis) with
    mirrored edges (scipy's 'mirror', TensorFlow's 'REFLECT': ProGAN's ``pyr_down``)."""
    padded = tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="REFLECT")
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    rows = sum(gain * w * padded[:, k:k + height] for k, w in enumerate(_BINOMIAL))
    return sum(gain * w * rows[:, :, k:k + width] for k, w in enumerate(_BINOMIAL))


def _pyr_up(images, size):
    """ProGAN's ``pyr_up``: zeros between the pixels, the binomial filter times 4, cut to
    ``size`` (which odd sizes need)."""
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    spread = tf.reshape(tf.stack([images, tf.zeros_like(images)], axis=2),
                        [batch, 2 * height, width, channels])
    spread = tf.reshape(tf.stack([spread, tf.zeros_like(spread)], axis=3),
                        [batch, 2 * height, 2 * width, channels])
    return _binomial(spread, gain=2.0)[:, :size[0], :size[1]]


@_plain_graph
def laplacian_pyramid(images, levels):
    """ProGAN's Laplacian pyramid of ``levels`` levels (finest first; each the image minus its
    blurred, halved and re-expanded self, the last the blurred image itself); graph-safe."""
    pyramid = [tf.cast(images, tf.float32)]
    for _ in range(1, levels):
        down = _binomial(pyramid[-1])[:, ::2, ::2]
        pyramid[-1] = pyramid[-1] - _pyr_up(down, tf.shape(pyramid[-1])[1:3])
        pyramid.append(down)
    return pyramid


def _patches(level, centres):
    """The 7x7 patches of ``level`` (B, h, w, C) around ``centres`` (B, P, 2), flattened:
    (B, P, 49 * C)."""
    half = SWD_PATCH // 2
    offsets = tf.range(-half, half + 1)
    size = tf.shape(level)[1:3]
    ys = tf.clip_by_value(centres[:, :, 0, None] + offsets, 0, size[0] - 1)  # (B, P, 7)
    xs = tf.clip_by_value(centres[:, :, 1, None] + offsets, 0, size[1] - 1)
    shape = tf.shape(ys)
    grid = tf.stack([tf.broadcast_to(ys[:, :, :, None], tf.concat([shape, [SWD_PATCH]], 0)),
                     tf.broadcast_to(xs[:, :, None, :], tf.concat([shape, [SWD_PATCH]], 0))],
                    axis=-1)  # (B, P, 7, 7, 2)
    patches = tf.gather_nd(level, grid, batch_dims=1)  # (B, P, 7, 7, C)
    return tf.reshape(patches, [shape[0], shape[1], -1])


def _mix32(x):
    """A 32-bit integer hash (Wellons' lowbias32) of int64 tensors in [0, 2**32): integer ops
    only, so the same on every device and under XLA (a 32-bit product is split in 16-bit
    halves so that nothing overflows int64)."""
    right, left, low = tf.bitwise.right_shift, tf.bitwise.left_shift, tf.bitwise.bitwise_and

    def times(x, c):
        lo, hi = low(x, 0xFFFF), right(x, 16)
        return low(lo * c + left(hi * (c & 0xFFFF), 16), 0xFFFFFFFF)

    x = tf.bitwise.bitwise_xor(x, right(x, 16))
    x = times(x, 0x7FEB352D)
    x = tf.bitwise.bitwise_xor(x, right(x, 15))
    x = times(x, 0x846CA68B)
    return tf.bitwise.bitwise_xor(x, right(x, 16))


def _patch_centres(indices, seed, level, patches, size):
    """(B, patches, 2) int32 centres where a 7x7 patch fits in a level of ``size`` (h, w),
    uniform as ProGAN's ``randint(3, size - 3)``: 24 bits of a hash of ``(seed, the image's
    index, level, patch, axis)``."""
    xor = tf.bitwise.bitwise_xor
    index = tf.bitwise.bitwise_and(tf.cast(indices, tf.int64), 0xFFFFFFFF)[:, None, None]
    slot = tf.reshape(tf.range(2 * patches, dtype=tf.int64) + 2 * patches * level,
                      [1, patches, 2])
    key = _mix32(xor(_mix32(xor(_mix32(tf.constant(seed & 0xFFFFFFFF, tf.int64)), index)),
                     slot))
    half = SWD_PATCH // 2
    span = tf.cast(tf.maximum(size - 2 * half, 1), tf.int64)  # (2,)
    return tf.cast(half + tf.bitwise.right_shift(tf.bitwise.right_shift(key, 8) * span, 24),
                   tf.int32)


@_plain_graph
def swd_descriptors(images, indices, *, seed=0, patches=SWD_PATCHES, keep=None):
    """The raw patch descriptors of ``images`` ([-1, 1], (B, H, W, C)) per pyramid level, finest
    first (the first ``keep`` levels of :func:`swd_levels`' if given): a list of (B, patches,
    49 * C) float32 tensors; graph-safe.

    The images become 8-bit values as ProGAN's do (rounded, clipped to 0..255). The patch
    centres of image ``indices[i]`` (its number in the whole set) are uniform over the
    positions where a patch fits and a function of ``seed`` (an int >= 0), that number and the
    level only: the same for an output and its target, for any batch splitting, on any run and
    device, with or without XLA."""
    images = tf.round(tf.clip_by_value((tf.cast(images, tf.float32) + 1.0) * 127.5, 0.0, 255.0))
    height, width = images.shape[1], images.shape[2]
    if height and width:
        levels = len(swd_levels(height, width))
        # Level l is the Gaussian l minus the expanded Gaussian l + 1: keeping k needs k + 1.
        pyramid = laplacian_pyramid(images, levels if keep is None else min(levels, keep + 1))
    elif keep:
        pyramid = _dynamic_pyramid(images, keep)
    else:
        raise ValueError("SWD of all levels needs images whose height and width are known "
                         "when it is traced (or keep=).")
    return [_patches(level, _patch_centres(indices, seed, number, patches,
                                           tf.shape(level)[1:3]))
            for number, level in enumerate(pyramid[:keep])]


def swd_level_count(height, width):
    """``len(swd_levels(height, width))`` of dynamic sizes (int32)."""
    size, count = tf.minimum(height, width), tf.constant(1)
    for _ in range(16):
        size = (size + 1) // 2
        count += tf.cast(size >= SWD_COARSEST, tf.int32)
    return count


def _dynamic_pyramid(images, keep):
    """The first ``keep`` levels of :func:`laplacian_pyramid` for sizes known only when it
    runs: each level the Laplacian one, or the blurred image itself where that level is the
    images' coarsest (levels past it, which small images lack, are not meaningful)."""
    gaussians = [images]
    for _ in range(keep):
        gaussians.append(_binomial(gaussians[-1])[:, ::2, ::2])
    count = swd_level_count(tf.shape(images)[1], tf.shape(images)[2])
    return [tf.where(level < count - 1,
                     gaussians[level] - _pyr_up(gaussians[level + 1],
                                                tf.shape(gaussians[level])[1:3]),
                     gaussians[level]) for level in range(keep)]


def _swd_directions(seed, level, components, repeats, directions):
    """(repeats, components, directions) random unit vectors: a constant from numpy's
    generator at ``(seed, level)``, so the same on every device and under XLA."""
    if components is None:
        raise ValueError("SWD needs images whose channel count is known when it is traced.")
    dirs = np.random.default_rng([seed, level]).standard_normal((repeats, components, directions))
    return tf.constant(dirs / np.linalg.norm(dirs, axis=1, keepdims=True), tf.float32)


def _channel_statistics(descriptors, weight=None):
    """Each channel's mean and standard deviation over all descriptors (n, 49 * C) and patch
    positions (ProGAN's ``finalize_descriptors``); ``weight`` (n,) of 0 / 1 leaves rows out (a
    fixed-size buffer's unused ones)."""
    n = tf.shape(descriptors)[0]
    values = tf.reshape(descriptors, [n, SWD_PATCH * SWD_PATCH, -1])
    weight = tf.ones([n], tf.float32) if weight is None else weight
    count = tf.maximum(tf.reduce_sum(weight), 1.0) * SWD_PATCH * SWD_PATCH
    w = weight[:, None, None]
    mean = tf.reduce_sum(w * values, axis=[0, 1]) / count
    std = tf.sqrt(tf.reduce_sum(w * (values - mean) ** 2, axis=[0, 1]) / count)
    return mean, tf.maximum(std, 1e-6)


def _normalised(descriptors, statistics):
    n = tf.shape(descriptors)[0]
    mean, std = statistics
    values = tf.reshape(descriptors, [n, SWD_PATCH * SWD_PATCH, -1])
    return tf.ensure_shape(tf.reshape((values - mean) / std, tf.shape(descriptors)),
                           descriptors.shape)


#: How :func:`sliced_wasserstein` normalises the descriptors: both sets by the targets'
#: statistics (ours, the default), or each set by its own (ProGAN's).
SWD_NORMALISATIONS = ("targets", "own")


@_plain_graph
def sliced_wasserstein(outputs, targets, *, seed=0, level=0, repeats=SWD_REPEATS,
                       directions=SWD_DIRECTIONS, normalisation="targets"):
    """ProGAN's ``sliced_wasserstein`` of two descriptor sets ((n, 49 * C) and (m, 49 * C), raw
    :func:`swd_descriptors`, normalised here): for ``repeats`` draws of ``directions`` random
    unit vectors, the mean absolute difference of both sets' sorted projections; the mean over
    the repeats (not yet times 1e3). Unequal counts compare ``min(n, m)`` evenly spaced
    quantiles of the larger set's sorted projections (a deterministic subsample); equal
    counts, every one. Graph-safe.

    ``normalisation="targets"`` scales both sets by the targets' per-channel mean and standard
    deviation, ``"own"`` each set by its own (ProGAN's ``finalize_descriptors``). Own
    statistics make the distance blind to a pyramid level's contrast, which is what blur and
    noise change most: on the 32 demo tiles a sigma-1.5 blur of the targets then scores 67
    against them, no more than 16 real tiles against 16 others (57-170); with the targets'
    statistics, one yardstick whichever model is scored, it scores 332 (real tiles 57-132)."""
    if normalisation not in SWD_NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {SWD_NORMALISATIONS}, not "
                         f"{normalisation!r}.")
    outputs, targets = tf.cast(outputs, tf.float32), tf.cast(targets, tf.float32)
    reference = _channel_statistics(targets)
    own = _channel_statistics(outputs) if normalisation == "own" else reference
    a, b = _normalised(outputs, own), _normalised(targets, reference)
    n, m = tf.shape(a)[0], tf.shape(b)[0]
    k = tf.minimum(n, m)

    def quantiles(size):
        where = (tf.cast(tf.range(k), tf.float64) + 0.5) * tf.cast(size, tf.float64)
        return tf.cast(tf.math.floor(where / tf.cast(k, tf.float64)), tf.int32)

    pick_a, pick_b = quantiles(n), quantiles(m)
    dirs = _swd_directions(seed, level, a.shape[1], repeats, directions)
    distances = []
    for r in range(repeats):
        pa = tf.gather(tf.sort(a @ dirs[r], axis=0), pick_a)
        pb = tf.gather(tf.sort(b @ dirs[r], axis=0), pick_b)
        distances.append(tf.reduce_mean(tf.abs(pa - pb)))
    return tf.reduce_mean(tf.stack(distances))


def _swd_summary(per_level):
    """``swd``: the mean of the two finest levels' values (the one level of small images)."""
    return sum(per_level[:2]) / len(per_level[:2])


_DESCRIPTOR_GRAPHS = {}


def _descriptor_graph(shape, seed, patches):
    """:func:`swd_descriptors` traced once per process for images of ``shape`` (H, W, C), any
    batch: in a graph it runs six times faster than eagerly (32 images at 256 px in batches of
    4: 0.7 s against 4.2 s on a 2-core VM), which repays its trace (about 2 s) from the first
    test set on."""
    key = (tuple(shape), seed, patches)
    if key not in _DESCRIPTOR_GRAPHS:
        _DESCRIPTOR_GRAPHS[key] = tf.function(
            lambda images, indices: swd_descriptors(images, indices, seed=seed, patches=patches),
            input_signature=[tf.TensorSpec((None, *shape), tf.float32),
                             tf.TensorSpec((None,), tf.int64)], autograph=False)
    return _DESCRIPTOR_GRAPHS[key]


class SlicedWasserstein:
    """Accumulates ProGAN's sliced Wasserstein distance (see the module's doc) between the
    outputs and the targets over a test set.

    Memory is bounded: the descriptors of the first ``max_images`` images (``patches`` per image
    and level: 128 x 147 float32 values, 75 KB for RGB, so 5 levels of both sides take 0.75 MB
    per 256 px image and 190 MB at the default 256 images); later images are not scored, so
    compare sets of the same size. ``seed`` fixes the patch positions and directions."""

    def __init__(self, seed=0, patches=SWD_PATCHES, max_images=256, normalisation="targets"):
        if normalisation not in SWD_NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {SWD_NORMALISATIONS}, not "
                             f"{normalisation!r}.")
        self.seed, self.patches, self.max_images = seed, patches, max_images
        self.normalisation = normalisation
        self.images, self.size = 0, None
        self.descriptors = {"out": [], "tgt": []}  # per side: per level, a list of arrays

    def update(self, targets, outputs):
        targets, outputs = tf.convert_to_tensor(targets), tf.convert_to_tensor(outputs)
        if targets.shape[1:] != outputs.shape[1:]:
            raise ValueError(f"SWD compares outputs with targets of the same shape; got outputs "
                             f"{tuple(outputs.shape[1:])} and targets {tuple(targets.shape[1:])}.")
        size = tuple(targets.shape[1:])
        if self.size is not None and size != self.size:
            raise ValueError(f"SWD compares images of one size: this batch is {size[0]}x"
                             f"{size[1]}x{size[2]}, the earlier ones {self.size[0]}x"
                             f"{self.size[1]}x{self.size[2]}.")
        self.size = size
        take = min(int(targets.shape[0]), self.max_images - self.images)
        if take <= 0:
            return
        indices = tf.range(self.images, self.images + take, dtype=tf.int64)
        describe = _descriptor_graph(size, self.seed, self.patches)
        for side, images in (("tgt", targets[:take]), ("out", outputs[:take])):
            levels = describe(tf.cast(images, tf.float32), indices)
            if not self.descriptors[side]:
                self.descriptors[side] = [[] for _ in levels]
            for store, level in zip(self.descriptors[side], levels):
                store.append(level.numpy().reshape(-1, level.shape[-1]))
        self.images += take

    def result(self):
        """``swd`` (the two finest levels' mean) and each level's ``swd_<size>`` (see
        :func:`swd_names`), x 1e3: 0 = the targets' patch statistics, higher = further."""
        if not self.images:
            return {"swd": float("nan")}
        values = {}
        names = swd_names(self.size[0], self.size[1])
        for level, (name, out, tgt) in enumerate(zip(names, self.descriptors["out"],
                                                     self.descriptors["tgt"])):
            values[name] = 1e3 * float(sliced_wasserstein(
                np.concatenate(out), np.concatenate(tgt), seed=self.seed, level=level,
                normalisation=self.normalisation))
        return {"swd": _swd_summary(list(values.values())), **values}


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class SWDMetric(keras.metrics.Metric):
    """:class:`SlicedWasserstein`'s ``swd`` as a Keras metric, so that every epoch's validation
    logs it (``val_swd`` in ``history.csv``) beside ``val_grid``.

    The descriptors of the two finest levels live in fixed-size buffers, room for the first
    ``capacity`` images of each validation pass (``patches`` per image and level; 2 levels x 2
    sides x 33 x 128 x 147 float32 for RGB, 10 MB); later images are not scored. With the same
    seed and at most ``capacity`` images it gives :class:`SlicedWasserstein`'s ``swd`` over
    the same images, to float rounding. Under ``tf.distribute`` every replica gathers all
    replicas' images (in replica order, which is the global batch's) and keeps the same
    buffers, so any replica's result is the single device's.

    Keras reads the result after every validation batch, so it is recomputed whenever images
    were added (not once the buffer is full). ``fixed_shapes`` chooses how: True, over the
    whole buffer with the unused rows masked (shapes known when traced, as XLA needs; a GPU
    does it in milliseconds), False, over the filled rows only (on CPUs the sorts dominate: a
    validation pass of 32 images at 256 px one by one spent 10 s in it on a loaded 2-core VM,
    against 0.3 s for TextureMetric; larger batches cut that in proportion);
    None (the default) takes True where the machine has an accelerator (where Keras'
    ``jit_compile="auto"`` compiles with XLA), False on CPUs only. Give True for a CPU step
    compiled with ``jit_compile=True``."""

    def __init__(self, channels=3, capacity=32, patches=SWD_PATCHES, seed=0,
                 normalisation="targets", fixed_shapes=None, name="swd", **kwargs):
        super().__init__(name=name, **kwargs)
        if normalisation not in SWD_NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {SWD_NORMALISATIONS}, not "
                             f"{normalisation!r}.")
        self.channels, self.capacity, self.patches = channels, capacity, patches
        self.seed, self.normalisation, self.fixed_shapes = seed, normalisation, fixed_shapes
        rows = (capacity + 1) * patches  # the last image's rows take what does not fit
        width = SWD_PATCH * SWD_PATCH * channels

        def variable(shape, name):
            return self.add_variable(shape, "zeros", dtype="float32", name=name,
                                     aggregation="only_first_replica")

        self.buffers = [{side: variable((rows, width), f"{side}{level}")
                         for side in ("out", "tgt")} for level in range(2)]
        self.images = variable((), "images")  # images offered this pass (also past capacity)
        self.levels = variable((), "levels")  # 1 for images under 32 px, else 2
        self.value = variable((), "value")  # the result at `scored` images
        self.scored = variable((), "scored")

    @_plain_graph
    def update_state(self, targets, outputs):
        targets, outputs = tf.convert_to_tensor(targets), tf.convert_to_tensor(outputs)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            shape = [None] + targets.shape[1:]  # the gathers forget the sizes
            targets = tf.ensure_shape(_gather_replicas(context, targets), shape)
            outputs = tf.ensure_shape(_gather_replicas(context, outputs), shape)
        if targets.shape[-1] is not None and targets.shape[-1] != self.channels:
            raise ValueError(f"SWDMetric was made for {self.channels}-channel images; these "
                             f"have {targets.shape[-1]}.")
        height, width = targets.shape[1], targets.shape[2]
        if height and width:
            levels = min(2, len(swd_levels(height, width)))
        else:
            levels = tf.minimum(2, swd_level_count(tf.shape(targets)[1], tf.shape(targets)[2]))
        batch = tf.shape(targets)[0]
        start = tf.cast(self.images, tf.int32)
        indices = start + tf.range(batch)
        # Rows of images past capacity all go to the spare last image's rows.
        slot = tf.minimum(indices, self.capacity)
        rows = (slot[:, None] * self.patches + tf.range(self.patches)[None, :])[..., None]
        for side, images in (("tgt", targets), ("out", outputs)):
            descriptors = swd_descriptors(images, indices, seed=self.seed, patches=self.patches,
                                          keep=2)
            for level, values in enumerate(descriptors):
                buffer = self.buffers[level][side]
                buffer.assign(tf.tensor_scatter_nd_update(buffer, rows, values))
        self.images.assign_add(tf.cast(batch, tf.float32))
        self.levels.assign(tf.cast(levels, tf.float32))

    def _distance(self, level, count):
        """Level ``level``'s SWD (x 1e3) over the buffers' first ``count`` images."""
        out = tf.convert_to_tensor(self.buffers[level]["out"])
        tgt = tf.convert_to_tensor(self.buffers[level]["tgt"])
        fixed = self.fixed_shapes
        if fixed is None:
            fixed = any(d.device_type != "CPU" for d in tf.config.list_logical_devices())
        if not fixed:
            rows = tf.cast(count, tf.int32) * self.patches
            return 1e3 * sliced_wasserstein(out[:rows], tgt[:rows], seed=self.seed, level=level,
                                            normalisation=self.normalisation)
        valid = tf.range(tf.shape(out)[0]) < tf.cast(count, tf.int32) * self.patches
        weight = tf.cast(valid, tf.float32)
        reference = _channel_statistics(tgt, weight)
        own = _channel_statistics(out, weight) if self.normalisation == "own" else reference
        a, b = _normalised(out, own), _normalised(tgt, reference)
        dirs = _swd_directions(self.seed, level, a.shape[1], SWD_REPEATS, SWD_DIRECTIONS)
        distances = []
        for r in range(SWD_REPEATS):
            # Unused rows project to +inf and sort last, in both sets.
            pa = tf.sort(tf.where(valid[:, None], a @ dirs[r], np.inf), axis=0)
            pb = tf.sort(tf.where(valid[:, None], b @ dirs[r], np.inf), axis=0)
            gap = tf.where(valid[:, None], tf.abs(pa - pb), 0.0)
            distances.append(tf.reduce_sum(gap) / tf.cast(tf.shape(gap)[1], tf.float32))
        return 1e3 * tf.add_n(distances) / (SWD_REPEATS * tf.maximum(count, 1.0) * self.patches)

    @_plain_graph
    def result(self):
        count = tf.minimum(tf.convert_to_tensor(self.images), float(self.capacity))
        two = tf.convert_to_tensor(self.levels) > 1.5

        def compute():
            first = self._distance(0, count)
            value = tf.cond(two, lambda: (first + self._distance(1, count)) / 2, lambda: first)
            self.value.assign(value)
            self.scored.assign(count)
            return tf.identity(value)

        return tf.cond(tf.logical_and(count > 0, tf.not_equal(count, self.scored)), compute,
                       lambda: tf.convert_to_tensor(self.value))

    def reset_state(self):
        for variable in (self.images, self.levels, self.value, self.scored):
            variable.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "capacity": self.capacity,
                "patches": self.patches, "seed": self.seed, "normalisation": self.normalisation,
                "fixed_shapes": self.fixed_shapes}


def swd_scores(targets, outputs, **options):
    """:class:`SlicedWasserstein` (``options``: its arguments) of one set: ``{"swd": ...,
    "swd_<size>": ...}``."""
    stats = SlicedWasserstein(**options)
    stats.update(targets, outputs)
    return stats.result()


def texture_scores(targets, outputs):
    """:class:`TextureStats` of one batch: ``{"grid": ..., "sharp": ...}``."""
    stats = TextureStats()
    stats.update(targets, outputs)
    return stats.result()
