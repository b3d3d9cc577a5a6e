"""One command, one table: training, inference and data throughput, each beside a baseline
measured in the same run. Ratios, not absolute times, are what we compare across machines.

    python benchmarks/run.py            # full: batch 1 and 4, every training option (~30 min)
    python benchmarks/run.py --quick    # a few minutes

Rows:
- training step time and images/s at 256x256 with the paper's networks, for ``Pix2Pix.fit`` and
  for the baseline: a plain hand-written ``tf.function`` two-tape loop over the same networks
  (the TF tutorial's approach, with ``keras.optimizers.Adam``). The line
  ``fit/plain-loop speed ratio: R`` (R > 1: fit faster) is the headline. The full run adds the
  speed options (mixed_bfloat16, steps_per_execution, XLA), Keras' own Adam, and batch 4.
- generator latency per 256x256 image: Keras ``predict`` (baseline), a direct Keras call, the
  SavedModel, TFLite float32 / float16 / int8 and onnxruntime; then the FLOP floor: the
  generator's multiply-adds (counted from its layer shapes) at this CPU's float32 matmul rate
  (measured in the same process), and each runtime's time over that floor.
  ``python benchmarks/run.py --phase inference --quick`` runs this part alone.
- data pipeline images/s (with jitter) vs a tutorial-style pipeline.
- peak resident memory of the process that trains with ``fit``.
"""

import argparse
import json
import os
import resource
import subprocess
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
from pix2pix_tf.core.losses import discriminator_loss, generator_loss  # noqa: E402

ROWS = []


def row(name, value, unit, baseline=None, extra=""):
    ROWS.append((name, value, unit, baseline))
    ratio = ""
    if baseline is not None:  # > 1: better than the baseline
        ratio = f"{baseline / value if unit.startswith(('s', 'ms')) else value / baseline:8.2f}x"
    print(f"  {name:50s} {value:10.3f} {unit:10s} {ratio:9s} {extra}".rstrip(), flush=True)


def networks(seed=0, size=256):
    return (unet_generator(3, 3, seed=seed), patchgan_discriminator(3, 3, seed=seed + 1))


def batch(size, n):
    x = tf.random.stateless_uniform((n, size, size, 3), seed=[1, 2], minval=-1, maxval=1)
    return x, -x


def fit_runner(model, x, y, **compile_args):
    """A function that runs ``Pix2Pix.fit`` for n steps (traced and warmed up here)."""
    model.compile(**compile_args)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace + warm up

    def run(steps):
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)

    return run


def plain_loop_runner(generator, discriminator, x, y):
    """The TF tutorial's training loop: both tapes open at once, one pass of each network,
    ``keras.optimizers.Adam`` as the tutorial uses."""
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

    def run(steps):
        for _ in range(steps):
            loss = step(x, y)
        loss.numpy()

    return run


def time_rounds(run, steps, rounds):
    """(best wall, median CPU) seconds per step over ``rounds`` rounds of ``steps`` steps."""
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        run(steps)
        walls.append((time.perf_counter() - wall) / steps)
        cpus.append((time.process_time() - cpu) / steps)
    return min(walls), float(np.median(cpus))


#: Training configurations: (label, how to build the runner). Each runs in a process of its own.
TRAIN_CONFIGS = {
    "plain": "plain tf.function loop (baseline)",
    "fit": "Pix2Pix.fit (defaults)",
    "single": "fit, g_sees_updated_d=False",
    "keras_adam": "fit, keras.optimizers.Adam",
    "bf16": "fit, mixed_bfloat16",
    "spe4": "fit, steps_per_execution=4",
    "xla": "fit, jit_compile=True",
}


