"""Options declared once: a dataclass field with its help text, command-line group and allowed
values. The shared training options (:class:`pix2pix_tf.config.TrainConfig`) and every task's
own (``Task.Options``) are declared this way, and the command line derives its flags from them.
"""

import dataclasses
import math
import numbers
import os
from dataclasses import field


def option(default, help, group="outputs", choices=None, cli=True):
    """A config field with its help text, command-line group and allowed values (a tuple, or a
    function returning one for tables that can grow)."""
    kwargs = {"default_factory": default} if callable(default) else {"default": default}
    return field(**kwargs, metadata={"help": help, "group": group, "choices": choices,
                                     "cli": cli})


def choices_of(f):
    """The allowed values of option field ``f`` (None: any)."""
    choices = f.metadata.get("choices")
    return choices() if callable(choices) else choices


#: Option annotations whose values are checked, and what the messages call them.
_TYPES = {int: "an integer", float: "a number", str: "text", bool: "true or false",
          dict: "a mapping"}


def check_type(f, value):
    """Raises ``ValueError`` when ``value`` is not of option field ``f``'s declared type (int,
    float, str, bool or dict; an int is a float too, a bool is not a number, a path is text;
    None only where the default is None): a config read from a file may hold anything."""
    kind = f.type if isinstance(f.type, type) else {t.__name__: t for t in _TYPES}.get(f.type)
    if kind not in _TYPES or (value is None and f.default is None):
        return
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)  # NumPy's too
    if kind is float:
        fits = number and math.isfinite(value)
    elif kind is int:
        fits = number and isinstance(value, numbers.Integral)
    elif kind is str:  # a path is text too (it is written to configs as text)
        fits = isinstance(value, (str, os.PathLike))
    else:
        fits = isinstance(value, kind)
    if not fits:
        raise ValueError(f"{f.name} must be {_TYPES[kind]}, got {value!r:.80} "
                         f"({type(value).__name__}).")


def check_choices(options):
    """Raises ``ValueError`` for a field of dataclass instance ``options`` whose value is not of
    its type (:func:`check_type`) or not among its allowed ones."""
    for f in dataclasses.fields(options):
        check_type(f, getattr(options, f.name))
    for f in dataclasses.fields(options):
        allowed = choices_of(f)
        value = getattr(options, f.name)
        if allowed is not None and value is not None and value not in allowed:
            raise ValueError(f"{f.name} must be one of {', '.join(map(str, allowed))}; got "
                             f"{value!r}.")


def flag(name):
    """The command-line flag of option ``name``: ``text_dim`` -> ``--text-dim``."""
    return "--" + name.replace("_", "-")


def defaults(options_class):
    """``{name: default}`` of a dataclass's fields."""
    values = {}
    for f in dataclasses.fields(options_class):
        if f.default is not dataclasses.MISSING:
            values[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
    return values
