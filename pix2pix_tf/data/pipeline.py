"""The input side of ``model.fit``: (input, target) float32 batches in [-1, 1].

Pairs come from a :class:`~pix2pix_tf.data.sources.PairSource` (folders, arrays, TFDS, ...);
everything after loading is this module's one shared tail, :func:`pair_pipeline`.

Training batches get the paper's random jitter: both images are resized to ``load_size``
(286, bicubic as in the reference code), then the SAME random ``crop_size`` (256) crop and the
same random horizontal mirror are applied to input and target, so pairs stay pixel-aligned.
Evaluation splits get no randomness.

All randomness is stateless and keyed by ``(seed, epoch, position)``: the shuffle order and the
jitter of epoch ``e`` are the same in every run with the same seed, whatever the source. The
dataset counts its own epochs (each new iteration, as ``fit`` starts an epoch, is the next epoch); pass ``epoch=`` a
``tf.Variable`` to read or set that counter, e.g. to resume at epoch 7 exactly.
"""

import math

import tensorflow as tf

from pix2pix_tf.data.files import DataError
from pix2pix_tf.data.sources import open_source, to_channels

AUTOTUNE = tf.data.AUTOTUNE
#: Which side of a pair is the model's input.
DIRECTIONS = ("AtoB", "BtoA")
#: How training images are sized (the reference code's ``--preprocess``).
PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "none")


# ---------------------------------------------------------------------------- the transforms
def _pad_to_multiple(image, multiple):
    shape = tf.shape(image)
    pad_h = (multiple - shape[0] % multiple) % multiple
    pad_w = (multiple - shape[1] % multiple) % multiple
    return tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]])


def scale_width_size(height, width, load_size, multiple):
    """(height, width) of the reference 'scale_width' resize, rounded to ``multiple``."""
    new_h = max(multiple, int(round(height * load_size / width / multiple)) * multiple)
    return new_h, load_size


def transform(a, b, key, *, preprocess, load_size, crop_size, multiple, augment, flip):
    """Applies the same geometric transform to ``a`` and ``b`` (float32 in [0, 1]).
    ``flip``: mirror at random (True), never (False), or where a boolean tensor says so."""
    ca = a.shape[-1]
    pair = tf.concat([a, b], axis=-1)  # one tensor: every op below treats both alike
    crop_key, flip_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    if preprocess == "resize_and_crop":
        size = [load_size, load_size] if augment else [crop_size, crop_size]
        pair = tf.image.resize(pair, size, method="bicubic", antialias=True)
        if augment:
            pair = tf.image.stateless_random_crop(
                pair, [crop_size, crop_size, pair.shape[-1]], seed=crop_key)
    elif preprocess == "crop":
        if augment:
            pair = tf.image.stateless_random_crop(
                pair, [crop_size, crop_size, pair.shape[-1]], seed=crop_key)
        else:
            pair = tf.image.resize_with_crop_or_pad(pair, crop_size, crop_size)
    elif preprocess == "scale_width":
        shape = tf.shape(pair)
        new_h = tf.maximum(multiple, tf.cast(tf.round(
            tf.cast(shape[0], tf.float32) * load_size / tf.cast(shape[1], tf.float32) / multiple),
            tf.int32) * multiple)
        pair = tf.image.resize(pair, tf.stack([new_h, load_size]), method="bicubic", antialias=True)
    elif preprocess == "none":
        pair = _pad_to_multiple(pair, multiple)
    if flip is not False:  # True, or a boolean tensor: may this example be mirrored?
        flipped = tf.image.stateless_random_flip_left_right(pair, seed=flip_key)
        pair = flipped if flip is True else tf.where(flip, flipped, pair)
    pair = tf.clip_by_value(pair, 0.0, 1.0) * 2.0 - 1.0  # bicubic overshoots; then to [-1, 1]
    return pair[..., :ca], pair[..., ca:]


