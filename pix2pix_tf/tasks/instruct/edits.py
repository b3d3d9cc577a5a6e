"""Programmatic image edits with natural-language phrasings: the registry behind the bundled
instruction-editing data (image + instruction -> edited image).

Each :class:`Edit` has a target function (what the edited image must be, computed exactly from the
input), the phrasings used for training, and *held-out* phrasings that only evaluation uses, so
that an instruction-following model is tested on wordings it never saw. Anyone can compute a
requested edit's target: ``EDITS["sepia"].target(image)``.

``Edit.target`` takes and returns images in [-1, 1], ``(..., H, W, 3)``, the package's convention
(what models, pipelines and ``translate`` use), so a model's input can be passed as it is.
``Edit.function`` is the same edit on [0, 1] images, the range the functions below are written
in (data sources and evaluation use it). Every edit is TensorFlow ops, so it runs eagerly on
NumPy input and inside ``tf.data`` pipelines alike.

The eight built-in edits are global (none names a side of the image), so mirroring an example
keeps it correct; an edit that does name a side must be registered with ``mirror_safe=False``.
"""

import dataclasses
from typing import Callable

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Edit:
    """An edit: its target function and how people ask for it."""

    name: str
    #: The edit on images in [0, 1].
    function: Callable
    phrasings: tuple
    held_out: tuple
    #: False if the instruction names a side (left/right), so that a mirrored example would
    #: contradict it: such examples must not be flipped.
    mirror_safe: bool = True

    def target(self, image):
        """The edited ``image``; both in [-1, 1] (float, ``(..., H, W, 3)``)."""
        unit = (tf.convert_to_tensor(image, tf.float32) + 1.0) / 2.0
        return tf.clip_by_value(self.function(unit), 0.0, 1.0) * 2.0 - 1.0


EDITS = {}


def register_edit(name, function, phrasings, held_out, *, mirror_safe=True):
    """Adds an edit to :data:`EDITS`: ``function`` maps images in [0, 1] to the edited images in
    [0, 1] (TensorFlow ops). Phrasings must be new (no phrase may name two edits), and
    held-out phrasings must differ from training ones."""
    phrasings, held_out = tuple(phrasings), tuple(held_out)
    if not phrasings or not held_out:
        raise ValueError(f"edit {name!r} needs training and held-out phrasings.")
    mine = [p.lower() for p in phrasings + held_out]
    if len(set(mine)) != len(mine):
        raise ValueError(f"edit {name!r} repeats a phrasing (or uses one for training and "
                         "evaluation both).")
    taken = {p.lower(): e.name for e in EDITS.values() for p in e.phrasings + e.held_out
             if e.name != name}
    clashes = [p for p in mine if p in taken]
    if clashes:
        raise ValueError(f"phrasing {clashes[0]!r} of edit {name!r} already names edit "
                         f"{taken[clashes[0]]!r}.")
    EDITS[name] = Edit(name, function, phrasings, held_out, mirror_safe)
    return EDITS[name]


def edit_of(instruction):
    """The :class:`Edit` a known phrasing names (case and surrounding spaces ignored), or None."""
    wanted = instruction.strip().lower()
    for edit in EDITS.values():
        if wanted in (p.lower() for p in edit.phrasings + edit.held_out):
            return edit
    return None


# ---------------------------------------------------------------------------- the targets
def _float(image):
    return tf.convert_to_tensor(image, tf.float32)


def grayscale(image):
    """Luma (ITU-R BT.601, as ``tf.image.rgb_to_grayscale``) in all three channels."""
    gray = tf.image.rgb_to_grayscale(_float(image))
    return tf.concat([gray, gray, gray], axis=-1)


def invert(image):
    """The photographic negative."""
    return 1.0 - _float(image)


def brighter(image):
    """Brings every value 40% of the way to white (no clipping, detail kept)."""
    return 1.0 - 0.6 * (1.0 - _float(image))


def darker(image):
    """Brings every value 40% of the way to black."""
    return 0.6 * _float(image)


