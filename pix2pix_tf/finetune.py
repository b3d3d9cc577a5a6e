"""Starting a run from a trained model's weights: ``train --init SOURCE``, fine-tuning.

SOURCE is anything :func:`pix2pix_tf.loading.load_model` takes: a ``.keras`` file or run
directory, ``pretrained:NAME`` (the authors' published generators) or ``hf://user/repo``, size-checked like
every model from elsewhere. The new run is built from its own options, as any run is. Then it
takes the source's weights:

- the generator's always: those the source translates with (its weight average, where it uses
  one), also into the new run's average;
- the discriminator's when the source has one of the same shapes, else a fresh one, said in one line.

The optimizers, the learning-rate schedule and the epochs start afresh. ``config.json`` records
the source (``init``), and ``notes["init"]`` records the file it resolved to. A fine-tuned run
checkpoints and resumes like any other: resuming loads its own checkpoint, not the source.

A source that cannot fit is refused before training, naming both sides and the fix: another
task, other channel counts, or a generator of other shapes (say ``ngf`` 64 against the run's
16). Crop size and direction are the data's business and may change freely: the networks are
fully convolutional.
"""

from pix2pix_tf.data.files import DataError
from pix2pix_tf.loading import PRETRAINED_PREFIX, is_remote, load_model, resolve
from pix2pix_tf.networks import Generator, as_generator
from pix2pix_tf.tasks.base import task_of


class InitError(DataError):
    """The ``--init`` source cannot start this run; the message names both sides and the fix."""


def initialise(model, config):
    """Loads ``config.init`` and copies its weights into the freshly built ``model`` (see the
    module docstring); records the source in ``config.notes`` and prints what was taken."""
    source = config.init
    trained = load_model(source)
    _check_task(model, trained, source)
    generator = as_generator(trained)
    _check_channels(model.generator, generator, source)
    _copy(generator, model.generator, source, "generator", _settings_hint(trained, config))
    if getattr(model, "generator_ema", None) is not None:
        _copy(generator, model.generator_ema, source, "generator", None)
    discriminator = _discriminator_verdict(model, trained, source)
    if discriminator == "from the source":
        _copy(trained.discriminator, model.discriminator, source, "discriminator", None)
    where = str(source) if is_remote(source) else str(resolve(source))
    config.notes = {**config.notes, "init": {"source": str(source), "file": where,
                                             "discriminator": discriminator}}
    print(f"Starting from {source}: its generator ({len(_learned(generator))} weights); "
          f"discriminator {discriminator}; a fresh optimizer and schedule, epoch 0.")
    return trained


def _check_task(model, trained, source):
    if isinstance(trained, Generator):
        return
    mine, theirs = task_of(model).name, task_of(trained).name
    if mine != theirs:
        raise InitError(f"--init {source} is a {type(trained).__name__} of task {theirs}, but "
                        f"this run trains task {mine} ({type(model).__name__}). Fix: train "
                        f"with --task {theirs}, or start from a model of task {mine}.")


def _check_channels(mine, theirs, source):
    for side in ("input_channels", "output_channels"):
        a, b = getattr(mine, side), getattr(theirs, side)
        if a != b:
            kind = side.split("_")[0]
            raise InitError(f"--init {source}: its generator takes {b}-channel {kind}s, this "
                            f"run's data has {a}. Fix: convert the data (--{side.replace('_', '-')}"
                            f" {b}) or start from a model trained on {a}-channel {kind}s.")


#: Variables that hold random-number state, not anything learned: a run keeps its own (where
#: its dropout sits may differ, e.g. the authors' models' reference layout).
RNG_STATES = ("rng_state", "seed_generator_state")


def _learned(network):
    return [w for w in network.weights if w.path.rsplit("/", 1)[-1] not in RNG_STATES]


def _shapes(network):
    return [tuple(w.shape) for w in _learned(network)]


def _copy(source_network, network, source, kind, hint):
    """Copies the weights of ``source_network`` into ``network``, or raises naming the first
    difference and ``hint`` (the options that would build the same network)."""
    theirs, mine = _shapes(source_network), _shapes(network)
    if theirs != mine:
        first = next((i for i, (a, b) in enumerate(zip(theirs, mine)) if a != b),
                     min(len(theirs), len(mine)))
        detail = (f"weight {first} ({_learned(network)[first].path}) is {mine[first]} here and "
                  f"{theirs[first]} there" if first < min(len(theirs), len(mine)) else
                  f"{len(mine)} weights here, {len(theirs)} there")
        raise InitError(f"--init {source}: its {kind} differs from this run's ({detail}). "
                        f"Fix: {hint or 'build the run with the source model settings'}.")
    for mine, theirs in zip(_learned(network), _learned(source_network)):
        mine.assign(theirs)


def _settings_hint(trained, config):
    """The train flags that would give this run the source's generator, from the options the
    source was trained with (None where it does not record them)."""
    recorded = getattr(trained, "training_config", None) or {}
    if not recorded:
        card = getattr(trained, "model_card", None) or {}
        return ("the authors' models are the paper's unet_256: train with --preset paper"
                if card else None)
    fields = ("generator", *config.GENERATOR_FIELDS)
    flags = [f"--{name.replace('_', '-')} {recorded[name]}" for name in fields
             if name in recorded and recorded[name] != getattr(config, name, None)
             and name != "inference_mode"]
    flags += [f"--{name.replace('_', '-')} {value}"  # the network's own options
              for name, value in (recorded.get("g_options") or {}).items()
              if config.g_options.get(name) != value]
    return f"train with {' '.join(flags)} (the source's settings)" if flags else None


def _discriminator_verdict(model, trained, source):
    """'from the source' when ``trained`` has a discriminator of ``model``'s shapes, else why
    the run's discriminator starts fresh."""
    if getattr(model, "discriminator", None) is None:
        return "none (this run trains none)"
    theirs = getattr(trained, "discriminator", None)
    if theirs is None or str(source).startswith(PRETRAINED_PREFIX):  # the authors' D: unpublished
        return "fresh (the source has none)"
    if _shapes(theirs) != _shapes(model.discriminator):
        return "fresh (the source's has other shapes)"
    return "from the source"

