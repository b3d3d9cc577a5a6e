"""The train / predict / evaluate commands at tiny sizes."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import max_weight_diff
from PIL import Image

from pix2pix_tf.callbacks import checkpoints, save_atomically
from pix2pix_tf.cli import evaluate, predict
from pix2pix_tf.cli import train as train_cli
from pix2pix_tf.config import preset
from pix2pix_tf.training import TrainingDiverged, train

TINY = ["--crop-size", "32", "--load-size", "36", "--generator", "unet", "--num-downs", "5", "--ngf", "4", "--ndf",
        "4", "--n-layers-d", "1", "--quiet", "--samples", "2"]


def make_pairs(folder, n=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("test", 2)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(np.concatenate([a, 255 - a], 1)).save(folder / split / f"{i}.png")
    return folder


def assert_same_run(run_dir, reference_dir):
    """A resumed run ended exactly like an uninterrupted one: history, every step's losses and
    the final weights."""
    assert history(run_dir) == history(reference_dir)
    assert history(run_dir, "steps.csv") == history(reference_dir, "steps.csv")
    a = keras.models.load_model(Path(reference_dir) / "model.keras")
    b = keras.models.load_model(Path(run_dir) / "model.keras")
    assert max_weight_diff(a, b) == 0.0


def history(run_dir, name="history.csv"):
    with open(Path(run_dir) / name, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    data = make_pairs(root / "data")
    code = train_cli.main(["--data", str(data), "--run-dir", str(root / "run"), "--epochs", "1",
                           "--epochs-decay", "1", *TINY])
    assert code == 0
    return root


def test_train_leaves_everything_in_the_run_directory(trained):
    run = trained / "run"
    assert (run / "model.keras").is_file() and (run / "loss_curves.png").is_file()
    assert [e for e, _ in checkpoints(run / "checkpoints")] == [1, 2]
    assert {p.name for p in (run / "samples").iterdir()} == {"epoch_0001.png", "epoch_0002.png",
                                                             "final.png"}
    assert json.loads((run / "config.json").read_text())["ngf"] == 4
    rows = history(run)
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert {"d_loss", "g_l1", "g_gan", "g_total", "d_real_acc", "d_fake_acc", "val_l1",
            "val_psnr", "val_ssim", "val_grid", "val_sharp", "val_swd", "lr"} <= set(rows[0])
    assert float(rows[0]["lr"]) == pytest.approx(2e-4) and float(rows[1]["lr"]) == pytest.approx(1e-4)
    assert all(float(r["val_grid"]) > 0 and float(r["val_sharp"]) > 0 for r in rows)
    assert all(float(r["val_swd"]) > 0 for r in rows) and rows[0]["val_swd"] != rows[1]["val_swd"]
    # every step's own losses (4 pairs, batch 1: 4 steps an epoch), whose means are the epochs'
    steps = history(run, "steps.csv")
    assert [int(r["step"]) for r in steps] == list(range(1, 9))
    assert [int(r["epoch"]) for r in steps] == [0] * 4 + [1] * 4
    for epoch, row in enumerate(rows):
        for key in ("d_loss", "g_l1", "g_gan", "g_total", "d_real_acc", "d_fake_acc"):
            mean = np.mean([float(s[key]) for s in steps if int(s["epoch"]) == epoch])
            assert mean == pytest.approx(float(row[key]), rel=1e-5), key
    assert len({s["g_l1"] for s in steps}) == 8  # per-step values, not running means
    # TensorBoard: scalars and sample images
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = EventAccumulator(str(run / "logs" / "train")).Reload().Tags()["tensors"]
    assert any("g_l1" in t for t in scalars)
    per_step = EventAccumulator(str(run / "logs" / "steps")).Reload()
    assert [e.step for e in per_step.Tensors("g_l1")] == list(range(1, 9))
    images = EventAccumulator(str(run / "logs" / "samples")).Reload().Tags()["tensors"]
    assert any("samples" in t for t in images)
    model = keras.models.load_model(run / "model.keras")
    assert model.generator.inputs[0].shape[-1] == 3


def test_help_has_examples_and_bad_options_fail(capsys, tmp_path):
    for module in (train_cli, predict, evaluate):
        with pytest.raises(SystemExit) as exit_info:
            module.main(["--help"])
        assert exit_info.value.code == 0
        assert "examples:" in capsys.readouterr().out
    code = train_cli.main(["--crop-size", "100", "--run-dir", str(tmp_path / "r")])
    assert code == 2 and "crop_size 100 is not divisible by 256" in capsys.readouterr().err
    code = train_cli.main(["--data", str(tmp_path / "missing"), "--run-dir", str(tmp_path / "r"),
                           *TINY])
    assert code == 2 and "no such folder" in capsys.readouterr().err


def command(data, run_dir, epochs):
    return [sys.executable, "-m", "pix2pix_tf.train", "--data", str(data), "--run-dir",
            str(run_dir), "--epochs", str(epochs), "--epochs-decay", str(epochs), *TINY,
            "--crop-size", "64", "--load-size", "72", "--num-downs", "6"]


@pytest.mark.slow
def test_ctrl_c_then_resume_matches_uninterrupted_run(tmp_path):
    data = make_pairs(tmp_path / "data", n=24, size=64)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    straight = subprocess.run(command(data, tmp_path / "straight", 2), env=env,
                              capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr[-2000:]

    interrupted = tmp_path / "interrupted"
    # A shell starts background jobs with SIGINT ignored, and Python then keeps it ignored: give
    # the trainer the default disposition, as a terminal's Ctrl-C would find it.
    process = subprocess.Popen(command(data, interrupted, 2), env=env, stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not checkpoints(interrupted / "checkpoints") and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err[-2000:]
    assert "Run the same command again to resume" in err
    assert "Ctrl-C: stopping after this step" in err  # stopped between steps, from Python
    done = checkpoints(interrupted / "checkpoints")[-1][0]
    assert 1 <= done < 4 and not (interrupted / "model.keras").exists()

    resumed = subprocess.run(command(data, interrupted, 2), env=env, capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"from epoch_{done:04d}.keras" in resumed.stdout
    assert_same_run(interrupted, tmp_path / "straight")


def test_resuming_with_other_settings_is_refused(trained, capsys):
    code = train_cli.main(["--data", str(trained / "data"), "--run-dir", str(trained / "run"),
                           "--epochs", "1", "--epochs-decay", "1", *TINY, "--ngf", "8"])
    assert code == 2 and "ngf: 4 -> 8" in capsys.readouterr().err


def test_checkpoint_write_is_atomic(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = tmp_path / "epoch_0001.keras"
    save_atomically(model, path)
    good = path.read_bytes()

    class Crash(Exception):
        pass

    def crashing_save(target, *args, **kwargs):
        Path(target).write_bytes(b"half a zip")
        raise Crash()

    model.save = crashing_save
    with pytest.raises(Crash):
        save_atomically(model, path)
    assert path.read_bytes() == good
    keras.models.load_model(path)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    config = preset("quick", run_dir=str(tmp_path / "run"), crop_size=32, load_size=36,
                    generator="unet", num_downs=5, ngf=4, ndf=4, n_layers_d=1, epochs=2, epochs_decay=0, samples=0)
    train(config, train_data=(x, -x), test_data=(x, -x), verbose=0)  # two good epochs
    first = checkpoints(tmp_path / "run" / "checkpoints")
    # corrupt data now: continuing must stop at the first batch, saving nothing
    config_more = preset("quick", **{**config.__dict__, "epochs": 2, "epochs_decay": 2})
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    (tmp_path / "run" / "config.json").unlink()  # allow the longer schedule
    with pytest.raises(TrainingDiverged, match=r"became nan at epoch 3, batch 1.*epoch_0002\.keras"):
        train(config_more, train_data=(bad, -x), test_data=(x, -x), verbose=0)
    assert checkpoints(tmp_path / "run" / "checkpoints") == first
    model = keras.models.load_model(first[-1][1])
    assert all(np.isfinite(w.numpy()).all() for w in model.weights)


def test_predict_any_size_tiles_and_bad_files(trained, tmp_path, capsys):
    images = tmp_path / "in"
    images.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)).save(images / "odd.png")
    Image.fromarray(rng.integers(0, 256, (90, 140), dtype=np.uint8)).save(images / "gray.jpg")
    (images / "broken.png").write_bytes(b"")
    model = str(trained / "run" / "model.keras")
    code = predict.main(["--model", model, "--input", str(images), "--output", str(tmp_path / "o"),
                         "--tile", "64", "--inference-mode", "deterministic"])
    err = capsys.readouterr().err
    assert code == 2 and "broken.png: empty file" in err
    assert Image.open(tmp_path / "o" / "odd.png").size == (50, 37)
    assert Image.open(tmp_path / "o" / "gray.png").size == (140, 90)  # tiled: 90x140 > 64
    assert not (tmp_path / "o" / "broken.png").exists()
    code = predict.main(["--model", model, "--input", str(images / "odd.png"), "--output",
                         str(images)])
    assert code == 2 and "would overwrite an input" in capsys.readouterr().err
    code = predict.main(["--model", str(images / "odd.png"), "--input", str(images),
                         "--output", str(tmp_path / "o2")])
    assert code == 2 and "not a loadable Keras model" in capsys.readouterr().err


def test_tiled_translation_blends_seamlessly():
    from pix2pix_tf.inference import translate
    from pix2pix_tf.networks import Generator

    inputs = keras.Input((None, None, 3), name="image")
    identity = Generator(inputs, keras.layers.Activation("linear")(inputs), size_multiple=16)
    image = np.random.default_rng(0).uniform(-1, 1, (100, 150, 3)).astype("float32")
    np.testing.assert_allclose(translate(identity, image, tile=32), image, atol=1e-6)
    np.testing.assert_allclose(translate(identity, image, tile=1024), image, atol=1e-6)


def test_evaluate_reports_model_and_baselines(trained, capsys):
    out = trained / "report"
    model = str(trained / "run" / "model.keras")
    code = evaluate.main(["--model", model, "--data", str(trained / "data"), "--crop-size", "32",
                          "--compare", str(trained / "run" / "checkpoints" / "epoch_0001.keras"),
                          "--output", str(out), "--inference-mode", "deterministic"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "identity (output = input)" in printed and "hist_L" in printed
    results = json.loads((out / "metrics.json").read_text())["results"]
    assert set(results) == {"model", "epoch_0001", "identity (output = input)"}
    # identity baseline: targets are the inputs' negatives, so L1 = mean |2x|
    xs = [np.asarray(Image.open(p)).astype(np.float32)[:, :32] / 127.5 - 1
          for p in sorted((trained / "data" / "test").iterdir())]
    expected = np.mean([np.abs(x - (-x)).mean() for x in xs])
    assert results["identity (output = input)"]["l1"] == pytest.approx(expected, rel=0.02)
    for row in results.values():
        assert 0 <= row["hist_L"] <= 1 and row["images"] == 2
    assert (out / "samples.png").is_file() and "<table>" in (out / "report.html").read_text()


@pytest.mark.slow
def test_commands_work_in_a_fresh_interpreter(trained, tmp_path):
    """As users run them: nothing registered beforehand, and TensorFlow's spurious error-level
    'remapper failed' log line suppressed by the commands."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    trained_run = subprocess.run(
        [sys.executable, "-m", "pix2pix_tf.train", "--data", str(trained / "data"),
         "--run-dir", str(tmp_path / "run"), "--epochs", "1", "--epochs-decay", "0", *TINY],
        capture_output=True, text=True, env=env)
    assert trained_run.returncode == 0, trained_run.stderr[-2000:]
    assert "remapper failed" not in trained_run.stderr
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(image)
    result = subprocess.run(
        [sys.executable, "-m", "pix2pix_tf.predict", "--model", str(tmp_path / "run" / "model.keras"),
         "--input", str(image), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "out" / "x.png").size == (30, 20)
