"""The TFDS builder, offline: archives built here, never downloaded."""

import tarfile

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from pix2pix_tf.data import load_paired_dataset, tfds_pix2pix
from pix2pix_tf.data.tfds_pix2pix import DATASETS, URL, Pix2pix

SPLIT_SIZES = {"train": 3, "val": 2, "test": 1}


def make_dataset_tree(root, name="facades", splits=SPLIT_SIZES):
    """A miniature copy of the published archive layout: NAME/<split>/<i>.jpg, A|B side by side."""
    rng = np.random.default_rng(0)
    for split, count in splits.items():
        folder = root / name / split
        folder.mkdir(parents=True)
        for i in range(count):
            a = np.full((32, 32, 3), 40 * i, np.uint8)
            b = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(np.concatenate([a, b], 1)).save(folder / f"{i + 1}.jpg", quality=95)
    return root


def test_every_config_points_at_the_public_archive():
    names = {c.name for c in Pix2pix.BUILDER_CONFIGS}
    assert names == {"facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day"}
    assert URL.format(name="facades") == (
        "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz")
    assert DATASETS["facades"][0] == ("train", "val", "test")
    assert DATASETS["maps"][0] == ("train", "val")


def test_builds_from_a_local_archive_and_loads_by_name(tmp_path):
    tree = make_dataset_tree(tmp_path / "src")
    manual = tmp_path / "manual"
    manual.mkdir()
    with tarfile.open(manual / "facades.tar.gz", "w:gz") as archive:
        archive.add(tree / "facades", arcname="facades")
    data_dir = tmp_path / "tfds"
    builder = Pix2pix(config="facades", data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == SPLIT_SIZES
    example = next(iter(builder.as_dataset(split="train").take(1)))
    assert example["a"].shape == (32, 32, 3) and example["b"].shape == (32, 32, 3)
    # the left half (flat grey) is A, the right half (noise) is B
    assert example["a"].numpy().std() < 3 and example["b"].numpy().std() > 30

    ds = load_paired_dataset("pix2pix/facades", "val", direction="BtoA", batch_size=2,
                             crop_size=32, load_size=36, multiple=32, data_dir=str(data_dir))
    x, y = next(iter(ds))
    assert x.shape == (2, 32, 32, 3) and y.shape == (2, 32, 32, 3)
    assert float(y.numpy().min()) >= -1 and float(y.numpy().max()) <= 1
    # BtoA: the target is the flat A half (value 0 or 40 -> about -1 or -0.69)
    assert float(np.std(y.numpy()[0])) < 0.05


class Pix2pixFacadesTest(tfds.testing.DatasetBuilderTestCase):
    """TFDS's own builder checks on a generated miniature of the facades archive."""

    DATASET_CLASS = Pix2pix
    BUILDER_CONFIG_NAMES_TO_TEST = ["facades"]
    SPLITS = SPLIT_SIZES
    SKIP_CHECKSUMS = True

    @classmethod
    def setUpClass(cls):
        import tempfile
        from pathlib import Path

        cls._tmp = tempfile.TemporaryDirectory()
        cls.EXAMPLE_DIR = str(make_dataset_tree(Path(cls._tmp.name)))
        cls.DL_EXTRACT_RESULT = ""
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls._tmp.cleanup()


def test_module_registers_the_builder():
    assert "pix2pix" in tfds.list_builders(with_community_datasets=False)
    assert tfds_pix2pix.Pix2pix.name == "pix2pix"
