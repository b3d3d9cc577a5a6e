"""Hostile ``.pth`` files: the checkpoint reader is memory-safe, and fuzzed in both formats.

Files are made by hand here as PyTorch writes them (protocol-2 pickles whose tensors are
``torch._utils._rebuild_tensor_v2`` calls on persistent storage references; a zip archive with
``ARCHIVE/data.pkl`` and ``ARCHIVE/data/KEY``, or the legacy stream of five pickles and raw
storages). Every case must end in a state dict or a :class:`CheckpointError`, within a memory and
time bound: never a crash, a hang, another exception, or memory that was not the file's.
"""

import functools
import io
import json
import pickle
import pickletools
import struct
import subprocess
import sys
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from fuzzing import INTERESTING_INTS, fuzz_settings, memory_bound, mutate_bytes, mutated_bytes
from hypothesis import given
from hypothesis import strategies as st

from pix2pix_tf.tasks.translate import torch_checkpoint
from pix2pix_tf.tasks.translate.torch_checkpoint import LEGACY_MAGIC, CheckpointError, read_state_dict

MODULE = Path(torch_checkpoint.__file__)
FIXTURES = Path(__file__).parent / "fixtures" / "torch_unet"


# ---------------------------------------------------------------- writing checkpoints by hand
def p_int(value):
    return pickle.dumps(value, 2)[2:-1]  # BININT1 / BININT2 / BININT / LONG1, as torch's


def p_str(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def p_global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def p_tuple(*items):
    return b"(" + b"".join(items) + b"t"


def p_tensor(key, numel, offset, size, stride, storage="FloatStorage", legacy=False, view=None):
    """``_rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict())``."""
    pid = [p_str("storage"), p_global("torch", storage), p_str(key), p_str("cpu"), p_int(numel)]
    if legacy:
        pid.append(b"N" if view is None else p_tuple(p_str(view[0]), p_int(view[1]),
                                                     p_int(view[2])))
    return (p_global("torch._utils", "_rebuild_tensor_v2") + b"(" + p_tuple(*pid) + b"Q"
            + p_int(offset) + p_tuple(*map(p_int, size)) + p_tuple(*map(p_int, stride))
            + b"\x89" + p_global("collections", "OrderedDict") + b")RtR")


def p_state_dict(tensors):
    """A protocol-2 pickle of ``{name: tensor}``: ``tensors`` maps names to p_tensor bytes."""
    return (b"\x80\x02}(" + b"".join(p_str(name) + value for name, value in tensors.items())
            + b"u.")


def zip_checkpoint(data_pkl, storages, archive="archive", byteorder="little", compress=None):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(f"{archive}/data.pkl", data_pkl)
        if byteorder is not None:
            z.writestr(f"{archive}/byteorder", byteorder)
        for key, raw in storages.items():
            z.writestr(f"{archive}/data/{key}", raw, compress_type=compress)
        z.writestr(f"{archive}/version", "3\n")
    return buffer.getvalue()


def legacy_checkpoint(data_pkl, storages, little_endian=True):
    """``storages``: ``{key: (raw bytes, itemsize)}``, written in key order."""
    info = {"protocol_version": 1001, "little_endian": little_endian,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}
    head = pickle.dumps(LEGACY_MAGIC, 2) + pickle.dumps(1001, 2) + pickle.dumps(info, 2)
    order = "<" if little_endian else ">"
    body = b"".join(struct.pack(order + "q", len(raw) // item) + raw
                    for raw, item in storages.values())
    return head + data_pkl + pickle.dumps(list(storages), 2) + body


def raw_zip(entries):
    """A zip written byte by byte: ``entries`` of (name, method, stored bytes, crc, file_size),
    so that an entry may declare any size (zipfile would compress the real bytes)."""
    out, central = bytearray(), bytearray()
    for name, method, payload, crc, size in entries:
        offset, encoded = len(out), name.encode()
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc,
                           len(payload), size, len(encoded), 0) + encoded + payload
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21,
                               crc, len(payload), size, len(encoded), 0, 0, 0, 0, 0,
                               offset) + encoded
    start = len(out)
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                                 len(central), start, 0)
    return bytes(out)