def train_config(args):
    """One training configuration, timed in this process; prints a JSON line for the parent."""
    name, n = args.config, args.batch
    x, y = batch(256, n)
    if name == "plain":
        run = plain_loop_runner(*networks(), x, y)
    else:
        if name == "bf16":
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        options = {
            "single": dict(model=dict(g_sees_updated_d=False)),
            "keras_adam": dict(compile=dict(
                g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5, epsilon=1e-8),
                d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5, epsilon=1e-8))),
            "spe4": dict(compile=dict(steps_per_execution=4)),
            "xla": dict(compile=dict(jit_compile=True)),
        }.get(name, {})
        model = Pix2Pix(*networks(), **options.get("model", {}))
        run = fit_runner(model, x, y, **options.get("compile", {}))
    wall, cpu = time_rounds(run, args.steps, args.rounds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(dict(wall=wall, cpu=cpu, peak_mib=peak)), flush=True)


def training(args):
    """Each configuration in fresh processes, alternating, best of the repeats.

    This VM's wall-clock speed jumps between two levels about 2x apart (benchmarks/NOTES.md,
    experiment 8), and configurations sharing one process disturbed each other, so every
    configuration runs ``repeats`` times in a process of its own, in alternation with the
    others, and the best round is kept. CPU time per step is printed beside it.
    """
    print("training (paper networks, 256x256; best of interleaved rounds, CPU s/step beside)")
    configs = [("plain", 1), ("fit", 1), ("single", 1)]
    if not args.quick:
        configs += [("keras_adam", 1), ("bf16", 1), ("spe4", 1), ("xla", 1),
                    ("plain", 4), ("fit", 4), ("bf16", 4)]
    if args.only:
        configs = [(name, n) for name, n in configs if name in args.only.split(",")]
    results = {}
    for _ in range(args.repeats):
        for name, n in configs:
            command = [sys.executable, __file__, "--phase", "train_config", "--config", name,
                       "--batch", str(n)] + (["--quick"] if args.quick else [])
            done = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode or not lines:
                print(f"  {TRAIN_CONFIGS[name]}, batch {n}: failed\n{done.stderr[-600:]}")
                continue
            result = json.loads(lines[-1][len("RESULT "):])
            best = results.setdefault((name, n), result)
            best["wall"] = min(best["wall"], result["wall"])
            best["cpu"] = min(best["cpu"], result["cpu"])
            best["peak_mib"] = max(best["peak_mib"], result["peak_mib"])
    for n in sorted({n for _, n in configs}):
        plain = results.get(("plain", n))
        for name in TRAIN_CONFIGS:
            if (name, n) not in results:
                continue
            r = results[(name, n)]
            base = None if name == "plain" or plain is None else plain
            row(f"{TRAIN_CONFIGS[name]}, batch {n} (s/step)", r["wall"], "s/step",
                baseline=base and base["wall"], extra=f"cpu {r['cpu']:.2f} s/step")
            if name == "fit":
                row(f"Pix2Pix.fit, batch {n} (images/s)", n / r["wall"], "images/s",
                    baseline=base and n / base["wall"])
    fit = results.get(("fit", 1))
    if fit is not None:
        row("peak memory, Pix2Pix.fit process, batch 1", fit["peak_mib"], "MiB")
    if fit is not None and ("plain", 1) in results:
        print(f"fit/plain-loop speed ratio: {results[('plain', 1)]['wall'] / fit['wall']:.2f}")


def generator_macs(generator):
    """Multiply-adds of one image through ``generator``'s convolutions (normalisation and
    activations add a few percent), from the layer shapes of a generator built with a fixed
    ``image_size``."""
    macs = 0
    for layer in generator.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            kh, kw, c_first, c_second = layer.kernel.shape  # Conv2D: (in, out); transposed: (out, in)
            _, height, width, _ = layer.output.shape
            if isinstance(layer, keras.layers.Conv2DTranspose):  # one tap per input pixel
                height, width = height // layer.strides[0], width // layer.strides[1]
            macs += height * width * kh * kw * c_first * c_second
    return macs


