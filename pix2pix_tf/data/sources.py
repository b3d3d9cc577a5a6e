"""Where pairs come from: one small interface, several sources.

A :class:`PairSource` is a finite collection of ``(A, B)`` pairs, optionally with extra fields
(such as an instruction) that become named model inputs beside the image. It knows how many
pairs it holds, their stored channel counts, and how to load pair ``i`` inside a ``tf.data``
graph as float32 images in [0, 1]. Sources that cannot be read at random positions (a TFDS split
too large for memory) instead stream themselves in an order fixed by a key.

Everything after loading (the per-epoch shuffle keyed by seed and epoch, direction, jitter,
batching, prefetch) is one shared tail, :func:`pix2pix_tf.data.pipeline.pair_pipeline`, so every
source shuffles, augments and resumes alike.

Sources here:

- :class:`FolderSource`: side-by-side A|B images, or A/ and B/ folders (``"demo"`` is the bundled
  map -> satellite tiles), checked file by file before training (:mod:`pix2pix_tf.data.files`);
- :class:`ArraySource`: in-memory arrays ``(inputs, targets)``, where inputs may be a dict of
  named arrays holding ``"image"`` (the other entries are passed through as model inputs);
- :class:`TFDSSource`: a TensorFlow Datasets split, e.g. ``"pix2pix/facades"``.

:func:`open_source` picks one from what the user gave; :func:`available_splits` says which
splits a source has, so that a missing validation split is a decision, not a swallowed error.
"""

import concurrent.futures
import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from pix2pix_tf.data.files import DataError, check_scan, resolve_layout, scan_pairs

#: The bundled demo dataset (side-by-side map|satellite tiles in train/ and test/).
DEMO_DIR = Path(__file__).resolve().parent / "demo"
#: Encoded files are held in memory when they total at most this (fast on network drives).
CACHE_BYTES = 1 << 30
SPLITS = ("train", "val", "test")


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


class PairSource:
    """The interface: ``len(source)`` pairs with ``a_channels`` / ``b_channels`` stored
    channels, ``sizes`` (the set of (height, width), or None if unknown) and ``extras`` (names of
    extra fields). Random-access sources implement :meth:`load`; others set
    ``random_access = False`` and implement :meth:`stream`."""

    name = "pairs"
    random_access = True
    extras = ()
    sizes = None
    a_channels = b_channels = 3

    def __len__(self):
        raise NotImplementedError

    def load(self, index):
        """Pair ``index`` (a scalar int tensor) as ``{"a", "b", **extras}``: float32 images in
        [0, 1], (H, W, C)."""
        raise NotImplementedError

    def stream(self, key):
        """A dataset of every pair once, as :meth:`load` gives them, in an order fixed by
        ``key`` (a stateless-RNG key tensor; ``None``: stored order)."""
        raise NotImplementedError

    def bad_files(self):
        """``[(path, problem)]`` for stored data that no longer decodes (asked after a data
        error during training, to name the file); sources that cannot tell return ``[]``."""
        return []

    def may_mirror(self, record):
        """Whether the training jitter may mirror this record (a boolean tensor), or None: any
        record may be. A source whose extras name a side of the image ("... on the left")
        says no for those."""
        return None


def op_error_reason(error):
    """The cause line of a TensorFlow op error (e.g. 'Invalid PNG data, size 24708'), without
    the graph location and traceback TensorFlow wraps it in."""
    lines = [line.strip() for line in error.message.splitlines()]
    causes = [line for line in lines if line and not line.startswith(
        ("Graph execution error", "Detected at node", "File ", "[[", "{{"))]
    return (causes[-1] if causes else lines[0]).split(" [[")[0][:160]


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _decoded_shape(data):
    return tf.shape(decode(data))


def find_corrupt(scan, contents=None, workers=None):
    """Decodes every file of ``scan`` in full with the decoder training uses, moving pairs with a
    file that fails (corrupt data behind a good header) or decodes to another size than its
    header states into ``scan.problems``. Returns the problems found.

    ``contents``: ``{path: bytes}`` already read (files not in it are read from disk).
    """
    files = [(pair, info) for pair in scan.pairs for info in (pair.a, pair.b) if info is not None]
    contents = contents or {}

    def check(item):
        pair, info = item
        try:
            data = contents.get(info.path)
            if data is None:
                data = info.path.read_bytes()
            height, width = _decoded_shape(tf.constant(data)).numpy()[:2]
        except tf.errors.OpError as error:
            reason = op_error_reason(error)
            return pair, info.path, f"corrupt image data ({reason}): re-download or re-export it"
        except OSError as error:
            return pair, info.path, f"cannot be read ({error.strerror})"
        if (height, width) != (info.height, info.width):
            return pair, info.path, (f"decodes to {width}x{height} but its header says "
                                     f"{info.width}x{info.height}: re-export it")
        return None

    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        found = [r for r in pool.map(check, files) if r is not None]
    bad = {id(pair) for pair, _, _ in found}
    scan.pairs = [p for p in scan.pairs if id(p) not in bad]
    problems = [(path, message) for _, path, message in found]
    scan.problems = scan.problems + problems
    return problems


