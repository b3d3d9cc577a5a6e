"""Networks by name: the generator and discriminator tables, and the one place that builds them.

    GENERATORS      unet_256, unet_128, unet (any num_downs), resnet_9blocks, resnet_6blocks
    DISCRIMINATORS  patchgan (n_layers), pixelgan, multiscale (pix2pixHD)

Like the reference code's ``define_G`` / ``define_D``, a new architecture is one builder function
plus one table entry::

    from pix2pix_tf.networks import Generator, register_generator

    @register_generator("tiny")
    def tiny(input_channels=3, output_channels=3, *, ngf=8, seed=None):
        image = keras.Input((None, None, input_channels), name="image")
        ...
        return Generator(image, outputs, size_multiple=4)

after which ``TrainConfig(generator="tiny")``, ``--generator tiny`` on the command line,
predict, evaluate and export all work with it. A generator builder takes
``(input_channels, output_channels, **options)`` and returns a :class:`Generator`, which states
its contract (inputs by name, channels, size multiple). A discriminator builder takes
``(input_channels, target_channels, *, conditional, **options)`` and returns a model whose
output is a logits map, or a list of per-scale lists ``[features..., logits]``.
"""

import dataclasses
import inspect

from pix2pix_tf.networks.contract import (
    IMAGE,
    Generator,
    as_generator,
    clone_generator,
    image_of,
)
from pix2pix_tf.networks.patchgan import (
    multiscale_discriminator,
    patchgan_discriminator,
    receptive_field,
)
from pix2pix_tf.networks.resnet import resnet_generator
from pix2pix_tf.networks.unet import UPSAMPLING, unet_generator

__all__ = ["DISCRIMINATORS", "GENERATORS", "Generator", "IMAGE", "UPSAMPLING", "as_generator",
           "build_discriminator", "build_generator", "clone_generator", "declared_options", "image_of",
           "multiscale_discriminator", "patchgan_discriminator",
           "receptive_field", "register_discriminator", "register_generator",
           "resnet_generator", "unet_generator"]


@dataclasses.dataclass(frozen=True)
class Entry:
    """A table entry: a builder, the options its name fixes (``unet_256``: num_downs=8), and the
    options of its smallest useful build (``small``), with which the contract tests build,
    train, save, load and export every registered network."""

    builder: callable
    fixed: dict
    summary: str
    small: dict = dataclasses.field(default_factory=dict)

    def options(self):
        """Keyword options the entry accepts (the builder's, less the fixed ones)."""
        parameters = inspect.signature(self.builder).parameters
        return [name for name, p in parameters.items()
                if p.kind == p.KEYWORD_ONLY and name not in self.fixed]

    def declared(self):
        """``{option: (default, help)}``: the training options the builder declares, i.e. its
        keyword options with a default, less the fixed ones and those the package supplies
        itself (:data:`SUPPLIED`). The help is the option's line in the builder's docstring
        ``Args:`` section. These reach ``TrainConfig`` and the train command with no other
        entry anywhere (:meth:`pix2pix_tf.config.TrainConfig.create`)."""
        parameters = inspect.signature(self.builder).parameters
        helps = _argument_help(inspect.getdoc(self.builder) or "")
        return {name: (parameters[name].default, helps.get(name, name.replace("_", " ")))
                for name in self.options()
                if name not in SUPPLIED and parameters[name].default is not inspect.Parameter.empty}

    def build(self, kind, name, *channels, **options):
        for key, value in self.fixed.items():
            if options.get(key, value) != value:
                raise ValueError(f"{kind} {name!r} has {key}={value}; got {key}={options[key]}. "
                                 f"Choose another {kind} (e.g. 'unet' takes any num_downs) or "
                                 f"leave {key} unset.")
            options.pop(key, None)
        unknown = sorted(set(options) - set(self.options()))
        if unknown:
            raise ValueError(f"{kind} {name!r} does not take {', '.join(unknown)}; it takes "
                             f"{', '.join(self.options()) or 'no options'}.")
        return self.builder(*channels, **self.fixed, **options)


#: Builder options the package passes itself, never training options: the task's conditioning
#: hook, seeds, names, whether D sees the input (the objective says), and the fixed image size
#: that exports to static-shape runtimes ask for.
SUPPLIED = frozenset({"conditioning", "seed", "name", "conditional", "image_size"})

GENERATORS = {}
DISCRIMINATORS = {}


def _argument_help(doc):
    """``{argument: first sentence of its text}`` from a Google-style docstring's ``Args:``."""
    helps, name, inside = {}, None, False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped == "Args:":
            inside = True
            continue
        if not inside:
            continue
        if stripped and not line.startswith(" "):  # the next section (Returns:, ...)
            break
        head, colon, text = stripped.partition(": ")
        if colon and line.startswith("    ") and not line.startswith("     ") \
                and head.isidentifier():
            name = head
            helps[name] = text
        elif name and stripped:
            helps[name] += " " + stripped
    return {key: value.split(". ")[0].rstrip(".") for key, value in helps.items()}


