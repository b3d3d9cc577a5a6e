"""``train --init``: a new run starts from a trained model's weights (a run directory, a .keras
file, one of the authors' models, or the Hugging Face Hub through a local cache), with a fresh
optimizer; sources that cannot fit are refused naming both sides."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import hub_cache, tiny_editor
from test_cli import TINY, history, make_pairs

from pix2pix_tf.cli import train as train_cli
from pix2pix_tf.data import DataError, open_source
from pix2pix_tf.finetune import initialise
from pix2pix_tf.training import build_model

FIXTURES = Path(__file__).parent / "fixtures"


def same_weights(a, b):
    """Equal learned weights (each run keeps its own random-number states)."""
    a, b = ([w for w in n.weights if not w.path.endswith("rng_state")] for n in (a, b))
    return len(a) == len(b) and all(np.array_equal(u.numpy(), v.numpy()) for u, v in zip(a, b))


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("source")
    code = train_cli.main(["--data", str(make_pairs(root / "data")), "--run-dir",
                           str(root / "run"), "--epochs", "1", "--epochs-decay", "0",
                           "--g-ema", "0.5", *TINY])
    assert code == 0
    return root / "run"


def config_of(argv):
    return train_cli.config_from_args(train_cli.parser().parse_args(argv))


def built(config, data):
    """The run's model as training builds it, before the --init weights: for comparisons."""
    pairs = open_source(data, "train")
    return build_model(config, 3, 3, 4, pairs)


def test_init_from_a_run_takes_its_weights_and_starts_afresh(source_run, tmp_path, capsys):
    data = make_pairs(tmp_path / "other", seed=5)  # other images: fine-tuning
    run = tmp_path / "tuned"
    code = train_cli.main(["--data", str(data), "--run-dir", str(run), "--epochs", "1",
                           "--epochs-decay", "0", "--g-ema", "0.5", "--init", str(source_run),
                           *TINY])
    assert code == 0
    out = capsys.readouterr().out
    assert f"Starting from {source_run}" in out and "discriminator from the source" in out
    saved = json.loads((run / "config.json").read_text())
    assert saved["init"] == str(source_run)
    assert saved["notes"]["init"]["file"] == str(source_run / "model.keras")
    assert [r["epoch"] for r in history(run)] == ["0"]  # epochs from 0
    tuned = keras.models.load_model(run / "model.keras")
    assert int(tuned.g_optimizer.iterations) == 4  # a fresh optimizer: this run's steps only
    # Before its first step, the run held the source's weights: the generator it translates
    # with (the average here) in both its networks, and the discriminator.
    source = keras.models.load_model(source_run / "model.keras")
    config = config_of(["--data", str(data), "--init", str(source_run), "--g-ema", "0.5", *TINY])
    fresh = built(config, data)
    assert not same_weights(fresh.generator, source.inference_generator)
    initialise(fresh, config)
    assert same_weights(fresh.generator, source.inference_generator)
    assert same_weights(fresh.generator_ema, source.inference_generator)
    assert same_weights(fresh.discriminator, source.discriminator)