def stored(name, data):
    return (name, zipfile.ZIP_STORED, data, zlib.crc32(data), len(data))


def deflated_zeros(size):
    """A raw deflate stream of ``size`` zero bytes (a multiple of 1 MiB) in size / 1011 bytes:
    after a full flush every identical MiB compresses to the same bytes."""
    chunk, compressor = bytes(1 << 20), zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    middle = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH) == middle
    last = compressor.flush()
    return first + middle * (size // len(chunk) - 1) + last


#: zlib.crc32 of 2 GiB of zero bytes (computed once: 1.4 s)
CRC_2GIB_ZEROS = 0x4DBDF21C

# -------------------------------------------------------------------- a small valid checkpoint
RNG = np.random.default_rng(0)
WEIGHT = RNG.standard_normal((2, 3, 2, 2)).astype(np.float32)
BIAS = RNG.standard_normal(2).astype(np.float32)
SHARED = RNG.standard_normal(8).astype(np.float32)
TRANSPOSED = RNG.standard_normal(6).astype(np.float32)
EXPECTED = {"conv.weight": WEIGHT, "conv.bias": BIAS,
            "bn.num_batches_tracked": np.array(7, np.int64),
            "shared.a": SHARED[:4].reshape(2, 2), "shared.b": SHARED[4:].reshape(2, 2),
            "transposed": TRANSPOSED.reshape(2, 3).T}


def base_tensors(legacy=False):
    kw = {"legacy": legacy}
    return {
        "conv.weight": p_tensor("0", 24, 0, (2, 3, 2, 2), (12, 4, 2, 1), **kw),
        "conv.bias": p_tensor("1", 2, 0, (2,), (1,), **kw),
        "bn.num_batches_tracked": p_tensor("2", 1, 0, (), (), "LongStorage", **kw),
        "shared.a": p_tensor("3", 8, 0, (2, 2), (2, 1), **kw),  # one storage, two tensors
        "shared.b": p_tensor("3", 8, 4, (2, 2), (2, 1), **kw),
        "transposed": p_tensor("4", 6, 0, (3, 2), (1, 3), **kw),  # not contiguous
    }


BASE_STORAGES = {"0": WEIGHT.tobytes(), "1": BIAS.tobytes(), "2": np.int64(7).tobytes(),
                 "3": SHARED.tobytes(), "4": TRANSPOSED.tobytes()}
BASE_PICKLE = p_state_dict(base_tensors())
BASE_ZIP = zip_checkpoint(BASE_PICKLE, BASE_STORAGES)
BASE_LEGACY_PICKLE = p_state_dict(base_tensors(legacy=True))
BASE_LEGACY = legacy_checkpoint(BASE_LEGACY_PICKLE, {k: (v, 8 if k == "2" else 4)
                                                     for k, v in BASE_STORAGES.items()})


def write(tmp_path, data, name="hostile.pth"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data", [BASE_ZIP, BASE_LEGACY], ids=["zip", "legacy"])
def test_the_hand_made_checkpoints_read(tmp_path, data):
    tensors = read_state_dict(write(tmp_path, data))
    assert list(tensors) == list(EXPECTED)
    for name, expected in EXPECTED.items():
        assert tensors[name].dtype == expected.dtype and np.array_equal(tensors[name], expected)
        assert tensors[name].flags.writeable
    tensors["shared.a"][0, 0] = 99.0  # tensors sharing a storage are copies: b is untouched
    assert np.array_equal(tensors["shared.b"], EXPECTED["shared.b"])


def test_ordered_dicts_with_metadata_and_wrapping_dicts_read(tmp_path):
    """What ``torch.save(net.state_dict())`` writes (an OrderedDict with ``_metadata`` set by
    BUILD), inside a training script's ``{"state_dict": ..., "epoch": 3}``."""
    items = b"".join(p_str(n) + t for n, t in base_tensors().items())
    metadata = b"}" + p_str("_metadata") + p_global("collections", "OrderedDict") + b")R" + b"sb"
    state = p_global("collections", "OrderedDict") + b")R(" + items + b"u" + metadata
    data = (b"\x80\x02}(" + p_str("epoch") + p_int(3) + p_str("state_dict") + state
            + p_str("optimizer") + b"}" + b"u.")
    tensors = read_state_dict(write(tmp_path, zip_checkpoint(data, BASE_STORAGES)))
    assert list(tensors) == list(EXPECTED)


# ---------------------------------------------------------------- the four files of issue 25
def one_tensor_zip(offset, size, stride, numel=4, storage=None):
    data = p_state_dict({"w": p_tensor("0", numel, offset, size, stride)})
    return zip_checkpoint(data, {"0": storage if storage is not None else bytes(4 * numel)})


def bomb_zip(numel, size, entry_bytes=2 ** 31):
    """A 2 MB zip whose storage entry decompresses to ``entry_bytes`` (2 GiB) of zeros."""
    data = p_state_dict({"w": p_tensor("0", numel, 0, size, (1,))})
    return raw_zip([stored("archive/data.pkl", data), stored("archive/byteorder", b"little"),
                    ("archive/data/0", zipfile.ZIP_DEFLATED, deflated_zeros(entry_bytes),
                     CRC_2GIB_ZEROS, entry_bytes)])


REPRO = {
    # a negative stride passed the extent check; as_strided read 8 TiB before the buffer
    "negative_stride": (lambda: one_tensor_zip(0, (2,), (-(1 << 40),)),
                        r"a stride of tensor 'w' is negative \(-1099511627776\)"),
    # a smaller negative stride copied the memory before the buffer into the weights
    "negative_stride_small": (lambda: one_tensor_zip(3, (4,), (-4,)),
                              r"a stride of tensor 'w' is negative \(-4\)"),
    # a 2 MB file whose storage decompresses to 2 GiB (the reader used 4.1 GB)
    "zip_bomb": (lambda: bomb_zip(2 ** 29, (2 ** 29,)),
                 r"tensor 'w' \(storage 0, 536,870,912 elements\) brings the memory this "
                 r"checkpoint needs to 2,147,483,648 bytes, more than the 1,073,741,824-byte cap"),
    # the same entry behind a tensor that declares 4 elements: its size is checked, not read
    "zip_bomb_small_tensor": (lambda: bomb_zip(4, (4,)),
                              r"storage data/0 holds 2,147,483,648 bytes, but its tensors "
                              r"declare 4 float32 elements \(16 bytes\)"),
    # zero strides over 16 bytes: 3.64 TiB
    "zero_strides": (lambda: one_tensor_zip(0, (100000, 100000, 100), (0, 0, 0)),
                     r"tensor 'w' of shape \(100000, 100000, 100\) brings the memory this "
                     r"checkpoint needs to 4,000,000,000,016 bytes"),
    # a negative storage offset read the storage's last elements
    "negative_offset": (lambda: one_tensor_zip(-2, (2,), (1,)),
                        r"the storage offset of tensor 'w' is negative \(-2\)"),
}

#: Reads one file in a fresh process that imports only NumPy and the reader's module (not
#: TensorFlow), with its address space capped at 1 GiB, and reports the error and the peak
#: resident memory before and after (VmHWM: ru_maxrss would carry over this process's).
PROBE = r"""
import importlib.util, json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
spec = importlib.util.spec_from_file_location("torch_checkpoint", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

before = peak_kib()
try:
    module.read_state_dict(sys.argv[2])
    outcome = "read"
except module.CheckpointError as error:
    outcome = "CheckpointError: " + str(error)
print(json.dumps({"outcome": outcome, "rss_kib": before, "peak_kib": peak_kib()}))
"""


def probe(path):
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", PROBE, str(MODULE), str(path)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    return json.loads(done.stdout)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
@pytest.mark.parametrize("case", list(REPRO))
def test_the_issue_files_are_checkpoint_errors_in_bounded_memory(tmp_path, case):
    make, message = REPRO[case]
    path = write(tmp_path, make(), f"{case}.pth")
    result = probe(path)
    assert result["outcome"].startswith("CheckpointError: ") and str(path) in result["outcome"]
    assert __import__("re").search(message, result["outcome"]), result["outcome"]
    grown = result["peak_kib"] - result["rss_kib"]
    assert grown < 32 * 1024, f"{case}: the reader grew by {grown} KiB"  # the 2 MB file: ~6 MB
    print(f"{case}: {path.stat().st_size:,} bytes, +{grown:,} KiB peak: {result['outcome']}")


def test_the_issue_files_sizes():
    assert len(REPRO["negative_stride"][0]()) < 1000
    assert 2_000_000 < len(REPRO["zip_bomb"][0]()) < 2_200_000


# ---------------------------------------------------------------- more hand-made hostile files
def refused(tmp_path, data, match):
    with pytest.raises(CheckpointError, match=match) as error:
        read_state_dict(write(tmp_path, data))
    assert "hostile.pth" in str(error.value)


def test_every_number_is_checked(tmp_path):
    cases = [
        (one_tensor_zip(0, (5,), (1,)), r"reaches past the end of its storage \(5 > 4"),
        (one_tensor_zip(1, (2, 2), (2, 1)), r"reaches past the end of its storage \(5 > 4"),
        (one_tensor_zip(0, (2, 2), (1,)), "has 2 sizes and 1 strides"),
        (one_tensor_zip(0, (1,) * 40, (1,) * 40), "40 sizes and 40 strides"),
        (one_tensor_zip(0, (-1,), (1,)), r"a size of tensor .w. is negative \(-1\)"),
        (one_tensor_zip(0, (2 ** 70,), (0,)), "far more than any file holds"),
        (one_tensor_zip(0, (0, 2 ** 61), (1, 1)), "too large for any array"),
        (one_tensor_zip(0, (2,), (1,), numel=8), "declares 8 elements, but its tensors use "
                                                 "only 2"),
        (zip_checkpoint(p_state_dict({"w": p_tensor("0", 4, 0, (4,), (1,))}), {"0": bytes(12)}),
         r"holds 12 bytes, but its tensors declare 4 float32 elements \(16 bytes\)"),
        (zip_checkpoint(p_state_dict({"w": p_tensor("0", 4, 0, (4,), (1,))}), {}),
         "storage data/0 is missing"),
        (zip_checkpoint(p_state_dict({"w": p_tensor("0", 4, 0, (4,), (1,)),
                                      "v": p_tensor("0", 4, 0, (4,), (1,), "IntStorage")}),
                        {"0": bytes(16)}), "declared twice, differently"),
    ]
    for data, match in cases:
        refused(tmp_path, data, match)


def test_empty_and_scalar_tensors_read(tmp_path):
    data = p_state_dict({"empty": p_tensor("0", 0, 0, (0, 3), (3, 1)),
                         "scalar": p_tensor("1", 1, 0, (), ())})
    tensors = read_state_dict(write(tmp_path, zip_checkpoint(data, {"0": b"", "1": bytes(4)})))
    assert tensors["empty"].shape == (0, 3) and tensors["scalar"].shape == ()


def test_a_storage_entry_must_be_stored_or_deflated_and_not_encrypted(tmp_path):
    data = p_state_dict({"w": p_tensor("0", 4, 0, (4,), (1,))})
    tensors = read_state_dict(write(tmp_path, zip_checkpoint(data, {"0": bytes(16)},
                                                            compress=zipfile.ZIP_DEFLATED)))
    assert tensors["w"].shape == (4,)
    for method in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):  # unbounded in zipfile's reader
        refused(tmp_path, zip_checkpoint(data, {"0": bytes(16)}, compress=method),
                f"compressed with method {method}")
    encrypted = bytearray(zip_checkpoint(data, {"0": bytes(16)}))
    central = encrypted.index(b"PK\x01\x02")
    encrypted[central + 8] |= 1  # the central directory's flag bits: encrypted
    refused(tmp_path, bytes(encrypted), "encrypted")


def test_the_pickle_is_bounded(tmp_path):
    deep = b"\x80\x02}(" + p_str("w") + b")" + b"\x85" * 300_000 + b"u."  # crashed Python
    refused(tmp_path, zip_checkpoint(deep, {}), "nests containers more than 10,000 deep")
    deep_key = b"\x80\x02}(" + b")" + b"\x85" * 300_000 + b"Nu."
    refused(tmp_path, legacy_checkpoint(deep_key, {}), "nests containers more than 10,000 deep")
    huge = b"\x80\x02" + b"N0" * (3 << 20) + b"N."
    refused(tmp_path, zip_checkpoint(huge, {}), r"data.pkl \(the pickle\) is 6,291,460 bytes")
    refused(tmp_path, legacy_checkpoint(huge, {}), "pickles are longer than 4,194,304 bytes")
    # the C unpickler allocates what BINBYTES8 / BYTEARRAY8 declare before reading it
    for code in (b"\x8e", b"\x96", b"B", b"T"):  # BINSTRING's "signed" length too
        width = "<I" if code in b"BT" else "<Q"
        refused(tmp_path, zip_checkpoint(b"\x80\x04" + code + struct.pack(width, 2 ** 31)
                                         + b"x.", {}), "declares 2,147,483,648 bytes where it")
    # ... and sizes (and zero-fills) its memo by the largest index: 10 bytes asked for 32 GB
    for memo in (b"r\xff\xff\xff\x7f", b"p2147483647\n", b"r\x00\x00\x40\x00"):
        refused(tmp_path, zip_checkpoint(b"\x80\x02]" + memo + b".", {}),
                "a memo of more than 4,194,304 entries")
        refused(tmp_path, legacy_checkpoint(b"\x80\x02]" + memo + b".", {}),
                "a memo of more than 4,194,304 entries")
    # LONG4 declaring 1.4 GB in a 900-byte pickle (a buffered read would allocate it)
    refused(tmp_path, zip_checkpoint(b"\x8b\x02}(X" + BASE_PICKLE[5:], {}),
            "declares 1,479,048,450 bytes where it holds")
    fine = p_state_dict({"w" * 300: p_tensor("0", 4, 0, (4,), (1,))})  # a long name: no memo
    assert list(read_state_dict(write(tmp_path, zip_checkpoint(fine, {"0": bytes(16)})))) == [
        "w" * 300]


def test_pickled_objects_cannot_be_changed_or_called(tmp_path):
    tensor = p_tensor("0", 4, 0, (4,), (1,))
    cases = [  # BUILD on a storage class, on a tensor; REDUCE on a storage class
        (b"\x80\x02}(" + p_str("w") + p_global("torch", "FloatStorage") + b"}b" + b"u.",
         "set the state"),
        (b"\x80\x02}(" + p_str("w") + tensor + b"}b" + b"u.", "set the state"),
        (b"\x80\x02}(" + p_str("w") + p_global("torch", "FloatStorage") + b")R" + b"u.",
         "not callable"),
        (b"\x80\x02}(" + p_str("w") + p_global("torch._utils", "_rebuild_tensor_v2")
         + p_tuple(p_int(1), p_int(0), p_tuple(), p_tuple()) + b"R" + b"u.",
         "a tensor whose storage is a int"),
        (b"\x80\x02}(" + p_str("w") + p_tuple(p_str("storage")) + b"Q" + b"u.",
         "unexpected persistent reference"),
        (b"\x80\x02}(" + p_int(3) + tensor + b"u.", "a dict with a int key"),
        (b"\x80\x02]q\x00h\x00a.", "holds a list, not a state dict"),
        (b"\x80\x02" + tensor + b"Na.", "AttributeError"),  # APPEND to a tensor
        # BUILD setting the rebuild function's __defaults__ (it would last for later reads)
        (b"\x80\x02" + p_global("torch._utils", "_rebuild_tensor_v2") + b"N}"
         + p_str("__defaults__") + p_tuple(b"N") + b"s\x86b.", "set the state"),
        (b"\x80\x02" + p_global("collections", "OrderedDict") + b"}X\x01\x00\x00\x00xNsb.",
         "TypeError"),
    ]
    for data, match in cases:
        refused(tmp_path, zip_checkpoint(data, {"0": bytes(16)}), match)


def test_legacy_counts_are_checked_against_the_file(tmp_path):
    data = p_state_dict({"w": p_tensor("0", 4, 0, (4,), (1,), legacy=True)})
    good = legacy_checkpoint(data, {"0": (bytes(16), 4)})
    assert read_state_dict(write(tmp_path, good))["w"].shape == (4,)
    count = good.index(struct.pack("<q", 4) + bytes(16))
    for value, match in [(2 ** 62, "holds 4,611,686,018,427,387,904 elements, but its tensors "
                                   "declare 4"), (-1, "holds -1 elements")]:
        bad = good[:count] + struct.pack("<q", value) + good[count + 8:]
        refused(tmp_path, bad, match)
    huge = legacy_checkpoint(p_state_dict({"w": p_tensor("0", 2 ** 27, 0, (2 ** 27,), (1,),
                                                         legacy=True)}), {"0": (bytes(16), 4)})
    huge = huge.replace(struct.pack("<q", 4), struct.pack("<q", 2 ** 27))
    refused(tmp_path, huge, "storage 0 is truncated: it declares 536,870,912 bytes, the file "
                            "has 16 left")
    unlisted = legacy_checkpoint(data, {})
    refused(tmp_path, unlisted, "does not match the storages the tensors use")


def test_legacy_views_are_checked(tmp_path):
    data = p_state_dict({"v": p_tensor("0", 10, 1, (3,), (1,), legacy=True, view=("9", 5, 4))})
    root = np.arange(10, dtype=np.float32)
    tensors = read_state_dict(write(tmp_path, legacy_checkpoint(data, {"0": (root.tobytes(), 4)})))
    assert tensors["v"].tolist() == [6.0, 7.0, 8.0]
    outside = p_state_dict({"v": p_tensor("0", 10, 0, (3,), (1,), legacy=True, view=("9", 8, 4))})
    refused(tmp_path, legacy_checkpoint(outside, {"0": (root.tobytes(), 4)}),
            r"view ends past its end \(12 > 10 elements\)")
    past = p_state_dict({"v": p_tensor("0", 10, 2, (3,), (1,), legacy=True, view=("9", 5, 4))})
    refused(tmp_path, legacy_checkpoint(past, {"0": (root.tobytes(), 4)}),
            r"reaches past the end of its storage \(5 > 4 elements\)")


def test_big_endian_files_read(tmp_path):
    data = p_state_dict({"w": p_tensor("0", 4, 0, (2, 2), (2, 1), legacy=True)})
    values = np.arange(4, dtype=">f4")
    tensors = read_state_dict(write(tmp_path, legacy_checkpoint(data, {"0": (values.tobytes(), 4)},
                                                              little_endian=False)))
    assert tensors["w"].dtype == np.float32 and tensors["w"].ravel().tolist() == [0, 1, 2, 3]
    zipped = zip_checkpoint(p_state_dict({"w": p_tensor("0", 4, 0, (4,), (1,))}),
                            {"0": values.tobytes()}, byteorder="big")
    assert read_state_dict(write(tmp_path, zipped))["w"].tolist() == [0, 1, 2, 3]
    refused(tmp_path, zip_checkpoint(p_state_dict({}), {}, byteorder="middle"),
            "unknown byte order 'middle'")


def test_the_memory_cap_can_be_raised_for_a_trusted_file(tmp_path):
    path = write(tmp_path, one_tensor_zip(0, (1000, 4), (0, 1)))  # 16 KB copied out of 16 B
    with pytest.raises(CheckpointError, match="16,016 bytes, more than the 10,000-byte cap"):
        read_state_dict(path, max_bytes=10_000)
    assert read_state_dict(path)["w"].shape == (1000, 4)


# ------------------------------------------------------------------------------------- fuzzing
#: Fuzz cases read with this cap; each must stay within FUZZ_MEMORY.
FUZZ_CAP = 4 << 20
FUZZ_MEMORY = 3 * FUZZ_CAP + (16 << 20)


def outcome(path):
    """Reads ``path``: a state dict or a CheckpointError, in bounded memory; anything else fails
    the case (Hypothesis reports it with the smallest input it finds)."""
    with memory_bound(FUZZ_MEMORY):
        try:
            tensors = read_state_dict(path, max_bytes=FUZZ_CAP)
        except CheckpointError as error:
            assert str(path) in str(error)
            return "error"
    assert all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in tensors.items())
    assert sum(v.nbytes for v in tensors.values()) <= FUZZ_CAP
    return "read"


