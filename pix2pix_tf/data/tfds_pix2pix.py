"""A TFDS builder for the public pix2pix datasets: ``tfds.load("pix2pix/facades")``.

Each archive holds side-by-side A|B JPEGs in split folders; the builder stores the two halves as
features ``a`` and ``b`` (uint8) plus the ``file_name``. Which side is the input depends on the
dataset (facades' labels -> photo is B -> A); ``load_paired_dataset(..., direction=)`` chooses.

Downloads come from the authors' server (the old people.eecs.berkeley.edu/~tinghuiz address is
dead). An archive you already have, ``NAME.tar.gz``, is used instead of downloading when it lies
in TFDS's manual directory (``download_config=tfds.download.DownloadConfig(manual_dir=...)``,
default ``~/tensorflow_datasets/downloads/manual``).

Importing this module registers the builder with TFDS; ``pix2pix_tf.load_paired_dataset`` does so
itself when given a ``pix2pix/...`` name.
"""

import io

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"

#: dataset -> (published splits, description)
DATASETS = {
    "facades": (("train", "val", "test"), "CMP Facades: photo (A) | architectural labels (B); 400/100/106."),
    "cityscapes": (("train", "val"), "Cityscapes: photo (A) | semantic labels (B); 2975/500."),
    "maps": (("train", "val"), "Google Maps: aerial photo (A) | map (B); 1096/1098."),
    "edges2shoes": (("train", "val"), "UT Zappos50K: edges (A) | shoe photo (B); ~50k, 2.2 GB."),
    "edges2handbags": (("train", "val"), "Amazon handbags: edges (A) | photo (B); ~137k, 8.6 GB."),
    "night2day": (("train", "val", "test"), "Transient attributes: night (A) | day (B); ~17.8k train."),
}


class Pix2pixConfig(tfds.core.BuilderConfig):
    def __init__(self, *, splits, **kwargs):
        super().__init__(**kwargs)
        self.splits = splits


class Pix2pix(tfds.core.GeneratorBasedBuilder):
    """The paired datasets published with pix2pix (Isola et al., 2017)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Optional: put NAME.tar.gz (from " + URL.format(name="NAME") + ") in the manual "
        "directory to skip the download."
    )
    BUILDER_CONFIGS = [
        Pix2pixConfig(name=name, description=description, splits=splits)
        for name, (splits, description) in DATASETS.items()
    ]

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "a": tfds.features.Image(shape=(None, None, 3)),
                "b": tfds.features.Image(shape=(None, None, 3)),
                "file_name": tfds.features.Text(),
            }),
            homepage="https://phillipi.github.io/pix2pix/",
            citation="""@inproceedings{isola2017image,
  title={Image-to-Image Translation with Conditional Adversarial Networks},
  author={Isola, Phillip and Zhu, Jun-Yan and Zhou, Tinghui and Efros, Alexei A},
  booktitle={CVPR}, year={2017}}""",
        )

    def _split_generators(self, dl_manager):
        name = self.builder_config.name
        archive = None
        try:
            candidate = dl_manager.manual_dir / f"{name}.tar.gz"
            if candidate.exists():
                archive = candidate
        except AssertionError:  # no manual_dir configured
            pass
        if archive is not None:
            root = dl_manager.extract(archive)
        else:
            root = dl_manager.download_and_extract(URL.format(name=name))
        if (root / name).exists():
            root = root / name
        return {split: self._generate_examples(root / split) for split in self.builder_config.splits}

    def _generate_examples(self, folder):
        files = sorted(p for p in folder.iterdir() if p.name.lower().endswith((".jpg", ".png")))
        if not files:
            raise ValueError(f"{folder}: no images; is the archive complete?")
        for path in files:
            with Image.open(io.BytesIO(path.read_bytes())) as image:
                pair = np.asarray(image.convert("RGB"))
            width = pair.shape[1]
            if width % 2:
                raise ValueError(f"{path}: odd width {width}, not an A|B pair")
            yield path.name, {"a": pair[:, : width // 2], "b": pair[:, width // 2 :],
                              "file_name": path.name}


def prepare_offline(name, folder, data_dir):
    """Builds ``pix2pix/NAME`` into ``data_dir`` from ``folder/NAME/<split>/*.jpg|png`` (the
    archive's layout: A|B side by side), packed as the archive in a manual directory beside it,
    so that nothing is downloaded; returns ``data_dir``. For datasets you already have unpacked,
    and for the offline tests."""
    import tarfile
    from pathlib import Path

    manual = Path(data_dir) / "manual"
    manual.mkdir(parents=True, exist_ok=True)
    with tarfile.open(manual / f"{name}.tar.gz", "w:gz") as archive:
        archive.add(Path(folder) / name, arcname=name)
    Pix2pix(config=name, data_dir=str(data_dir)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    return Path(data_dir)