# ------------------------------------------------------------------------------- the loader
def load_paired_dataset(
    source="demo",
    split="train",
    *,
    direction="AtoB",
    batch_size=1,
    load_size=286,
    crop_size=256,
    preprocess="resize_and_crop",
    augment=None,
    shuffle=None,
    seed=0,
    epoch=None,
    input_channels=None,
    output_channels=None,
    multiple=256,
    cache=True,
    on_error="raise",
    drop_remainder=False,
    data_dir=None,
):
    """Returns a ``tf.data.Dataset`` of ``(input, target)`` float32 batches in [-1, 1].

    Args:
        source: ``"demo"`` (the bundled map -> satellite tiles); a folder (side-by-side A|B
            images, or A/ and B/ subfolders, optionally under train/ val/ test/); a pair of
            arrays ``(inputs, targets)`` (uint8, uint16, or float in [-1, 1]; (N, H, W[, C]));
            inputs may be a dict ``{"image": ..., **conditions}``, and then so are the batches'
            inputs); a TFDS name such as ``"pix2pix/facades"`` (prefix ``tfds:`` to force); or
            any :class:`~pix2pix_tf.data.sources.PairSource`.
        split: subfolder / TFDS split; ``None`` uses the folder itself.
        direction: 'AtoB' (input = A, the left half) or 'BtoA'.
        batch_size: images per batch (paper: 1).
        load_size, crop_size: the jitter: resize to load_size, random crop to crop_size.
        preprocess: 'resize_and_crop' (default), 'crop' (random crop of the original),
            'scale_width' (width to load_size, height by aspect ratio rounded to ``multiple``),
            or 'none' (whole image, zero-padded at the bottom/right to a multiple of
            ``multiple``).
        augment: random crop and mirror; default ``True`` for split 'train', else ``False``
            (then 'resize_and_crop' resizes straight to crop_size, 'crop' takes the centre).
        shuffle: default as ``augment``.
        seed: integer key of all randomness; the same seed gives the same batches.
        epoch: optional ``tf.Variable`` (int64) holding the epoch counter (see module doc).
        input_channels, output_channels: channels to convert to; default: the largest channel
            count found among the inputs / targets (1 grayscale, 3 RGB, 4 RGBA).
        multiple: the generator's size multiple (``generator.size_multiple``), for the crop
            check, 'scale_width' and 'none'.
        cache: hold encoded files in memory when they total at most 1 GiB.
        on_error: 'raise' (default): any bad file stops with one error listing every problem;
            'skip': warn, count, and use the good pairs.
        drop_remainder: drop a last, smaller batch.
        data_dir: TFDS data directory.
    """
    if preprocess not in PREPROCESS_MODES:
        raise ValueError(f"preprocess must be one of {', '.join(PREPROCESS_MODES)}, got "
                         f"{preprocess!r}")
    pairs = open_source(source, split, crop_size=crop_size if preprocess == "crop" else None,
                        on_error=on_error, cache=cache, data_dir=data_dir)
    if augment is None:
        augment = split == "train"
    return pair_pipeline(
        pairs, direction=direction, batch_size=batch_size, load_size=load_size,
        crop_size=crop_size, preprocess=preprocess, augment=augment,
        shuffle=augment if shuffle is None else shuffle, seed=seed, epoch=epoch,
        input_channels=input_channels, output_channels=output_channels, multiple=multiple,
        drop_remainder=drop_remainder)


