"""Which precision a run computes in: ``--mixed-precision auto`` (the default) picks by the
hardware, so that the default never takes a slower path.

- ``mixed_bfloat16`` only where bfloat16 is native: a TPU, an NVIDIA GPU of compute capability
  8.0 or more (Ampere and later), or a CPU with AVX512-BF16 or AMX instructions.
- ``mixed_float16`` on NVIDIA GPUs of compute capability 7.x (Volta, Turing: float16 tensor
  cores), with loss scaling.
- ``float32`` (the paper's) everywhere else.

Elsewhere 16-bit arithmetic is emulated. On a 2-core Xeon without bfloat16 instructions,
``mixed_bfloat16`` ran 1.63-1.69 s a step against 0.73-0.79 s in float32, 2.2x slower, and
nothing said so. An explicit choice that is emulated on this hardware therefore trains as asked,
but says so once (:func:`resolve`).

The run records what ``auto`` became in ``config.notes["precision"]``. ``None``, in configs
written before ``auto`` existed, means float32.
"""

import dataclasses
from pathlib import Path

import tensorflow as tf

#: The choices of ``--mixed-precision``.
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
#: CPU flags (/proc/cpuinfo) that make bfloat16 native.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclasses.dataclass(frozen=True)
class Hardware:
    """What the choice depends on: the CPU's bfloat16 support, the GPUs' compute capabilities
    (``(major, minor)`` each) and whether a TPU is attached."""
    cpu_bf16: bool
    gpus: tuple = ()
    tpu: bool = False


def detect():
    """This machine's :class:`Hardware`."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: no known bfloat16 CPU flags to read
        flags = []
    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability:
            gpus.append(tuple(capability))
    tpu = bool(tf.config.list_logical_devices("TPU"))
    return Hardware(any(f in flags for f in CPU_BF16_FLAGS), tuple(gpus), tpu)


def native(hardware):
    """The fastest policy ``hardware`` runs natively (see the module docstring)."""
    if hardware.tpu or (hardware.gpus and min(hardware.gpus) >= (8, 0)):
        return "mixed_bfloat16"
    if hardware.gpus and min(hardware.gpus) >= (7, 0):
        return "mixed_float16"
    if not hardware.gpus and hardware.cpu_bf16:
        return "mixed_bfloat16"
    return "float32"


def emulated(policy, hardware):
    """Why ``policy`` is emulated, hence slower than float32, on ``hardware``; None when it
    is not."""
    if policy == "mixed_bfloat16" and not (hardware.tpu or hardware.gpus or hardware.cpu_bf16):
        return ("this CPU has no bfloat16 instructions (AVX512-BF16 or AMX), so bfloat16 is "
                "emulated: 2.2x slower than float32 on a 2-core Xeon")
    if policy == "mixed_float16" and not hardware.gpus:
        return "CPUs compute float16 by conversion, slower than float32"
    if policy == "mixed_bfloat16" and hardware.gpus and min(hardware.gpus) < (8, 0):
        return "GPUs before compute capability 8.0 emulate bfloat16"
    return None


def policy(choice, hardware=None):
    """The Keras policy that ``--mixed-precision choice`` runs (None: float32, as configs written
    before 'auto' say), silently."""
    if choice in (None, "float32"):
        return "float32"
    return native(hardware or detect()) if choice == "auto" else choice


def resolve(choice, hardware=None):
    """:func:`policy`, with one printed line where an explicit choice is emulated."""
    chosen = policy(choice, hardware)
    if choice in (None, "float32", "auto"):
        return chosen
    reason = emulated(choice, hardware or detect())
    if reason:
        print(f"note: --mixed-precision {choice} as asked, but {reason}; "
              "--mixed-precision auto picks the fastest native one.")
    return choice
