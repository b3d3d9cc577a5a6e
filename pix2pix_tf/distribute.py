"""Training on several devices: one obvious way to get a ``tf.distribute`` strategy.

``strategy(kind)`` for kind in :data:`STRATEGIES`:

- ``"none"``: the default strategy (one device);
- ``"mirrored"``: ``tf.distribute.MirroredStrategy`` over this machine's GPUs (or the given
  devices), with its default all-reduce;
- ``"multiworker"``: ``tf.distribute.MultiWorkerMirroredStrategy``; every worker runs the same
  command with ``TF_CONFIG`` naming the cluster and its own index (see the README);
- ``"tpu"``: ``tf.distribute.TPUStrategy`` on the TPU the environment provides (Colab).

A strategy of each kind is made once per process and device set, then reused. This is the
workaround for a TensorFlow bug: every new MirroredStrategy numbers its collective operations
from the same keys, so the second one made in a process (a notebook cell run twice, a second
model in a script) fails with "Shape mismatch in the collective instance 100"
(benchmarks/repro_collective_keys.py reproduces it without this package).
"""

import tensorflow as tf

from pix2pix_tf.config import STRATEGIES  # noqa: F401  (the one list; config cannot import TF)

_made = {}


def strategy(kind="none", devices=None):
    """The ``tf.distribute`` strategy of ``kind`` (made once per process and device set)."""
    if kind not in STRATEGIES:
        raise ValueError(f"Unknown strategy {kind!r}; choose one of {', '.join(STRATEGIES)}.")
    key = (kind, tuple(devices) if devices else None)
    if key not in _made:
        if kind == "none":
            made = tf.distribute.get_strategy()
        elif kind == "mirrored":
            made = tf.distribute.MirroredStrategy(devices)
        elif kind == "multiworker":
            made = tf.distribute.MultiWorkerMirroredStrategy()
        else:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            made = tf.distribute.TPUStrategy(resolver)
        _made[key] = made
    return _made[key]
