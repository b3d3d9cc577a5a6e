"""Finding image pairs on disk and checking them up front, from headers, before any training.

Two layouts are understood:

- side-by-side: each file holds A and B next to each other (A left, B right), the layout of the
  public pix2pix datasets (``facades/train/1.jpg`` is 512x256: photo | labels);
- two folders: ``A/`` and ``B/`` with files matched by name (``A/x.png`` pairs with ``B/x.jpg``).

Either may sit directly in the given folder or in a split subfolder (``root/train``, or
``root/A/train`` + ``root/B/train``). Every problem found (unreadable, empty, truncated or
non-image files, odd widths, unmatched or mismatched pairs, images too small for the crop) is
collected with the file it concerns, then either raised as one :class:`DataError` or, on request,
skipped with a warning. Nothing is dropped silently.
"""

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from pix2pix_tf.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
_FORMATS = {"JPEG", "PNG", "BMP"}
#: The most pixels an image file may declare (36 megapixels: two 4096x4096 halves side by side
#: fit). A header declaring more is refused before anything is decoded: decoding it at 16 bits
#: per channel, as the up-front check does, needs 24 bytes per pixel. Raise it for larger data.
MAX_PIXELS = 36_000_000
# formats Pillow recognises that are not supported here: a clearer message than "not readable"
_OTHER_FORMATS = {b"GIF8": "GIF", b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"RIFF": "WebP"}
_MODE_CHANNELS = {"1": 1, "L": 1, "P": 3, "I": 1, "I;16": 1, "I;16B": 1, "I;16L": 1,
                  "LA": 2, "La": 2, "PA": 4, "RGB": 3, "RGBA": 4, "RGBa": 4}
#: Problems listed in one error message; the rest are counted.
_MAX_LISTED = 20


@dataclass
class ImageInfo:
    path: Path
    width: int
    height: int
    channels: int
    bits: int


@dataclass
class Pair:
    """One training pair: ``b is None`` means side-by-side A|B in ``a``."""

    a: ImageInfo
    b: ImageInfo = None

    @property
    def name(self):
        return self.a.path.stem

    @property
    def size(self):
        """(height, width) of each half."""
        if self.b is None:
            return self.a.height, self.a.width // 2
        return self.a.height, self.a.width

    @property
    def nbytes(self):
        paths = [self.a.path] + ([self.b.path] if self.b is not None else [])
        return sum(os.path.getsize(p) for p in paths)


@dataclass
class Scan:
    """What a folder holds: usable pairs and problems (path, message)."""

    root: Path
    layout: str
    pairs: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    ignored: list = field(default_factory=list)

    def report(self):
        lines = [f"{len(self.pairs)} usable pairs in {self.root} ({self.layout} layout)"]
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {path}: {message}" for path, message in self.problems[:_MAX_LISTED]]
            if len(self.problems) > _MAX_LISTED:
                lines.append(f"  ... and {len(self.problems) - _MAX_LISTED} more")
        if self.ignored:
            lines.append(f"{len(self.ignored)} non-image file(s) ignored, e.g. {self.ignored[0]}")
        return "\n".join(lines)


def _truncation(path, fmt):
    """A message if the file's end marker is missing (a cut-off download or copy), else None."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(max(0, size - 1024))
        tail = f.read()
        if fmt == "JPEG" and b"\xff\xd9" not in tail:
            return "truncated JPEG (no end-of-image marker): re-download or re-export it"
        if fmt == "PNG" and b"IEND" not in tail:
            return "truncated PNG (no IEND chunk): re-download or re-export it"
        if fmt == "BMP":
            f.seek(2)
            declared = int.from_bytes(f.read(4), "little")
            if declared and size < declared:
                return f"truncated BMP ({size} of {declared} bytes): re-download or re-export it"
    return None


def read_header(path):
    """:class:`ImageInfo` from a file's header; raises ``DataError`` naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    try:
        with open(path, "rb") as f:
            header = f.read(26)
        fmt = next((name for magic, name in _OTHER_FORMATS.items() if header.startswith(magic)),
                   None)
        if fmt is not None:
            raise DataError(f"{path}: {fmt} images are not supported; use JPEG, PNG or BMP")
        with warnings.catch_warnings():  # the pixel count is checked below, with the file's name
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=sorted(_FORMATS)) as image:  # headers only
                fmt, mode, (width, height) = image.format, image.mode, image.size
        bits = 16 if mode.startswith("I;16") or mode == "I" else 8
        if fmt == "PNG":
            bits = header[24] if len(header) > 24 else bits
    except DataError:
        raise
    except Image.DecompressionBombError as error:
        raise DataError(f"{path}: {error}; such images are not supported (at most "
                        f"{MAX_PIXELS:,} pixels)") from None
    except Exception as error:  # PIL raises many types for non-images
        raise DataError(f"{path}: not a readable image ({type(error).__name__}: {error})") from None
    if fmt not in _FORMATS:
        raise DataError(f"{path}: {fmt} images are not supported; use JPEG, PNG or BMP")
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise DataError(f"{path}: its header declares {width}x{height} pixels; at most "
                        f"{MAX_PIXELS:,} (pix2pix_tf.data.files.MAX_PIXELS) are read. Resize it, "
                        "or re-export it if the file is damaged")
    if mode not in _MODE_CHANNELS:
        raise DataError(f"{path}: image mode {mode} is not supported; save it as RGB or grayscale")
    problem = _truncation(path, fmt)
    if problem:
        raise DataError(f"{path}: {problem}")
    return ImageInfo(path, width, height, _MODE_CHANNELS[mode], bits)


