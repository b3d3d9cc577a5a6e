"""Train pix2pix: ``python -m pix2pix_tf.train`` (see --help)."""

import argparse
import sys

from pix2pix_tf.cli import (EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_OK,
                            HelpFormatter, fail)
from pix2pix_tf.config import PRESETS, TrainConfig, preset

EXAMPLES = """examples:
  python -m pix2pix_tf.train                                  # demo data, quick CPU preset
  python -m pix2pix_tf.train --preset paper                   # facades, the paper's recipe
  python -m pix2pix_tf.train --data ~/pairs --direction BtoA --run-dir runs/mine
  python -m pix2pix_tf.train --objective L1 --run-dir runs/l1 # Table 1's L1-only baseline
  python -m pix2pix_tf.train --run-dir runs/mine              # again after Ctrl-C: resumes

exit codes: 0 done, 1 error, 2 bad input, 3 loss diverged (NaN/Inf), 130 interrupted
"""

def parser():
    p = argparse.ArgumentParser(
        prog="python -m pix2pix_tf.train", description="Train a pix2pix model; resumable.",
        epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick",
                   help="base settings: quick = demo data, small nets, ~10 min on 2 CPU cores; "
                        "paper = the paper's facades recipe")
    p.add_argument("--run-dir", help="where checkpoints, samples, logs and the model go "
                                     "(default runs/<preset>)")
    p.add_argument("--fresh", action="store_true", help="delete the run directory first "
                                                        "instead of resuming")
    p.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")
    d = p.add_argument_group("data")
    d.add_argument("--data", help="'demo', a folder (A|B images or A/ B/), or a TFDS name "
                                  "such as pix2pix/facades")
    d.add_argument("--direction", choices=["AtoB", "BtoA"])
    d.add_argument("--batch-size", type=int)
    d.add_argument("--load-size", type=int, help="resize before the random crop (paper 286)")
    d.add_argument("--crop-size", type=int, help="training crop (paper 256)")
    d.add_argument("--preprocess", choices=["resize_and_crop", "crop", "scale_width", "none"])
    d.add_argument("--input-channels", type=int, choices=[1, 2, 3, 4])
    d.add_argument("--output-channels", type=int, choices=[1, 2, 3, 4])
    d.add_argument("--skip-bad-files", action="store_true",
                   help="train on the good pairs, warning about bad files, instead of stopping")
    n = p.add_argument_group("networks")
    n.add_argument("--ngf", type=int, help="generator base filters (paper 64)")
    n.add_argument("--ndf", type=int, help="discriminator base filters (paper 64)")
    n.add_argument("--num-downs", type=int, help="U-Net halvings: 8 = unet_256, 7 = unet_128")
    n.add_argument("--no-skips", action="store_true", help="encoder-decoder (paper Table 2)")
    n.add_argument("--n-layers-d", type=int,
                   help="PatchGAN layers: 0 pixel, 1 16x16, 3 70x70 (paper), 5 286x286")
    n.add_argument("--norm", choices=["batch", "instance", "none"])
    n.add_argument("--no-dropout", action="store_true")
    o = p.add_argument_group("objective and optimisation")
    o.add_argument("--objective", choices=["L1", "GAN", "cGAN", "L1+GAN", "L1+cGAN"])
    o.add_argument("--gan-mode", choices=["vanilla", "lsgan"])
    o.add_argument("--lambda-l1", type=float, help="L1 weight (paper 100)")
    o.add_argument("--lr", type=float, help="Adam learning rate (paper 2e-4)")
    o.add_argument("--beta1", type=float)
    o.add_argument("--epochs", type=int, help="epochs at constant learning rate (paper 100)")
    o.add_argument("--epochs-decay", type=int, help="epochs of linear decay to 0 (paper 100)")
    o.add_argument("--seed", type=int)
    o.add_argument("--mixed-precision", choices=["mixed_bfloat16", "mixed_float16"],
                   help="compute in 16 bits, keep float32 weights: mixed_bfloat16 for CPUs "
                   "with AMX or AVX512-BF16 and TPUs (~1.9x faster on a recent Xeon), "
                   "mixed_float16 for NVIDIA GPUs (loss-scaled). Changes the numerics slightly")
    o.add_argument("--inference-mode", choices=["paper", "deterministic", "moving_average"])
    s = p.add_argument_group("outputs")
    s.add_argument("--sample-every", type=int, help="epochs between sample grids")
    s.add_argument("--samples", type=int, help="examples per sample grid")
    return p


def config_from_args(args):
    overrides = {}
    for key, value in vars(args).items():
        if value is None or key in ("preset", "fresh", "quiet", "no_skips", "no_dropout",
                                    "skip_bad_files"):
            continue
        overrides[key] = value
    if args.no_skips:
        overrides["skips"] = False
    if args.no_dropout:
        overrides["dropout"] = False
    if args.skip_bad_files:
        overrides["on_error"] = "skip"
    overrides.setdefault("run_dir", f"runs/{args.preset}")
    return preset(args.preset, **overrides)


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as error:
        return fail(error, EXIT_BAD_INPUT)
    from pix2pix_tf.data import DataError
    from pix2pix_tf.training import TrainingDiverged, train

    try:
        result = train(config, fresh=args.fresh, verbose=2 if args.quiet else "auto")
    except KeyboardInterrupt:
        return fail(f"interrupted. Run the same command again to resume from the newest "
                    f"checkpoint in {config.run_dir}/checkpoints.", EXIT_INTERRUPTED)
    except TrainingDiverged as error:
        return fail(error, EXIT_DIVERGED)
    except (DataError, ValueError) as error:
        return fail(error, EXIT_BAD_INPUT)
    print(f"done in {result['seconds']:.0f} s: model {result['model']}, samples "
          f"{result.get('samples')}, loss curves {result.get('loss_curves')}, "
          f"TensorBoard: tensorboard --logdir {config.run_dir}/logs")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
