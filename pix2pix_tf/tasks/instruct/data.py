"""Instruction-editing data: ``(image, instruction) -> edited image`` examples as PairSources.

Every source here gives ``{"a": input, "b": edited, "instruction": str}`` (plus ``"edit"``, the
edit's index, where it is known), so the shared pipeline (:func:`pix2pix_tf.data.pair_pipeline`)
shuffles, crops, mirrors and batches them like pix2pix pairs, with the instruction passed through
as a model input. Mirroring is skipped for an instruction that names a side ("left", "right"):
a mirrored example would contradict it (:meth:`PairSource.may_mirror`).

Importing this module registers the kind ``"instructions"`` with the one data entry,
:func:`pix2pix_tf.data.open_source` (and :func:`pix2pix_tf.data.available_splits`): ``"edits"``,
``"edits:PHOTOS"``, ``"hf:NAME"``, a folder with a ``metadata.jsonl`` and a ``datasets.Dataset``
open there.

- :class:`EditsSource`: the bundled, offline set, built on the fly from real images (the demo's
  tiles, or any folder of photos) and the edits of :mod:`pix2pix_tf.tasks.instruct.edits`: every
  image with every edit, each with one of the edit's training phrasings (or held-out ones, for
  evaluation);
- :class:`MetadataSource`: a folder in the Hugging Face "imagefolder" layout, a
  ``metadata.jsonl`` with one row per example naming the input image, the instruction and the
  edited image;
- :class:`DatasetSource`: a Hugging Face ``datasets.Dataset`` (or any table with the same
  interface) whose rows hold images and instructions; ``"hf:NAME"`` loads one by hub name or
  from a folder (:func:`load_hf_dataset`).

Column names are recognised as the public instruction-editing sets spell them
(:data:`COLUMN_NAMES`); ``columns={"input": ..., "instruction": ..., "target": ...}`` maps others.
"""

import io
import json
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from pix2pix_tf.data.files import IMAGE_EXTENSIONS, DataError, read_header
from pix2pix_tf.data.sources import DEMO_DIR, PairSource, decode, register_source
from pix2pix_tf.tasks.instruct.edits import EDITS
from pix2pix_tf.tasks.instruct.vocabulary import INSTRUCTION, words

#: Column names of the public instruction-editing datasets (first found wins).
COLUMN_NAMES = {
    "input": ("input_image", "original_image", "source_img", "image", "file_name"),
    "instruction": ("edit_prompt", "instruction", "prompt", "text"),
    "target": ("edited_image", "target_img", "ground_truth_image", "output_image",
               "target_image", "cartoonized_image"),
}
#: The longest line of a ``metadata.jsonl`` read (one example's row: names and an instruction).
MAX_ROW_BYTES = 1 << 20
#: Words that tie an instruction to one side of the image: such examples are never mirrored.
SIDE_WORDS = ("left", "right", "leftmost", "rightmost", "lefthand", "righthand")


def names_side(instruction):
    """Whether an instruction names a side of the image (Python strings)."""
    return any(w in SIDE_WORDS for w in words(instruction))


def names_side_tensor(instruction):
    """:func:`names_side` for a scalar string tensor, inside ``tf.data``."""
    text = tf.strings.lower(instruction)
    pattern = r".*\b(" + "|".join(SIDE_WORDS) + r")\b.*"
    return tf.strings.regex_full_match(text, pattern)