class FolderSource(PairSource):
    """Image files on disk (see :mod:`pix2pix_tf.data.files` for the layouts and checks)."""

    def __init__(self, root, split=None, *, crop_size=None, on_error="raise", cache=True):
        if isinstance(root, str) and root == "demo":
            root = DEMO_DIR
        scan = scan_pairs(root, split, crop_size=crop_size)
        # Each file is read once: its bytes are checked here and, if they fit, kept for training.
        in_memory = cache and sum(p.nbytes for p in scan.pairs) <= CACHE_BYTES
        contents = {}
        if in_memory:
            for pair in scan.pairs:
                for info in (pair.a, pair.b):
                    if info is not None:
                        contents[info.path] = info.path.read_bytes()
        find_corrupt(scan, contents)  # the headers were fine; now every pixel, as training decodes
        self.scan = check_scan(scan, on_error)
        self.name = str(self.scan.root)
        pairs = self.scan.pairs
        self.side_by_side = self.scan.layout == "side_by_side"
        self.a_channels = max(p.a.channels for p in pairs)
        self.b_channels = self.a_channels if self.side_by_side else max(p.b.channels
                                                                        for p in pairs)
        self.sizes = {p.size for p in pairs}
        a_files = [p.a.path for p in pairs]
        b_files = [None if p.b is None else p.b.path for p in pairs]
        self._in_memory = in_memory
        if in_memory:
            self._a = tf.constant([contents[f] for f in a_files])
            self._b = tf.constant([b"" if f is None else contents[f] for f in b_files])
        else:
            self._a = tf.constant([str(f) for f in a_files])
            self._b = tf.constant(["" if f is None else str(f) for f in b_files])

    def bad_files(self):
        # A copy of the scan: the source itself keeps serving what it was built with.
        return find_corrupt(copy.copy(self.scan))

    def __len__(self):
        return len(self.scan.pairs)

    def _bytes(self, store, index):
        if self._in_memory:
            return tf.gather(store, index)
        path = tf.gather(store, index)
        return tf.cond(tf.strings.length(path) > 0, lambda: tf.io.read_file(path),
                       lambda: tf.constant(b""))

    def load(self, index):
        if self.side_by_side:
            whole = decode(self._bytes(self._a, index))
            half = tf.shape(whole)[1] // 2
            return {"a": whole[:, :half], "b": whole[:, half:]}
        return {"a": decode(self._bytes(self._a, index)), "b": decode(self._bytes(self._b, index))}


def _unit_array(name, array):
    """A (N, H, W, C) float32 array in [0, 1] from user data, or a DataError saying why not."""
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 2, 3, 4):
        raise DataError(f"{name} must be shaped (N, H, W) or (N, H, W, C) with C in 1-4, "
                        f"got {array.shape}.")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if np.issubdtype(array.dtype, np.floating):
        lo, hi = float(array.min()), float(array.max())
        if lo < -1.0001 or hi > 1.0001:
            raise DataError(f"float {name} must be in [-1, 1], got values in [{lo:.3g}, "
                            f"{hi:.3g}]. Scale them (x / 127.5 - 1 for 0-255 data) or pass "
                            "uint8/uint16 arrays.")
        return (array.astype(np.float32) + 1.0) / 2.0
    raise DataError(f"{name} must be uint8, uint16 or float, got {array.dtype}.")


class ArraySource(PairSource):
    """In-memory pairs: ``(inputs, targets)``; ``inputs`` is an image array or a dict of named
    arrays with an ``"image"`` entry (other entries, e.g. instructions, pass through)."""

    name = "arrays"

    def __init__(self, data):
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise DataError("In-memory data must be a pair (inputs, targets) of arrays.")
        inputs, targets = data
        extras = {}
        if isinstance(inputs, dict):
            if "image" not in inputs:
                raise DataError(f"Dict inputs need an 'image' array; got keys {sorted(inputs)}.")
            extras = {k: np.asarray(v) for k, v in inputs.items() if k != "image"}
            inputs = inputs["image"]
        a, b = _unit_array("inputs", inputs), _unit_array("targets", targets)
        if len(a) != len(b):
            raise DataError(f"inputs and targets differ in length: {len(a)} vs {len(b)}.")
        if len(a) == 0:
            raise DataError("inputs and targets are empty.")
        if a.shape[1:3] != b.shape[1:3]:
            raise DataError(f"inputs are {a.shape[1]}x{a.shape[2]} but targets {b.shape[1]}x"
                            f"{b.shape[2]}: pairs must be pixel-aligned.")
        for key, value in extras.items():
            if len(value) != len(a):
                raise DataError(f"input {key!r} has {len(value)} entries for {len(a)} images.")
        self.count = len(a)
        self.a_channels, self.b_channels = a.shape[-1], b.shape[-1]
        self.sizes = {tuple(a.shape[1:3])}
        self.extras = tuple(extras)
        self._stores = {"a": tf.constant(a), "b": tf.constant(b),
                        **{k: tf.constant(v) for k, v in extras.items()}}

    def __len__(self):
        return self.count

    def load(self, index):
        return {key: tf.gather(store, index) for key, store in self._stores.items()}