def declared_options(kind):
    """``{option: {network name: (default, help)}}`` over every registered ``kind``
    ('generator' or 'discriminator')."""
    options = {}
    for name, entry in (GENERATORS if kind == "generator" else DISCRIMINATORS).items():
        for option, declaration in entry.declared().items():
            options.setdefault(option, {})[name] = declaration
    return options


def _register(table, kind, name, builder, summary, small, fixed):
    def add(function):
        if name in table and table[name].builder is not function:
            raise ValueError(f"a {kind} named {name!r} is already registered.")
        doc = summary or (inspect.getdoc(function) or name).splitlines()[0]
        table[name] = Entry(function, dict(fixed), doc, dict(small or {}))
        return function

    return add(builder) if builder is not None else add


def register_generator(name, builder=None, *, summary=None, small=None, **fixed):
    """Adds a generator builder to :data:`GENERATORS` (usable as a decorator).

    ``fixed`` options are bound to the name, as ``num_downs=8`` is to ``unet_256``. ``small``:
    options of a small build for the tests (``ngf=2``; default: the builder's defaults), which
    build every registered generator with them.
    """
    return _register(GENERATORS, "generator", name, builder, summary, small, fixed)


def register_discriminator(name, builder=None, *, summary=None, small=None, **fixed):
    """Adds a discriminator builder to :data:`DISCRIMINATORS` (usable as a decorator);
    ``small`` as for :func:`register_generator`."""
    return _register(DISCRIMINATORS, "discriminator", name, builder, summary, small, fixed)


def _entry(table, kind, name):
    if name not in table:
        raise ValueError(f"Unknown {kind} {name!r}; choose one of {', '.join(sorted(table))}.")
    return table[name]


def build_generator(name, input_channels=3, output_channels=3, **options):
    """The generator registered as ``name``; a clear error for unknown names or options."""
    generator = _entry(GENERATORS, "generator", name).build(
        "generator", name, input_channels, output_channels, **options)
    if not isinstance(generator, Generator):
        raise TypeError(f"The builder of generator {name!r} returned a "
                        f"{type(generator).__name__}; generator builders must return a "
                        "pix2pix_tf.networks.Generator, which states the size multiple.")
    return generator


def build_discriminator(name, input_channels=3, target_channels=3, **options):
    """The discriminator registered as ``name``; a clear error for unknown names or options."""
    return _entry(DISCRIMINATORS, "discriminator", name).build(
        "discriminator", name, input_channels, target_channels, **options)


def accepted_options(table, name):
    """The builder options network ``name`` of ``table`` takes (its fixed ones included)."""
    entry = _entry(table, "generator" if table is GENERATORS else "discriminator", name)
    return set(entry.options()) | set(entry.fixed)


def options_for(table, name, values, defaults, label=str):
    """The subset of ``values`` (a config's network options) that network ``name`` takes.

    An option it does not take is left out if it holds its default, and is an error otherwise
    (``label(option)`` names it there): a deliberately set option is never ignored.
    """
    entry = _entry(table, "generator" if table is GENERATORS else "discriminator", name)
    accepted = set(entry.options()) | set(entry.fixed)
    chosen = {}
    for key, value in values.items():
        if key in entry.fixed and value is not None and value != entry.fixed[key]:
            raise ValueError(f"{name!r} has {label(key)} {entry.fixed[key]}; got {value!r}. "
                             "Choose a network that takes it (e.g. generator 'unet' takes any "
                             f"num_downs) or leave {label(key)} unset.")
        if key in accepted:
            if value is not None:
                chosen[key] = value
        elif value is not None and value != defaults.get(key):
            takes = sorted(label(k) for k in accepted if k in values) or \
                sorted(label(k) for k in entry.declared())
            raise ValueError(f"{label(key)} {value!r} does not apply to {name!r}, which takes "
                             f"{', '.join(takes) or 'no options'}.")
    return chosen


register_generator("unet_256", unet_generator, num_downs=8, small=dict(ngf=2),
                   summary="the paper's U-Net, 8 halvings (sizes divisible by 256)")
register_generator("unet_128", unet_generator, num_downs=7, small=dict(ngf=2),
                   summary="U-Net with 7 halvings (sizes divisible by 128)")
register_generator("unet", unet_generator, small=dict(ngf=4, num_downs=3),
                   summary="U-Net with any num_downs (sizes divisible by 2**num_downs)")
register_generator("resnet_9blocks", resnet_generator, n_blocks=9, small=dict(ngf=4),
                   summary="reference ResNet generator, 9 residual blocks (sizes divisible by 4)")
register_generator("resnet_6blocks", resnet_generator, n_blocks=6, small=dict(ngf=4),
                   summary="reference ResNet generator, 6 residual blocks (sizes divisible by 4)")
register_discriminator("patchgan", patchgan_discriminator, small=dict(ndf=4, n_layers=1),
                       summary="the paper's PatchGAN; n_layers 3 = 70x70 (1..5: 16 to 286)")
register_discriminator("pixelgan", patchgan_discriminator, n_layers=0, small=dict(ndf=4),
                       summary="the 1x1 PixelGAN (Table 3)")
register_discriminator("multiscale", multiscale_discriminator,
                       small=dict(ndf=4, n_layers=1, num_scales=2),
                       summary="pix2pixHD: the PatchGAN at num_scales image scales")