def resolve_columns(available, columns=None, where="the data"):
    """``{"input", "instruction", "target"} -> column name`` for a table with ``available``
    columns: ``columns`` (a dict, or text "input=a,instruction=b,target=c") first, then the
    usual names. A missing one is a DataError naming the columns there are."""
    if isinstance(columns, str):
        try:
            columns = dict(part.split("=", 1) for part in columns.split(",") if part.strip())
        except ValueError:
            raise DataError(f"--columns {columns!r:.200}: give role=column pairs, e.g. "
                            "'input=source,instruction=prompt,target=edited'.") from None
    if columns is not None and not (isinstance(columns, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in columns.items())):
        raise DataError(f"columns must map roles to column names (text), e.g. "
                        f"{{'instruction': 'prompt'}}; got {columns!r:.200}.")
    columns = {k.strip(): v.strip() for k, v in (columns or {}).items()}
    unknown = sorted(set(columns) - set(COLUMN_NAMES))
    if unknown:
        raise DataError(f"unknown column role(s) {', '.join(unknown)[:200]}; the roles are input, "
                        "instruction and target.")
    available = list(available)
    listed = ", ".join(map(str, available[:20])) + (", ..." if len(available) > 20 else "")
    chosen = {}
    for role, names in COLUMN_NAMES.items():
        if role in columns:
            if columns[role] not in available:
                raise DataError(f"{where} has no column {columns[role]!r:.80} (given for "
                                f"{role}); its columns are {listed}.")
            chosen[role] = columns[role]
            continue
        found = [n for n in names if n in available] + [
            n[: -len("_file_name")] for n in available if n.endswith("_file_name")
            and n[: -len("_file_name")] in names]
        found = [n for n in found if n not in chosen.values()]
        if not found:
            raise DataError(f"{where} has no {role} column (looked for {', '.join(names)}); its "
                            f"columns are {listed}. Name it with --columns {role}=COLUMN.")
        chosen[role] = found[0]
    return chosen


class _EncodedSource(PairSource):
    """Examples held as encoded image bytes and instruction strings in memory."""

    extras = (INSTRUCTION,)

    def _store(self, inputs, targets, instructions, channels):
        if not inputs:
            raise DataError(f"{self.name}: no examples.")
        self.count = len(inputs)
        self.instructions = list(instructions)
        self.a_channels, self.b_channels = channels
        self._a, self._b = tf.constant(inputs), tf.constant(targets)
        self._text = tf.constant(instructions)

    def __len__(self):
        return self.count

    def load(self, index):
        return {"a": decode(tf.gather(self._a, index)), "b": decode(tf.gather(self._b, index)),
                INSTRUCTION: tf.gather(self._text, index)}

    def may_mirror(self, record):
        return tf.logical_not(names_side_tensor(record[INSTRUCTION]))


def _check_instruction(text, where):
    if not isinstance(text, str):
        raise DataError(f"{where}: the instruction is a {type(text).__name__} ({text!r:.80}), "
                        "not text.")
    if not words(text):
        raise DataError(f"{where}: the instruction is empty. Write what the edit does, or "
                        "remove the example.")
    return text


