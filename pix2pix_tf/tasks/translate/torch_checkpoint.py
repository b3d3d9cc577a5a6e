"""Reads PyTorch checkpoints (``.pth``) into NumPy without PyTorch and without running pickled code.

A ``.pth`` file is a Python pickle whose tensors point at raw storages kept beside it. Loading one
with plain :mod:`pickle` (or ``torch.load(weights_only=False)``) executes whatever callables the
file names, so a downloaded checkpoint could run arbitrary code. This reader unpickles with an
allow-list: the only globals a file may name are the tensor-rebuild functions, the typed storage
classes (which only say which dtype a storage holds) and ``collections.OrderedDict``. Anything
else is refused with :class:`CheckpointError` naming it, before it is called.

It is also memory-safe on hostile files. Unpickling only records what each tensor asks for
(storage, offset, sizes, strides); nothing is read or viewed until every number has been checked:
no negative offset, size or stride, every element inside its storage, each storage's declared
size equal to the bytes the file holds for it (a zip entry's size is checked before it is
decompressed, and an entry larger than the tensors that use it is refused), and the memory the
state dict needs at most ``max_bytes`` (:data:`MAX_BYTES`, about five times the largest published
generator). The pickle itself is at most :data:`MAX_PICKLE_BYTES`, and nesting that could
overflow the C stack while it is unpickled is refused. Every failure is a
:class:`CheckpointError` naming the file (and the tensor and the number where there is one).

Both serialisations are read:

- the **zip** format (PyTorch 1.6 and later): ``ARCHIVE/data.pkl`` plus one file per storage
  under ``ARCHIVE/data/``, byte order in ``ARCHIVE/byteorder``;
- the **legacy** stream format (before 1.6; the authors' 2017-2018 checkpoints): five pickles in
  a row (magic number, protocol version, system info, the object, the storage keys), followed by
  each storage as an 8-byte element count and its raw bytes.

The older tar format (PyTorch 0.1.x) is not supported; such a file gets an error saying so.

Typical use::

    from pix2pix_tf.tasks.translate.torch_checkpoint import read_state_dict
    tensors = read_state_dict("latest_net_G.pth")   # {"model.model.0.weight": np.ndarray, ...}
"""

import collections
import functools
import io
import os
import pickle
import re
import struct
import sys
import zipfile
import zlib
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

#: The most memory (bytes) a state dict may need: its storages plus any tensor that must be
#: copied out of a shared storage. The largest published generator (unet_256) needs 218 MB.
MAX_BYTES = 1 << 30
#: The largest pickle (the tensors' names and shapes, not their data) read: about 35,000 tensors.
MAX_PICKLE_BYTES = 4 << 20
#: The deepest nesting of containers a pickle may build (a state dict's is 5). Tuples nested
#: 200,000 deep overflow an 8 MB C stack when hashed as a dict key (a 200 KB pickle crashes
#: Python 3.11); 10,000 need under 1 MB.
MAX_NESTING = 10_000
#: A tensor's most dimensions (NumPy's limit is 32 on NumPy 1, 64 on NumPy 2).
MAX_DIMS = 32
#: Zip entries are read in chunks of this size into the storage's own buffer (no second copy).
_CHUNK = 1 << 22
# the largest count (bytes, elements, sizes) any file could mean
_LARGEST = 1 << 62
# ops that build a tuple (the only hashable container whose hash recurses)
_TUPLE_OPS = (b"t", b"\x85", b"\x86", b"\x87")
_IN_PLACE_OPS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}
# what malformed input makes the unpickler, zipfile or struct raise
_MALFORMED = (pickle.UnpicklingError, EOFError, struct.error, zipfile.BadZipFile, zlib.error,
              KeyError, IndexError, ValueError, TypeError, AttributeError, OverflowError,
              RecursionError, NotImplementedError)


class CheckpointError(ValueError):
    """The file is not a PyTorch checkpoint this reader accepts; the message says why."""


class _Opaque:
    """Base of the objects unpickling makes: the pickle's BUILD opcode may not change them."""

    __slots__ = ()

    def __setstate__(self, _state):
        raise CheckpointError("the checkpoint tries to set the state of a storage or tensor.")