def test_a_fine_tuned_run_resumes_like_any_other(source_run, tmp_path, capsys):
    data = make_pairs(tmp_path / "other", seed=5)
    args = ["--data", str(data), "--run-dir", str(tmp_path / "tuned"), "--epochs-decay", "0",
            "--init", str(source_run / "model.keras"), *TINY]
    assert train_cli.main([*args, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert train_cli.main([*args, "--epochs", "2"]) != 0  # other settings: refused as ever
    assert "different settings" in capsys.readouterr().err
    assert train_cli.main([*args, "--epochs", "1"]) == 0  # the same: nothing left to do
    assert "Starting from" not in capsys.readouterr().out  # its own checkpoint, not the source


def test_mismatched_sources_are_refused_naming_both_sides_and_the_fix(source_run, tmp_path,
                                                                      capsys):
    data = make_pairs(tmp_path / "other", seed=5)
    base = ["--data", str(data), "--epochs", "1", "--epochs-decay", "0", "--init",
            str(source_run), *TINY]
    assert train_cli.main([*base, "--run-dir", str(tmp_path / "a"), "--ngf", "8"]) == 2
    err = capsys.readouterr().err
    assert "its generator differs from this run's" in err and "--ngf 4" in err
    assert train_cli.main([*base, "--run-dir", str(tmp_path / "b"), "--input-channels",
                           "1"]) == 2
    err = capsys.readouterr().err
    assert "takes 3-channel inputs, this run's data has 1" in err
    # A discriminator of other shapes starts fresh, said in one line.
    assert train_cli.main([*base, "--run-dir", str(tmp_path / "c"), "--n-layers-d", "2"]) == 0
    assert "discriminator fresh (the source's has other shapes)" in capsys.readouterr().out
    # Another task's model.
    editor = tiny_editor(["make", "it", "gray"], 4)
    editor.save(tmp_path / "editor.keras")
    assert train_cli.main([*base[:-len(TINY)], *TINY, "--init", str(tmp_path / "editor.keras"),
                           "--run-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "of task instruct, but this run trains task translate" in err
    assert "--task instruct" in err
    with pytest.raises(DataError, match="no such model file"):
        raise_for(tmp_path / "missing.keras", data)
    # The source's own directory as the new run's: refused before anything is written.
    assert train_cli.main([*base, "--run-dir", str(source_run)]) == 2
    assert "is in this run's --run-dir" in capsys.readouterr().err
    assert (source_run / "model.keras").is_file()


def raise_for(source, data):
    config = config_of(["--data", str(data), "--init", str(source), *TINY])
    initialise(built(config, data), config)


def test_init_from_the_authors_model_keeps_a_fresh_discriminator(tmp_path, capsys):
    data = make_pairs(tmp_path / "data", size=256, n=1)
    pth = FIXTURES / "torch_unet" / "unet_zip.pth"  # the reference UnetGenerator, ngf 2
    code = train_cli.main(["--data", str(data), "--run-dir", str(tmp_path / "run"),
                           "--generator", "unet_256", "--ngf", "2", "--ndf", "4",
                           "--n-layers-d", "1", "--epochs", "1", "--epochs-decay", "0",
                           # the authors' U-Net has no noise input (the quick preset's has),
                           # and its phases are free
                           "--pixel-noise", "0", "--up-phases", "free",
                           "--init", f"pretrained:{pth}", "--quiet", "--samples", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "discriminator fresh (the source has none)" in out
    # Wrong settings: the hint names the authors' network.
    code = train_cli.main(["--data", str(data), "--run-dir", str(tmp_path / "bad"), "--epochs",
                           "1", "--init", f"pretrained:{pth}", *TINY])
    assert code == 2 and "--preset paper" in capsys.readouterr().err


def test_init_from_the_hub_through_a_local_cache(source_run, tmp_path):
    """``hf://user/repo`` as Keras saves it there (a model folder), found in a populated Hub
    cache with the Hub library offline."""
    pytest.importorskip("huggingface_hub")
    hub_cache(tmp_path / "hub", "someone/tiny",
              model=keras.models.load_model(source_run / "model.keras"))
    data = make_pairs(tmp_path / "data", seed=7)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hub"))
    result = subprocess.run(
        [sys.executable, "-m", "pix2pix_tf.train", "--data", str(data), "--run-dir",
         str(tmp_path / "run"), "--epochs", "1", "--epochs-decay", "0", "--init",
         "hf://someone/tiny", *TINY], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Starting from hf://someone/tiny" in result.stdout
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["init"] == "hf://someone/tiny"
    # A repository missing from the cache (offline): one line naming it.
    result = subprocess.run(
        [sys.executable, "-m", "pix2pix_tf.train", "--data", str(data), "--run-dir",
         str(tmp_path / "run2"), "--init", "hf://someone/absent", *TINY], env=env,
        capture_output=True, text=True)
    assert result.returncode == 2 and "hf://someone/absent: could not fetch it" in result.stderr
