"""The README's and the docs' Python examples must run as written."""

import os
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
QUICK_START = ROOT / "docs" / "python.md"
PRETRAINED = ROOT / "docs" / "pretrained.md"


def python_blocks(page=README, count=1):
    """The ```python blocks of a page: the README has one (the everyday verbs), docs/python.md
    one (the quick start, piece by piece), docs/pretrained.md one (the three lines)."""
    blocks = re.findall(r"^```python\n(.*?)^```$", page.read_text(), re.S | re.M)
    assert len(blocks) == count, (page, len(blocks))
    return blocks


def test_readme_everyday_verbs_run(tmp_path, monkeypatch):
    """The verbs block on a small stand-in for the set-up command's runs/quick/model.keras."""
    import pix2pix_tf

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "quick").mkdir(parents=True)
    model = pix2pix_tf.Pix2Pix(
        pix2pix_tf.build_generator("unet", num_downs=3, ngf=8, seed=0),
        pix2pix_tf.build_discriminator("patchgan", ndf=8, n_layers=1, seed=1),
        inference_mode="deterministic",
        training_config={"task": "translate", "data": "demo", "crop_size": 64})
    model.compile()
    model.save(tmp_path / "runs" / "quick" / "model.keras")
    exec(compile(python_blocks()[0], str(README), "exec"), {})
    from PIL import Image

    assert Image.open(tmp_path / "out.png").size == (256, 256)
    out = tmp_path / "exports" / "quick"
    assert (out / "pix2pix_float32.tflite").is_file() and (out / "pix2pix.onnx").is_file()
    assert (out / "saved_model" / "pix2pix" / "1" / "saved_model.pb").is_file()


def test_readme_quick_start_runs(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(QUICK_START)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(blocks[0], str(QUICK_START), "exec"), namespace)
    assert "(2, 64, 64, 3)" in capsys.readouterr().out
    assert os.path.exists(tmp_path / "quickstart.keras")
    assert namespace["restored"].g_optimizer.iterations.numpy() == 8 * 3
    assert set(namespace["history"].history) == {"d_loss", "g_gan", "g_l1", "g_total",
                                                   "d_real_acc", "d_fake_acc"}


def test_readme_commands_match_ci():
    text = README.read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[dev]" && python -m pix2pix_tf.train' in text
    assert 'pip install -e ".[dev]"' in ci
    assert "python -m pytest -q tests" in text and "python -m pytest -q tests" in ci


def test_readme_pretrained_lines_run(tmp_path, monkeypatch):
    """The three lines, with the authors' server replaced by a local folder holding a small
    checkpoint in the reference's format."""
    import numpy as np
    from PIL import Image

    import pix2pix_tf.tasks.translate.pretrained

    server = tmp_path / "server"
    server.mkdir()
    shutil.copy(ROOT / "tests" / "fixtures" / "torch_unet" / "unet_zip.pth",
                server / "sat2map.pth")
    monkeypatch.setattr(pix2pix_tf.tasks.translate.pretrained, "BASE_URL", server.as_uri())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.chdir(tmp_path)
    photo = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    Image.fromarray(photo).save("aerial.jpg")
    exec(compile(python_blocks(PRETRAINED)[0], str(PRETRAINED), "exec"), {})
    assert Image.open("map.png").size == (300, 200)
    assert (tmp_path / "keras" / "models" / "pix2pix_tf" / "sat2map.pth").is_file()
