"""Training on several devices: one obvious way to get a ``tf.distribute`` strategy.

``strategy(kind)`` for kind in :data:`STRATEGIES`:

- ``"none"``: the default strategy (one device);
- ``"mirrored"``: ``tf.distribute.MirroredStrategy`` over this machine's GPUs (or the given
  devices), with its default all-reduce;
- ``"multiworker"``: ``tf.distribute.MultiWorkerMirroredStrategy``; every worker runs the same
  command with ``TF_CONFIG`` naming the cluster and its own index (see the README);
- ``"tpu"``: ``tf.distribute.TPUStrategy`` on the TPU the environment provides (Colab).

A strategy of each kind is made once per process and device set, then reused, and every
MirroredStrategy made here gets collective keys of its own. This works around a TensorFlow bug:
each new MirroredStrategy numbers its collective operations from the same keys, so the second one
made in a process (a notebook cell run twice, a second model in a script, another device set)
fails with "Shape mismatch in the collective instance 100"
(benchmarks/repro_collective_keys.py reproduces it without this package). TensorFlow offers no
public way to choose the keys: the private class attribute ``_collective_key_base``, which its
own tests set, is set here for the duration of the constructor.
"""

import itertools

import tensorflow as tf

from pix2pix_tf.config import STRATEGIES  # noqa: F401  (the one list; config cannot import TF)

_made = {}
_key_bases = itertools.count(1)
#: Collective group keys reserved per strategy (a strategy uses one group per device set).
KEY_BLOCK = 10_000


def _mirrored(devices):
    """A MirroredStrategy whose collective keys no other strategy in this process uses."""
    cls = tf.distribute.MirroredStrategy
    if not hasattr(cls, "_collective_key_base"):  # a TensorFlow that no longer has the bug's cause
        return cls(devices)
    cls._collective_key_base = next(_key_bases) * KEY_BLOCK
    try:
        return cls(devices)
    finally:
        cls._collective_key_base = 0


def strategy(kind="none", devices=None):
    """The ``tf.distribute`` strategy of ``kind`` (made once per process and device set)."""
    if kind not in STRATEGIES:
        raise ValueError(f"Unknown strategy {kind!r}; choose one of {', '.join(STRATEGIES)}.")
    key = (kind, tuple(devices) if devices else None)
    if key not in _made:
        if kind == "none":
            made = tf.distribute.get_strategy()
        elif kind == "mirrored":
            made = _mirrored(devices)
        elif kind == "multiworker":
            made = tf.distribute.MultiWorkerMirroredStrategy()
        else:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            made = tf.distribute.TPUStrategy(resolver)
        _made[key] = made
    return _made[key]
