"""Reads PyTorch checkpoints (``.pth``) into NumPy without PyTorch and without running pickled code.

A ``.pth`` file is a Python pickle whose tensors point at raw storages kept beside it. Loading one
with plain :mod:`pickle` (or ``torch.load(weights_only=False)``) executes whatever callables the
file names, so a downloaded checkpoint could run arbitrary code. This reader unpickles with an
allow-list: the only globals a file may name are the tensor-rebuild functions, the typed storage
classes (which only say which dtype a storage holds) and ``collections.OrderedDict``. Anything
else is refused with :class:`CheckpointError` naming it, before it is called.

Both serialisations are read:

- the **zip** format (PyTorch 1.6 and later): ``ARCHIVE/data.pkl`` plus one file per storage
  under ``ARCHIVE/data/``, byte order in ``ARCHIVE/byteorder``;
- the **legacy** stream format (before 1.6; the authors' 2017-2018 checkpoints): five pickles in
  a row (magic number, protocol version, system info, the object, the storage keys), followed by
  each storage as an 8-byte element count and its raw bytes.

The older tar format (PyTorch 0.1.x) is not supported; such a file gets an error saying so.

Typical use::

    from pix2pix_tf.torch_checkpoint import read_state_dict
    tensors = read_state_dict("latest_net_G.pth")   # {"model.model.0.weight": np.ndarray, ...}
"""

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

#: The legacy format's first pickle.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

#: Typed storage class name -> NumPy dtype. ``torch.cuda.X`` names the same dtype on a GPU.
STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class CheckpointError(ValueError):
    """The file is not a PyTorch checkpoint this reader accepts; the message says why."""


class _StorageType:
    """What a typed storage class stands for once unpickled: just its dtype."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


def _rebuild_tensor(storage, offset, size, stride, *_):
    """``torch._utils._rebuild_tensor(_v2)``: a strided view into a storage, copied out. In the
    legacy format the storage's bytes come after the pickle, so the tensor is made later."""
    if isinstance(storage, _Pending):
        return _PendingTensor(storage, (offset, size, stride))
    return _strided(storage, offset, size, stride)


def _strided(storage, offset, size, stride):
    size, stride = tuple(size), tuple(stride)
    if not size:
        return np.array(storage[offset])
    extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if any(n == 0 for n in size):
        return np.zeros(size, storage.dtype)
    if extent > storage.size:
        raise CheckpointError(f"a tensor of shape {size} reaches past the end of its storage "
                              f"({extent} > {storage.size} elements): the file is corrupt.")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=[s * item for s in stride], writeable=False)
    return np.array(view)


def _rebuild_parameter(data, *_):
    """``torch._utils._rebuild_parameter``: a Parameter is its data here."""
    return data


#: (module, name) -> what it becomes. Nothing outside this table is ever called or created.
SAFE_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, load_storage):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module, name):
        if (module, name) in SAFE_GLOBALS:
            return SAFE_GLOBALS[module, name]
        if module in ("torch", "torch.cuda") and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(
            f"the checkpoint asks to run {module}.{name}, which is not a tensor-rebuild function; "
            "refusing to load it (only plain state dicts of tensors can be read safely).")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise CheckpointError(f"unexpected persistent reference {pid!r:.80} in the checkpoint.")
        return self._load_storage(*pid[1:])


def read_state_dict(path):
    """Reads the tensors of a PyTorch checkpoint as ``{name: np.ndarray}`` (in file order).

    Accepts a state dict, or a dict holding one under ``"state_dict"`` / ``"model"`` (common
    training-script layouts). Raises :class:`CheckpointError` for a file this reader cannot read
    safely, naming the path and the reason.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            obj = _read_zip(path)
        else:
            obj = _read_legacy(path)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    except (pickle.UnpicklingError, EOFError, struct.error, zipfile.BadZipFile, KeyError,
            ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({error}).") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise CheckpointError(f"{path}: the checkpoint holds a {type(obj).__name__}, not a "
                              "state dict of tensors.")
    return dict(obj)


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise CheckpointError("a zip file without exactly one data.pkl: not a PyTorch "
                                  "checkpoint.")
        prefix = pickles[0][: -len("data.pkl")]
        order = "little"
        if prefix + "byteorder" in names:
            order = archive.read(prefix + "byteorder").decode().strip()
        storages = {}

        def load_storage(kind, key, _location, _numel, *_):
            if key not in storages:
                raw = archive.read(f"{prefix}data/{key}")
                dtype = kind.dtype.newbyteorder("<" if order == "little" else ">")
                storages[key] = np.frombuffer(raw, dtype).astype(kind.dtype)
            return storages[key]

        return _Unpickler(io.BytesIO(archive.read(pickles[0])), load_storage).load()


def _read_legacy(path):
    with open(path, "rb") as f:
        head = f.read(512)
        if len(head) >= 262 and head[257:262] == b"ustar":
            raise CheckpointError("a tar-format checkpoint (PyTorch 0.1.x); load it once in an "
                                  "old PyTorch and save it again, or use a newer file.")
        f.seek(0)
        header = _PlainUnpickler(f)
        if header.load() != LEGACY_MAGIC:
            raise CheckpointError("not a PyTorch checkpoint (no zip archive, no legacy magic "
                                  "number).")
        if header.load() != LEGACY_PROTOCOL:
            raise CheckpointError("an unknown legacy protocol version.")
        info = header.load()
        order = "<" if info.get("little_endian", True) else ">"
        wanted = {}  # root key -> dtype

        def load_storage(kind, key, _location, _numel, view=None):
            wanted.setdefault(key, kind.dtype)
            return _Pending(key, view)

        obj = _Unpickler(f, load_storage).load()
        keys = _PlainUnpickler(f).load()  # a new unpickler: one may have read ahead
        storages = {}
        for key in keys:
            (count,) = struct.unpack(order + "q", f.read(8))
            dtype = np.dtype(wanted.get(key, np.uint8))
            raw = f.read(count * dtype.itemsize)
            if len(raw) != count * dtype.itemsize:
                raise CheckpointError(f"storage {key} is truncated: the file is incomplete.")
            storages[key] = np.frombuffer(raw, dtype.newbyteorder(order)).astype(dtype)
        return _resolve(obj, storages)


class _PlainUnpickler(pickle.Unpickler):
    """For the legacy format's plain pickles (numbers, a dict, a list of keys): no globals."""

    def find_class(self, module, name):
        raise CheckpointError(f"unexpected {module}.{name} outside the checkpoint's tensors.")


class _Pending:
    """A legacy tensor's storage, whose bytes come after the pickle that refers to it."""

    def __init__(self, key, view):
        self.key, self.view = key, view


class _PendingTensor:
    def __init__(self, storage, args):
        self.storage, self.args = storage, args


def _resolve(obj, storages):
    if isinstance(obj, _PendingTensor):
        pending = obj.storage
        if pending.key not in storages:
            raise CheckpointError(f"storage {pending.key} is missing from the file.")
        storage = storages[pending.key]
        if pending.view is not None:
            _, view_offset, view_size = pending.view
            storage = storage[view_offset:view_offset + view_size]
        return _strided(storage, *obj.args)
    if isinstance(obj, dict):
        resolved = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for key, value in obj.items():
            resolved[key] = _resolve(value, storages)
        return resolved
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, storages) for v in obj)
    return obj