class TFDSSource(PairSource):
    """A TFDS split with image features ``a`` and ``b`` (such as the package's ``pix2pix``
    builder). Splits whose encoded images fit in memory are read once and then loaded at random
    positions; larger ones stream from disk through a shuffle buffer seeded by the epoch's key,
    so both shuffle the same way in every run with the same seed and resume exactly."""

    def __init__(self, name, split, *, data_dir=None, shuffle_buffer=1000):
        import tensorflow_datasets as tfds

        import pix2pix_tf.data.tfds_pix2pix  # noqa: F401  registers "pix2pix/<config>"

        self.name = name[len("tfds:"):] if name.startswith("tfds:") else name
        try:
            builder = tfds.builder(self.name, data_dir=data_dir)
            if split not in builder.info.splits:
                builder.download_and_prepare()
        except Exception as error:  # TFDS raises many kinds for unknown names / no network
            raise DataError(f"TFDS dataset {self.name!r}: {error}") from None
        if split not in builder.info.splits:
            raise DataError(f"TFDS dataset {self.name!r} has no {split!r} split (it has "
                            f"{', '.join(builder.info.splits)}).")
        info = builder.info.splits[split]
        self.count = info.num_examples
        if self.count == 0:
            raise DataError(f"TFDS dataset {self.name!r}, split {split!r} is empty.")
        features = builder.info.features
        self.a_channels = features["a"].shape[-1] or 3
        self.b_channels = features["b"].shape[-1] or 3
        skip = {"a": tfds.decode.SkipDecoding(), "b": tfds.decode.SkipDecoding()}
        encoded = builder.as_dataset(split=split, shuffle_files=False, decoders=skip)
        self._encoded = encoded.map(lambda e: {"a": e["a"], "b": e["b"]})
        self.random_access = (info.num_bytes or 0) <= CACHE_BYTES
        self.shuffle_buffer = shuffle_buffer
        if self.random_access:
            pairs = list(self._encoded.as_numpy_iterator())
            self._a = tf.constant([p["a"] for p in pairs])
            self._b = tf.constant([p["b"] for p in pairs])

    def __len__(self):
        return self.count

    def load(self, index):
        return {"a": decode(tf.gather(self._a, index)), "b": decode(tf.gather(self._b, index))}

    def stream(self, key):
        dataset = self._encoded
        if key is not None:
            dataset = dataset.shuffle(self.shuffle_buffer, seed=tf.cast(key[0], tf.int64),
                                      reshuffle_each_iteration=False)
        return dataset.map(lambda e: {"a": decode(e["a"]), "b": decode(e["b"])})


def is_tfds_name(source):
    return isinstance(source, str) and (source.startswith("tfds:") or (
        "/" in source and not os.path.exists(source) and not source.startswith((".", "/", "~"))))


@dataclass(frozen=True)
class SourceKind:
    """A kind of data that :func:`open_source` recognises: ``claims(data)`` says whether a value
    is of this kind, ``open(data, split, **options)`` opens one split and ``splits(data,
    **options)`` lists the splits it has, each given only the ``options`` the kind names."""

    name: str
    claims: Callable
    open: Callable
    splits: Callable
    options: tuple = ()
    last: bool = False  # tried after every other kind (the built-in catch-alls)
    #: ``example(folder) -> (data, options)``: a small instance of this kind, written under
    #: ``folder`` if it needs files, and the options that open it. The contract tests open,
    #: list and batch every registered kind's (tests/test_contract.py).
    example: Callable = None


#: Every kind of data, by name: the built-in pairs (arrays, TFDS names, folders and "demo",
#: registered at the end of this module) and any registered since (the instruction editor's
#: records, :mod:`pix2pix_tf.tasks.instruct`). :func:`open_source` tries them in registration
#: order, the ``last`` ones after all others.
SOURCE_KINDS = {}