@functools.lru_cache(maxsize=8)
def pickle_ops(data):
    """``[(name, bytes)]`` of each opcode of a pickle, its argument included (one piece if it
    no longer parses)."""
    try:
        ops = list(pickletools.genops(data))
    except ValueError:
        return (("?", data),)
    ends = [pos for _, _, pos in ops[1:]] + [len(data)]
    return tuple((op.name, data[pos:end]) for (op, _, pos), end in zip(ops, ends))


_INT_OPS = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG"}
_OPCODES = tuple(op.code.encode("latin-1") for op in pickletools.opcodes)


_PICKLE_EDITS = ("number", "number", "number", "opcode", "drop", "repeat", "move", "string")
_NAMES = ("storage", "0", "1", "3", "9", "", "cpu", "w" * 300, "torch\nFloatStorage",
          "state_dict", "model")
_NUMBERS = st.one_of(st.sampled_from(INTERESTING_INTS), st.integers(-300, 300))


def mutate_pickle(draw, data):
    """A pickle with opcode-level edits: a number replaced (by 0, -1, 2**31, 2**63, ...), an
    opcode replaced, dropped, repeated or moved, a string or global renamed; then maybe bytes."""
    ops = list(pickle_ops(data))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(ops) - 1))
        kind = draw(st.sampled_from(_PICKLE_EDITS))
        numbers = [j for j, (name, _) in enumerate(ops) if name in _INT_OPS]
        strings = [j for j, (name, _) in enumerate(ops) if name == "BINUNICODE"]
        if kind == "number" and numbers:
            j = draw(st.sampled_from(tuple(numbers)))
            value = draw(_NUMBERS)
            ops[j] = ("BININT", p_int(value))
        elif kind == "opcode":
            ops[i] = ("?", draw(st.sampled_from(_OPCODES)) + ops[i][1][1:])
        elif kind == "drop":
            del ops[i]
        elif kind == "repeat":
            ops[i:i] = [ops[i]] * draw(st.integers(1, 3))
        elif kind == "move":
            ops.insert(draw(st.integers(0, len(ops) - 1)), ops.pop(i))
        elif kind == "string" and strings:
            ops[draw(st.sampled_from(tuple(strings)))] = ("BINUNICODE",
                                                          p_str(draw(st.sampled_from(_NAMES))))
        if not ops:
            break
    result = b"".join(raw for _, raw in ops)
    if draw(st.booleans()):
        result = mutate_bytes(draw, result, max_mutations=2)
    return result