class _StorageType(_Opaque):
    """What a typed storage class stands for once unpickled: just its dtype."""

    __slots__ = ("name", "dtype")

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage(_Opaque):
    """A storage a tensor points at: its key, dtype and declared element count (and, in the
    legacy format, the view of a larger root storage it is). Its bytes are read later."""

    __slots__ = ("key", "dtype", "numel", "view")

    def __init__(self, key, dtype, numel, view):
        self.key, self.dtype, self.numel, self.view = key, dtype, numel, view


class _Tensor(_Opaque):
    """A tensor as the pickle describes it; made into an array once all its numbers are checked."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _rebuild_tensor(storage, offset, size, stride, *_):
    """``torch._utils._rebuild_tensor(_v2)``: records the view; it is made after the checks."""
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"a tensor whose storage is a {type(storage).__name__}.")
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *_):
    """``torch._utils._rebuild_parameter``: a Parameter is its data here."""
    return data


class _Function(_Opaque):
    """A function the pickle may call; unlike the function itself, the pickle cannot change it
    (BUILD could otherwise set its ``__defaults__`` for every later read)."""

    __slots__ = ("function",)

    def __init__(self, function):
        self.function = function

    def __call__(self, *args):
        return self.function(*args)


#: (module, name) -> what it becomes. Nothing outside this table is ever called or created.
SAFE_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _Function(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v2"): _Function(_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Function(_rebuild_parameter),
}


def _count(value, what):
    """A non-negative int from the pickle (not a bool, not absurdly large), or an error."""
    if type(value) is not int:
        raise CheckpointError(f"{what} is a {type(value).__name__}, not an integer.")
    if value < 0:
        raise CheckpointError(f"{what} is negative ({value}).")
    if value > _LARGEST:
        raise CheckpointError(f"{what} is {value}, far more than any file holds.")
    return value


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, legacy):
        super().__init__(file)
        self._legacy = legacy
        self.storages = {}  # key -> _Storage, in the order the pickle names them

    def find_class(self, module, name):
        if (module, name) in SAFE_GLOBALS:
            return SAFE_GLOBALS[module, name]
        if module in ("torch", "torch.cuda") and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(
            f"the checkpoint asks to run {module}.{name}, which is not a tensor-rebuild function; "
            "refusing to load it (only plain state dicts of tensors can be read safely).")

    def persistent_load(self, pid):
        # zip: ('storage', type, key, location, numel); legacy: ... numel, view or None
        if not (type(pid) is tuple and len(pid) == (6 if self._legacy else 5)
                and type(pid[0]) is str and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and type(pid[2]) is str):
            raise CheckpointError(f"an unexpected persistent reference (a {type(pid).__name__}) "
                                  "in the checkpoint.")
        kind, key, numel = pid[1], pid[2], _count(pid[4], "a storage's size")
        view = pid[5] if self._legacy else None
        if view is not None:
            if not (type(view) is tuple and len(view) == 3 and type(view[0]) is str):
                raise CheckpointError(f"storage {key:.40} has a malformed view.")
            view = (_count(view[1], f"the view offset of storage {key:.40}"),
                    _count(view[2], f"the view size of storage {key:.40}"))
            if view[0] + view[1] > numel:
                raise CheckpointError(f"storage {key:.40}'s view ends past its end "
                                      f"({view[0] + view[1]} > {numel} elements).")
        known = self.storages.get(key)
        if known is None:
            known = self.storages[key] = _Storage(key, kind.dtype, numel, None)
        elif known.dtype != kind.dtype or known.numel != numel:
            raise CheckpointError(f"storage {key:.40} is declared twice, differently.")
        return known if view is None else _Storage(key, kind.dtype, numel, view)


class _PlainUnpickler(pickle.Unpickler):
    """For the legacy format's plain pickles (numbers, a dict, a list of keys): no globals."""

    def find_class(self, module, name):
        raise CheckpointError(f"unexpected {module}.{name} outside the checkpoint's tensors.")

    def persistent_load(self, pid):
        raise CheckpointError("an unexpected persistent reference outside the tensors.")