def peak_gflops(n=2048, rounds=5):
    """This CPU's float32 matrix-multiply rate (GFLOP/s, every core), the best of ``rounds``."""
    a = tf.random.stateless_uniform((n, n), seed=[0, 1])
    f = tf.function(lambda: tf.reduce_sum(tf.matmul(a, a)))
    f()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        f().numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def inference(args):
    from pix2pix_tf.exporters import export_model

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
                               formats=["saved_model", "tflite_float32", "tflite_float16",
                                        "tflite_int8", "onnx"])
        threads = thread_rows(model, Path(out), images)
    for report in reports:
        row(f"{report.name} (ms/image)", report.latency_ms, "ms/image", baseline=predict_ms)
    fixed = unet_generator(3, 3, seed=0, image_size=(256, 256))  # static shapes to count on
    macs, gflops = generator_macs(fixed), peak_gflops()
    floor_ms = 2 * macs / (gflops * 1e9) * 1000
    row("generator multiply-adds per image (G)", macs / 1e9, "G")
    row("float32 matmul rate, every core (GFLOP/s)", gflops, "GFLOP/s")
    row("FLOP floor at that rate (ms/image)", floor_ms, "ms/image")
    for report in reports:
        row(f"{report.name} / floor", report.latency_ms / floor_ms, "x")
    for name, counts in threads.items():
        for count, ms in counts.items():
            row(f"{name}, {count} thread(s) (ms/image)", ms, "ms/image", baseline=predict_ms,
                extra=f"{ms / floor_ms:.2f}x floor")


def thread_rows(model, out, images):
    """``{runtime: {threads: ms per image}}`` at 1 and 2 threads for the exported TFLite files
    in ``out`` and for ONNX with either up-convolution graph (each checked against Keras)."""
    from pix2pix_tf.exporters.onnx import export_onnx, run_onnx
    from pix2pix_tf.exporters.tflite import run_tflite

    reference = model.predict(images, verbose=0)
    files = {f"tflite {kind}": (next(out.glob(f"*_{kind}.tflite")), run_tflite)
             for kind in ("float32", "int8")}
    for upsampling in ("transpose", "subpixel"):
        files[f"onnxruntime {upsampling}"] = (export_onnx(model, out / f"{upsampling}.onnx",
                                                          upsampling=upsampling), run_onnx)
    results = {}
    for name, (path, run) in files.items():
        for count in (1, 2):
            outputs, ms = run(path, images, threads=count)
            results.setdefault(name, {})[count] = ms
        mse = float(np.mean(((outputs - reference) / 2) ** 2))
        print(f"  {name}: PSNR to Keras {10 * np.log10(1 / max(mse, 1e-30)):.1f} dB")
    return results


def data(args):
    from data_pipeline import images_per_second, tutorial_pipeline

    from pix2pix_tf import load_paired_dataset

    print("data pipeline (demo data, jitter, 256x256, batch 1)")
    baseline = images_per_second(tutorial_pipeline(), args.pipeline_images)
    ours = images_per_second(load_paired_dataset("demo", "train", seed=0), args.pipeline_images)
    row("tutorial-style pipeline (images/s)", baseline, "images/s")
    row("load_paired_dataset (images/s)", ours, "images/s", baseline=baseline)


PHASES = {"training": training, "train_config": train_config, "data": data,
          "inference": inference}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few minutes: fewer rounds and images, batch 1 only")
    parser.add_argument("--no-inference", action="store_true")
    parser.add_argument("--only", help="training configurations to run, comma-separated: "
                        + ", ".join(TRAIN_CONFIGS))
    parser.add_argument("--repeats", type=int, default=2,
                        help="processes per training configuration (default 2)")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=sorted(TRAIN_CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.steps = 3
    args.rounds = 3 if args.quick else 4
    args.images = 4 if args.quick else 16
    args.pipeline_images = 300 if args.quick else 1000
    if args.phase:  # one phase, e.g. in a process of its own
        PHASES[args.phase](args)
        return
    print(f"machine: {os.cpu_count()} cores, TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print(f"  {'measure':50s} {'value':>10s} {'unit':10s} {'vs baseline'}", flush=True)
    # Each phase runs in a fresh process: measured after a 2 GB training phase in the same
    # process, inference latencies came out 3-4x slower.
    training(args)  # starts its own processes
    for phase in ("data", "inference"):
        if phase == "inference" and args.no_inference:
            continue
        command = [sys.executable, __file__, "--phase", phase] + (["--quick"] if args.quick else [])
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
