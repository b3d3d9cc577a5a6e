"""Data-pipeline throughput beside the training step rate, on this machine.

Prints images/s of ``load_paired_dataset`` (decode, resize to 286 bicubic, the same random 256
crop and mirror for both images, batch 1) over the bundled demo data, next to:

- a baseline measured in the same run: the TF tutorial's style of pipeline (one file at a time,
  ``map`` without parallelism or prefetch, nearest-neighbour resize, stateful random ops);
- the training step rate of the paper's model (256x256, batch 1) on the same machine, so that
  "never the bottleneck" can be read directly: pipeline images/s over training images/s.

    python benchmarks/data_pipeline.py [--images 600] [--train-steps 3]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from pix2pix_tf import Pix2Pix, load_paired_dataset  # noqa: E402
from pix2pix_tf.data import DEMO_DIR  # noqa: E402

GPU_STEPS_PER_S = 27  # the TF tutorial's ~37 ms per step on a V100


def images_per_second(dataset, images):
    iterator = iter(dataset.repeat())
    for _ in range(20):  # warm-up: tracing, autotune
        next(iterator)
    start = time.perf_counter()
    seen = 0
    while seen < images:
        x, _ = next(iterator)
        seen += int(x.shape[0])
    return seen / (time.perf_counter() - start)


def tutorial_pipeline():
    files = tf.data.Dataset.list_files(str(DEMO_DIR / "train" / "*.jpg"), shuffle=False)

    def load(path):
        image = tf.cast(tf.io.decode_jpeg(tf.io.read_file(path)), tf.float32)
        half = tf.shape(image)[1] // 2
        a, b = image[:, :half], image[:, half:]
        pair = tf.image.resize(tf.stack([a, b]), [286, 286], method="nearest")
        pair = tf.image.random_crop(pair, [2, 256, 256, 3])
        if tf.random.uniform(()) > 0.5:
            pair = tf.image.flip_left_right(pair)
        pair = pair / 127.5 - 1
        return pair[0], pair[1]

    return files.map(load).shuffle(400).batch(1)


def training_images_per_second(steps):
    model = Pix2Pix(seed=0)
    model.compile()
    x = tf.random.uniform((1, 256, 256, 3), -1, 1)
    data = tf.data.Dataset.from_tensors((x, x)).repeat()
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--train-steps", type=int, default=3)
    args = parser.parse_args()
    ours = images_per_second(load_paired_dataset("demo", "train", seed=0), args.images)
    baseline = images_per_second(tutorial_pipeline(), args.images)
    training = training_images_per_second(args.train_steps)
    print(f"cores: {os.cpu_count()}")
    print(f"{'measure':48s} {'value':>10s}")
    print(f"{'pipeline images/s (jitter, 256x256, batch 1)':48s} {ours:10.1f}")
    print(f"{'baseline images/s (tutorial-style pipeline)':48s} {baseline:10.1f}")
    print(f"{'training images/s (paper model, this CPU)':48s} {training:10.2f}")
    print(f"pipeline/baseline speed ratio: {ours / baseline:.2f}")
    print(f"pipeline/training-on-this-CPU ratio: {ours / training:.1f}")
    print(f"pipeline/GPU-training ({GPU_STEPS_PER_S} steps/s) ratio: {ours / GPU_STEPS_PER_S:.2f}")


if __name__ == "__main__":
    main()