def read_state_dict(path, *, max_bytes=MAX_BYTES):
    """Reads the tensors of a PyTorch checkpoint as ``{name: np.ndarray}`` (in file order).

    Accepts a state dict, or a dict holding one under ``"state_dict"`` / ``"model"`` (common
    training-script layouts). Raises :class:`CheckpointError` for a file this reader cannot read
    safely, naming the path and the reason; a file whose tensors would need more than
    ``max_bytes`` of memory (default :data:`MAX_BYTES`, 1 GiB) is refused before it is read.
    """
    path = Path(path)
    with open(path, "rb") as file:  # a missing file is FileNotFoundError, as for open()
        try:
            if zipfile.is_zipfile(file):
                return _read_zip(file, max_bytes)
            file.seek(0)
            return _read_legacy(file, max_bytes)
        except CheckpointError as error:
            raise CheckpointError(f"{path}: {error}") from None
        except MemoryError:
            raise CheckpointError(f"{path}: reading it needs more memory than is free (a "
                                  "corrupt or hostile pickle, or too little memory for the "
                                  "file).") from None
        except (*_MALFORMED, OSError) as error:
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint "
                                  f"({type(error).__name__}: {error!s:.200}).") from None


@functools.lru_cache(maxsize=None)
def _opcode_tables():
    """``(regex, length-prefixed opcodes)`` for :func:`_check_opcodes`. The regex matches a run
    of opcodes whose arguments are safe as they are: fixed widths, lines, memo indices below
    :data:`MAX_PICKLE_BYTES`, and strings (BINUNICODE, SHORT_BINUNICODE) of up to 255 bytes, as
    torch writes names; it stops at STOP, at other length-prefixed opcodes and at anything else.
    The second maps each length-prefixed opcode to the width of its length. Made on first use
    (20 ms), not at import."""
    import pickletools

    by_width, prefixed = collections.defaultdict(list), {}
    widths = {pickletools.TAKEN_FROM_ARGUMENT1: 1, pickletools.TAKEN_FROM_ARGUMENT4: 4,
              pickletools.TAKEN_FROM_ARGUMENT4U: 4, pickletools.TAKEN_FROM_ARGUMENT8U: 8}
    for op in pickletools.opcodes:
        width = 0 if op.arg is None else op.arg.n
        if width in widths or op.name == "FRAME":
            prefixed[ord(op.code)] = widths.get(width, 8)
            continue
        if op.name in ("STOP", "LONG_BINPUT", "PUT"):
            continue
        if width == pickletools.UP_TO_NEWLINE:
            width = "line2" if op.name in ("GLOBAL", "INST") else "line"
        by_width[width].append(re.escape(op.code.encode("latin-1")))
    tails = {"line": rb"[^\n]*\n", "line2": rb"[^\n]*\n[^\n]*\n"}
    order = [1, 0] + [w for w in by_width if w not in (0, 1)]  # the most frequent first
    parts = [b"[" + b"".join(by_width[w]) + b"]" + (tails[w] if w in tails else b"." * w)
             for w in order]
    parts.insert(2, rb"r..[\x00-\x3f]\x00")  # LONG_BINPUT below 4,194,304
    parts.insert(3, b"X(?:" + b"|".join(re.escape(bytes([n, 0, 0, 0])) + b".{%d}" % n
                                        for n in range(256)) + b")")
    parts.insert(4, b"\x8c(?:" + b"|".join(re.escape(bytes([n])) + b".{%d}" % n
                                           for n in range(256)) + b")")
    parts.append(rb"p[0-9]{1,6}\n")  # PUT
    return re.compile(b"(?:" + b"|".join(parts) + b")*+", re.DOTALL), prefixed


