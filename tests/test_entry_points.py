"""The public verbs, the ``python -m`` commands and the console scripts do not step on each
other: importing every module of the package leaves every public name as it was (so
``import pix2pix_tf.export`` cannot turn the ``export`` function into a module), and
``python -m pix2pix_tf`` lists and runs the commands."""

import importlib
import importlib.metadata
import pkgutil
import subprocess
import sys
import types

import pytest

import pix2pix_tf
from pix2pix_tf.__main__ import COMMANDS, main


def import_every_module():
    """Every module of the package (those needing an optional extra that is missing are
    counted and left out)."""
    imported, missing = [], []
    for info in pkgutil.walk_packages(pix2pix_tf.__path__, "pix2pix_tf."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as error:  # an optional dependency, never one of ours
            assert not (error.name or "").startswith("pix2pix_tf"), error
            missing.append(info.name)
            continue
        imported.append(info.name)
    return imported, missing


def test_importing_every_module_changes_no_public_name():
    before = {name: getattr(pix2pix_tf, name) for name in pix2pix_tf.__all__}
    imported, _ = import_every_module()
    assert {"pix2pix_tf.train", "pix2pix_tf.export", "pix2pix_tf.cli.train"} <= set(imported)
    for name, value in before.items():
        assert getattr(pix2pix_tf, name) is value, name
        assert not isinstance(getattr(pix2pix_tf, name), types.ModuleType), name
    from pix2pix_tf.exporters import export_model
    from pix2pix_tf.training import train

    assert pix2pix_tf.train is train and pix2pix_tf.export is export_model
    assert callable(pix2pix_tf.train) and callable(pix2pix_tf.export)


def test_python_m_package_lists_the_commands_and_runs_one(capsys):
    assert main([]) == 0
    listing = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in listing, name
        assert callable(importlib.import_module(COMMANDS[name][0]).main), name
    with pytest.raises(SystemExit) as stop:  # argparse's --help exits 0 after printing
        main(["predict", "--help"])
    assert stop.value.code == 0 and "--model" in capsys.readouterr().out
    assert main(["transmogrify"]) == 2
    assert "unknown command 'transmogrify'" in capsys.readouterr().err


@pytest.mark.slow
def test_python_m_pix2pix_tf_runs_as_a_program():
    done = subprocess.run([sys.executable, "-m", "pix2pix_tf"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert all(f"  {name} " in done.stdout for name in COMMANDS)


def test_console_scripts_name_the_commands_mains():
    scripts = {e.name: e for e in importlib.metadata.entry_points(group="console_scripts")
               if e.value.startswith("pix2pix_tf")}
    if not scripts:
        pytest.skip("pix2pix_tf is not installed with its entry points (pip install -e . adds "
                    "them)")
    expected = {"pix2pix-tf"} | {f"pix2pix-{n}" for n in
                                 ("train", "predict", "evaluate", "edit", "export", "serve")}
    assert expected <= set(scripts)
    for name in expected:
        assert callable(scripts[name].load()), name


def test_the_commands_cheap_checks_know_the_loaders_remote_prefixes():
    """cli.common spells the model prefixes itself (its checks run before TensorFlow loads);
    they must be the loader's."""
    from pix2pix_tf.cli.common import REMOTE_MODELS, model_missing
    from pix2pix_tf.loading import HUB_PREFIX, PRETRAINED_PREFIX, is_remote

    assert REMOTE_MODELS == (PRETRAINED_PREFIX, HUB_PREFIX)
    assert is_remote("hf://a/b") and is_remote("pretrained:sat2map") and not is_remote("m.keras")
    assert not model_missing("hf://a/b") and model_missing("no/such/model.keras")
