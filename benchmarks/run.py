"""One command, one table: training, inference and data throughput, each beside a baseline
measured in the same run. Ratios, not absolute times, are what we compare across machines.

    python benchmarks/run.py            # full: more steps, batch 1 and 4
    python benchmarks/run.py --quick    # a few minutes

Rows:
- training step time and images/s at 256x256 with the paper's networks, for ``Pix2Pix.fit`` and
  for the baseline: a plain hand-written ``tf.function`` two-tape loop over the same networks
  (the TF tutorial's approach). The line ``fit/plain-loop speed ratio: R`` (R > 1: fit faster)
  is the headline.
- generator latency per 256x256 image: Keras ``predict`` (baseline), a direct Keras call, the
  SavedModel, TFLite float32 / float16 / int8 and onnxruntime.
- data pipeline images/s (with jitter) vs a tutorial-style pipeline.
- peak resident memory of the process after training.
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from pix2pix_tf import Pix2Pix, patchgan_discriminator, unet_generator  # noqa: E402
from pix2pix_tf.losses import discriminator_loss, generator_loss  # noqa: E402

ROWS = []


def row(name, value, unit, baseline=None):
    ROWS.append((name, value, unit, baseline))
    ratio = "" if baseline is None else f"{baseline / value if unit.startswith('s') or unit.startswith('ms') else value / baseline:8.2f}x"
    print(f"  {name:46s} {value:10.3f} {unit:10s} {ratio}", flush=True)


def networks(seed=0, size=256):
    return (unet_generator(3, 3, seed=seed), patchgan_discriminator(3, 3, seed=seed + 1))


def batch(size, n):
    x = tf.random.stateless_uniform((n, size, size, 3), seed=[1, 2], minval=-1, maxval=1)
    return x, -x


def time_fit(model, x, y, steps, **compile_args):
    model.compile(**compile_args)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace + warm up
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return (time.perf_counter() - start) / steps


def time_plain_loop(generator, discriminator, x, y, steps):
    """The TF tutorial's training loop: both tapes open at once, one pass of each network."""
    g_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(x, training=True)
            real_logits = discriminator([x, y], training=True)
            fake_logits = discriminator([x, fake], training=True)
            g_loss = tf.reduce_mean(generator_loss(fake_logits, y, fake)["total"])
            d_loss = tf.reduce_mean(discriminator_loss(real_logits, fake_logits))
        g_opt.apply_gradients(zip(g_tape.gradient(g_loss, generator.trainable_variables),
                                  generator.trainable_variables))
        d_opt.apply_gradients(zip(d_tape.gradient(d_loss, discriminator.trainable_variables),
                                  discriminator.trainable_variables))
        return g_loss

    for _ in range(2):
        step(x, y).numpy()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(x, y)
    loss.numpy()
    return (time.perf_counter() - start) / steps


def training(args):
    print("training (paper networks, 256x256)")
    ratios = []
    for n in args.batches:
        x, y = batch(256, n)
        plain = time_plain_loop(*networks(), x, y, args.steps)
        fit = time_fit(Pix2Pix(*networks()), x, y, args.steps)
        row(f"plain tf.function loop, batch {n} (s/step)", plain, "s/step")
        row(f"Pix2Pix.fit, batch {n} (s/step)", fit, "s/step", baseline=plain)
        row(f"Pix2Pix.fit, batch {n} (images/s)", n / fit, "images/s", baseline=n / plain)
        ratios.append(plain / fit)
        if n == args.batches[0]:
            single = time_fit(Pix2Pix(*networks(), g_sees_updated_d=False), x, y, args.steps)
            row(f"fit g_sees_updated_d=False, batch {n} (s/step)", single, "s/step",
                baseline=plain)
        if args.options and n == args.batches[0]:
            for label, kwargs in (("steps_per_execution=4", dict(steps_per_execution=4)),
                                  ("jit_compile=True (XLA)", dict(jit_compile=True))):
                try:
                    t = time_fit(Pix2Pix(*networks()), x, y, args.steps, **kwargs)
                    row(f"fit {label}, batch {n} (s/step)", t, "s/step", baseline=plain)
                except Exception as error:  # an option this machine cannot run
                    print(f"  fit {label}: failed ({type(error).__name__})")
    print(f"fit/plain-loop speed ratio: {ratios[0]:.2f}")
    return ratios


def inference(args):
    from pix2pix_tf.export import export_model

    print("inference (paper generator, one 256x256 image at a time)")
    model = Pix2Pix(*networks())
    model.inference_mode = "deterministic"
    images = tf.random.stateless_uniform((args.images, 256, 256, 3), seed=[3, 4], minval=-1,
                                         maxval=1).numpy()
    model.predict(images[:1], verbose=0)
    start = time.perf_counter()
    for image in images:
        model.predict(image[None], verbose=0)
    predict_ms = 1000 * (time.perf_counter() - start) / len(images)
    row("Keras predict (baseline) (ms/image)", predict_ms, "ms/image")
    with tempfile.TemporaryDirectory() as out:
        reports = export_model(model, out, image_size=(256, 256), calibration=list(images),
                               test_images=images, verbose=False,
                               tflite=("float32", "float16", "int8"))
    for report in reports:
        row(f"{report.name} (ms/image)", report.latency_ms, "ms/image", baseline=predict_ms)


def data(args):
    from data_pipeline import images_per_second, tutorial_pipeline

    from pix2pix_tf import load_paired_dataset

    print("data pipeline (demo data, jitter, 256x256, batch 1)")
    baseline = images_per_second(tutorial_pipeline(), args.pipeline_images)
    ours = images_per_second(load_paired_dataset("demo", "train", seed=0), args.pipeline_images)
    row("tutorial-style pipeline (images/s)", baseline, "images/s")
    row("load_paired_dataset (images/s)", ours, "images/s", baseline=baseline)


PHASES = {"training": training, "data": data, "inference": inference}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, batch 1 only")
    parser.add_argument("--no-inference", action="store_true")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.steps = 3 if args.quick else 8
    args.batches = [1] if args.quick else [1, 4]
    args.options = not args.quick
    args.images = 4 if args.quick else 16
    args.pipeline_images = 300 if args.quick else 1000
    if args.phase:  # one phase, in a process of its own
        PHASES[args.phase](args)
        if args.phase == "training":
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            row("peak resident memory (training process)", peak, "MiB")
        return
    print(f"machine: {os.cpu_count()} cores, TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print(f"  {'measure':46s} {'value':>10s} {'unit':10s} {'vs baseline':>8s}", flush=True)
    import subprocess

    # Each phase runs in a fresh process: measured after a 2 GB training phase in the same
    # process, inference latencies came out 3-4x slower.
    for phase in ("training", "data", "inference"):
        if phase == "inference" and args.no_inference:
            continue
        command = [sys.executable, __file__, "--phase", phase] + (["--quick"] if args.quick else [])
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
