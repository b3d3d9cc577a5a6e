"""The input side of ``model.fit``: (input, target) float32 batches in [-1, 1].

Training batches get the paper's random jitter: both images are resized to ``load_size``
(286, bicubic as in the reference code), then the SAME random ``crop_size`` (256) crop and the
same random horizontal mirror are applied to input and target, so pairs stay pixel-aligned.
Evaluation splits get no randomness.

All randomness is stateless and keyed by ``(seed, epoch, position)``: the shuffle order and the
jitter of epoch ``e`` are the same in every run with the same seed. The dataset counts its own
epochs (each new iteration, as ``fit`` starts an epoch, is the next epoch); pass ``epoch=`` a
``tf.Variable`` to read or set that counter, e.g. to resume at epoch 7 exactly.
"""

import math
import os

import numpy as np
import tensorflow as tf

from pix2pix_tf.data.files import DataError, check_scan, scan_pairs

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "none")
DIRECTIONS = ("AtoB", "BtoA")
#: Encoded files are held in memory when they total at most this (fast on network drives).
CACHE_BYTES = 1 << 30

AUTOTUNE = tf.data.AUTOTUNE


# ----------------------------------------------------------------------------------- decoding
def decode(data, channels=None):
    """Decodes JPEG/PNG/BMP bytes to float32 in [0, 1] with ``channels`` channels (None: as
    stored).

    16-bit PNGs keep their 16-bit precision (8-bit images are decoded exactly too).
    Grayscale, grayscale+alpha, RGB and RGBA are converted as needed (alpha is dropped when
    converting to 1 or 3 channels).
    """
    # PNGs decode at 16 bits (exact for 8-bit ones too). Other formats are 8-bit: decode them as
    # such, since widening uint8 -> uint16 inside decode_image shifts (x256) instead of scaling.
    def png():
        return tf.cast(tf.io.decode_png(data, channels=0, dtype=tf.uint16), tf.float32) / 65535.0

    def other():
        image = tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)
        return tf.cast(image, tf.float32) / 255.0

    image = tf.cond(tf.strings.substr(data, 0, 4) == b"\x89PNG", png, other)
    return image if channels is None else to_channels(image, channels)


def to_channels(image, channels):
    """Converts an image with 1-4 (dynamic) channels to ``channels`` (static) channels."""
    def gray():
        return image[..., :1]

    def rgb():
        n = tf.shape(image)[-1]
        return tf.cond(n >= 3, lambda: image[..., :3], lambda: tf.tile(image[..., :1], [1, 1, 3]))

    def alpha():
        n = tf.shape(image)[-1]
        return tf.cond(n == 4, lambda: image[..., 3:4],
                       lambda: tf.cond(n == 2, lambda: image[..., 1:2],
                                       lambda: tf.ones_like(image[..., :1])))

    n = tf.shape(image)[-1]
    if channels == 1:
        out = tf.cond(n >= 3, lambda: tf.image.rgb_to_grayscale(image[..., :3]), gray)
    elif channels == 2:
        out = tf.concat([tf.cond(n >= 3, lambda: tf.image.rgb_to_grayscale(image[..., :3]), gray),
                         alpha()], -1)
    elif channels == 3:
        out = rgb()
    elif channels == 4:
        out = tf.concat([rgb(), alpha()], -1)
    else:
        raise ValueError(f"channels must be 1-4, got {channels}")
    out.set_shape([None, None, channels])
    return out


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
    """Applies the same geometric transform to ``a`` and ``b`` (float32 in [0, 1])."""
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
    if flip:
        pair = tf.image.stateless_random_flip_left_right(pair, seed=flip_key)
    pair = tf.clip_by_value(pair, 0.0, 1.0) * 2.0 - 1.0  # bicubic overshoots; then to [-1, 1]
    return pair[..., :ca], pair[..., ca:]


# ----------------------------------------------------------------------------------- sources
def _is_tfds(source):
    return isinstance(source, str) and (source.startswith("tfds:") or (
        "/" in source and not os.path.exists(source) and not source.startswith((".", "/"))))


