"""Shared command-line plumbing: exit codes and friendly error reporting."""

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def fail(message, code=EXIT_ERROR):
    print(f"error: {message}", file=sys.stderr)
    return code


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples' line breaks and shows defaults (not a bare None: the train
    command's options say their own default, which a preset may change)."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


#: Model references that name no local file: the authors' models and the Hugging Face Hub
#: (``pix2pix_tf.loading``'s prefixes, spelt here so that the commands' cheap checks run before
#: TensorFlow is imported; tests/test_entry_points.py keeps the two equal).
REMOTE_MODELS = ("pretrained:", "hf://")


def model_missing(reference):
    """True when ``reference`` names a local model file or run directory that does not exist
    (checked before TensorFlow loads; the authors' and Hub models are checked by loading)."""
    return not str(reference).startswith(REMOTE_MODELS) and not Path(reference).exists()


def add_model_bound(p):
    """The ``--max-parameters`` flag of the commands that load a model file."""
    p.add_argument("--max-parameters", type=int, default=None, metavar="N",
                   help="refuse model files whose networks ask for more parameters than N "
                        "(default 200 million, or $PIX2PIX_MAX_PARAMETERS): a bound against "
                        "hostile files; raise it for your own big models")


def newest(pattern, root="."):
    """The most recently written file matching ``pattern`` under ``root``, or None."""
    found = sorted(Path(root).glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def images_to_write(source, output):
    """``{input image: output PNG path}`` for an image file or a folder of images and an output
    folder; ``ValueError`` (with the fix) for a missing input, an empty folder, or an output
    that would overwrite an input."""
    from pathlib import Path

    from pix2pix_tf.data.files import IMAGE_EXTENSIONS

    source, output = Path(source), Path(output)
    if source.is_dir():
        files = sorted(p for p in source.iterdir()
                       if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
        if not files:
            raise ValueError(f"{source}: no JPEG/PNG/BMP images in this folder.")
    elif source.is_file():
        files = [source]
    else:
        raise ValueError(f"{source}: no such file or folder.")
    targets = {f: output / f"{f.stem}.png" for f in files}
    inputs = {f.resolve() for f in files}
    clashes = [t for t in targets.values() if t.resolve() in inputs]
    if clashes:
        raise ValueError(f"writing {clashes[0]} would overwrite an input image; choose another "
                         "--output folder.")
    return targets


def process_images(targets, work, verb, where, detail=""):
    """Runs ``work(input_path, output_path)`` on every ``targets`` item with a progress bar; a
    file that fails (DataError, ValueError) is listed, never stops the others. Prints
    "VERB n of m image(s) into WHERE" and returns the exit code (2 if any failed)."""
    from keras.utils import Progbar

    from pix2pix_tf.data.files import DataError

    failed = []
    progress = Progbar(len(targets), unit_name="image")
    for path, target in targets.items():
        try:
            work(path, target)
        except (DataError, ValueError) as error:
            failed.append(f"{path}: {str(error).split(': ', 1)[-1]}")
        progress.add(1)
    print(f"{verb} {len(targets) - len(failed)} of {len(targets)} image(s) into {where}{detail}")
    if failed:
        return fail(f"{len(failed)} file(s) failed:\n  " + "\n  ".join(failed), EXIT_BAD_INPUT)
    return EXIT_OK