class MetadataSource(_EncodedSource):
    """A Hugging Face "imagefolder" folder: ``metadata.jsonl`` rows name an input image, an
    instruction and an edited image (paths relative to the file). Every row is checked: missing
    columns, missing or unreadable images, empty instructions and input/target size mismatches
    are errors naming the row and the fix."""

    def __init__(self, root, split=None, *, columns=None):
        root = Path(root).expanduser()
        folder = root / split if split and (root / split / "metadata.jsonl").exists() else root
        path = folder / "metadata.jsonl"
        self.name = str(folder)
        if not path.exists():
            raise DataError(f"{folder}: no metadata.jsonl (the Hugging Face imagefolder layout: "
                            "one JSON object per line naming input image, instruction and "
                            "edited image).")
        rows = read_metadata(path)
        keys = sorted({k for _, row in rows for k in row})
        chosen = resolve_columns(keys, columns, where=str(path))

        def file_of(row, role, number):
            column = chosen[role]
            value = row.get(column, row.get(f"{column}_file_name"))
            if value is None:
                raise DataError(f"{path}, line {number}: no {column!r} ({role}) in this row.")
            if not isinstance(value, str) or not value.strip() or "\0" in value:
                raise DataError(f"{path}, line {number}: the {role} image {value!r:.80} is not "
                                "a file name.")
            file = folder / value
            try:
                found = file.suffix.lower() in IMAGE_EXTENSIONS and file.is_file()
            except OSError:  # a name too long for the file system
                found = False
            if not found:
                raise DataError(f"{path}, line {number}: {role} image {str(file)[:200]} is "
                                "missing or not a JPEG/PNG/BMP file.")
            return file

        inputs, targets, texts, channels = [], [], [], [1, 1]
        for number, row in rows:
            where = f"{path}, line {number}"
            if chosen["instruction"] not in row:
                raise DataError(f"{where}: no {chosen['instruction']!r} (instruction) in this "
                                "row.")
            text = _check_instruction(row[chosen["instruction"]], where)
            a, b = file_of(row, "input", number), file_of(row, "target", number)
            info_a, info_b = read_header(a), read_header(b)  # DataError naming a bad file
            if (info_a.width, info_a.height) != (info_b.width, info_b.height):
                raise DataError(f"{where}: input {a.name} is {info_a.width}x{info_a.height} but "
                                f"the edited image {b.name} is {info_b.width}x{info_b.height}; "
                                "pairs must be pixel-aligned (resize one of them).")
            channels = [max(channels[0], info_a.channels), max(channels[1], info_b.channels)]
            inputs.append(a.read_bytes())
            targets.append(b.read_bytes())
            texts.append(text)
        self.sizes = None
        self._store(inputs, targets, texts, channels)


def read_metadata(path):
    """``[(line number, row)]`` of a ``metadata.jsonl``: one JSON object per line (blank lines
    skipped). A DataError names the file and line of anything else: text that is not UTF-8, a
    line longer than :data:`MAX_ROW_BYTES`, invalid JSON, a row that is not an object, nesting
    or numbers too deep or large to read."""
    rows = []
    with open(path, "rb") as f:
        for number, raw in enumerate(iter(lambda: f.readline(MAX_ROW_BYTES + 1), b""), 1):
            where = f"{path}, line {number}"
            if len(raw) > MAX_ROW_BYTES:
                raise DataError(f"{where}: longer than {MAX_ROW_BYTES:,} bytes; a row names an "
                                "input image, an instruction and an edited image.")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(f"{where}: not UTF-8 text ({error.reason} at byte "
                                f"{error.start}).") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{where}: not JSON ({error.msg}).") from None
            except (ValueError, RecursionError) as error:  # huge numbers, deep nesting
                raise DataError(f"{where}: not readable JSON ({type(error).__name__}: "
                                f"{str(error)[:100]}).") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: a JSON {type(row).__name__}, not an object naming "
                                "the columns (input, instruction, edited image).")
            rows.append((number, row))
    if not rows:
        raise DataError(f"{path}: no rows.")
    return rows


