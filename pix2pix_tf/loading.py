"""Loading a trained model, yours or someone else's: a ``.keras`` file, a run directory, one of
the authors' published generators (``pretrained:NAME``) or a model on the Hugging Face Hub
(``hf://user/repo``), with the file's size checked before anything is built.

A model file from the internet is untrusted input. Keras' ``safe_mode`` (always on here)
refuses code, such as Lambda layers and pickles, but not size. A config may ask for a
convolution of 3*10^7 filters, and Keras allocates the 5.8 GB kernel before it finds that the
weights file does not fit. A 1 MB weights entry may inflate to 1 GB. :func:`check_archive`
therefore reads the archive's directory and its config before Keras sees them. It checks the
entry sizes *before decompression* and the config's nesting depth. Then :func:`parameter_budget`
counts every variable the build creates, from its shape and *before* it is allocated. A file
that asks for more is refused with one line that names it, what it asks for and the bound, and
nothing large is ever allocated. Your own big models pass an explicit bound (``max_parameters=``,
``--max-parameters``, or the ``PIX2PIX_MAX_PARAMETERS`` environment variable).
"""

import contextlib
import json
import os
import re
import zipfile
from pathlib import Path

import keras

import pix2pix_tf.core.schedules  # noqa: F401  registers LinearDecay (saved optimizers use it)
import pix2pix_tf.tasks  # noqa: F401  registers every task's model class with Keras
from pix2pix_tf.callbacks import checkpoints
from pix2pix_tf.data.files import DataError
from pix2pix_tf.networks import as_generator

#: ``--model pretrained:NAME`` (or ``pretrained:/path/file.pth``) names a published model.
PRETRAINED_PREFIX = "pretrained:"
#: ``hf://user/repo``: a model saved to the Hugging Face Hub by Keras (``model.save("hf://...")``).
HUB_PREFIX = "hf://"


def is_remote(source):
    """Whether ``source`` names a model by a prefix (the authors' or the Hub's), not a path."""
    return str(source).startswith((PRETRAINED_PREFIX, HUB_PREFIX))

#: The most parameters (optimizer slots included) a loaded model may create: 200 million, four
#: times the paper's unet_256 with its discriminator and Adam's two slots for each, and about
#: 0.8 GB in float32. ``PIX2PIX_MAX_PARAMETERS`` or ``max_parameters=`` raise it.
MAX_PARAMETERS = 200_000_000
#: The most bytes an archive's config.json and metadata.json may take (a real config: 30-50 KB,
#: an editor with its spelling table a few MB).
MAX_CONFIG_BYTES = 64 << 20
#: The deepest nesting of lists and objects a config may have (a real one: about 20).
MAX_DEPTH = 200
#: Bytes a weights entry may hold beyond its parameters' float32 bytes (HDF5's own records).
WEIGHTS_SLACK = 64 << 20


def parameter_bound(value=None):
    """The parameter bound in force: ``value``, else ``PIX2PIX_MAX_PARAMETERS``, else
    :data:`MAX_PARAMETERS`."""
    if value is not None:
        return int(value)
    text = os.environ.get("PIX2PIX_MAX_PARAMETERS")
    return int(float(text)) if text else MAX_PARAMETERS


def _override(label):
    return (f"If you trust {label} and it is this big, pass a higher bound: --max-parameters N "
            "(max_parameters=N in Python, or PIX2PIX_MAX_PARAMETERS=N).")


def check_archive(path, limit=None):
    """Raises :class:`DataError` unless the ``.keras`` file (or a Keras model folder, as the Hub
    stores them) at ``path`` keeps to the bounds: config and metadata of at most
    :data:`MAX_CONFIG_BYTES`, weights of at most the parameter bound's float32 bytes (optimizer
    slots included) before decompression, and a config nested at most :data:`MAX_DEPTH` deep.
    Returns the parsed config."""
    path, limit = Path(path), parameter_bound(limit)
    sizes = _entry_sizes(path)
    bounds = {"config.json": MAX_CONFIG_BYTES, "metadata.json": MAX_CONFIG_BYTES,
              "model.weights.h5": 4 * limit + WEIGHTS_SLACK}
    for entry, size in sizes.items():
        bound = bounds.get(entry)
        if bound is not None and size > bound:
            raise DataError(f"{path}: its {entry} holds {size:,} bytes once decompressed, more "
                            f"than the {bound:,} allowed. " + _override(path))
    if "config.json" not in sizes:
        raise DataError(f"{path}: not a loadable Keras model (no config.json inside).")
    text = _read_entry(path, "config.json")
    try:
        config = json.loads(text)
    except RecursionError:
        raise DataError(f"{path}: its config.json is nested deeper than {MAX_DEPTH} levels; "
                        "no real model's is.") from None
    except ValueError as error:
        raise DataError(f"{path}: its config.json is not JSON ({error}).") from None
    depth = nesting_depth(config)
    if depth > MAX_DEPTH:
        raise DataError(f"{path}: its config.json is nested {depth} levels deep, more than "
                        f"{MAX_DEPTH}; no real model's is.")
    return config


