"""Turn any folder of photos into the classic synthetic pix2pix pairs.

Kinds (A -> B, B is always the photo):

- ``edges``: black edges on white -> photo (like edges2shoes; edges from a thresholded gradient
  magnitude of the blurred photo, a dependency-free stand-in for HED/Canny);
- ``grayscale``: luminance -> colour (stored as gray RGB; load with ``input_channels=1``);
- ``lowres``: 4x downsampled and bicubic-upsampled (blurred) -> sharp (super-resolution);
- ``masked``: photo with random grey rectangles -> photo (inpainting).

Each photo is centre-cropped to a square, resized to ``size`` and written as one side-by-side A|B
PNG into ``output/train`` or ``output/test`` (a split by photo, so no photo is in both).

    python -m pix2pix_tf.cli.make_pairs PHOTOS OUTPUT --kind edges [--size 256]
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from pix2pix_tf.data.files import IMAGE_EXTENSIONS, DataError, read_header

KINDS = ("edges", "grayscale", "lowres", "masked")


def square(photo, size):
    width, height = photo.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return photo.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)


def edges(photo, fraction=0.12):
    """Black edges on white: the top ``fraction`` of gradient magnitudes of the blurred photo."""
    gray = np.asarray(photo.convert("L").filter(ImageFilter.GaussianBlur(1.5)), np.float32)
    gy, gx = np.gradient(gray)
    magnitude = np.hypot(gx, gy)
    threshold = np.quantile(magnitude, 1.0 - fraction)
    image = np.where(magnitude > threshold, 0, 255).astype(np.uint8)
    return Image.fromarray(image).convert("RGB")


def grayscale(photo):
    return photo.convert("L").convert("RGB")


def lowres(photo, factor=4):
    width, height = photo.size
    small = photo.resize((max(1, width // factor), max(1, height // factor)), Image.BICUBIC)
    return small.resize((width, height), Image.BICUBIC)


def masked(photo, rng, holes=3, max_fraction=0.3):
    image = np.array(photo)
    size = image.shape[0]
    for _ in range(holes):
        h, w = rng.integers(size // 10, int(size * max_fraction) + 1, 2)
        top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        image[top:top + h, left:left + w] = 127
    return Image.fromarray(image)


def make_pair(photo, kind, rng):
    if kind == "edges":
        return edges(photo)
    if kind == "grayscale":
        return grayscale(photo)
    if kind == "lowres":
        return lowres(photo)
    if kind == "masked":
        return masked(photo, rng)
    raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def make_synthetic_pairs(photos, output, kind="edges", *, size=256, test_fraction=0.2, seed=0,
                         verbose=True):
    """Writes side-by-side A|B pairs of ``kind`` for every photo in the folder ``photos``.

    Returns ``{"train": n, "test": m}``. Unreadable photos raise :class:`DataError` naming them.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    photos = Path(photos)
    if not photos.is_dir():
        raise DataError(f"{photos}: no such folder of photos.")
    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"{photos}: no JPEG/PNG/BMP photos found.")
    problems = []
    for path in files:
        try:
            read_header(path)
        except DataError as error:
            problems.append(str(error))
    if problems:
        raise DataError("Cannot use these photos:\n  " + "\n  ".join(problems), problems)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    n_test = int(round(len(files) * test_fraction)) if len(files) > 1 else 0
    test = {files[i] for i in order[:n_test]}
    counts = {"train": 0, "test": 0}
    from keras.utils import Progbar

    progress = Progbar(len(files), unit_name="photo") if verbose else None
    for path in files:
        split = "test" if path in test else "train"
        with Image.open(path) as image:
            photo = square(image.convert("RGB"), size)
        a = make_pair(photo, kind, rng)
        pair = Image.new("RGB", (2 * size, size))
        pair.paste(a, (0, 0))
        pair.paste(photo, (size, 0))
        folder = Path(output) / split
        folder.mkdir(parents=True, exist_ok=True)
        pair.save(folder / f"{path.stem}.png")
        counts[split] += 1
        if progress:
            progress.add(1)
    return counts