def register_source(name, claims, open, splits, options=(), last=False, example=None):
    """Adds a :class:`SourceKind`, so that :func:`open_source`, :func:`available_splits` and
    everything above them (training, evaluation, export) read that data. ``last``: tried after
    the kinds without it (for kinds that claim broadly, as the folder kind claims any path).
    ``example``: see :attr:`SourceKind.example`."""
    SOURCE_KINDS[name] = SourceKind(name, claims, open, splits, tuple(options), bool(last),
                                    example)
    return SOURCE_KINDS[name]


def _kind_of(source):
    ordered = sorted(SOURCE_KINDS.values(), key=lambda kind: kind.last)  # stable
    kind = next((kind for kind in ordered if kind.claims(source)), None)
    if kind is None:
        raise DataError(f"{source!r:.80}: not data pix2pix_tf can read. Give a folder of "
                        "pairs, 'demo', a TFDS name, a pair of arrays, or a registered kind "
                        f"({', '.join(SOURCE_KINDS)}).")
    return kind


def _own(kind, options):
    """``options`` that ``kind`` names; TypeError for options no kind names."""
    unknown = sorted(set(options) - {k for each in SOURCE_KINDS.values() for k in each.options})
    if unknown:
        raise TypeError(f"open_source() got unknown options {', '.join(unknown)}.")
    return {k: v for k, v in options.items() if k in kind.options}


def open_source(source, split="train", **options):
    """The :class:`PairSource` for what a user gave, the one entry for every kind of data: a
    PairSource (returned as is) or any kind in :data:`SOURCE_KINDS`: ``"demo"``, a folder of
    pairs, a pair of arrays, a TFDS name (prefix ``tfds:`` to force), or a registered kind.

    ``options`` go to the kind that opens it: ``crop_size``, ``on_error`` ('raise' or 'skip')
    and ``cache`` for folders, ``data_dir`` for TFDS; a registered kind's own (e.g.
    ``columns``)."""
    if isinstance(source, PairSource):
        return source
    kind = _kind_of(source)
    return kind.open(source, split, **_own(kind, options))


def available_splits(source, **options):
    """The splits ``source`` has, among train / val / test (``[]``: one undivided set)."""
    if isinstance(source, PairSource):
        return []
    kind = _kind_of(source)
    return list(kind.splits(source, **_own(kind, options)))


def _tfds_splits(source, data_dir=None):
    import tensorflow_datasets as tfds

    import pix2pix_tf.data.tfds_pix2pix  # noqa: F401

    name = source[len("tfds:"):] if source.startswith("tfds:") else source
    try:
        return [s for s in SPLITS if s in tfds.builder(name, data_dir=data_dir).info.splits]
    except Exception as error:
        raise DataError(f"TFDS dataset {name!r}: {error}") from None


def _folder_splits(source):
    root = DEMO_DIR if source == "demo" else Path(source).expanduser()
    found = []
    for split in SPLITS:
        try:
            _, folders = resolve_layout(root, split)
        except DataError:  # the folder has other splits, not this one
            continue
        if Path(folders[0]) in (root / split, root / split / "A", root / "A" / split):
            found.append(split)
    return found


def example_pairs(folder, splits=(("train", 3), ("test", 1)), size=32):
    """Writes a miniature folder of pairs (``<split>/<i>.png``, A|B side by side: an image and
    its negative) under ``folder``; returns ``folder``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in splits:
        (Path(folder) / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(np.concatenate([a, 255 - a], 1)).save(
                Path(folder) / split / f"{i}.png")
    return Path(folder)


def _example_arrays(folder):
    a = np.random.default_rng(0).uniform(0, 1, (3, 32, 32, 3)).astype("float32")
    return (a, 1.0 - a), {}


def _example_tfds(folder):
    from pix2pix_tf.data.tfds_pix2pix import prepare_offline

    root = example_pairs(Path(folder) / "src" / "facades", (("train", 3), ("val", 1),
                                                            ("test", 1)))
    return "pix2pix/facades", {"data_dir": str(prepare_offline("facades", root.parent,
                                                               Path(folder) / "tfds"))}


# The built-in kinds, registered like any other; tried after every registered one.
register_source("arrays", lambda data: isinstance(data, (tuple, list)),
                lambda data, split: ArraySource(data), lambda data: [], last=True,
                example=_example_arrays)
register_source("tfds", is_tfds_name,
                lambda data, split, data_dir=None: TFDSSource(data, split, data_dir=data_dir),
                _tfds_splits, options=("data_dir",), last=True, example=_example_tfds)
register_source("folder", lambda data: isinstance(data, (str, os.PathLike)),
                lambda data, split, crop_size=None, on_error="raise", cache=True: FolderSource(
                    data, split, crop_size=crop_size, on_error=on_error, cache=cache),
                _folder_splits, options=("crop_size", "on_error", "cache"), last=True,
                example=lambda folder: (str(example_pairs(folder)), {}))