def _array_source(source):
    """(a, b) float32 [0, 1] arrays, NHWC, from user arrays."""
    if len(source) != 2:
        raise DataError("In-memory data must be a pair (inputs, targets) of arrays.")
    arrays = []
    for name, array in zip(("inputs", "targets"), source):
        array = np.asarray(array)
        if array.ndim == 3:
            array = array[..., None]
        if array.ndim != 4 or array.shape[-1] not in (1, 2, 3, 4):
            raise DataError(f"{name} must be shaped (N, H, W) or (N, H, W, C) with C in 1-4, "
                            f"got {array.shape}.")
        if array.dtype == np.uint8:
            array = array.astype(np.float32) / 255.0
        elif array.dtype == np.uint16:
            array = array.astype(np.float32) / 65535.0
        elif np.issubdtype(array.dtype, np.floating):
            lo, hi = float(array.min()), float(array.max())
            if lo < -1.0001 or hi > 1.0001:
                raise DataError(f"float {name} must be in [-1, 1], got values in [{lo:.3g}, "
                                f"{hi:.3g}]. Scale them (x / 127.5 - 1 for 0-255 data) or pass "
                                "uint8/uint16 arrays.")
            array = (array.astype(np.float32) + 1.0) / 2.0
        else:
            raise DataError(f"{name} must be uint8, uint16 or float, got {array.dtype}.")
        arrays.append(array)
    a, b = arrays
    if len(a) != len(b):
        raise DataError(f"inputs and targets differ in length: {len(a)} vs {len(b)}.")
    if len(a) == 0:
        raise DataError("inputs and targets are empty.")
    if a.shape[1:3] != b.shape[1:3]:
        raise DataError(f"inputs are {a.shape[1]}x{a.shape[2]} but targets {b.shape[1]}x"
                        f"{b.shape[2]}: pairs must be pixel-aligned.")
    return a, b


def _file_reader(scan, cache):
    """A function index -> (a_bytes, b_bytes or b''), from memory when the files fit."""
    side_by_side = scan.layout == "side_by_side"
    a_paths = [str(p.a.path) for p in scan.pairs]
    b_paths = [""] * len(a_paths) if side_by_side else [str(p.b.path) for p in scan.pairs]
    total = sum(p.nbytes for p in scan.pairs)
    if cache and total <= CACHE_BYTES:
        read = lambda path: open(path, "rb").read() if path else b""  # noqa: E731
        a_store = tf.constant([read(p) for p in a_paths])
        b_store = tf.constant([read(p) for p in b_paths])
        return lambda i: (tf.gather(a_store, i), tf.gather(b_store, i))
    a_store, b_store = tf.constant(a_paths), tf.constant(b_paths)

    def from_disk(i):
        b_path = tf.gather(b_store, i)
        b_bytes = tf.cond(tf.strings.length(b_path) > 0,
                          lambda: tf.io.read_file(b_path), lambda: tf.constant(b""))
        return tf.io.read_file(tf.gather(a_store, i)), b_bytes

    return from_disk


