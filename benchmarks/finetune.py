"""Fine-tuning against training from scratch (issue 32): the README's demo model (map ->
satellite) fine-tuned to the reverse direction on a small folder, 64 of the demo's training
tiles, against the same run from scratch; validation L1 on the 32 held-out tiles after every
epoch of 64 steps.

    python benchmarks/finetune.py --source runs/quick/model.keras     # the README's first run

Both runs use the README's command (the quick preset) with ``--direction BtoA --epochs 10
--epochs-decay 0`` and go to ``runs/finetune/{scratch,init}``; the table printed at the end
(steps to reach each L1, and the curves) is what benchmarks/NOTES.md holds.
"""

import argparse
import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path("runs/finetune")
DEMO = Path(__file__).resolve().parents[1] / "pix2pix_tf" / "data" / "demo"
EPOCHS, PAIRS = 10, 64


def small_folder(folder):
    """64 training tiles (every ninth of the demo's, so all regions appear) and the test split."""
    if folder.exists():
        return folder
    (folder / "train").mkdir(parents=True)
    for path in sorted((DEMO / "train").glob("*.jpg"))[::9][:PAIRS]:
        shutil.copy(path, folder / "train" / path.name)
    shutil.copytree(DEMO / "test", folder / "test")
    return folder


def run(name, data, extra):
    run_dir = ROOT / name
    command = [sys.executable, "-m", "pix2pix_tf.train", "--data", str(data), "--direction",
               "BtoA", "--epochs", str(EPOCHS), "--epochs-decay", "0", "--run-dir",
               str(run_dir), "--quiet", *extra]
    if not (run_dir / "model.keras").exists():
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        print(f"{name}: {time.perf_counter() - start:.0f} s: {' '.join(command[1:])}")
    return [float(r["val_l1"]) for r in csv.DictReader((run_dir / "history.csv").open())]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True, help="the demo model to fine-tune from")
    args = p.parse_args(argv)
    data = small_folder(ROOT / "small")
    curves = {"scratch": run("scratch", data, []),
              "init": run("init", data, ["--init", args.source])}
    steps = [PAIRS * (e + 1) for e in range(EPOCHS)]
    print("| steps | " + " | ".join(map(str, steps)) + " |")
    print("|---" * (EPOCHS + 1) + "|")
    for name, values in curves.items():
        print(f"| {name} val L1 | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    final = curves["scratch"][-1]
    reached = next((s for s, v in zip(steps, curves["init"]) if v <= final), None)
    print(f"from scratch: val L1 {final:.4f} after {steps[-1]} steps; fine-tuned: reached in "
          f"{reached} steps ({reached / steps[-1]:.2f} of them)" if reached else
          f"fine-tuned never reached {final:.4f}")


if __name__ == "__main__":
    main()
