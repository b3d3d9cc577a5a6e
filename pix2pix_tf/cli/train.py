"""Train pix2pix: ``python -m pix2pix_tf.train`` (see --help).

Every training flag is derived from the option fields (their help, group and allowed values) of
:class:`pix2pix_tf.config.TrainConfig` and of every task's ``Options``, and from what the
registered networks' builders declare, so the command line and the config cannot disagree;
``--help`` lists each task's options in a group of its own, and an option of another task
than ``--task`` is refused, naming the task it belongs to.
"""

import argparse
import dataclasses
import sys

from pix2pix_tf.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_DIVERGED,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    HelpFormatter,
    fail,
)
from pix2pix_tf.config import TrainConfig, network_options, preset, presets
from pix2pix_tf.errors import OptionError
from pix2pix_tf.options import choices_of
from pix2pix_tf.tasks import TASKS, get_task

EXAMPLES = """examples:
  python -m pix2pix_tf.train                                  # demo data, quick CPU preset
  python -m pix2pix_tf.train --preset paper                   # facades, the paper's recipe
  python -m pix2pix_tf.train --data ~/pairs --direction BtoA --run-dir runs/mine
  python -m pix2pix_tf.train --generator resnet_9blocks       # the reference ResNet generator
  python -m pix2pix_tf.train --objective L1 --run-dir runs/l1 # Table 1's L1-only baseline
  python -m pix2pix_tf.train --run-dir runs/mine              # again after Ctrl-C: resumes
  python -m pix2pix_tf.train --task instruct                  # image + instruction -> edit
  python -m pix2pix_tf.train --task instruct --data my_edits/ --columns \
      input=source,instruction=prompt,target=edited          # metadata.jsonl data

exit codes: 0 done, 1 error (e.g. a failed write), 2 bad input (or the run directory is in use), 3 loss
diverged (NaN/Inf), 130 interrupted
"""

GROUPS = {"data": "data", "networks": "networks", "objective": "objective and optimisation",
          "outputs": "outputs"}


def _add_options(group, fields):
    for f in fields:
        if not f.metadata.get("cli", True):
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata["help"]
        if f.type in (bool, "bool"):  # --x and --no-x, so that either undoes a preset's value
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                               default=None, help=f"{help_text} (default: "
                               f"{'on' if f.default else 'off'}; presets may change it)")
            continue
        kind = {"int": int, "float": float, "str": str}.get(getattr(f.type, "__name__", f.type),
                                                            str)
        default = None if f.name == "run_dir" else f.default
        shown = "runs/<preset>" if f.name == "run_dir" else default
        group.add_argument(flag, dest=f.name, type=kind, choices=choices_of(f), default=None,
                           help=f"{help_text} (default: {shown}; presets may change it)")


def parser():
    p = argparse.ArgumentParser(
        prog="python -m pix2pix_tf.train", description="Train a pix2pix model; resumable.",
        epilog=EXAMPLES, formatter_class=HelpFormatter)
    names = ", ".join(f"{name} ({task.name})" for name, (task, _) in presets().items())
    p.add_argument("--preset", choices=sorted(presets()), default=None,
                   help=f"base settings, each a task's: {names}. Default: the task's own "
                        "(quick = demo data, small nets, minutes on 2 CPU cores; paper = the "
                        "paper's facades recipe; instruct = the bundled edits)")
    p.add_argument("--fresh", action="store_true", help="delete the run directory first "
                                                        "instead of resuming")
    p.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")
    groups = {key: p.add_argument_group(title) for key, title in GROUPS.items()}
    shared = [f for f in dataclasses.fields(TrainConfig)]
    for key, group in groups.items():
        _add_options(group, [f for f in shared if f.metadata["group"] == key])
    for task in TASKS.values():
        group = p.add_argument_group(f"--task {task.name} options ({task.summary})")
        _add_options(group, dataclasses.fields(task.Options))
    _add_network_options(p, p.add_argument_group("networks' own options (declared by their "
                                                 "builders; for the networks named)"))
    return p


def _add_network_options(p, group):
    """A flag for every option a registered network's builder declares that no shared field
    covers (:func:`pix2pix_tf.config.network_options`)."""
    for name, networks in network_options().items():
        flag = "--" + name.replace("_", "-")
        if flag in p._option_string_actions:  # a shared or task option of the same name
            continue
        (default, help_text), *_ = networks.values()
        kinds = {}
        for kind, network in networks:
            kinds.setdefault(kind, []).append(network)
        where = "; ".join(f"{kind} {', '.join(names)}" for kind, names in kinds.items())
        if isinstance(default, bool):
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                               default=None, help=f"{help_text} ({where}; default: "
                               f"{'on' if default else 'off'})")
            continue
        kind = type(default) if isinstance(default, (int, float)) else str
        group.add_argument(flag, dest=name, type=kind, default=None,
                           help=f"{help_text} ({where}; default: {default})")


def config_from_args(args):
    """The config of the preset (``--preset``, else the task's own) with every given flag
    applied; another task's option is an :class:`~pix2pix_tf.errors.OptionError`."""
    given = {k: v for k, v in vars(args).items()
             if k not in ("preset", "fresh", "quiet") and v is not None}
    if args.preset and "task" not in given:
        given["task"] = presets()[args.preset][0].name
    task = get_task(given.get("task", "translate"))
    name = args.preset or task.default_preset
    given.setdefault("run_dir", f"runs/{name}")
    return preset(name, **given)


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except (OptionError, ValueError) as error:
        return fail(error, EXIT_BAD_INPUT)
    from pix2pix_tf.data import DataError
    from pix2pix_tf.distribute import WorkerLost
    from pix2pix_tf.rundir import RunWriteError
    from pix2pix_tf.training import TrainingDiverged, train

    try:
        result = train(config, fresh=args.fresh, verbose=2 if args.quiet else "auto")
    except KeyboardInterrupt:
        return fail(f"interrupted. Run the same command again to resume from the newest "
                    f"checkpoint in {config.run_dir}/checkpoints.", EXIT_INTERRUPTED)
    except TrainingDiverged as error:
        return fail(error, EXIT_DIVERGED)
    except WorkerLost as error:
        return fail(error, EXIT_ERROR)
    except RunWriteError as error:
        return fail(f"{error.strerror} Training stopped; the newest checkpoint in "
                    f"{config.run_dir}/checkpoints is intact. Free space (or fix the folder's "
                    "permissions) and run the same command again to resume.", EXIT_ERROR)
    except (DataError, ValueError) as error:
        return fail(error, EXIT_BAD_INPUT)
    print(f"done in {result['seconds']:.0f} s: model {result['model']}, samples "
          f"{result.get('samples')}, loss curves {result.get('loss_curves')}, "
          f"TensorBoard: tensorboard --logdir {config.run_dir}/logs")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