def _png_bytes(value, where):
    """PNG/JPEG bytes of a table cell: a PIL image, ``{"bytes": ..., "path": ...}``, encoded
    bytes, a path, or an array."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        value = value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, (str, Path)):
        read_header(value)
        return Path(value).read_bytes()
    if isinstance(value, np.ndarray):
        value = Image.fromarray(value)
    if isinstance(value, Image.Image):
        buffer = io.BytesIO()
        value.convert("RGB" if value.mode not in ("L", "RGB", "RGBA") else value.mode).save(
            buffer, "PNG")
        return buffer.getvalue()
    raise DataError(f"{where}: cannot read an image from a {type(value).__name__}.")


class DatasetSource(_EncodedSource):
    """A Hugging Face ``datasets.Dataset`` (anything with ``column_names``, ``len()`` and row
    indexing): its image columns are read once into memory."""

    def __init__(self, table, *, columns=None, name="dataset"):
        self.name = name
        chosen = resolve_columns(table.column_names, columns, where=name)
        inputs, targets, texts = [], [], []
        for i in range(len(table)):
            row = table[i]
            where = f"{name}, row {i}"
            texts.append(_check_instruction(row[chosen["instruction"]], where))
            inputs.append(_png_bytes(row[chosen["input"]], where))
            targets.append(_png_bytes(row[chosen["target"]], where))
        self.sizes = None
        self._store(inputs, targets, texts, (3, 3))


#: scikit-image's bundled colour photographs of everyday scenes (``images="skimage"``): a
#: person, a cup, a cat, a rocket, a motorcycle. None is in the demo, so an editor trained on
#: the demo's tiles meets them first when it is evaluated on ``edits:skimage``.
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle")


def skimage_photos():
    """:data:`SKIMAGE_PHOTOS` as uint8 arrays (needs scikit-image, a dev dependency)."""
    try:
        from skimage import data
    except ImportError:
        raise DataError("edits:skimage needs scikit-image: pip install scikit-image") from None
    photos = [getattr(data, name)() for name in SKIMAGE_PHOTOS]
    return [photo[0] if isinstance(photo, tuple) else photo for photo in photos]  # stereo: left


def load_images(images=None, *, size=128, split="train"):
    """Real photos for the bundled edits as a uint8 ``(N, size, size, 3)`` array.

    ``images``: ``None`` or ``"demo"`` for the demo's tiles (each tile's map and satellite
    halves, both real images; ``split`` 'train' or 'test', which share no pixel), a folder of
    photos (its ``split`` subfolder if it has one; each photo centre-cropped to a square),
    ``"skimage"`` (scikit-image's photos of everyday scenes, :data:`SKIMAGE_PHOTOS`, for any
    split), or an array. Images are resized to ``size``.
    """
    if isinstance(images, str) and images == "skimage":
        return np.stack([_square(Image.fromarray(photo), size) for photo in skimage_photos()])
    if isinstance(images, np.ndarray):
        array = images if images.ndim == 4 else images[None]
        if array.dtype != np.uint8 or array.shape[-1] != 3:
            raise DataError(f"photo arrays must be uint8 (N, H, W, 3); got {array.dtype} "
                            f"{array.shape}.")
        return tf.image.resize(array, [size, size], antialias=True).numpy().round().astype(
            np.uint8)
    halves = images is None or images == "demo"
    folder = DEMO_DIR / split if halves else Path(images).expanduser()
    if not halves and (folder / split).is_dir():  # a folder of photos with split subfolders
        folder = folder / split
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
                   and not p.name.startswith(".")) if folder.is_dir() else []
    if not files:
        raise DataError(f"{folder}: no JPEG/PNG/BMP photos here.")
    out = []
    for path in files:
        read_header(path)
        photo = Image.open(path).convert("RGB")
        width, height = photo.size
        parts = ([photo.crop((0, 0, width // 2, height)), photo.crop((width // 2, 0, width,
                                                                      height))]
                 if halves else [photo])
        out.extend(_square(part, size) for part in parts)
    return np.stack(out)


def _square(photo, size):
    """A PIL image centre-cropped to a square and resized to ``size`` (uint8 array)."""
    w, h = photo.size
    side = min(w, h)
    photo = photo.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2))
    return np.asarray(photo.resize((size, size), Image.BICUBIC))


class EditsSource(PairSource):
    """The bundled instruction-editing set: each photo with each edit of ``edits`` (default all
    of :data:`pix2pix_tf.tasks.instruct.edits.EDITS`), the target computed exactly by the edit's
    function, and one phrasing per example drawn with ``seed`` from the edit's training phrasings
    (``phrasings="train"``) or its held-out ones (``"held_out"``).

    ``images``: see :func:`load_images` (default: the demo's tiles at ``size`` pixels; the
    'test' split's photos are not in the 'train' split's).
    """

    extras = (INSTRUCTION, "edit")
    a_channels = b_channels = 3

    def __init__(self, images=None, split="train", *, edits=None, phrasings="train", size=128,
                 seed=0, recolour=0.0):
        if phrasings not in ("train", "held_out"):
            raise ValueError(f"phrasings must be 'train' or 'held_out', got {phrasings!r}.")
        self.edits = [EDITS[name] if isinstance(name, str) else name
                      for name in (edits or list(EDITS))]
        self.name = f"edits ({split}, {phrasings} phrasings)"
        self.photos = load_images(images, size=size, split=split)
        self.sizes = {(size, size)}
        k = len(self.edits)
        rng = np.random.default_rng(seed)
        texts = []
        for index in range(len(self.photos) * k):
            options = getattr(self.edits[index % k], "phrasings" if phrasings == "train"
                              else "held_out")
            texts.append(options[rng.integers(len(options))])
        self.instructions = texts
        if not 0.0 <= recolour <= 1.0:
            raise ValueError(f"recolour must be in [0, 1], got {recolour}.")
        self.recolour, self.seed = float(recolour), int(seed)
        self._photos = tf.constant(self.photos)
        self._text = tf.constant(texts)

    def __len__(self):
        return len(self.photos) * len(self.edits)

    def load(self, index):
        k = len(self.edits)
        photo = tf.cast(tf.gather(self._photos, index // k), tf.float32) / 255.0
        if self.recolour > 0:
            photo = self._recoloured(photo, index)
        edit = tf.cast(index % k, tf.int32)
        branches = [lambda e=e: tf.clip_by_value(e.function(photo), 0.0, 1.0) for e in self.edits]
        target = tf.switch_case(edit, branches)
        target.set_shape(photo.shape)
        return {"a": photo, "b": target, INSTRUCTION: tf.gather(self._text, index),
                "edit": edit}

    def _recoloured(self, photo, index):
        """``photo`` with a random hue rotation and saturation factor (0.5-2), for a share
        ``recolour`` of the examples; the same for an example every epoch (keyed by its index
        and the seed), so runs stay reproducible and resumable. The map tiles hold blues, tans
        and greens; recoloured, they also show the reds, purples and saturated colours of
        people's photos, on which the colour edits are then exact too."""
        draw = tf.random.stateless_uniform((3,), [self.seed, tf.cast(index, tf.int32)])
        recoloured = tf.image.adjust_saturation(tf.image.adjust_hue(photo, draw[1] - 0.5),
                                                tf.exp((draw[2] * 2 - 1) * np.log(2.0)))
        return tf.where(draw[0] < self.recolour, tf.clip_by_value(recoloured, 0.0, 1.0), photo)

    def may_mirror(self, record):
        return tf.logical_not(names_side_tensor(record[INSTRUCTION]))