def _default_channels(infos):
    return max(info.channels for info in infos) if infos else 3


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
            or a TFDS name such as ``"pix2pix/facades"`` (prefix ``tfds:`` to force).
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
        multiple: the generator's size multiple (2**num_downs) for 'scale_width' and 'none'.
        cache: hold encoded files in memory when they total at most 1 GiB.
        on_error: 'raise' (default): any bad file stops with one error listing every problem;
            'skip': warn, count, and use the good pairs.
        drop_remainder: drop a last, smaller batch.
        data_dir: TFDS data directory.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
    if preprocess not in PREPROCESS_MODES:
        raise ValueError(f"preprocess must be one of {', '.join(PREPROCESS_MODES)}, got {preprocess!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if preprocess == "resize_and_crop" and load_size < crop_size:
        raise ValueError(f"load_size ({load_size}) must be >= crop_size ({crop_size}).")
    if preprocess in ("resize_and_crop", "crop") and crop_size % multiple:
        raise ValueError(f"crop_size {crop_size} is not divisible by {multiple} (2**num_downs "
                         "of the generator): choose a multiple, or pass multiple= for a smaller "
                         "generator.")
    if augment is None:
        augment = split == "train"
    if shuffle is None:
        shuffle = augment
    if epoch is None:
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")
    # Channels are asked for as the model sees them; A and B swap roles with the direction.
    want_a, want_b = (input_channels, output_channels)
    if direction == "BtoA":
        want_a, want_b = want_b, want_a

    if isinstance(source, (tuple, list)):
        a, b = _array_source(source)
        count = len(a)
        ca = want_a or a.shape[-1]
        cb = want_b or b.shape[-1]
        a_store, b_store = tf.constant(a), tf.constant(b)

        def load(i):
            return (to_channels(tf.gather(a_store, i), ca), to_channels(tf.gather(b_store, i), cb))
        sizes = {tuple(a.shape[1:3])}
    elif _is_tfds(source):
        return _tfds_dataset(source, split, direction=direction, batch_size=batch_size,
                             load_size=load_size, crop_size=crop_size, preprocess=preprocess,
                             augment=augment, shuffle=shuffle, seed=seed, epoch=epoch,
                             a_channels=want_a, b_channels=want_b, multiple=multiple, drop_remainder=drop_remainder, data_dir=data_dir)
    else:
        if isinstance(source, str) and source == "demo":
            from pix2pix_tf.datasets import DEMO_DIR

            source = DEMO_DIR
        scan = scan_pairs(source, split, crop_size=crop_size if preprocess == "crop" else None)
        check_scan(scan, on_error)
        count = len(scan.pairs)
        side_by_side = scan.layout == "side_by_side"
        a_infos = [p.a for p in scan.pairs]
        b_infos = a_infos if side_by_side else [p.b for p in scan.pairs]
        ca = want_a or _default_channels(a_infos)
        cb = want_b or _default_channels(b_infos)
        read = _file_reader(scan, cache)

        def load(i):
            a_bytes, b_bytes = read(i)
            if side_by_side:
                whole = decode(a_bytes)
                half = tf.shape(whole)[1] // 2
                left, right = whole[:, :half], whole[:, half:]
                return to_channels(left, ca), to_channels(right, cb)
            return decode(a_bytes, ca), decode(b_bytes, cb)
        sizes = {p.size for p in scan.pairs}

    if batch_size > 1 and preprocess in ("scale_width", "none"):
        shapes = {_output_size(s, preprocess, load_size, multiple) for s in sizes}
        if len(shapes) > 1:
            raise DataError(f"With preprocess={preprocess!r} the images keep different sizes "
                            f"({sorted(shapes)[:4]}...), which cannot be batched together. Use "
                            "batch_size=1 or preprocess='resize_and_crop'.")

    def element(position, index, key):
        a, b = load(index)
        if direction == "BtoA":
            a, b = b, a
        return transform(a, b, key, preprocess=preprocess, load_size=load_size,
                         crop_size=crop_size, multiple=multiple, augment=augment,
                         flip=augment)

    def one_epoch(_):
        current = epoch.assign_add(1) - 1
        key = tf.random.experimental.stateless_fold_in(
            tf.constant([seed, 0], tf.int64), current)
        if shuffle:
            order = tf.argsort(tf.random.stateless_uniform([count], seed=key))
        else:
            order = tf.range(count)
        positions = tf.range(count, dtype=tf.int64)
        keys = tf.map_fn(lambda p: tf.random.experimental.stateless_fold_in(key, p), positions,
                         fn_output_signature=tf.TensorSpec([2], key.dtype))
        return tf.data.Dataset.from_tensor_slices((positions, order, keys))

    dataset = tf.data.Dataset.from_tensors(0).flat_map(one_epoch)
    dataset = dataset.map(element, num_parallel_calls=AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    batches = count // batch_size if drop_remainder else math.ceil(count / batch_size)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(AUTOTUNE)


def _output_size(size, preprocess, load_size, multiple):
    height, width = size
    if preprocess == "scale_width":
        return scale_width_size(height, width, load_size, multiple)
    return (math.ceil(height / multiple) * multiple, math.ceil(width / multiple) * multiple)


def _tfds_dataset(source, split, *, direction, batch_size, load_size, crop_size, preprocess,
                  augment, shuffle, seed, epoch, a_channels, b_channels, multiple,
                  drop_remainder, data_dir):
    import tensorflow_datasets as tfds

    import pix2pix_tf.datasets.tfds_pix2pix  # noqa: F401  registers "pix2pix/<config>"

    name = source[len("tfds:"):] if source.startswith("tfds:") else source
    ds = tfds.load(name, split=split, data_dir=data_dir, shuffle_files=False)
    count = int(ds.cardinality())
    spec = ds.element_spec
    ca = a_channels or spec["a"].shape[-1]
    cb = b_channels or spec["b"].shape[-1]
    if shuffle:
        ds = ds.shuffle(min(max(count, 1), 1000), seed=seed, reshuffle_each_iteration=True)

    def prepare(position, example):
        a = to_channels(tf.cast(example["a"], tf.float32) / 255.0, ca)
        b = to_channels(tf.cast(example["b"], tf.float32) / 255.0, cb)
        if direction == "BtoA":
            a, b = b, a
        key = tf.random.experimental.stateless_fold_in(
            tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64),
                                                     epoch.read_value()), position)
        return transform(a, b, key, preprocess=preprocess, load_size=load_size,
                         crop_size=crop_size, multiple=multiple, augment=augment, flip=augment)

    def one_epoch(_):
        epoch.assign_add(1)
        return ds.enumerate()

    dataset = tf.data.Dataset.from_tensors(0).flat_map(one_epoch)
    dataset = dataset.map(prepare, num_parallel_calls=AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if count > 0:
        batches = count // batch_size if drop_remainder else math.ceil(count / batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(AUTOTUNE)
