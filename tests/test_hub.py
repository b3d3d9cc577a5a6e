"""Publishing to the Hugging Face Hub, offline: ``export MODEL --hub user/repo --dry-run``
writes the model in Keras' hf:// layout with a model card (metadata header, metrics, sample,
usage) and sample grid; that folder, put in a Hub cache, loads through ``hf://`` and translates
as the original does."""

import keras
import numpy as np
import pytest
from helpers import hub_cache
from test_cli import TINY, make_pairs

from pix2pix_tf.cli import export as export_cli
from pix2pix_tf.cli import train as train_cli
from pix2pix_tf.exporters.hub import model_card, publish
from pix2pix_tf.loading import load_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    assert train_cli.main(["--data", str(make_pairs(root / "data")), "--run-dir",
                           str(root / "run"), "--epochs", "1", "--epochs-decay", "0",
                           *TINY]) == 0
    return root / "run"


def front_matter(text):
    assert text.startswith("---\n")
    header = text.split("---\n")[1]
    return header.splitlines()


def test_dry_run_writes_the_model_card_and_the_files(run, tmp_path, capsys):
    out = tmp_path / "out"
    code = export_cli.main([str(run / "model.keras"), "--hub", "me/tiny-maps", "--dry-run",
                            "--license", "mit", "--output", str(out)])
    assert code == 0 and "nothing uploaded" in capsys.readouterr().out
    folder = out / "hub"
    names = {p.name for p in folder.iterdir() if p.is_file()}
    assert names == {"config.json", "metadata.json", "model.weights.h5", "README.md",
                     "sample.png"}
    assert not (out / "saved_model").exists()  # --hub alone exports nothing else
    card = (folder / "README.md").read_text()
    header = front_matter(card)
    for line in ("library_name: keras", "license: mit", "pipeline_tag: image-to-image",
                 "- pix2pix", "- translate"):
        assert line in header
    assert "# tiny-maps" in card and "![samples](sample.png)" in card
    assert "validation after epoch 1 (history.csv)" in card
    for name in ("L1", "PSNR", "SWD"):
        assert f"| {name}" in card
    assert 'keras.saving.load_model("hf://me/tiny-maps")' in card
    assert "--init hf://me/tiny-maps" in card and "--model hf://me/tiny-maps" in card


def test_the_published_folder_loads_through_hf_and_translates_the_same(run, tmp_path,
                                                                       monkeypatch):
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    original = keras.models.load_model(run / "model.keras")
    folder = publish(original, "me/tiny", tmp_path / "hub", model_path=run / "model.keras",
                     dry_run=True)
    hub_cache(tmp_path / "cache", "me/tiny", folder=folder)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    loaded = load_model("hf://me/tiny")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.generator(x, training=False).numpy(),
                                  original.generator(x, training=False).numpy())
    assert loaded.training_config == original.training_config


def test_a_card_without_run_metrics_or_samples_says_less_not_wrong(run, tmp_path):
    model = keras.models.load_model(run / "model.keras")
    card = model_card(model, "me/x")
    assert "## Metrics" not in card and "sample.png" not in card and "license: other" in card
    with pytest.raises(ValueError, match="user/repo"):
        publish(model, "no-slash", tmp_path / "h", dry_run=True)
