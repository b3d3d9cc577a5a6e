"""The authors' published pix2pix generators, converted from their PyTorch checkpoints.

The reference PyTorch repository publishes five generators (``unet_256``, batch norm, dropout),
one ``NAME.pth`` each under :data:`BASE_URL`. :func:`load_pretrained` downloads one once into
Keras' cache folder (``~/.keras/models/pix2pix_tf``, or ``$KERAS_HOME``), reads it with the
torch-free, pickle-safe :mod:`pix2pix_tf.tasks.translate.torch_checkpoint`, and maps its state dict onto this
package's U-Net, strictly: a missing, extra or mis-shaped tensor is an error naming it.
``Pix2Pix.from_pretrained(NAME)`` and ``--model pretrained:NAME`` (predict, evaluate, export) use it.

How the reference's keys map (its U-Net is a recursion of skip-connection blocks; level 0 is the
outermost, ``P`` the block's prefix: ``model.model.``, then ``model.model.1.model.``, then
``3.model.`` more per level, see :func:`block_prefix`):

=========================  ===============================  ===============================
block                      encoder                          decoder
=========================  ===============================  ===============================
outermost (level 0)        ``P0`` conv -> ``down1_conv``     ``P3`` conv + bias -> ``output_conv``
middle level d             ``P1`` conv, ``P2`` BN            ``P5`` conv, ``P6`` BN
                           -> ``down{d+1}_conv/_norm``       -> ``up{n-d}_conv/_norm``
innermost (level n-1)      ``P1`` conv -> ``down{n}_conv``   ``P3`` conv, ``P4`` BN -> ``up1_..``
=========================  ===============================  ===============================

Convolution kernels are OIHW in PyTorch and HWIO in Keras; transposed-convolution kernels are
IOHW and Keras' are HWOI; both are ``transpose(2, 3, 1, 0)``, with no spatial flip (a 4x4
stride-2 transposed convolution with padding 1 is Keras' ``'same'`` one). BatchNorm's weight,
bias, running mean and running variance are Keras' gamma, beta, moving mean and moving variance;
``num_batches_tracked`` (absent in 2017-2018 files) is ignored.

The reference's test script runs these models without ``--eval``: BatchNorm normalises each image
by its own statistics and dropout stays on. That is this package's default ``inference_mode``
('paper'); 'deterministic' is the same without dropout, 'moving_average' is ``--eval``. The
reference places dropout one decoder block outward of the paper, and the converted generator
does too (``dropout_layout='reference'``), so its noise is the reference's.

There are no published checksums for these files. A download is checked against the server's
Content-Length (a truncated file is an error) and then by the strict mapping above; its SHA-256
is recorded beside it on first use and checked on every later load, so a cached file that
changes is refused rather than silently used.
"""

import dataclasses
import hashlib
import os
import re
from pathlib import Path

import numpy as np

from pix2pix_tf.data.files import DataError
from pix2pix_tf.networks.unet import unet_generator
from pix2pix_tf.tasks.translate.torch_checkpoint import CheckpointError, read_state_dict

BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/"
CACHE_SUBDIR = "models/pix2pix_tf"


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What a published generator does and how to feed it (travels inside the loaded model)."""

    name: str
    dataset: str
    direction: str
    input: str
    output: str
    preparation: str = ("RGB, resized to 256x256 (the reference test script: load_size = "
                        "crop_size = 256, no flip), scaled to [-1, 1]")
    source: str = "junyanz/pytorch-CycleGAN-and-pix2pix, scripts/download_pix2pix_model.sh"
    network: str = "unet_256, batch norm, dropout (reference layout)"

    def to_dict(self):
        return dataclasses.asdict(self)


#: name -> card. The direction is the public pix2pix dataset's (A|B images) that it was trained on.
PRETRAINED = {card.name: card for card in (
    ModelCard("facades_label2photo", "facades", "BtoA", "facade label map (CMP Facades colours)",
              "building facade photo"),
    ModelCard("sat2map", "maps", "AtoB", "aerial photo", "map (Google Maps style)"),
    ModelCard("map2sat", "maps", "BtoA", "map (Google Maps style)", "aerial photo"),
    ModelCard("edges2shoes", "edges2shoes", "AtoB", "edge sketch of a shoe", "shoe photo"),
    ModelCard("day2night", "night2day", "BtoA", "outdoor scene by day", "the scene at night"),
)}


class PretrainedError(DataError):
    """A pretrained model could not be fetched or converted; the message says what to do."""


def pretrained_path(name, *, base_url=None, cache_dir=None):
    """Local path of ``NAME.pth``, downloading it into Keras' cache folder the first time."""
    import keras

    base_url = base_url or BASE_URL
    if name not in PRETRAINED:
        raise PretrainedError(f"Unknown pretrained model {name!r}; choose one of "
                              f"{', '.join(PRETRAINED)}, or give the path of a .pth file.")
    url = base_url.rstrip("/") + f"/{name}.pth"
    # Keras' own default folder (it reads $KERAS_HOME once, at import; a later setting counts here)
    home = Path(cache_dir or os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    # get_file quietly falls back to /tmp/.keras when the folder does not exist yet
    (home / CACHE_SUBDIR).mkdir(parents=True, exist_ok=True)
    try:
        path = keras.utils.get_file(f"{name}.pth", url, cache_subdir=CACHE_SUBDIR,
                                    cache_dir=str(home))
    except Exception as error:  # get_file raises a bare Exception for URL failures
        raise PretrainedError(
            f"Could not download the pretrained model {name!r} from {url} ({error}). Are you "
            f"offline? Fetch the file on a machine with internet and put it at "
            f"{home / CACHE_SUBDIR / (name + '.pth')}, or pass its path instead of the name "
            f"(Pix2Pix.from_pretrained('/path/{name}.pth') or --model pretrained:/path/{name}.pth)."
        ) from None
    return Path(path)


def check_recorded_hash(path):
    """Records ``path``'s SHA-256 beside it on first use; refuses a file that has changed since."""
    path = Path(path)
    sha = hashlib.sha256()
    with open(path, "rb") as f:  # in chunks: the published files are ~218 MB
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    digest = sha.hexdigest()
    record = path.with_name(path.name + ".sha256")
    if record.exists():
        expected = record.read_text().split()[0]
        if expected != digest:
            raise PretrainedError(
                f"{path} has changed since it was first loaded (SHA-256 {digest[:12]}..., "
                f"recorded {expected[:12]}...). Delete it and {record.name} to download it again.")
    else:
        record.write_text(f"{digest}  {path.name}\n")
    return digest


def block_prefix(level):
    """State-dict prefix of the reference U-Net's block at ``level`` (0 = outermost): the
    outermost block holds its submodule at index 1, every other block at index 3."""
    if level == 0:
        return "model.model."
    return "model.model.1.model." + "3.model." * (level - 1)


def unet_from_torch(state_dict, *, inference_mode="paper", name=None):
    """Builds this package's U-Net from a reference ``UnetGenerator`` state dict.

    The shape (input/output channels, ``ngf``, ``num_downs``) is read from the state dict; every
    tensor must land on exactly one Keras weight of the same size.

    Raises:
        PretrainedError: a key is missing, unexpected or has the wrong shape (named).
    """
    tensors = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    input_channels, output_channels, ngf, num_downs = _unet_shape(tensors)
    generator = unet_generator(
        int(input_channels), int(output_channels), ngf=int(ngf), num_downs=num_downs,
        norm="batch", dropout=True, dropout_layout="reference", inference_mode=inference_mode,
        name=name or f"unet_{2**num_downs}")
    expected = _expected_tensors(generator, num_downs)
    missing = [k for k in expected if k not in tensors]
    extra = [k for k in tensors if k not in expected]
    if missing or extra:
        raise PretrainedError(
            "the state dict does not match the reference U-Net with "
            f"num_downs={num_downs}, ngf={ngf}: "
            + "; ".join(filter(None, [
                f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
                if missing else "",
                f"unexpected {', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}"
                if extra else ""])))
    _set_torch_weights(generator, expected, tensors)
    return generator


def _unet_shape(tensors):
    """(input channels, output channels, ngf, num_downs) of a reference U-Net's tensors."""
    first = tensors.get("model.model.0.weight")
    if first is None or first.ndim != 4:
        raise PretrainedError("not a reference UnetGenerator state dict: no 4-D "
                              "'model.model.0.weight' (the outermost convolution).")
    ngf, input_channels = first.shape[:2]
    num_downs = 1
    while f"{block_prefix(num_downs)}1.weight" in tensors:
        num_downs += 1
    output_key = "model.model.3.weight"
    if output_key not in tensors:
        raise PretrainedError(f"missing key {output_key!r} (the output layer).")
    return input_channels, tensors[output_key].shape[1], ngf, num_downs


def _expected_tensors(generator, num_downs):
    """``{torch key: (keras layer, weight index)}``: where every tensor of the reference
    U-Net with ``num_downs`` levels goes in ``generator``."""
    expected = {}
    for level in range(num_downs):
        prefix = block_prefix(level)
        j = num_downs - level  # decoder block number, innermost = 1
        if level == 0:
            pairs = [(0, "down1_conv"), (3, "output_conv")]
        elif level == num_downs - 1:
            pairs = [(1, f"down{level + 1}_conv"), (3, "up1_conv"), (4, "up1_norm")]
        else:
            pairs = [(1, f"down{level + 1}_conv"), (2, f"down{level + 1}_norm"),
                     (5, f"up{j}_conv"), (6, f"up{j}_norm")]
        for index, layer_name in pairs:
            layer = generator.get_layer(layer_name)
            if layer_name.endswith("_norm"):
                slots = ["weight", "bias", "running_mean", "running_var"]
            else:
                slots = ["weight"] + (["bias"] if layer.use_bias else [])
            for slot_index, slot in enumerate(slots):
                expected[f"{prefix}{index}.{slot}"] = (layer, slot_index)
    return expected


def _set_torch_weights(generator, expected, tensors):
    """Sets ``generator``'s weights to the torch ``tensors``, laid out as Keras' (``expected``:
    :func:`_expected_tensors`); PretrainedError names a tensor of the wrong shape."""
    values = {}
    for key, (layer, slot_index) in expected.items():
        value = np.asarray(tensors[key], np.float32)
        if value.ndim == 4:  # OIHW (conv) or IOHW (transposed conv) -> HWIO / HWOI
            value = value.transpose(2, 3, 1, 0)
        target = tuple(layer.weights[slot_index].shape)
        if value.shape != target:
            raise PretrainedError(f"{key} has shape {tuple(tensors[key].shape)}, which does not "
                                  f"fit {layer.name}'s {target} (after OIHW -> HWIO).")
        values.setdefault(layer.name, [None] * len(layer.weights))[slot_index] = value
    for layer_name, weights in values.items():
        generator.get_layer(layer_name).set_weights(weights)


def load_pretrained(name_or_path, *, inference_mode="paper", base_url=None, cache_dir=None):
    """A :class:`~pix2pix_tf.Pix2Pix` holding a published generator (and a fresh discriminator,
    for fine-tuning), its model card in ``model.model_card``.

    Args:
        name_or_path: a name in :data:`PRETRAINED` (downloaded once), or the path of a
            reference ``UnetGenerator`` ``.pth`` file (its card then says only where it came from).
        inference_mode: 'paper' (the reference test script's default), 'deterministic' or
            'moving_average' (the reference's ``--eval``).
        base_url: where the ``NAME.pth`` files are (default :data:`BASE_URL`; a mirror, or a
            ``file://`` folder).
        cache_dir: Keras' cache folder (default ``~/.keras`` or ``$KERAS_HOME``).
    """
    from pix2pix_tf.model import Pix2Pix

    text = str(name_or_path)
    if text in PRETRAINED:
        path = pretrained_path(text, base_url=base_url, cache_dir=cache_dir)
        card = PRETRAINED[text].to_dict()
        check_recorded_hash(path)
    else:
        path = Path(text)
        if not path.is_file():
            raise PretrainedError(f"{text!r} is neither a published model ({', '.join(PRETRAINED)}) "
                                  "nor an existing .pth file.")
        card = {"name": path.stem, "source": str(path), "network": "reference UnetGenerator"}
    try:
        state = read_state_dict(path)  # its errors name the file
    except CheckpointError as error:
        raise PretrainedError(str(error)) from None
    try:
        generator = unet_from_torch(state, inference_mode=inference_mode)
    except PretrainedError as error:
        raise PretrainedError(f"{path}: {error}") from None
    safe = re.sub(r"\W", "_", card["name"])
    return Pix2Pix(generator, inference_mode=inference_mode, model_card=card,
                   name=f"pix2pix_{safe}")