def _entry_sizes(path):
    """Entry name -> size in bytes as stored uncompressed (the zip's directory, or the files of a
    model folder)."""
    if path.is_dir():
        return {p.name: p.stat().st_size for p in path.iterdir() if p.is_file()}
    try:
        with zipfile.ZipFile(path) as archive:
            return {info.filename: info.file_size for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise DataError(f"{path}: not a loadable Keras model (not a zip archive: {error}). "
                        "Give a .keras file written by pix2pix_tf (train's model.keras or a "
                        "checkpoint).") from None


def _read_entry(path, name):
    if path.is_dir():
        return (path / name).read_bytes()
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def nesting_depth(value):
    """How deep lists and dicts nest in ``value`` (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(
            item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


@contextlib.contextmanager
def parameter_budget(limit, label):
    """Inside the block, Keras variables may hold ``limit`` parameters in all; the variable that
    would pass it raises :class:`DataError` naming ``label`` from its shape, before its memory
    is allocated. (Keras checks every new variable's shape before initialising it, in
    ``_validate_shape``; the budget listens there.)"""
    owner = next(c for c in type.mro(keras.Variable) if "_validate_shape" in vars(c))
    original = owner._validate_shape
    created = [0]

    def validate(variable, shape):
        shape = original(variable, shape)
        count = 1
        for side in shape:
            count *= int(side)
        created[0] += count
        if created[0] > limit:
            raise DataError(f"{label}: it asks for more than {limit:,} parameters (variable "
                            f"{getattr(variable, 'path', None) or variable.name!r} of shape "
                            f"{tuple(shape)} brings the total to {created[0]:,}). "
                            + _override(label))
        return shape

    owner._validate_shape = validate
    try:
        yield created
    finally:
        owner._validate_shape = original


def resolve(source):
    """The model file or folder that ``source`` names: a ``.keras`` file as it is; a run
    directory's ``model.keras``, else its newest checkpoint; ``hf://user/repo`` downloaded (or
    found in the Hub cache) with ``huggingface_hub``."""
    text = str(source)
    if text.startswith(HUB_PREFIX):
        return hub_folder(text[len(HUB_PREFIX):])
    path = Path(text)
    if path.is_dir():
        if (path / "model.keras").is_file():
            return path / "model.keras"
        found = checkpoints(path / "checkpoints")
        if found:
            return found[-1][1]
        if (path / "config.json").is_file() and (path / "model.weights.h5").is_file():
            return path  # a Keras model folder
        raise DataError(f"{path}: a folder without model.keras or checkpoints/; give a run "
                        "directory that has finished an epoch, or a .keras file.")
    if not path.is_file():
        raise DataError(f"{path}: no such model file.")
    return path


def hub_folder(repo_id):
    """The local folder of the Hub model ``repo_id`` (``user/repo``), downloaded once into the
    Hub's cache; ``HF_HUB_OFFLINE=1`` uses the cache alone."""
    try:
        import huggingface_hub
    except ImportError:
        raise DataError(f"hf://{repo_id}: loading from the Hugging Face Hub needs "
                        "huggingface_hub (pip install huggingface_hub).") from None
    try:
        return Path(huggingface_hub.snapshot_download(repo_id=repo_id, library_name="keras",
                                                      library_version=keras.__version__))
    except Exception as error:  # noqa: BLE001  (network, auth, missing repo: name them)
        raise DataError(f"hf://{repo_id}: could not fetch it from the Hugging Face Hub "
                        f"({type(error).__name__}: {str(error).splitlines()[0][:200]}).") from None


def load_model(source, max_parameters=None):
    """Loads a saved pix2pix_tf model (any task's, e.g. :class:`~pix2pix_tf.Pix2Pix` or
    :class:`~pix2pix_tf.InstructPix2Pix`, with its optimizers, or a bare
    :class:`~pix2pix_tf.networks.Generator`) from anything :func:`resolve` takes, within the
    size bounds of :func:`check_archive` and :func:`parameter_budget`, with a one-line error
    for anything else.

    ``"pretrained:NAME"`` loads one of the authors' published generators instead (downloaded
    once; see :mod:`pix2pix_tf.tasks.translate.pretrained`), ``"pretrained:/path/file.pth"`` a
    local one.
    """
    if str(source).startswith(PRETRAINED_PREFIX):
        from pix2pix_tf.tasks.translate.pretrained import load_pretrained

        return load_pretrained(str(source)[len(PRETRAINED_PREFIX):])
    path = resolve(source)
    label = source if is_remote(source) else path
    limit = parameter_bound(max_parameters)
    check_archive(path, limit)
    try:
        with parameter_budget(limit, label):
            model = keras.models.load_model(path, safe_mode=True)
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001  (Keras raises many kinds; name the file)
        raise DataError(load_error_message(label, error)) from None
    try:
        as_generator(model)
    except TypeError:
        raise DataError(f"{label}: a Keras model, but not a pix2pix_tf model or "
                        "generator.") from None
    return model


def load_error_message(path, error):
    """One line saying why ``path`` did not load (never Keras' config dump)."""
    text = str(error)
    unknown = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
    if unknown:
        return (f"{path}: it holds a {unknown.group(1)!r}, which no imported package has "
                "registered with Keras. Install and import the package that defines it (for "
                "pix2pix_tf models: pip install pix2pix_tf; import pix2pix_tf; a task of your "
                "own: import its module first).")
    first = text.strip().splitlines()[0][:200] if text.strip() else type(error).__name__
    return (f"{path}: not a loadable Keras model ({type(error).__name__}: {first}). Give a "
            ".keras file written by pix2pix_tf (train's model.keras or a checkpoint).")