def _check_opcodes(data, pickles=1):
    """Refuses what would make the unpickler allocate memory the pickle does not hold, before it
    runs: a memo index of 2**31 (the C unpickler sizes and zero-fills its memo by the largest
    index: 32 GB for a 10-byte pickle), or a length (of bytes, a string, a number, a frame) past
    the end of the data (buffered reads and BINBYTES allocate what is declared before reading
    it). A regex walks the opcodes with safe arguments; only the other length-prefixed ones
    are stepped over here, in Python."""
    (safe_run, prefixed), pos, end, stops = _opcode_tables(), 0, len(data), 0
    while True:
        pos = safe_run.match(data, pos).end()
        if pos >= end:
            return  # cut short: the unpickler says so
        code = data[pos]
        if code == 0x2E:  # STOP
            stops, pos = stops + 1, pos + 1
            if stops == pickles:
                return
            continue
        if code in (0x72, 0x70):  # LONG_BINPUT, PUT not matched: a large or malformed index
            raise CheckpointError("the pickle asks for a memo of more than 4,194,304 entries: "
                                  "a corrupt or hostile file.")
        if code not in prefixed:
            return  # an opcode the unpickler refuses; nothing after it runs
        width = prefixed[code]
        length = int.from_bytes(data[pos + 1:pos + 1 + width], "little")
        pos += 1 + width
        if code == 0x8B and length >= 1 << 31:
            return  # LONG4's length is signed: the unpickler refuses a negative one
        if length > end - pos:  # the others' are unsigned (BINSTRING too, in the C unpickler)
            raise CheckpointError(f"the pickle declares {length:,} bytes where it holds "
                                  f"{end - pos:,}: a corrupt or hostile file.")
        if code != 0x95:  # a frame's length covers the opcodes that follow: walk them
            pos += length


def _may_nest_deeply(data):
    """Whether the pickles in ``data`` might nest containers deeper than :data:`MAX_NESTING`.
    Nesting that a hash recurses into only grows by a tuple opcode, so data with fewer bytes of
    those cannot (the real checkpoints: about 400 such bytes for 80 tensors)."""
    return sum(data.count(op) for op in _TUPLE_OPS) > MAX_NESTING


def _check_nesting(data, pickles=1):
    """Refuses pickles that nest containers deeper than :data:`MAX_NESTING`: walks their opcodes
    (a few ms), tracking the depth of each item on the unpickler's stack."""
    import pickletools

    stream, mark = io.BytesIO(data), pickletools.markobject
    for _ in range(pickles):
        stack, memo = [], {}
        for op, arg, _pos in pickletools.genops(stream):
            name, before = op.name, op.stack_before
            if name == "MARK":
                stack.append(None)
                continue
            if name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                if not stack or stack[-1] is None:
                    raise CheckpointError("a malformed pickle (it memoizes nothing).")
                memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
                continue
            if name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo.get(arg, 0))
                continue
            popped = []
            if mark in before:  # the items above the last mark, then those below it
                if None not in stack:
                    raise CheckpointError("a malformed pickle (no mark where one is needed).")
                top = len(stack) - 1 - stack[::-1].index(None)
                popped, stack[top:] = stack[top + 1:], []
                below = before.index(mark)
            else:
                below = len(before)
            if below:
                if len(stack) < below or None in stack[-below:]:
                    raise CheckpointError("a malformed pickle (its stack runs out).")
                popped, stack[-below:] = stack[-below:] + popped, []
            if name == "DUP":
                stack += popped * 2
                continue
            if not op.stack_after:
                continue
            if name in _IN_PLACE_OPS:  # the container stays; what goes into it nests one deeper
                depth = max(popped[0], 1 + max(popped[1:], default=0))
            else:
                depth = 1 + max(popped, default=-1)
            if depth > MAX_NESTING:
                raise CheckpointError(f"the pickle nests containers more than {MAX_NESTING:,} "
                                      "deep: a corrupt or hostile file.")
            stack.append(depth)


def _unpickle(stream, legacy):
    unpickler = _Unpickler(stream, legacy)
    return unpickler.load(), unpickler.storages