#: ``data`` values naming the bundled edits (``edits:PHOTOS`` uses a folder of photos).
EDITS_DATA = "edits"
#: ``--data hf:NAME``: a Hugging Face dataset (needs the ``datasets`` package).
HF_DATA = "hf"
#: Our split names -> the Hugging Face names they may have there.
HF_SPLITS = {"train": ("train",), "val": ("validation", "val"), "test": ("test",)}
_hf_loaded = {}


def load_hf_dataset(name):
    """The splits (a dict) of a Hugging Face dataset, loaded once per process: a hub name
    (``"fusing/instructpix2pix-1000-samples"``; ``datasets`` downloads and caches it on first
    use), a folder written by ``save_to_disk``, or a local folder of data files (parquet, CSV
    with image paths, ...) as a hub repository holds them."""
    if name in _hf_loaded:
        return _hf_loaded[name]
    try:
        import datasets
    except ImportError:
        raise DataError(f"{HF_DATA}:{name}: Hugging Face datasets need the `datasets` package: "
                        "pip install datasets") from None
    folder = Path(name).expanduser()
    try:
        if (folder / "dataset_dict.json").exists() or (folder / "state.json").exists():
            loaded = datasets.load_from_disk(str(folder))
        else:
            loaded = datasets.load_dataset(str(folder) if folder.is_dir() else name)
    except Exception as error:  # noqa: BLE001  (network, missing repository, bad files...)
        raise DataError(f"{HF_DATA}:{name}: could not load it ({type(error).__name__}: "
                        f"{error}). Give a dataset name on the Hugging Face hub, a folder "
                        "written by save_to_disk, or a folder of data files.") from error
    splits = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    _hf_loaded[name] = {ours: splits[theirs] for ours, names in HF_SPLITS.items()
                        for theirs in names if theirs in splits}
    return _hf_loaded[name]


