"""Issue 30, item 4: does the paper's lattice fade with training? Plots the validation `grid`,
`sharp` and `swd` of long runs against the step (one point per epoch, from each run's
history.csv) into benchmarks/long_run.png and prints them as a table.

    python -m pix2pix_tf.train --run-dir runs/long/paper_small --no-d-antialias --g-ema 0 \\
        --d-shift 0 --up-init normal --up-phases free --pixel-noise 0 --no-l1-lowpass \\
        --epochs 11 --epochs-decay 5 --quiet                        # the paper's recipe
    python -m pix2pix_tf.train --run-dir runs/long/quick_long2 --epochs 11 --epochs-decay 5 \
        --quiet                                                     # the quick preset
    python benchmarks/long_run.py runs/long/quick_long2 --output benchmarks/long_run_preset.png
"""

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MEASURES = (("val_grid", "grid (1 = no lattice)"), ("val_sharp", "sharp (1 = the targets')"),
            ("val_swd", "SWD x1e3 (texture distance)"), ("val_l1", "L1"))


def curves(run_dir):
    """(steps, {measure: values}) of one run."""
    rows = list(csv.DictReader((Path(run_dir) / "history.csv").open()))
    steps_per_epoch = sum(1 for _ in csv.DictReader((Path(run_dir) / "steps.csv").open())) \
        // max(len(rows), 1)
    steps = [(int(r["epoch"]) + 1) * steps_per_epoch for r in rows]
    return steps, {key: [float(r[key]) for r in rows] for key, _ in MEASURES}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--output", default=str(Path(__file__).with_name("long_run.png")))
    args = p.parse_args(argv)
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(4 * len(MEASURES), 3.2))
    for run in args.runs:
        steps, values = curves(run)
        print(f"{run}:\n| step | " + " | ".join(label for _, label in MEASURES) + " |")
        print("|---" * (len(MEASURES) + 1) + "|")
        for i, step in enumerate(steps):
            print(f"| {step} | " + " | ".join(f"{values[k][i]:.4g}" for k, _ in MEASURES) + " |")
        for ax, (key, label) in zip(axes, MEASURES):
            ax.plot(steps, values[key], marker="o", markersize=3, label=Path(run).name)
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("step")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output, dpi=80)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
