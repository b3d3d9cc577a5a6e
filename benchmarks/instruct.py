"""What instruction conditioning costs a training step, measured against the same generator
without it, in the same process, in interleaved rounds (so that a machine's slow phases hit
both alike).

    python benchmarks/instruct.py            # the --task instruct preset's networks (64x64,
                                             # batch 16, ngf 16) and the paper's (256, batch 1)
    python benchmarks/instruct.py --quick    # the preset's networks only

Rows per configuration (seconds per step, best round; ratio vs the plain step):
- plain: ``Pix2Pix.fit`` with the plain U-Net and PatchGAN (the baseline);
- FiLM: the same, but the U-Net has FiLM at every block and its text encoder (the
  discriminator is the plain one): the cost of FiLM itself. The goal is at most 5%;
- editor: the whole ``InstructPix2Pix`` step (matching-aware discriminator, which runs once
  more per step for the wrong-instruction term, word and instruction dropout), with the
  whole-word text encoder (``--subword-buckets 0``);
- spelling: the same with the default text encoder, which reads spelling (character n-grams
  in 16,384 buckets, 30,000 extra English words in the vocabulary).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from pix2pix_tf import InstructPix2Pix, Pix2Pix  # noqa: E402
from pix2pix_tf.networks import build_discriminator, build_generator  # noqa: E402
from pix2pix_tf.tasks.instruct.edits import EDITS  # noqa: E402
from pix2pix_tf.tasks.instruct.text import (  # noqa: E402
    TextConditioning,
    build_vocabulary,
    english_words,
    spelling_options,
)
from pix2pix_tf.tasks.instruct.vocabulary import WordVocabulary  # noqa: E402

PHRASES = [p for e in EDITS.values() for p in e.phrasings]


def runner(model, x, y):
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace and warm up

    def run(steps):
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)

    return run


def runners(size, batch, ngf, num_downs, seed=0):
    vocabulary = build_vocabulary(PHRASES)
    length = 16
    text = dict(vocabulary_size=len(vocabulary) + 2, sequence_length=length, text_dim=64)
    nets = dict(num_downs=num_downs, ngf=ngf, seed=seed)
    x = tf.random.stateless_uniform((batch, size, size, 3), seed=[1, 2], minval=-1, maxval=1)
    y = -x
    rng = np.random.default_rng(seed)
    instructions = np.array([PHRASES[i] for i in rng.integers(len(PHRASES), size=batch)])
    tokens = WordVocabulary(vocabulary, length).encode(list(instructions))

    def d(**extra):
        return build_discriminator("patchgan", ndf=ngf, seed=seed + 1, **extra)

    plain = Pix2Pix(build_generator("unet", **nets), d())
    def g_hook(text):
        return {"conditioning": TextConditioning("generator", **text)}

    def d_hook(text):
        return {"conditioning": TextConditioning("discriminator", **text)}

    film = Pix2Pix(build_generator("unet", **nets, **g_hook(text)), d())
    editor = InstructPix2Pix(build_generator("unet", **nets, **g_hook(text)), d(**d_hook(text)),
                             vocabulary=vocabulary, sequence_length=length, seed=seed)
    known = build_vocabulary(PHRASES, extra=english_words())
    spelt = dict(text, vocabulary_size=len(known) + 2, **spelling_options(known, 16384))
    spelling = InstructPix2Pix(build_generator("unet", **nets, **g_hook(spelt)), d(**d_hook(spelt)),
                               vocabulary=known, sequence_length=length, seed=seed)
    for model in (plain, film, editor, spelling):
        model.compile()
    asked = {"image": x, "instruction": tf.constant(instructions)}
    return {
        "plain": runner(plain, x, y),
        "FiLM": runner(film, {"image": x, "tokens": tf.constant(tokens)}, y),
        "editor": runner(editor, asked, y),
        "spelling": runner(spelling, asked, y),
    }


def measure(label, size, batch, ngf, num_downs, steps, rounds):
    print(f"{label}: {size}x{size}, batch {batch}, ngf {ngf}, num_downs {num_downs}", flush=True)
    runs = runners(size, batch, ngf, num_downs)
    best = {name: float("inf") for name in runs}
    for _ in range(rounds):  # interleaved: every configuration once per round
        for name, run in runs.items():
            start = time.perf_counter()
            run(steps)
            best[name] = min(best[name], (time.perf_counter() - start) / steps)
    for name, seconds in best.items():
        ratio = seconds / best["plain"]
        print(f"  {name:8s} {seconds:8.4f} s/step   {ratio:6.3f}x the plain step", flush=True)
    print(f"  FiLM overhead: {100 * (best['FiLM'] / best['plain'] - 1):+.1f}% "
          f"(goal: at most +5%)", flush=True)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the preset's networks only")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    keras.utils.set_random_seed(0)
    measure("--task instruct preset", 64, 16, 16, 6, steps=20, rounds=args.rounds)
    if not args.quick:
        measure("paper networks", 256, 1, 64, 8, steps=5, rounds=args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
