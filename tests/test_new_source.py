"""The proof that a kind of data is one table entry: a NumPy ``.npz`` file of pairs, registered in
this one file, is read by ``train --data``, listed for its splits, validated on, evaluated and
refused clearly when damaged, with no entry anywhere else (as tests/test_third_task.py does for
a task, tests/test_new_network.py for a network, tests/test_new_target.py for an export target).
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf.cli import evaluate as evaluate_cli
from pix2pix_tf.cli import train as train_cli
from pix2pix_tf.data import DataError, PairSource, register_source
from pix2pix_tf.data.sources import SOURCE_KINDS


class NpzSource(PairSource):
    """``pairs.npz``: arrays ``<split>_a`` and ``<split>_b``, uint8 (N, H, W, C)."""

    def __init__(self, path, split):
        with np.load(path) as arrays:
            if f"{split}_a" not in arrays:
                raise DataError(f"{path}: no {split}_a array (it has {', '.join(arrays)}).")
            a, b = arrays[f"{split}_a"], arrays[f"{split}_b"]
        self.name, self.count = f"{path} ({split})", len(a)
        self.sizes = {a.shape[1:3]}
        self.a_channels, self.b_channels = a.shape[-1], b.shape[-1]
        self._a, self._b = tf.constant(a), tf.constant(b)

    def __len__(self):
        return self.count

    def load(self, index):
        return {"a": tf.cast(tf.gather(self._a, index), tf.float32) / 255.0,
                "b": tf.cast(tf.gather(self._b, index), tf.float32) / 255.0}


def npz_splits(path):
    with np.load(path) as arrays:
        return [s for s in ("train", "val", "test") if f"{s}_a" in arrays]


def npz_example(folder):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in (("train", 4), ("test", 2)):
        a = rng.integers(0, 256, (count, 20, 20, 3), dtype=np.uint8)
        arrays[f"{split}_a"], arrays[f"{split}_b"] = a, 255 - a
    np.savez(folder / "pairs.npz", **arrays)
    return str(folder / "pairs.npz"), {}


@pytest.fixture(autouse=True, scope="module")
def registered():
    """The kind in the table for this file's tests (a plug-in module would register it at
    import), and out again afterwards."""
    register_source("npz", lambda data: str(data).endswith(".npz"),
                    lambda data, split: NpzSource(data, split), npz_splits, example=npz_example)
    yield
    del SOURCE_KINDS["npz"]


def test_train_and_evaluate_read_the_registered_kind(tmp_path):
    data, _ = npz_example(tmp_path)
    run = tmp_path / "run"
    code = train_cli.main(["--data", data, "--run-dir", str(run), "--epochs", "1",
                           "--epochs-decay", "0", "--crop-size", "16", "--load-size", "20",
                           "--generator", "unet", "--num-downs", "3", "--ngf", "4", "--ndf", "4",
                           "--n-layers-d", "1", "--quiet", "--samples", "1"])
    assert code == 0
    rows = (run / "history.csv").read_text().splitlines()
    assert len(rows) == 2 and "val_l1" in rows[0]  # validated on the file's test split
    assert json.loads((run / "config.json").read_text())["data"] == data
    code = evaluate_cli.main(["--model", str(run / "model.keras"), "--data", data,
                              "--output", str(tmp_path / "eval")])
    assert code == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["info"].startswith(f"2 test images from {data} (split test")
    assert 0 < metrics["results"]["model"]["l1"] < 2


def test_its_errors_reach_the_user_naming_the_file(tmp_path, capsys):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "broken.npz", val_a=rng.integers(0, 256, (2, 16, 16, 3), np.uint8),
             val_b=rng.integers(0, 256, (2, 16, 16, 3), np.uint8))
    code = train_cli.main(["--data", str(tmp_path / "broken.npz"), "--run-dir",
                           str(tmp_path / "run"), "--epochs", "1", "--quiet"])
    assert code == 2
    assert f"{tmp_path / 'broken.npz'}: no train_a array (it has val_a, val_b)" in \
        capsys.readouterr().err