_ZIP_EDITS = ("pickle", "pickle", "pickle", "swap", "resize", "drop", "rename", "recompress",
              "byteorder", "bytes")


@st.composite
def mutated_zip(draw, data_pkl, storages):
    """A zip checkpoint with its pickle mutated, entries swapped, resized, dropped, renamed or
    recompressed, the byte order changed; then maybe the archive's bytes themselves."""
    entries = [["archive/data.pkl", data_pkl, zipfile.ZIP_STORED],
               ["archive/byteorder", b"little", zipfile.ZIP_STORED],
               *[[f"archive/data/{k}", v, zipfile.ZIP_STORED] for k, v in storages.items()]]
    for _ in range(draw(st.integers(1, 3))):
        entry = entries[draw(st.integers(0, len(entries) - 1))]
        kind = draw(st.sampled_from(_ZIP_EDITS))
        if kind == "pickle":
            entries[0][1] = mutate_pickle(draw, entries[0][1])
        elif kind == "swap":
            other = entries[draw(st.integers(0, len(entries) - 1))]
            entry[1], other[1] = other[1], entry[1]
        elif kind == "resize":
            size = draw(st.sampled_from((0, 1, 3, 4, 8, 15, 17, 96, 4096)))
            entry[1] = (entry[1] * (size // max(len(entry[1]), 1) + 1))[:size] or bytes(size)
        elif kind == "drop" and len(entries) > 1:
            entries.remove(entry)
        elif kind == "rename":
            entry[0] = draw(st.sampled_from(("archive/data/0", "archive/data/7", "data.pkl",
                                             "x/data.pkl", "archive/data/../data.pkl")))
        elif kind == "recompress":
            entry[2] = draw(st.sampled_from((zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                             zipfile.ZIP_LZMA)))
        elif kind == "byteorder":
            entries[1][1] = draw(st.sampled_from((b"big", b"", b"little\n", b"\xff" * 20)))
        else:
            entry[1] = mutate_bytes(draw, entry[1], max_mutations=2)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a duplicate name, on purpose
        for name, raw, method in entries:
            z.writestr(name, raw, compress_type=method)
    data = buffer.getvalue()
    if draw(st.integers(0, 4)) == 0:
        data = mutate_bytes(draw, data, max_mutations=2)
    return data


@st.composite
def mutated_legacy(draw, data_pkl, storages):
    """A legacy checkpoint with its main pickle mutated (opcodes and numbers), then maybe bytes
    anywhere: the header pickles, the storages' counts and data, or a cut."""
    pickled = mutate_pickle(draw, data_pkl) if draw(st.integers(0, 3)) else data_pkl
    data = legacy_checkpoint(pickled, storages)
    if pickled == data_pkl or draw(st.booleans()):
        data = mutate_bytes(draw, data, max_mutations=3)
    return data


LEGACY_STORAGES = {k: (v, 8 if k == "2" else 4) for k, v in BASE_STORAGES.items()}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "case.pth"


@fuzz_settings(800)
@given(data=mutated_zip(BASE_PICKLE, BASE_STORAGES))
def test_fuzz_zip_checkpoints(scratch, data):
    scratch.write_bytes(data)
    outcome(scratch)


@fuzz_settings(800)
@given(data=mutated_legacy(BASE_LEGACY_PICKLE, LEGACY_STORAGES))
def test_fuzz_legacy_checkpoints(scratch, data):
    scratch.write_bytes(data)
    outcome(scratch)


REAL_ZIP = (FIXTURES / "unet_zip.pth").read_bytes()
REAL_LEGACY = (FIXTURES / "unet_legacy.pth").read_bytes()
REAL_PICKLE_END = 11192  # the legacy fixture's five pickles end here; its storages follow


@fuzz_settings(200)
@given(data=st.one_of(mutated_bytes(REAL_ZIP, max_mutations=3),
                      mutated_bytes(REAL_LEGACY, 0, REAL_PICKLE_END),
                      mutated_bytes(REAL_LEGACY, REAL_PICKLE_END)))
def test_fuzz_the_real_fixtures(scratch, data):
    """Byte edits of the PyTorch-written files: their pickles, the zip structure, the legacy
    storages' counts."""
    scratch.write_bytes(data)
    outcome(scratch)


def test_the_real_fixture_pickle_ends_where_the_fuzzer_expects():
    stream = io.BytesIO(REAL_LEGACY)
    for _ in range(5):
        list(pickletools.genops(stream))
    assert stream.tell() == REAL_PICKLE_END