def _read_zip(file, max_bytes):
    with zipfile.ZipFile(file) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        pickles = [n for n in infos if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise CheckpointError("a zip file without exactly one data.pkl: not a PyTorch "
                                  "checkpoint.")
        prefix = pickles[0][: -len("data.pkl")]

        def entry(name, limit, what):
            info = infos[name]
            if info.flag_bits & 0x1:
                raise CheckpointError(f"{name} is encrypted.")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise CheckpointError(f"{name} is compressed with method {info.compress_type}, "
                                      "which this reader does not decompress (PyTorch stores "
                                      "entries uncompressed).")
            if limit is not None and info.file_size > limit:
                raise CheckpointError(f"{name} ({what}) is {info.file_size:,} bytes, more than "
                                      f"the {limit:,} allowed.")
            return info

        order = "little"
        if prefix + "byteorder" in infos:
            raw = archive.read(entry(prefix + "byteorder", 16, "the byte order"))
            order = raw.decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise CheckpointError(f"an unknown byte order {order!r:.20}.")
        data = archive.read(entry(pickles[0], MAX_PICKLE_BYTES, "the pickle"))
        _check_opcodes(data)
        if _may_nest_deeply(data):
            _check_nesting(data)
        obj, _ = _unpickle(io.BufferedReader(io.BytesIO(data)), legacy=False)
        tensors = _state_dict(obj)
        plan = _plan(tensors, max_bytes, zip_entries=True)

        def load(key, numel, dtype):
            name = f"{prefix}data/{key}"
            if name not in infos:
                raise CheckpointError(f"storage data/{key} is missing from the archive.")
            nbytes = numel * dtype.itemsize
            info = entry(name, None, "")
            if info.file_size != nbytes:  # checked before anything is decompressed
                raise CheckpointError(f"storage data/{key} holds {info.file_size:,} bytes, but "
                                      f"its tensors declare {numel:,} {dtype.name} elements "
                                      f"({nbytes:,} bytes): the file is corrupt.")
            buffer = bytearray(nbytes)
            view, done = memoryview(buffer), 0
            with archive.open(info) as stream:
                while done < nbytes:
                    got = stream.readinto(view[done:done + _CHUNK])
                    if not got:
                        raise CheckpointError(f"storage data/{key} is truncated.")
                    done += got
            return buffer

        return _materialise(tensors, plan, {key: load(key, s.numel, s.dtype)
                                            for key, s in plan.storages.items()}, order)


def _read_legacy(file, max_bytes):
    end, (order, obj, declared, keys) = _legacy_pickles(file)
    if type(keys) is not list or not all(type(k) is str for k in keys):
        raise CheckpointError("the list of storages is malformed.")
    if len(set(keys)) != len(keys) or set(keys) != set(declared):
        raise CheckpointError("the list of storages does not match the storages the tensors "
                              "use.")
    tensors = _state_dict(obj)
    plan = _plan(tensors, max_bytes, zip_entries=False)
    file.seek(end)
    left = os.fstat(file.fileno()).st_size - end
    storages = {}
    for key in keys:
        dtype = declared[key].dtype
        raw = file.read(8)
        if len(raw) != 8:
            raise CheckpointError(f"storage {key:.40} is truncated: the file is incomplete.")
        (count,) = struct.unpack(("<" if order == "little" else ">") + "q", raw)
        left -= 8
        if count != declared[key].numel:
            raise CheckpointError(f"storage {key:.40} holds {count:,} elements, but its tensors "
                                  f"declare {declared[key].numel:,}: the file is corrupt.")
        nbytes = count * dtype.itemsize
        if nbytes > left:
            raise CheckpointError(f"storage {key:.40} is truncated: it declares {nbytes:,} bytes, "
                                  f"the file has {left:,} left.")
        left -= nbytes
        if key not in plan.storages:  # a tensor outside the state dict: skipped, not read
            file.seek(nbytes, io.SEEK_CUR)
            continue
        buffer = bytearray(nbytes)
        if file.readinto(buffer) != nbytes:
            raise CheckpointError(f"storage {key:.40} is truncated: the file is incomplete.")
        storages[key] = buffer
    return _materialise(tensors, plan, storages, order)


def _legacy_pickles(file):
    """The legacy format's five pickles, parsed from a window of the file's start that grows
    (x8, up to :data:`MAX_PICKLE_BYTES`) until they fit: only that much is read and checked for
    nesting, not the storages after it. Returns where the pickles end, and what they say: the
    byte order, the object, its storages and the storage keys."""
    head, window, scanned = b"", 1 << 15, False
    while True:
        chunk = file.read(window - len(head))
        head += chunk
        at_end = len(head) < window
        if len(head) >= 262 and head[257:262] == b"ustar":
            raise CheckpointError("a tar-format checkpoint (PyTorch 0.1.x); load it once in an "
                                  "old PyTorch and save it again, or use a newer file.")
        if not scanned and _may_nest_deeply(head):  # walk the opcodes once, the whole window
            head += file.read(MAX_PICKLE_BYTES - len(head))
            window, at_end, scanned = MAX_PICKLE_BYTES, True, True
            _check_nesting(head, pickles=5)
        stream = io.BufferedReader(io.BytesIO(head))
        try:
            _check_opcodes(head, pickles=5)  # a string cut by the window: read more
            parsed = _parse_legacy_pickles(stream)
            return stream.tell(), parsed
        except (EOFError, pickle.UnpicklingError, CheckpointError) as error:
            if not (at_end or window >= MAX_PICKLE_BYTES):
                window = min(window * 8, MAX_PICKLE_BYTES)
                continue
            if len(head) >= MAX_PICKLE_BYTES and not isinstance(error, CheckpointError):
                raise CheckpointError(f"its pickles are longer than {MAX_PICKLE_BYTES:,} bytes "
                                      "(the tensors' names and shapes): a corrupt or hostile "
                                      "file.") from None
            raise


def _parse_legacy_pickles(stream):
    header = _PlainUnpickler(stream)
    if header.load() != LEGACY_MAGIC:
        raise CheckpointError("not a PyTorch checkpoint (no zip archive, no legacy magic number).")
    if header.load() != LEGACY_PROTOCOL:
        raise CheckpointError("an unknown legacy protocol version.")
    info = header.load()
    if not isinstance(info, dict) or type(info.get("little_endian", True)) is not bool:
        raise CheckpointError("malformed system information.")
    order = "little" if info.get("little_endian", True) else "big"
    obj, declared = _unpickle(stream, legacy=True)
    keys = _PlainUnpickler(stream).load()  # a new unpickler: one may have read ahead
    return order, obj, declared, keys


def _state_dict(obj):
    """The ``{name: _Tensor}`` inside what the pickle holds, or an error saying what it holds."""
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError(f"the checkpoint holds a {type(obj).__name__}, not a state dict of "
                              "tensors.")
    for name, value in obj.items():
        if type(name) is not str or not isinstance(value, _Tensor):
            raise CheckpointError(f"the checkpoint holds a dict with a {type(name).__name__} key "
                                  f"and a {type(value).__name__} value, not a state dict of "
                                  "tensors.")
    return obj


class _Plan:
    def __init__(self):
        self.storages = {}  # key -> the root _Storage to read
        self.users = collections.Counter()  # key -> how many tensors read it
        self.first_user = {}  # key -> the first tensor reading it (named in errors)
        self.shapes = {}  # tensor name -> (offset into the root, size, stride, numel)
        self.whole = set()  # the tensors that are their storage's whole buffer (no copy)


def _numbers(name, tensor):
    """A tensor's storage offset, sizes and strides, each checked to be a non-negative int."""
    offset, size, stride = tensor.offset, tensor.size, tensor.stride
    if (type(offset) is int and 0 <= offset <= _LARGEST and type(size) in (tuple, list)
            and type(stride) in (tuple, list) and len(size) == len(stride) <= MAX_DIMS
            and all(type(v) is int and 0 <= v <= _LARGEST for v in (*size, *stride))):
        return offset, tuple(size), tuple(stride)
    label = f"tensor {name!r:.80}"
    _count(offset, f"the storage offset of {label}")
    if type(size) not in (tuple, list) or type(stride) not in (tuple, list):
        raise CheckpointError(f"{label} has a malformed shape or strides.")
    if len(size) != len(stride) or len(size) > MAX_DIMS:
        raise CheckpointError(f"{label} has {len(size)} sizes and {len(stride)} strides (at most "
                              f"{MAX_DIMS}).")
    for n in size:
        _count(n, f"a size of {label}")
    for s in stride:
        _count(s, f"a stride of {label}")
    raise CheckpointError(f"{label} has malformed numbers.")  # not reached: one check fails


def _plan(tensors, max_bytes, zip_entries):
    """Checks every tensor's numbers against its storage's declared size and the memory cap,
    before anything is read; returns what to read and how to view it."""
    plan, extents = _Plan(), collections.Counter()
    for name, tensor in tensors.items():
        storage = tensor.storage
        offset, size, stride = _numbers(name, tensor)
        numel, shape_bytes = 1, storage.dtype.itemsize
        for n in size:
            numel *= n
            shape_bytes *= max(n, 1)
            if shape_bytes > _LARGEST:  # even an empty array cannot have such sizes
                raise CheckpointError(f"tensor {name!r:.80} has sizes {size}, too large for any "
                                      "array.")
        available, base = storage.numel, 0
        if storage.view is not None:
            base, available = storage.view
        if numel:
            extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
            if extent > available:
                raise CheckpointError(f"tensor {name!r:.80} of shape {size} reaches past the end of its "
                                      f"storage ({extent:,} > {available:,} elements): the "
                                      "file is corrupt.")
            key = storage.key
            extents[key] = max(extents[key], base + extent)
            plan.users[key] += 1
            plan.first_user.setdefault(key, name)
            plan.storages.setdefault(key, storage if storage.view is None else
                                     _Storage(key, storage.dtype, storage.numel, None))
        plan.shapes[name] = (base + offset, size, stride, numel)
    # memory: every storage read, plus every tensor that cannot be its storage's whole buffer
    total = 0
    for key, root in plan.storages.items():
        total += root.numel * root.dtype.itemsize
        if total > max_bytes:
            raise CheckpointError(_too_big(f"tensor {plan.first_user[key]!r:.80} (storage "
                                           f"{key:.40}, {root.numel:,} elements)", total,
                                           max_bytes))
    for name, (start, size, stride, numel) in plan.shapes.items():
        if not numel:
            continue
        root = plan.storages[tensors[name].storage.key]
        if (start == 0 and numel == root.numel and plan.users[root.key] == 1
                and _contiguous(size, stride)):
            plan.whole.add(name)
        else:
            total += numel * root.dtype.itemsize
            if total > max_bytes:
                raise CheckpointError(_too_big(f"tensor {name!r:.80} of shape {size}", total,
                                               max_bytes))
    if zip_entries:
        for key, root in plan.storages.items():
            if root.numel > extents[key]:
                raise CheckpointError(
                    f"storage data/{key} (of tensor {plan.first_user[key]!r:.80}) declares "
                    f"{root.numel:,} elements, but its tensors use only {extents[key]:,}: "
                    "refusing it (a corrupt or hostile file).")
    return plan


def _too_big(what, total, max_bytes):
    return (f"{what} brings the memory this checkpoint needs to {total:,} bytes, more than the "
            f"{max_bytes:,}-byte cap (read_state_dict(max_bytes=...) raises it for a file you "
            "trust): a corrupt or hostile file.")


def _contiguous(size, stride):
    expected = 1
    for n, s in zip(reversed(size), reversed(stride)):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def _materialise(tensors, plan, buffers, order):
    native = sys.byteorder == order
    arrays = {}
    for key, buffer in buffers.items():
        array = np.frombuffer(buffer, plan.storages[key].dtype)
        if not native:
            array.byteswap(inplace=True)
        arrays[key] = array
    result = {}
    for name, (start, size, stride, numel) in plan.shapes.items():
        storage = tensors[name].storage
        if not numel:
            result[name] = np.zeros(size, storage.dtype)
            continue
        array = arrays[storage.key]
        if name in plan.whole:
            result[name] = array.reshape(size)
        elif _contiguous(size, stride):
            result[name] = array[start:start + numel].reshape(size).copy()
        else:  # every element was checked to lie inside the storage (_plan)
            item = array.itemsize
            result[name] = np.lib.stride_tricks.as_strided(
                array[start:], shape=size, strides=[s * item for s in stride],
                writeable=False).copy()
    return result
