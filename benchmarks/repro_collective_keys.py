"""Minimal reproduction: a second MirroredStrategy in one process breaks CollectiveAllReduce.

No pix2pix code and no dropout: two plain Keras models, each trained under its own
``tf.distribute.MirroredStrategy`` on two logical CPUs. The second fit fails with

    Collective ops is aborted by: Shape mismatch in the collective instance 100. ... expected
    shape [73] but another member in the group expected shape [49].

49 and 73 are the two models' parameter counts. Root cause (TensorFlow 2.21,
tensorflow/python/distribute/mirrored_strategy.py): every MirroredStrategy makes
``CollectiveKeys(group_key_start=1 + _collective_key_base)`` with ``_collective_key_base = 0``
("only set this in tests"), so every strategy in a process numbers its collectives group 1,
instance 100, 101, ...; the runtime keeps the parameters of the first strategy's instance 100,
and the second strategy's differently shaped all-reduce under the same keys is refused. It looked
like a dropout problem in this project only because the failing test was the second one to build
a strategy. pix2pix_tf.distribute.strategy() works around it by giving every MirroredStrategy it
makes its own collective key range (and reusing one per device set).

    python benchmarks/repro_collective_keys.py           # fails on the second model (TF's bug)
    python benchmarks/repro_collective_keys.py --reuse   # pix2pix_tf's workaround: passes
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

DEVICES = ["/cpu:0", "/cpu:1"]


def train_one(units, strategy):
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units),
                                  keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
    data = tf.data.Dataset.from_tensor_slices(
        (np.ones((8, 4), "float32"), np.ones((8, 1), "float32"))).batch(4)
    model.fit(data, epochs=1, verbose=0)
    print(f"model with {model.count_params()} parameters: trained")


def main():
    if "--reuse" in sys.argv:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
        from pix2pix_tf.distribute import strategy

        devices = iter([DEVICES, None])  # two strategies: the given devices, then the default
        make = lambda: strategy("mirrored", next(devices))  # noqa: E731
    else:
        make = lambda: tf.distribute.MirroredStrategy(DEVICES)  # noqa: E731
    try:
        train_one(8, make())
        train_one(12, make())
    except tf.errors.InvalidArgumentError as error:
        print("second model failed:", next(line for line in str(error).splitlines()
                                           if "mismatch" in line))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