def _per_channel_filter(image, kernel):
    """Convolves each channel of (..., H, W, C) with a 2-D ``kernel``, mirror-padded."""
    image = _float(image)
    batched = image if image.shape.rank == 4 else image[None]
    size = kernel.shape[0]
    pad = size // 2
    padded = tf.pad(batched, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    channels = batched.shape[-1]
    weights = tf.tile(tf.reshape(kernel, [size, size, 1, 1]), [1, 1, channels, 1])
    out = tf.nn.depthwise_conv2d(padded, weights, [1, 1, 1, 1], "VALID")
    return out if image.shape.rank == 4 else out[0]


def blur(image, sigma=2.0):
    """Gaussian blur, standard deviation ``sigma`` pixels (kernel 4 sigma + 1 wide)."""
    radius = int(2 * sigma)
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    g = tf.exp(-(x**2) / (2 * sigma**2))
    g = g / tf.reduce_sum(g)
    return _per_channel_filter(image, g[:, None] * g[None, :])


def edge_sketch(image, strength=4.0):
    """Dark lines on white where the luma changes: 1 - |Sobel gradient| (scaled, clipped)."""
    gray = tf.image.rgb_to_grayscale(_float(image))
    sobel_x = tf.constant([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
    gx = _per_channel_filter(gray, sobel_x)
    gy = _per_channel_filter(gray, tf.transpose(sobel_x))
    sketch = 1.0 - tf.clip_by_value(strength * tf.sqrt(gx**2 + gy**2 + 1e-12), 0.0, 1.0)
    return tf.concat([sketch, sketch, sketch], axis=-1)


#: The classic sepia-tone matrix (rows: output R, G, B).
SEPIA = ((0.393, 0.769, 0.189), (0.349, 0.686, 0.168), (0.272, 0.534, 0.131))


def sepia(image):
    """Sepia toning with the classic matrix, clipped to [0, 1]."""
    matrix = tf.constant(SEPIA, tf.float32)
    return tf.clip_by_value(tf.linalg.matvec(matrix, _float(image)), 0.0, 1.0)


def hue_rotate_180(image):
    """Every colour's hue turned half-way round the colour wheel (HSV), brightness kept."""
    return tf.image.adjust_hue(_float(image), 0.5)


register_edit("grayscale", grayscale, [
    "make it black and white", "convert to grayscale", "remove the colour", "desaturate it fully",
    "turn it into a black-and-white photo", "make it monochrome", "drain all the colour",
    "grayscale please", "make it grey", "convert it to gray", "no colour please",
    "strip the color", "turn it gray", "make the photo colorless", "remove all color",
    "shades of grey only",
], ["take the color out", "render it in shades of gray", "black and white version"])
register_edit("invert", invert, [
    "invert the colours", "make a negative", "invert it", "turn it into a photo negative",
    "swap light and dark", "reverse all the colours", "negative image please",
    "make the darks light and the lights dark", "negative please", "invert the image",
    "flip the colours to their negatives", "show the photo as a negative",
    "turn every pixel into its opposite", "invert the photo", "film negative effect",
], ["make it look like a film negative", "invert every pixel", "invert the picture"])
# Brighter and darker share their attribute words: "brightness", "light" and "exposure" each
# occur as often in one as in the other (4, 5 and 3 times), each time after a word for more
# ("increase", "raise", "boost", "add", "more", "up") or for less ("decrease", "lower",
# "reduce", "cut", "remove", "less", "down"). The direction can then only be read from the
# polarity word, never from the attribute, so that a held-out pairing of the two ("add
# brightness": "add" trained only with "light" and "exposure") composes. With the attribute
# words unbalanced (3 brighter against 4 darker for "brightness") and "add" only in "add some
# blur", "add brightness" read as darker in every run (benchmarks/NOTES.md).
register_edit("brighter", brighter, [
    "make it brighter", "brighten it", "lighten the image", "increase the brightness",
    "more light please", "brighten it up", "make it lighter", "raise the exposure",
    "the photo is too dark", "make it bright", "brighter please", "lighten it",
    "boost the brightness", "increase the exposure", "more brightness", "light it up",
    "turn up the brightness", "add more light", "add some exposure", "boost the light",
    "raise the light",
], ["it is too dark, fix that", "add brightness", "make everything lighter"])
register_edit("darker", darker, [
    "make it darker", "darken it", "reduce the brightness", "lower the exposure",
    "make it dimmer", "less light please", "darken the image", "turn the brightness down",
    "the photo is too bright", "make it dark", "darker please", "dim the image",
    "decrease the brightness", "tone down the light", "less brightness", "make it dim",
    "reduce the light", "lower the light", "remove some light", "cut the exposure",
    "decrease the exposure",
], ["it is too bright, tone it down", "make everything darker", "dim it"])
register_edit("blur", blur, [
    "blur it", "make it blurry", "soften the image", "apply a gaussian blur", "defocus it",
    "make it out of focus", "smooth it out", "add some blur", "blur the image",
    "make it fuzzy looking", "soft focus please", "make it soft", "blur the photo",
    "blurry please", "make it less sharp", "unsharpen the picture",
], ["make it fuzzy", "blur the whole picture", "give it a soft focus"])
register_edit("edge_sketch", edge_sketch, [
    "make an edge sketch", "turn it into a line drawing", "draw the outlines",
    "sketch the edges", "make it look like a pencil sketch", "show only the edges",
    "convert to an outline drawing", "trace the contours", "sketch it", "edge detection",
    "draw it as a sketch", "make a drawing of the edges", "outline the shapes",
    "pencil drawing please", "show the outlines", "edges only",
], ["edge drawing please", "make a sketch of it", "outline everything"])
register_edit("sepia", sepia, [
    "make it sepia", "apply a sepia tone", "give it an old photo look", "sepia please",
    "make it look antique", "tone it brown like an old print", "vintage sepia effect",
    "age the photo", "sepia tone please", "make it old", "old photo style",
    "make it look vintage", "brown vintage look", "give it an aged look",
    "sepia filter please", "warm brown old style",
], ["make it look like an old photograph", "add a sepia filter", "brownish vintage tone"])
register_edit("hue_180", hue_rotate_180, [
    "rotate the hue by 180 degrees", "shift every colour to its opposite hue",
    "turn the hue halfway round", "swap the hues", "change every colour to its complement",
    "hue shift by half a turn", "rotate the colours around the wheel", "complementary colours",
    "opposite colours please", "invert the hue", "shift the hue 180 degrees",
    "complement every colour", "rotate the hue", "swap each color for its opposite hue",
    "turn the colours to their complements", "hue rotation",
], ["turn the hue 180 degrees", "make each colour its complementary hue",
    "opposite hues please"])
