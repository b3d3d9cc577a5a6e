"""``python -m pix2pix_tf``: the commands, one line each; ``python -m pix2pix_tf COMMAND ...``
runs one (the same as ``python -m pix2pix_tf.<command> ...``, or the ``pix2pix-<command>`` script
that ``pip install`` puts on the PATH)."""

import importlib
import sys

#: command -> (the module whose ``main(argv)`` runs it, what it does)
COMMANDS = {
    "train": ("pix2pix_tf.cli.train", "train a model (default: the quick preset on the demo "
              "data) into a resumable run directory"),
    "predict": ("pix2pix_tf.cli.predict", "translate images with a trained model"),
    "evaluate": ("pix2pix_tf.cli.evaluate", "score a model on a test split (L1, PSNR, SSIM, "
                 "texture measures), beside baselines"),
    "edit": ("pix2pix_tf.cli.edit", "edit images as a text instruction says (--task instruct "
             "models)"),
    "export": ("pix2pix_tf.cli.export", "export a model: SavedModel for TF Serving, TFLite, "
               "ONNX, a web page; each verified"),
    "serve": ("pix2pix_tf.cli.serve", "serve an exported web page on this machine"),
    "make_pairs": ("pix2pix_tf.cli.make_pairs", "make synthetic training pairs from a folder "
                   "of photos"),
    "make_demo": ("pix2pix_tf.cli.make_demo", "regenerate the bundled demo tiles"),
}


def usage():
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m pix2pix_tf COMMAND [--help] ...", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "train, predict, evaluate, edit, export and serve are also "
              "`python -m pix2pix_tf.<command>` and the scripts `pix2pix-<command>`."]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0].replace("-", "_"), argv[1:]
    if name not in COMMANDS:
        print(f"pix2pix_tf: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return importlib.import_module(COMMANDS[name][0]).main(rest)


if __name__ == "__main__":
    sys.exit(main())
