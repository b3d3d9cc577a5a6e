"""The texture experiments of issue 30: the README's first run (the quick preset, demo data) with
one remedy or combination each, same seed and budget, one after another (2 cores: one training
at a time), then ``evaluate`` of every model on the 32 held-out tiles.

    python benchmarks/texture.py                     # every experiment not yet trained
    python benchmarks/texture.py --only l1 quick     # some of them
    python benchmarks/texture.py --evaluate-only     # re-score the trained ones
    python benchmarks/texture.py --list

Runs go to ``runs/texture/<name>/``; each row's train time (wall, the whole command) and its
``evaluate`` metrics are appended to ``runs/texture/results.jsonl`` and the table printed at the
end is what benchmarks/NOTES.md holds. A picture of the same held-out tiles through every model
is ``runs/texture/side_by_side.png``.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path("runs/texture")

#: Every row's flags start with these: the quick preset as it was when the table was made
#: (before it took --d-antialias and --g-ema 0.999, and later --up-phases balanced,
#: --pixel-noise 4 and --l1-lowpass; each row names its lambda).
BASE = ["--no-d-antialias", "--g-ema", "0", "--up-phases", "free", "--pixel-noise", "0",
        "--no-l1-lowpass"]

#: name -> the train flags added to the README's first command (``python -m pix2pix_tf.train``)
#: after BASE; ``None``: the README's command as it is (the preset of today).
EXPERIMENTS = {
    "preset": None,
    "l1": ["--objective", "L1", "--lambda-l1", "300"],
    "quick_before": ["--lambda-l1", "300", "--d-shift", "32"],
    "lambda100": ["--lambda-l1", "100", "--d-shift", "0"],
    "lambda100_shift": ["--lambda-l1", "100", "--d-shift", "32"],
    "antialias": ["--lambda-l1", "100", "--d-shift", "32", "--d-antialias"],
    "ema": ["--lambda-l1", "100", "--d-shift", "32", "--g-ema", "0.999"],
    "sn_ttur": ["--lambda-l1", "100", "--d-shift", "32", "--d-spectral-norm", "--lr-d", "4e-4"],
    "r1": ["--lambda-l1", "100", "--d-shift", "32", "--r1-gamma", "1"],
    "cutout": ["--lambda-l1", "100", "--d-shift", "32", "--d-cutout", "0.5"],
    "feat": ["--lambda-l1", "100", "--d-shift", "32", "--lambda-feat", "10"],
    "ffl": ["--lambda-l1", "100", "--d-shift", "32", "--lambda-ffl", "10"],
    "aa_ema": ["--lambda-l1", "100", "--d-shift", "32", "--d-antialias", "--g-ema", "0.999"],
    "aa_ema_cutout": ["--lambda-l1", "100", "--d-shift", "32", "--d-antialias", "--g-ema",
                      "0.999", "--d-cutout", "0.5"],
    # Round 2: a full-resolution path (the U-Net's output is otherwise interpolated from half
    # resolution, so detail finer than 4 px can only come from the transposed convolution's
    # stride-2 taps, which is a lattice), and lower L1 weights.
    "l1_head": ["--objective", "L1", "--pixel-head", "16"],
    "aa_head": ["--lambda-l1", "100", "--d-shift", "32", "--d-antialias", "--pixel-head", "16"],
    "aa_l30": ["--lambda-l1", "30", "--d-shift", "32", "--d-antialias"],
    "aa_head_l30": ["--lambda-l1", "30", "--d-shift", "32", "--d-antialias", "--pixel-head",
                    "16"],
    # Round 3: BlurPool (the blur after the activation, so D still sees the finest detail).
    "bp": ["--lambda-l1", "100", "--d-shift", "32", "--d-blurpool"],
    "bp_head": ["--lambda-l1", "100", "--d-shift", "32", "--d-blurpool", "--pixel-head", "16"],
    "bp_head3": ["--lambda-l1", "100", "--d-shift", "32", "--d-blurpool", "--pixel-head", "16",
                 "--pixel-kernel", "3"],
    "l1_head3": ["--objective", "L1", "--pixel-head", "16", "--pixel-kernel", "3"],
    # Round 4: the L1 term at half resolution, so the finest octave is the GAN's alone.
    "bp_lowpass": ["--lambda-l1", "100", "--d-shift", "32", "--d-blurpool", "--l1-lowpass"],
    "lowpass": ["--lambda-l1", "100", "--d-shift", "32", "--l1-lowpass"],
    "bp_lowpass_r1": ["--lambda-l1", "100", "--d-shift", "32", "--d-blurpool", "--l1-lowpass",
                      "--r1-gamma", "0.1"],
    "lowpass_ema": ["--lambda-l1", "100", "--d-shift", "32", "--l1-lowpass", "--g-ema", "0.999"],
    "aa_ema_r1": ["--lambda-l1", "100", "--d-shift", "32", "--d-antialias", "--g-ema", "0.999",
                  "--r1-gamma", "1"],
    # Round 5: the low-pass L1 with a generator that upsamples by resizing, so that no
    # up-convolution's stride-2 phases can paint the lattice the low-pass rows showed.
    "lowpass_bc": ["--lambda-l1", "100", "--d-shift", "32", "--l1-lowpass", "--upsampling",
                   "bilinear_conv", "--up-init", "normal"],
    "lowpass_rc": ["--lambda-l1", "100", "--d-shift", "32", "--l1-lowpass", "--upsampling",
                   "resize_conv", "--up-init", "normal"],
    # ... and a full-resolution 3x3 path from the input, where detail finer than 4 px can come
    # from (lowpass_bc had no lattice and no fine detail at all).
    "lowpass_bc_head3": ["--lambda-l1", "100", "--d-shift", "32", "--l1-lowpass",
                         "--upsampling", "bilinear_conv", "--up-init", "normal",
                         "--pixel-head", "16", "--pixel-kernel", "3"],
    # Round 6: the transposed convolutions kept (their stride-2 taps are where the low-pass
    # rows' fine detail came from) but their four output phases held at one gain
    # (--up-phases balanced), the freedom a fixed lattice needs.
    "lowpass_pb": ["--lambda-l1", "100", "--d-shift", "32", "--l1-lowpass", "--up-phases",
                   "balanced"],
    "lambda100_pb": ["--lambda-l1", "100", "--d-shift", "32", "--up-phases", "balanced"],
    "l1_pb": ["--objective", "L1", "--lambda-l1", "300", "--up-phases", "balanced"],
    "lowpass_pb_l30": ["--lambda-l1", "30", "--d-shift", "32", "--l1-lowpass", "--up-phases",
                       "balanced"],
    "lowpass_pb_l10": ["--lambda-l1", "10", "--d-shift", "32", "--l1-lowpass", "--up-phases",
                       "balanced"],
    # Round 7: noise at full resolution for the grain the input cannot predict (--pixel-noise,
    # in a 3x3 pixel head), with balanced phases so that the up-convolutions print no lattice.
    "lowpass_pb_noise": ["--lambda-l1", "100", "--d-shift", "32", "--l1-lowpass", "--up-phases",
                         "balanced", "--pixel-head", "16", "--pixel-kernel", "3",
                         "--pixel-noise", "4"],
    "pb_noise": ["--lambda-l1", "100", "--d-shift", "32", "--up-phases", "balanced",
                 "--pixel-head", "16", "--pixel-kernel", "3", "--pixel-noise", "4"],
    "lowpass_pb_noise_ema": ["--lambda-l1", "100", "--d-shift", "32", "--l1-lowpass",
                             "--up-phases", "balanced", "--pixel-head", "16", "--pixel-kernel",
                             "3", "--pixel-noise", "4", "--g-ema", "0.999"],
    # ... and the noise before the last up-convolution instead (no head: the head itself cost
    # L1 at this length, row l1_head).
    "lowpass_pb_noise_up_ema": ["--lambda-l1", "100", "--d-shift", "32", "--l1-lowpass",
                                "--up-phases", "balanced", "--pixel-noise", "4", "--g-ema",
                                "0.999"],
    # The paper's recipe at this size, for the README's picture: none of the deviations.
    "paper_small": ["--lambda-l1", "100", "--d-shift", "0", "--up-init", "normal"],
    "lowpass_pb_noise_up_ema_l200": ["--lambda-l1", "200", "--d-shift", "32", "--l1-lowpass",
                                     "--up-phases", "balanced", "--pixel-noise", "4", "--g-ema",
                                     "0.999"],
}

KEYS = ("l1", "psnr", "ssim", "hist_L", "grid", "sharp", "swd")


def train(name, flags):
    run_dir = ROOT / name
    flags = [] if flags is None else BASE + flags
    command = [sys.executable, "-m", "pix2pix_tf.train", "--run-dir", str(run_dir), *flags]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start, command


def evaluate(name):
    model = ROOT / name / "model.keras"
    out = ROOT / name / "evaluation"
    subprocess.run([sys.executable, "-m", "pix2pix_tf.evaluate", "--model", str(model),
                    "--data", "demo", "--output", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    metrics = json.loads((out / "metrics.json").read_text())["results"]
    row = metrics[next(iter(metrics))]
    return {k: row.get(k) for k in KEYS}, metrics


def balance(name):
    """Median D accuracy on real / generated pairs over the run's last 300 steps."""
    import csv
    import statistics

    path = ROOT / name / "steps.csv"
    if not path.exists():
        return {}
    rows = list(csv.DictReader(path.open()))[-300:]
    out = {}
    for key in ("d_real_acc", "d_fake_acc"):
        values = [float(r[key]) for r in rows if r.get(key)]
        if values:
            out[key] = statistics.median(values)
    return out


