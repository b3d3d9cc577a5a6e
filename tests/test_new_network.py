"""The proof that a network is one table entry: a generator and a discriminator registered in
this one file, each with an option of its own that no shared config field knows, reach
``TrainConfig``, the train command's flags and help, a saved run and its model, and resume,
with no entry anywhere else (as tests/test_third_task.py does for a task).
"""

import dataclasses
import json

import keras
import numpy as np
import pytest
from test_cli import make_pairs

from pix2pix_tf.cli import train as train_cli
from pix2pix_tf.config import TrainConfig, preset
from pix2pix_tf.errors import OptionError
from pix2pix_tf.loading import load_model
from pix2pix_tf.networks import (
    DISCRIMINATORS,
    GENERATORS,
    Generator,
    register_discriminator,
    register_generator,
)


def two_conv(input_channels=3, output_channels=3, *, width=8, kernel=3, seed=None, name=None):
    """Two convolutions: a generator with options of its own.

    Args:
        width: channels of the hidden convolution. More text that the help leaves out.
        kernel: size of both convolutions
            (odd, so that the output keeps its place).
        seed: integer fixing the initial weights.
    """
    init = keras.initializers.RandomNormal(0.0, 0.02, seed=seed)
    image = keras.Input((None, None, input_channels), name="image")
    x = keras.layers.Conv2D(width, kernel, padding="same", activation="relu",
                            kernel_initializer=init, name="hidden")(image)
    x = keras.layers.Conv2D(output_channels, kernel, padding="same", activation="tanh",
                            kernel_initializer=init, name="out")(x)
    return Generator(image, x, size_multiple=1, name=name or "two_conv")


def one_layer(input_channels=3, target_channels=3, *, conditional=True, hidden=8, seed=None,
              name=None):
    """One strided convolution, then logits.

    Args:
        hidden: channels of the strided convolution.
    """
    init = keras.initializers.RandomNormal(0.0, 0.02, seed=seed)
    inputs = [keras.Input((None, None, input_channels), name="input_image"),
              keras.Input((None, None, target_channels), name="target_image")]
    x = keras.layers.Concatenate()(inputs) if conditional else inputs[1]
    x = keras.layers.Conv2D(hidden, 4, strides=2, padding="same", kernel_initializer=init)(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer=init)(x)
    return keras.Model(inputs if conditional else inputs[1], x, name=name or "one_layer")


@pytest.fixture(autouse=True, scope="module")
def registered():
    """The two networks in the tables for this file's tests (as ``@register_generator("two_conv",
    small=...)`` above the builder would put them for good), and out again afterwards."""
    register_generator("two_conv", two_conv, small=dict(width=4))
    register_discriminator("one_layer", one_layer, small=dict(hidden=4))
    yield
    del GENERATORS["two_conv"], DISCRIMINATORS["one_layer"]


ARGS = ["--generator", "two_conv", "--discriminator", "one_layer", "--width", "6",
        "--kernel", "5", "--hidden", "3", "--crop-size", "16", "--load-size", "20", "--quiet",
        "--samples", "1"]


def test_declared_options_are_flags_with_the_builders_help(capsys):
    with pytest.raises(SystemExit):
        train_cli.parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--width WIDTH channels of the hidden convolution (generator two_conv; default: 8)" \
        in text
    assert "--kernel KERNEL size of both convolutions (odd, so that the output keeps its " \
           "place) (generator two_conv; default: 3)" in text
    assert "--hidden HIDDEN channels of the strided convolution (discriminator one_layer; " \
           "default: 8)" in text
    assert "--seed SEED" in text and "integer fixing the initial weights" not in text


