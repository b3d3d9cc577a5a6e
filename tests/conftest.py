import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices, so tf.distribute strategies can be tested on one CPU. This must
# happen before TensorFlow initialises its devices, hence here, at import time.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)


@pytest.fixture
def pairs():
    """Four 16x16 RGB pairs whose target is a fixed, learnable function of the input."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
    y = -x[..., ::-1].copy()
    return x, y


def dataset(x, y, batch_size=2):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