def print_table(path):
    """The newest record of each experiment (train time from the record that trained it)."""
    newest, seconds = {}, {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        newest[record["name"]] = record
        seconds.setdefault(record["name"], record.get("train_seconds"))
        if record.get("train_seconds"):
            seconds[record["name"]] = record["train_seconds"]
    columns = KEYS + ("d_real_acc", "d_fake_acc")
    print("| run | flags | train s | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 3) + "|")
    for name, record in newest.items():
        cells = [f"{record[k]:.4g}" if record.get(k) is not None else "-" for k in columns]
        flags = " ".join(record["flags"] or []) or "(none: the preset)"
        print(f"| {name} | `{flags}` | {seconds.get(name) or '-'} | "
              + " | ".join(cells) + " |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--evaluate-only", action="store_true")
    p.add_argument("--list", action="store_true")
    p.add_argument("--table", action="store_true", help="print the newest row of each as "
                   "markdown")
    args = p.parse_args(argv)
    if args.table:
        return print_table(ROOT / "results.jsonl")
    if args.list:
        for name, flags in EXPERIMENTS.items():
            print(f"{name:16s} {' '.join(flags or ['(the preset)'])}")
        return
    ROOT.mkdir(parents=True, exist_ok=True)
    names = args.only or list(EXPERIMENTS)
    results = ROOT / "results.jsonl"
    for name in names:
        record = {"name": name, "flags": EXPERIMENTS[name]}
        if not args.evaluate_only:
            if (ROOT / name / "model.keras").exists():
                print(f"{name}: trained already (delete {ROOT / name} to train again)")
            else:
                seconds, command = train(name, EXPERIMENTS[name])
                record.update(train_seconds=round(seconds, 1), command=" ".join(command[1:]))
        if (ROOT / name / "model.keras").exists():
            scores, _ = evaluate(name)
            record.update(scores, **balance(name))
        with results.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record))


if __name__ == "__main__":
    main()
