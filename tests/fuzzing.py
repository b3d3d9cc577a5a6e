"""Shared pieces of the fuzz tests (Hypothesis): settings, byte mutations, a memory bound.

The suite runs a few thousand cases in all, derandomized (the same cases every run, so CI is
reproducible). A longer campaign with fresh random cases runs N per fuzz test:

    PIX2PIX_FUZZ_EXAMPLES=100000 python -m pytest -q -k fuzz tests/test_hostile_checkpoints.py \
        tests/test_hostile_files.py

Hypothesis prints a failing case (and a ``@reproduce_failure`` line to replay it).
"""

import os
import struct
import tracemalloc
from contextlib import contextmanager

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: PIX2PIX_FUZZ_EXAMPLES=N: a campaign of N random cases per fuzz test instead of the suite's.
CAMPAIGN = int(os.environ.get("PIX2PIX_FUZZ_EXAMPLES") or 0)
#: Per case: far above any real case (milliseconds), so only a hang fails it.
DEADLINE_MS = 5000


def fuzz_settings(examples):
    """``examples`` derandomized cases (the suite), or the campaign's random ones."""
    return settings(max_examples=CAMPAIGN or examples, derandomize=not CAMPAIGN, database=None,
                    deadline=DEADLINE_MS, suppress_health_check=list(HealthCheck),
                    print_blob=True)


#: Numbers that break parsers: signs, 8/16/32/64-bit edges, huge.
INTERESTING_INTS = (0, 1, -1, -2, 2, 3, 7, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF,
                    0x80000000, 0xFFFFFFFF, -0x80000000, 2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64,
                    -(2 ** 63), 10 ** 30, 100_000)


_BYTE_EDITS = ("flip", "set", "delete", "insert", "repeat", "number", "truncate")
_WIDTHS = ((4, "<q"), (8, "<q"), (4, ">q"), (8, ">q"))


def mutate_bytes(draw, data, start=0, end=None, max_mutations=4):
    """``data`` with 1..max_mutations random edits inside ``[start, end)``: bytes flipped, set,
    deleted, inserted, repeated, a 4- or 8-byte number replaced, or the data cut short.
    ``draw`` is a Hypothesis draw function (from ``st.composite`` or ``st.data()``)."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, max_mutations))):
        stop = min(len(data), len(data) if end is None else end)
        if stop <= start:
            break
        kind = draw(st.sampled_from(_BYTE_EDITS))
        pos = draw(st.integers(start, stop - 1))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[pos] = draw(st.sampled_from((0, 1, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255)))))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 16))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "repeat":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 64))] * draw(st.integers(1, 8))
        elif kind == "number":
            value = draw(st.sampled_from(INTERESTING_INTS))
            width, fmt = draw(st.sampled_from(_WIDTHS))
            packed = struct.pack(fmt, value % 2 ** 64 - (value % 2 ** 64 >= 2 ** 63) * 2 ** 64)
            packed = packed[:width] if fmt[0] == "<" else packed[-width:]
            data[pos:pos + width] = packed
        else:
            del data[pos:]
    return bytes(data)


@st.composite
def mutated_bytes(draw, data, start=0, end=None, max_mutations=4):
    """A strategy: :func:`mutate_bytes` of ``data``."""
    return mutate_bytes(draw, data, start, end, max_mutations)


@contextmanager
def memory_bound(limit_bytes):
    """Fails if what runs inside allocates more than ``limit_bytes`` at its peak (Python and
    NumPy allocations, as tracemalloc sees them)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        yield
    finally:
        peak = tracemalloc.get_traced_memory()[1] - base
        if started:
            tracemalloc.stop()
    assert peak <= limit_bytes, f"peak allocation {peak:,} bytes > {limit_bytes:,}"


def _status_bytes(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(field))


@contextmanager
def peak_rss_bound(limit_bytes):
    """Fails if the process's resident memory peaks more than ``limit_bytes`` above where it
    was (native allocations too: TensorFlow's, Pillow's). Linux: the peak (VmHWM) is reset
    through /proc/self/clear_refs; where that is not allowed, nothing is checked."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        start = _status_bytes("VmHWM:")
    except OSError:
        start = None
    yield
    if start is not None:
        grown = _status_bytes("VmHWM:") - start
        assert grown <= limit_bytes, f"resident memory peaked {grown:,} bytes higher"