def _image_files(folder, ignored):
    files = []
    for entry in sorted(Path(folder).iterdir()):
        if entry.name.startswith(".") or entry.is_dir():
            continue
        if entry.suffix.lower() in IMAGE_EXTENSIONS:
            files.append(entry)
        else:
            ignored.append(entry)
    return files


def resolve_layout(root, split=None):
    """``(layout, folders)``: 'side_by_side' with one folder or 'two_folders' with (A, B)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder. Give a folder of A|B images, or one with "
                        "A/ and B/ subfolders (optionally in train/, val/, test/).")
    candidates = []
    if split:
        candidates += [(root / split / "A", root / split / "B"), (root / "A" / split, root / "B" / split)]
    candidates.append((root / "A", root / "B"))
    for a, b in candidates:
        if a.is_dir() and b.is_dir():
            return "two_folders", (a, b)
    if split and (root / split).is_dir():
        return "side_by_side", (root / split,)
    if split and any((root / s).is_dir() for s in ("train", "val", "test")):
        present = sorted(s for s in ("train", "val", "test") if (root / s).is_dir())
        raise DataError(f"{root}: has no {split!r} split (found: {', '.join(present)}). "
                        f"Choose split={present[0]!r} or add {root / split}.")
    return "side_by_side", (root,)


def scan_pairs(root, split=None, *, crop_size=None):
    """Finds and checks every pair under ``root`` (see the module docstring). Reads headers only.

    ``crop_size``, if given, flags images smaller than the crop.
    """
    layout, folders = resolve_layout(root, split)
    scan = Scan(Path(folders[0]).parent if layout == "two_folders" else Path(folders[0]), layout)

    def header(path):
        try:
            return read_header(path)
        except DataError as error:
            scan.problems.append((path, str(error).split(": ", 1)[-1]))
            return None

    if layout == "side_by_side":
        for path in _image_files(folders[0], scan.ignored):
            info = header(path)
            if info is None:
                continue
            if info.width % 2:
                scan.problems.append((path, f"odd width {info.width}: an A|B image must split "
                                            "into two equal halves"))
                continue
            scan.pairs.append(Pair(info))
    else:
        a_files = {p.stem: p for p in _image_files(folders[0], scan.ignored)}
        b_files = {p.stem: p for p in _image_files(folders[1], scan.ignored)}
        for stem in sorted(set(a_files) | set(b_files)):
            if stem not in b_files:
                scan.problems.append((a_files[stem], f"has no partner named {stem}.* in {folders[1]}"))
                continue
            if stem not in a_files:
                scan.problems.append((b_files[stem], f"has no partner named {stem}.* in {folders[0]}"))
                continue
            a, b = header(a_files[stem]), header(b_files[stem])
            if a is None or b is None:
                continue
            if (a.width, a.height) != (b.width, b.height):
                scan.problems.append((a.path, f"is {a.width}x{a.height} but its partner {b.path} is "
                                              f"{b.width}x{b.height}: pairs must be pixel-aligned"))
                continue
            scan.pairs.append(Pair(a, b))
    if crop_size:
        usable = []
        for pair in scan.pairs:
            height, width = pair.size
            if height < crop_size or width < crop_size:
                scan.problems.append((pair.a.path, f"is {width}x{height} (per half), smaller than the "
                                                   f"{crop_size}x{crop_size} crop: use a smaller "
                                                   "crop_size or preprocess='resize_and_crop'"))
            else:
                usable.append(pair)
        scan.pairs = usable
    return scan


def check_scan(scan, on_error="raise"):
    """Raises one DataError listing every problem, or (``on_error='skip'``) warns and goes on."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if scan.problems and on_error == "raise":
        raise DataError(
            f"Found {len(scan.problems)} bad file(s) in {scan.root}:\n"
            + "\n".join(f"  {p}: {m}" for p, m in scan.problems[:_MAX_LISTED])
            + (f"\n  ... and {len(scan.problems) - _MAX_LISTED} more" if len(scan.problems) > _MAX_LISTED else "")
            + "\nFix or remove them, or pass on_error='skip' to train on the rest.",
            scan.problems,
        )
    if scan.problems:
        warnings.warn(f"Skipping {len(scan.problems)} bad file(s):\n{scan.report()}", stacklevel=3)
    if not scan.pairs:
        raise DataError(
            f"No usable image pairs in {scan.root} ({scan.layout} layout). Expected JPEG/PNG/BMP "
            "files with A and B side by side, or A/ and B/ subfolders with matching file names."
            + (f" Ignored {len(scan.ignored)} non-image file(s)." if scan.ignored else "")
        )
    return scan