def test_a_config_routes_them_to_the_chosen_networks():
    config = train_cli.config_from_args(train_cli.parser().parse_args(ARGS))
    assert config.g_options == {"width": 6, "kernel": 5} and config.d_options == {"hidden": 3}
    assert config.generator_options() == {"width": 6, "kernel": 5, "seed": config.seed}
    assert {k: v for k, v in config.discriminator_options().items() if k == "hidden"} == \
        {"hidden": 3}
    again = TrainConfig.from_dict(json.loads(config.to_json()))
    assert again.g_options == config.g_options and again.d_options == config.d_options
    with pytest.raises(OptionError, match=r"--width is an option of generator two_conv, not "
                                          r"of the chosen unet_256 and patchgan"):
        preset("quick", width=6)
    with pytest.raises(ValueError, match="--kernel 9 does not apply to 'unet_256'"):
        TrainConfig(g_options={"kernel": 9})
    with pytest.raises(ValueError, match="'ngf' is a shared option: give it as --ngf"):
        TrainConfig(generator="two_conv", g_options={"ngf": 9})


def test_a_run_trains_saves_and_resumes_with_them(tmp_path, capsys):
    data = make_pairs(tmp_path / "data", n=2, size=20)
    run = tmp_path / "run"
    common = ["--data", str(data), "--run-dir", str(run), "--epochs-decay", "0", *ARGS]
    assert train_cli.main([*common, "--epochs", "1"]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["g_options"] == {"width": 6, "kernel": 5} and saved["d_options"] == {"hidden": 3}
    model = load_model(run / "model.keras")
    hidden = model.generator.get_layer("hidden")
    assert hidden.filters == 6 and hidden.kernel_size == (5, 5)
    assert model.discriminator.layers[-3].filters == 3
    assert train_cli.main([*common, "--epochs", "1"]) == 0  # the same run: taken as it is
    changed = [*common, "--epochs", "1"]
    changed[changed.index("--width") + 1] = "7"
    capsys.readouterr()
    assert train_cli.main(changed) == 2  # another width is another run: refused, not mixed
    assert "'width': 7" in capsys.readouterr().err.split("different settings (g_options: ")[1]
    out = load_model(run / "model.keras").generator(np.zeros((1, 16, 16, 3), "float32"))
    assert out.shape == (1, 16, 16, 3)
    changed[changed.index("--run-dir") + 1] = str(tmp_path / "fine")
    assert train_cli.main([*changed, "--init", str(run)]) == 2  # --init names the fix
    assert "Fix: train with --width 6 (the source's settings)" in capsys.readouterr().err


def test_runs_written_before_network_options_existed_resume(tmp_path):
    """A config.json without g_options / d_options (any run before them) is the same run as
    one with them empty; a real difference is still refused."""
    from pix2pix_tf.training import _check_resumable

    config = dataclasses.replace(preset("quick", run_dir=str(tmp_path)), g_options={})
    saved = config.to_dict()
    del saved["g_options"], saved["d_options"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    _check_resumable(tmp_path, config)
    with pytest.raises(ValueError, match=r"different settings \(ngf: 16 -> 8\)"):
        _check_resumable(tmp_path, dataclasses.replace(config, ngf=8))


def test_a_tasks_option_wins_over_a_networks_of_the_same_name(monkeypatch):
    """The instruction editor's ``text_dim`` stays the task's even where a registered network
    also declares a ``text_dim`` of its own."""
    def wordy(input_channels=3, output_channels=3, *, text_dim=4, seed=None):
        """A generator declaring a task's option name."""
        return two_conv(input_channels, output_channels, seed=seed)

    monkeypatch.setitem(GENERATORS, "wordy", GENERATORS["two_conv"].__class__(wordy, {}, "w"))
    from pix2pix_tf.config import _route_network_options

    routed = _route_network_options({"task": "instruct", "generator": "wordy", "text_dim": 8},
                                    shared={"task", "generator"})
    assert routed == {"task": "instruct", "generator": "wordy", "text_dim": 8}
    assert _route_network_options({"generator": "wordy", "text_dim": 8}, {"generator"}) == \
        {"generator": "wordy", "g_options": {"text_dim": 8}}  # translate has no text_dim