def open_instruction_source(data, split="train", *, columns=None, edit_size=128, seed=0,
                            recolour=0.0):
    """The instruction-editing :class:`PairSource` for what a user gave: ``"edits"`` (the
    demo's photos; split 'train' with training phrasings, 'test' with held-out ones),
    ``"edits:PHOTOS"`` (a folder of photos, with ``train/`` and ``test/`` subfolders if it has
    them), a folder with ``metadata.jsonl`` (per split if it has split subfolders),
    ``"hf:NAME"`` (a Hugging Face dataset's split), a ``datasets.Dataset``, or a PairSource."""
    if isinstance(data, PairSource):
        return data
    if hasattr(data, "column_names"):
        return DatasetSource(data, columns=columns)
    text = str(data)
    if text.startswith(HF_DATA + ":"):
        name = text[len(HF_DATA) + 1:]
        splits = load_hf_dataset(name)
        if split not in splits:
            raise DataError(f"{text} has no {split!r} split (it has: "
                            f"{', '.join(splits) or 'none'}).")
        return DatasetSource(splits[split], columns=columns, name=f"{text} [{split}]")
    if text == EDITS_DATA or text.startswith(EDITS_DATA + ":"):
        phrasings = "train" if split == "train" else "held_out"
        photos = text[len(EDITS_DATA) + 1:] or None
        if photos is not None and (Path(photos) / split).is_dir():
            photos = str(Path(photos) / split)
        return EditsSource(photos, split, phrasings=phrasings, size=edit_size,
                           seed=seed + (0 if split == "train" else 1),
                           recolour=recolour if split == "train" else 0.0)
    return MetadataSource(text, split, columns=columns)


def instruction_splits(data, **options):
    """The splits instruction data ``data`` has, among train / val / test (``options`` open a
    split, they do not change which exist)."""
    if isinstance(data, PairSource) or hasattr(data, "column_names"):
        return []
    text = str(data)
    if text.startswith(HF_DATA + ":"):
        return list(load_hf_dataset(text[len(HF_DATA) + 1:]))
    if text == EDITS_DATA:
        return ["train", "test"]
    if text.startswith(EDITS_DATA + ":"):
        root = Path(text[len(EDITS_DATA) + 1:]).expanduser()
        return [s for s in ("train", "val", "test") if (root / s).is_dir()]
    root = Path(text).expanduser()
    return [s for s in ("train", "val", "test") if (root / s / "metadata.jsonl").exists()]


def is_instruction_data(data):
    """Whether ``data`` names instruction records (see the module docstring)."""
    if hasattr(data, "column_names"):
        return True
    if not isinstance(data, (str, Path)):
        return False
    text = str(data)
    if text == EDITS_DATA or text.startswith((EDITS_DATA + ":", HF_DATA + ":")):
        return True
    root = Path(text).expanduser()
    return (root / "metadata.jsonl").is_file() or any(
        (root / s / "metadata.jsonl").is_file() for s in ("train", "val", "test"))


def _example(folder):
    """``edits:FOLDER`` of three photos (the edits kind's smallest instance)."""
    photos = Path(folder) / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            photos / f"{i}.png")
    return f"{EDITS_DATA}:{photos}", {"edit_size": 32}


register_source("instructions", is_instruction_data, open_instruction_source,
                instruction_splits, options=("columns", "edit_size", "seed", "recolour"),
                example=_example)