def pair_pipeline(pairs, *, direction="AtoB", batch_size=1, load_size=286, crop_size=256,
                  preprocess="resize_and_crop", augment=True, shuffle=True, seed=0, epoch=None,
                  input_channels=None, output_channels=None, multiple=256,
                  drop_remainder=False, skip_batches=0):
    """The shared tail: per-epoch stateless shuffle keyed by (seed, epoch), direction, channel
    conversion, jitter and mirroring keyed by (seed, epoch, position), batching, prefetch.
    Arguments as :func:`load_paired_dataset`; ``pairs`` is a PairSource. ``skip_batches`` leaves
    out the first batches of each epoch, keeping every later example's order and jitter: it
    resumes an epoch where a mid-epoch checkpoint stopped (use such a dataset for that epoch
    only)."""
    _check_options(direction, batch_size, load_size, crop_size, preprocess, multiple)
    if epoch is None:
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")
    count = len(pairs)
    # Channels are asked for as the model sees them; A and B swap roles with the direction.
    want_a, want_b = (input_channels, output_channels)
    if direction == "BtoA":
        want_a, want_b = want_b, want_a
    channels_a, channels_b = want_a or pairs.a_channels, want_b or pairs.b_channels

    _check_batchable(pairs, batch_size, preprocess, load_size, multiple)

    def element(key, record):
        a, b = to_channels(record["a"], channels_a), to_channels(record["b"], channels_b)
        if direction == "BtoA":
            a, b = b, a
        allowed = pairs.may_mirror(record) if augment else None
        flip = augment if allowed is None else allowed  # "... on the left" stays on the left
        a, b = transform(a, b, key, preprocess=preprocess, load_size=load_size,
                         crop_size=crop_size, multiple=multiple, augment=augment, flip=flip)
        extras = {name: record[name] for name in pairs.extras}
        return ({"image": a, **extras}, b) if extras else (a, b)

    def one_epoch(_):
        current = epoch.assign_add(1) - 1
        key = tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64), current)
        if pairs.random_access:
            order = (tf.argsort(tf.random.stateless_uniform([count], seed=key)) if shuffle
                     else tf.range(count))
            records = tf.data.Dataset.from_tensor_slices(order).map(
                pairs.load, num_parallel_calls=AUTOTUNE, deterministic=True)
        else:
            records = pairs.stream(key if shuffle else None)
        return records.enumerate().skip(skip_batches * batch_size).map(
            lambda position, record: (
                tf.random.experimental.stateless_fold_in(key, position), record))

    dataset = tf.data.Dataset.from_tensors(0).flat_map(one_epoch)
    dataset = dataset.map(element, num_parallel_calls=AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    batches = count // batch_size if drop_remainder else math.ceil(count / batch_size)
    if not 0 <= skip_batches < batches:
        raise ValueError(f"skip_batches must be in [0, {batches}), got {skip_batches}.")
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches - skip_batches))
    return dataset.prefetch(AUTOTUNE)


def _check_options(direction, batch_size, load_size, crop_size, preprocess, multiple):
    """ValueError for options :func:`pair_pipeline` cannot honour."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if preprocess == "resize_and_crop" and load_size < crop_size:
        raise ValueError(f"load_size ({load_size}) must be >= crop_size ({crop_size}).")
    if preprocess in ("resize_and_crop", "crop") and crop_size % multiple:
        raise ValueError(f"crop_size {crop_size} is not divisible by {multiple}, the "
                         "generator's size multiple: choose a multiple of it, or a generator "
                         "with a smaller one (e.g. --generator unet --num-downs N).")


def _check_batchable(pairs, batch_size, preprocess, load_size, multiple):
    """DataError where images that keep their own sizes would be batched together."""
    if batch_size > 1 and preprocess in ("scale_width", "none") and pairs.sizes:
        shapes = {_output_size(s, preprocess, load_size, multiple) for s in pairs.sizes}
        if len(shapes) > 1:
            raise DataError(f"With preprocess={preprocess!r} the images keep different sizes "
                            f"({sorted(shapes)[:4]}...), which cannot be batched together. Use "
                            "batch_size=1 or preprocess='resize_and_crop'.")


def _output_size(size, preprocess, load_size, multiple):
    height, width = size
    if preprocess == "scale_width":
        return scale_width_size(height, width, load_size, multiple)
    return (math.ceil(height / multiple) * multiple, math.ceil(width / multiple) * multiple)
